//! The edge's own threads, one event loop each (tokio's current-thread
//! runtime), like nginx's workers: each thread accepts on its own listener
//! of the same address (`SO_REUSEPORT`, the kernel spreads connections), and
//! a connection's requests, its upstream connections and their wake-ups all
//! stay on that thread. Proxied requests never wait behind the dashboard,
//! jobs or SQLite work on the main runtime, nor the other way round.
//!
//! Measured (benches/edge_vs_nginx.rs): a multi-thread runtime moved tasks
//! and wake-ups between threads and its p99 was 2.5-4.4× nginx's; one
//! event-loop thread, 1.12-1.39× over three runs of 5 rounds.

use std::net::SocketAddr;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// Threads when `SLIPWAY_EDGE_WORKERS` is `auto` (the default): half the
/// CPUs, at least one. On 2 cores, 1 thread beat 2 (the apps and the load
/// share the cores: see the bench figures in ARCHITECTURE.md).
pub fn default_workers() -> usize {
    let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
    (cpus / 2).clamp(1, MAX_WORKERS)
}
/// Most threads `SLIPWAY_EDGE_WORKERS` accepts.
pub const MAX_WORKERS: usize = 16;

/// The edge's threads; stopped (in the background) when dropped.
pub struct EdgeThreads {
    handles: Vec<Handle>,
    stop: CancellationToken,
}

impl EdgeThreads {
    /// `workers` threads (1 to [`MAX_WORKERS`]) named `edge-<i>`.
    pub fn start(workers: usize) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let mut handles = Vec::new();
        for i in 0..workers.clamp(1, MAX_WORKERS) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(rt.handle().clone());
            let stop = stop.clone();
            std::thread::Builder::new().name(format!("edge-{i}")).spawn(move || {
                rt.block_on(stop.cancelled());
                // Open connections end with the runtime, on this thread.
                rt.shutdown_background();
            })?;
        }
        Ok(EdgeThreads { handles, stop })
    }

    /// One runtime handle per thread.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// One listener per thread on `addr` (port 0: one free port for all),
    /// each registered with its thread's runtime. An address in use by any
    /// other socket is refused first, even one that shares ports too.
    pub fn listen(&self, addr: SocketAddr) -> std::io::Result<Vec<tokio::net::TcpListener>> {
        let mut addr = addr;
        if addr.port() != 0 {
            drop(std::net::TcpListener::bind(addr)?);
        }
        let mut listeners = Vec::new();
        for handle in &self.handles {
            let _entered = handle.enter();
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.set_reuseport(true)?;
            socket.set_nodelay(true)?;
            socket.bind(addr)?;
            let listener = socket.listen(1024)?;
            addr = listener.local_addr()?;
            listeners.push(listener);
        }
        Ok(listeners)
    }
}

impl Drop for EdgeThreads {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
