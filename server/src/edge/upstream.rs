//! Keep-alive connections to one upstream, and how a request gets one.
//!
//! Each route's [`UpstreamPool`] keeps a small stack of idle connections;
//! each client connection of the edge also keeps the last upstream
//! connection it used ([`Affinity`]), so a steady keep-alive client sends
//! every request over the same upstream connection without touching the
//! pool's lock or spawning anything. (hyper-util's pooled client, used
//! before, locked its pool twice and spawned a task per request.)
//!
//! A request that a reused connection refused before writing a byte of it
//! (the upstream closed that keep-alive connection a moment earlier) is sent
//! again on another connection; one that was written and then failed is not.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// At most this many idle connections are kept per upstream.
const MAX_IDLE: usize = 64;
/// An idle connection unused for this long is closed, not reused.
const IDLE_FOR: Duration = Duration::from_secs(30);

/// The idle keep-alive connections to one upstream address. Dropping the
/// pool (its route was replaced and drained) closes them.
/// `B`: the request body type (the edge's clients' `Incoming`).
#[derive(Debug)]
pub struct UpstreamPool<B = Incoming> {
    addr: SocketAddr,
    idle: Mutex<Vec<(SendRequest<B>, Instant)>>,
}

impl<B> UpstreamPool<B> {
    pub fn new(addr: SocketAddr) -> Self {
        UpstreamPool { addr, idle: Mutex::new(Vec::new()) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Idle connections held now.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The most recently used idle connection that can take a request now;
    /// closed or stale ones met on the way are dropped (which closes them).
    fn take_idle(&self) -> Option<SendRequest<B>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((sender, since)) = idle.pop() {
            if sender.is_ready() && since.elapsed() < IDLE_FOR {
                return Some(sender);
            }
        }
        None
    }

    /// Keeps a connection for the next request, unless it is closed or the
    /// stack is full.
    fn give_back(&self, sender: SendRequest<B>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((sender, Instant::now()));
        }
    }
}

