//! The proxy itself: HTTP/1.1 on the edge listener (and HTTP/1.1 or
//! HTTP/2 behind the TLS listener), routing by `Host`, streaming bodies both
//! ways, `X-Forwarded-*`, hop-by-hop headers removed, WebSocket (and other)
//! upgrades tunnelled, keep-alive upstream connections, connect and
//! response timeouts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::body::{tunnel, EdgeBody, GuardedBody};
use super::headers::{host_of, strip_hop_by_hop, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO};
use super::upstream::{self, Affinity};
use super::{EdgeRouter, RouteStats};

/// Timeouts of the proxy.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// To open a connection to an upstream.
    pub connect_timeout: Duration,
    /// From sending the request to the upstream's response headers.
    pub response_timeout: Duration,
    /// `SLIPWAY_EDGE_ACME_WEBROOT`: the plain listener answers ACME HTTP-01
    /// challenges from it (see [`super::acme`]).
    pub acme_webroot: Option<std::path::PathBuf>,
    /// The HTTPS listener's port, for redirects to HTTPS (`None`: no HTTPS
    /// listener, so no redirect).
    pub https_port: Option<u16>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(60),
            acme_webroot: None,
            https_port: None,
        }
    }
}

pub(super) struct Proxy {
    router: Arc<EdgeRouter>,
    config: EdgeConfig,
}

impl Proxy {
    pub(super) fn new(router: Arc<EdgeRouter>, config: EdgeConfig) -> Arc<Self> {
        Arc::new(Proxy { router, config })
    }
}

/// One client connection: what every request on it shares.
struct Client {
    proxy: Arc<Proxy>,
    /// The peer's address as an `X-Forwarded-For` value, made once.
    peer_ip: HeaderValue,
    scheme: Scheme,
    /// `X-Forwarded-Proto`: `http` or `https`.
    proto: HeaderValue,
    affinity: Affinity,
}

/// Serves the edge on `listener` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Arc<EdgeRouter>,
    config: EdgeConfig,
    shutdown: CancellationToken,
) {
    let proxy = Proxy::new(router, config);
    while let Some((stream, peer)) = accept(&listener, &shutdown).await {
        tokio::spawn(serve_connection(stream, peer, proxy.clone(), Scheme::Http));
    }
}

/// The next connection (`TCP_NODELAY` set), or `None` once `shutdown`
/// fires; an accept error (out of descriptors…) is logged and retried.
pub(super) async fn accept(
    listener: &tokio::net::TcpListener,
    shutdown: &CancellationToken,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    return Some((stream, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, addr = ?listener.local_addr().ok(), "edge accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.cancelled() => return None,
        }
    }
}

/// How a client connection reached the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    Http,
    /// TLS, then HTTP/1.1.
    Https,
    /// TLS, then HTTP/2 (ALPN `h2`).
    Https2,
}

/// Serves the requests of one accepted (and, for HTTPS, handshaken)
/// connection until it closes.
pub(super) async fn serve_connection<I>(io: I, peer: SocketAddr, proxy: Arc<Proxy>, scheme: Scheme)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let client = Arc::new(Client {
        proxy,
        peer_ip: HeaderValue::from_str(&peer.ip().to_string()).unwrap_or(HeaderValue::from_static("unknown")),
        scheme,
        proto: HeaderValue::from_static(if scheme == Scheme::Http { "http" } else { "https" }),
        affinity: Affinity::default(),
    });
    let service = hyper::service::service_fn(move |req| {
        let client = client.clone();
        async move { Ok::<_, Infallible>(client.proxy.handle(req, &client).await) }
    });
    let served = match scheme {
        Scheme::Http | Scheme::Https => {
            hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades()
                .await
        }
        Scheme::Https2 => {
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service)
                .await
        }
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, %peer, "edge connection ended with an error");
    }
}

