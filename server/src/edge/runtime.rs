//! The edge's own threads: a tokio runtime that serves only the edge, so
//! proxied requests never wait behind the dashboard, jobs or SQLite work
//! on the main runtime (and the other way round).

/// Worker threads when `SLIPWAY_EDGE_WORKERS` is not set.
pub const DEFAULT_WORKERS: usize = 2;
/// Most worker threads `SLIPWAY_EDGE_WORKERS` accepts.
pub const MAX_WORKERS: usize = 16;

/// A multi-thread runtime of `workers` threads named `edge`.
pub fn build(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.clamp(1, MAX_WORKERS))
        .thread_name("edge")
        .enable_all()
        .build()
}

/// A runtime that shuts down in the background when dropped: it may be
/// dropped on another runtime's thread (where dropping a `Runtime` itself
/// panics), for instance when startup fails after the edge started.
pub struct Owned(Option<tokio::runtime::Runtime>);

impl Owned {
    pub fn start(workers: usize) -> std::io::Result<Self> {
        build(workers).map(|rt| Owned(Some(rt)))
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        match &self.0 {
            Some(rt) => rt.handle(),
            None => unreachable!("the runtime is only taken on drop"),
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