impl<B> UpstreamPool<B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    async fn connect(&self, timeout: Duration) -> Result<SendRequest<B>, SendError> {
        let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(self.addr))
            .await
            .map_err(|_| SendError::Connect(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")))?
            .map_err(SendError::Connect)?;
        stream.set_nodelay(true).map_err(SendError::Connect)?;
        let (sender, conn) =
            hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// Why a request got no response from its upstream.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// The upstream connection a client connection used last, and its pool.
/// Dropped with the client connection: the connection goes back to the
/// pool for other clients.
pub struct Affinity<B = Incoming> {
    held: Mutex<Option<Held<B>>>,
}

/// A connection and the pool it goes back to.
type Held<B> = (Arc<UpstreamPool<B>>, SendRequest<B>);

impl<B> Default for Affinity<B> {
    fn default() -> Self {
        Affinity { held: Mutex::new(None) }
    }
}

impl<B> Affinity<B> {
    fn take(&self, pool: &Arc<UpstreamPool<B>>) -> Option<SendRequest<B>> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        match held {
            (owner, sender) if Arc::ptr_eq(&owner, pool) => Some(sender),
            (owner, sender) => {
                owner.give_back(sender);
                None
            }
        }
    }

    fn keep(&self, pool: &Arc<UpstreamPool<B>>, sender: SendRequest<B>) {
        let previous = self.held.lock().unwrap_or_else(|e| e.into_inner()).replace((pool.clone(), sender));
        if let Some((owner, sender)) = previous {
            owner.give_back(sender);
        }
    }
}

impl<B> Drop for Affinity<B> {
    fn drop(&mut self) {
        let held = self.held.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((owner, sender)) = held {
            owner.give_back(sender);
        }
    }
}

/// Sends `request` to the pool's upstream over this client connection's
/// last upstream connection, an idle one, or a new one, in that order.
/// `upgrade`: the connection is given up after the response (it becomes
/// the tunnel's, or it is unusable).
pub async fn send<B>(
    pool: &Arc<UpstreamPool<B>>,
    affinity: &Affinity<B>,
    mut request: Request<B>,
    connect_timeout: Duration,
    upgrade: bool,
) -> Result<Response<Incoming>, SendError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut reused = affinity.take(pool).or_else(|| pool.take_idle());
    loop {
        let (mut sender, fresh) = match reused.take() {
            Some(sender) => (sender, false),
            None => (pool.connect(connect_timeout).await?, true),
        };
        if let Err(e) = sender.ready().await {
            if fresh {
                return Err(e.into());
            }
            reused = pool.take_idle();
            continue;
        }
        match sender.try_send_request(request).await {
            Ok(response) => {
                if !upgrade {
                    affinity.keep(pool, sender);
                }
                return Ok(response);
            }
            Err(mut e) => match e.take_message() {
                // Never written: safe to send again, on another connection.
                Some(unsent) if !fresh => {
                    request = unsent;
                    reused = pool.take_idle();
                }
                _ => return Err(e.into_error().into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Full};

    use super::*;

    /// An HTTP/1.1 server on 127.0.0.1 answering "ok"; counts the
    /// connections it accepted and those that ended. `keep_alive: false`
    /// closes each connection after one response.
    struct Upstream {
        addr: SocketAddr,
        accepted: Arc<AtomicUsize>,
        ended: Arc<AtomicUsize>,
    }

    async fn upstream(keep_alive: bool) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (accepted, ended) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (a, e) = (accepted.clone(), ended.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let e = e.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(keep_alive)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    e.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Upstream { addr, accepted, ended }
    }

    async fn get(
        pool: &Arc<UpstreamPool<Empty<Bytes>>>,
        affinity: &Affinity<Empty<Bytes>>,
    ) -> Result<Bytes, SendError> {
        let request = Request::get("/").header("host", "x").body(Empty::new()).expect("request");
        let response = send(pool, affinity, request, Duration::from_secs(2), false).await?;
        Ok(response.into_body().collect().await?.to_bytes())
    }

    async fn until(what: &str, check: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !check() {
            assert!(Instant::now() < deadline, "still not: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_client_connection_keeps_its_upstream_connection_and_gives_it_back_on_close() {
        let up = upstream(true).await;
        let pool = Arc::new(UpstreamPool::new(up.addr));
        let first = Affinity::default();
        for _ in 0..20 {
            assert_eq!(get(&pool, &first).await.expect("answer"), "ok");
        }
        assert_eq!(up.accepted.load(Ordering::SeqCst), 1, "20 requests over one upstream connection");
        assert_eq!(pool.idle(), 0, "held by the client connection, not idle");
        drop(first);
        assert_eq!(pool.idle(), 1, "given back when the client connection closed");
        let second = Affinity::default();
        assert_eq!(get(&pool, &second).await.expect("answer"), "ok");
        assert_eq!(up.accepted.load(Ordering::SeqCst), 1, "another client reuses it");
        drop(second);
        drop(pool);
        until("the idle connection closed with its pool", || up.ended.load(Ordering::SeqCst) == 1).await;
    }

    #[tokio::test]
    async fn an_upstream_closing_every_connection_fails_no_request() {
        let up = upstream(false).await;
        let pool = Arc::new(UpstreamPool::new(up.addr));
        let affinity = Affinity::default();
        for i in 0..200 {
            let answer = get(&pool, &affinity).await;
            assert!(matches!(&answer, Ok(b) if b == "ok"), "request {i}: {answer:?}");
        }
        assert_eq!(up.accepted.load(Ordering::SeqCst), 200, "one connection per request");
    }

    #[tokio::test]
    async fn concurrent_clients_share_at_most_as_many_connections_as_they_are() {
        let up = upstream(true).await;
        let pool = Arc::new(UpstreamPool::new(up.addr));
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let affinity = Affinity::default();
                    for _ in 0..50 {
                        get(&pool, &affinity).await.expect("answer");
                    }
                })
            })
            .collect();
        for client in clients {
            client.await.expect("client");
        }
        assert!(
            up.accepted.load(Ordering::SeqCst) <= 4,
            "{} connections",
            up.accepted.load(Ordering::SeqCst)
        );
        assert_eq!(pool.idle(), up.accepted.load(Ordering::SeqCst), "all given back");
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_connect_error() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let pool = Arc::new(UpstreamPool::new(addr));
        let answer = get(&pool, &Affinity::default()).await;
        assert!(matches!(answer, Err(SendError::Connect(_))), "{answer:?}");
    }
}