fn page(status: StatusCode, text: &'static str) -> Response<EdgeBody> {
    let body = format!(
        "<!doctype html><html><head><title>{status}</title></head><body><h1>{status}</h1><p>{text}</p></body></html>\n"
    );
    let mut response = Response::new(EdgeBody::Page(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl Proxy {
    async fn handle(&self, req: Request<Incoming>, client: &Client) -> Response<EdgeBody> {
        if let Some(webroot) = &self.config.acme_webroot {
            if client.scheme == Scheme::Http && req.uri().path().starts_with(super::acme::PREFIX) {
                return super::acme::answer(webroot, req.uri().path()).await;
            }
        }
        let Some(host) = host_of(&req) else {
            return page(StatusCode::BAD_REQUEST, "The request has no Host header.");
        };
        let Some((target, guard)) = self.router.acquire(&host) else {
            if self.router.is_parked(&host) {
                return page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "This service is stopped. A deployer can start it again from the Slipway dashboard.",
                );
            }
            return page(StatusCode::NOT_FOUND, "No service answers on this host.");
        };
        drop(host);
        if client.scheme == Scheme::Http && target.route.policy.https_redirect {
            if let Some(port) = self.config.https_port {
                if !req.uri().path().starts_with(super::acme::PREFIX) {
                    return redirect_to_https(&target.route.host, port, req.uri());
                }
            }
        }
        let stats = &target.stats;
        stats.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let span = tracing::debug_span!(
            "edge",
            service_id = target.route.service_id,
            deployment_id = target.route.upstream.deployment_id
        );
        async {
            let (mut parts, body) = req.into_parts();
            let upgrade = strip_hop_by_hop(&mut parts.headers);
            let client_upgrade =
                upgrade.as_ref().and_then(|_| parts.extensions.remove::<hyper::upgrade::OnUpgrade>());
            forwarded_headers(&mut parts.headers, client, &target.host_header);
            if let Some(protocol) = &upgrade {
                parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                parts.headers.insert(header::UPGRADE, protocol.clone());
            }
            if !parts.headers.contains_key(header::HOST) {
                parts.headers.insert(header::HOST, target.host_header.clone());
            }
            // Upstreams speak HTTP/1.1 and get the origin form
            // (`/path?query`); HTTP/2's `:authority` became `Host` above.
            if parts.version == http::Version::HTTP_2 {
                parts.version = http::Version::HTTP_11;
            }
            if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
                let path = parts.uri.path_and_query().cloned();
                parts.uri = match path {
                    Some(path) => Uri::from(path),
                    None => Uri::from_static("/"),
                };
            }
            let outgoing = Request::from_parts(parts, body);

            let started = Instant::now();
            let sent = upstream::send(
                &target.pool,
                &client.affinity,
                outgoing,
                self.config.connect_timeout,
                upgrade.is_some(),
            );
            let answer = tokio::time::timeout(self.config.response_timeout, sent).await;
            stats.observe_latency(started.elapsed());
            let upstream = target.pool.addr();
            let mut response = match answer {
                Ok(Ok(response)) => response,
                Ok(Err(e)) => {
                    stats.proxy_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(error = %e, %upstream, "upstream request failed");
                    return page(StatusCode::BAD_GATEWAY, "The service did not answer.");
                }
                Err(_) => {
                    stats.proxy_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(%upstream, "upstream response timed out");
                    return page(StatusCode::GATEWAY_TIMEOUT, "The service took too long to answer.");
                }
            };
            count_status(stats, response.status());

            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                if let Some(client_upgrade) = client_upgrade {
                    let upstream_upgrade = hyper::upgrade::on(&mut response);
                    tokio::spawn(tunnel(client_upgrade, upstream_upgrade, guard).in_current_span());
                    let (parts, _) = response.into_parts();
                    return Response::from_parts(parts, EdgeBody::Empty);
                }
            }
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            if client.scheme != Scheme::Http && target.route.policy.hsts {
                parts
                    .headers
                    .entry(header::STRICT_TRANSPORT_SECURITY)
                    .or_insert(HeaderValue::from_static(HSTS));
            }
            Response::from_parts(parts, EdgeBody::Upstream(GuardedBody { inner: body, _guard: guard }))
        }
        .instrument(span)
        .await
    }
}

/// One year, this host only (`includeSubDomains` would bind hosts that
/// are not this service's).
const HSTS: &str = "max-age=31536000";

/// 308 to the same host, path and query over https.
fn redirect_to_https(host: &str, port: u16, uri: &Uri) -> Response<EdgeBody> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let location = match port {
        443 => format!("https://{host}{path}"),
        port => format!("https://{host}:{port}{path}"),
    };
    let Ok(location) = HeaderValue::from_str(&location) else {
        return page(StatusCode::BAD_REQUEST, "The request target is invalid.");
    };
    let mut response = page(StatusCode::PERMANENT_REDIRECT, "This service is served over HTTPS.");
    response.headers_mut().insert(header::LOCATION, location);
    response
}

fn count_status(stats: &RouteStats, status: StatusCode) {
    use std::sync::atomic::Ordering::Relaxed;
    if status.is_client_error() {
        stats.client_errors.fetch_add(1, Relaxed);
    } else if status.is_server_error() {
        stats.server_errors.fetch_add(1, Relaxed);
    }
}

fn forwarded_headers(headers: &mut HeaderMap, client: &Client, host: &HeaderValue) {
    let peer_ip = &client.peer_ip;
    let forwarded_for = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(earlier) => {
            peer_ip.to_str().ok().and_then(|ip| HeaderValue::from_str(&format!("{earlier}, {ip}")).ok())
        }
        None => Some(peer_ip.clone()),
    };
    if let Some(value) = forwarded_for {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(X_FORWARDED_PROTO, client.proto.clone());
    headers.insert(X_FORWARDED_HOST, host.clone());
}
