//! The proxy itself: HTTP/1.1 on the edge listener, routing by `Host`,
//! streaming bodies both ways, `X-Forwarded-*`, hop-by-hop headers removed,
//! WebSocket (and other) upgrades tunnelled, pooled keep-alive upstream
//! connections, connect and response timeouts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{EdgeRouter, InFlightGuard, RouteStats};

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Timeouts of the proxy.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// To open a connection to an upstream.
    pub connect_timeout: Duration,
    /// From sending the request to the upstream's response headers.
    pub response_timeout: Duration,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig { connect_timeout: Duration::from_secs(5), response_timeout: Duration::from_secs(60) }
    }
}

struct Proxy {
    router: Arc<EdgeRouter>,
    client: Client<HttpConnector, ProxyBody>,
    config: EdgeConfig,
}

/// Serves the edge on `listener` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Arc<EdgeRouter>,
    config: EdgeConfig,
    shutdown: CancellationToken,
) {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(config.connect_timeout));
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build(connector);
    let proxy = Arc::new(Proxy { router, client, config });
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "edge accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.handle(req, peer).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "edge connection ended with an error");
            }
        });
    }
}

/// Headers that describe one hop, never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including those the `Connection` header
/// names. Returns the `Upgrade` value if the message asked to upgrade.
fn strip_hop_by_hop(headers: &mut HeaderMap) -> Option<HeaderValue> {
    let upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten();
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(named.iter()) {
        headers.remove(name);
    }
    upgrade
}

/// The request's host, lower-cased, without a port.
fn host_of<B>(req: &Request<B>) -> Option<String> {
    let raw = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().host())?;
    let host = match raw.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => raw,
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

fn page(status: StatusCode, text: &'static str) -> Response<ProxyBody> {
    let body = format!(
        "<!doctype html><html><head><title>{status}</title></head><body><h1>{status}</h1><p>{text}</p></body></html>\n"
    );
    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl Proxy {
    async fn handle(&self, mut req: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
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
        let stats = target.stats.clone();
        stats.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let span = tracing::debug_span!(
            "edge",
            service_id = target.route.service_id,
            deployment_id = target.route.upstream.deployment_id
        );
        async {
            let upstream = target.route.upstream.addr;
            let client_upgrade = hyper::upgrade::on(&mut req);
            let (mut parts, body) = req.into_parts();
            let upgrade = strip_hop_by_hop(&mut parts.headers);
            forwarded_headers(&mut parts.headers, peer, &host);
            if let Some(protocol) = &upgrade {
                parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                parts.headers.insert(header::UPGRADE, protocol.clone());
            }
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            parts.uri = match Uri::builder()
                .scheme("http")
                .authority(upstream.to_string())
                .path_and_query(path)
                .build()
            {
                Ok(uri) => uri,
                Err(_) => return page(StatusCode::BAD_REQUEST, "The request target is invalid."),
            };
            let outgoing = Request::from_parts(parts, body.boxed());

            let started = Instant::now();
            let answer =
                tokio::time::timeout(self.config.response_timeout, self.client.request(outgoing)).await;
            stats.observe_latency(started.elapsed());
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
            count_status(&stats, response.status());

            if response.status() == StatusCode::SWITCHING_PROTOCOLS && upgrade.is_some() {
                let upstream_upgrade = hyper::upgrade::on(&mut response);
                tokio::spawn(tunnel(client_upgrade, upstream_upgrade, guard).in_current_span());
                let (parts, _) = response.into_parts();
                return Response::from_parts(
                    parts,
                    http_body_util::Empty::new().map_err(|never| match never {}).boxed(),
                );
            }
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, GuardedBody { inner: body, _guard: guard }.boxed())
        }
        .instrument(span)
        .await
    }
}

fn count_status(stats: &RouteStats, status: StatusCode) {
    use std::sync::atomic::Ordering::Relaxed;
    if status.is_client_error() {
        stats.client_errors.fetch_add(1, Relaxed);
    } else if status.is_server_error() {
        stats.server_errors.fetch_add(1, Relaxed);
    }
}

fn forwarded_headers(headers: &mut HeaderMap, peer: SocketAddr, host: &str) {
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", value);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Ok(value) = HeaderValue::from_str(host) {
        headers.insert("x-forwarded-host", value);
    }
}

/// Copies bytes both ways between an upgraded client and upstream
/// connection; the in-flight guard lives as long as the tunnel.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    _guard: InFlightGuard,
) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(error = %e, "upgraded connection ended with an error");
    }
}

/// A response body that keeps its request counted in flight until it has
/// been sent in full (or the client went away).
struct GuardedBody {
    inner: Incoming,
    _guard: InFlightGuard,
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_upgrades_are_seen() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade, x-secret-hop"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert_eq!(strip_hop_by_hop(&mut h), Some(HeaderValue::from_static("websocket")));
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key(header::ACCEPT));
    }

    #[test]
    fn host_is_normalized() {
        let req = |host: &str| Request::get("/").header(header::HOST, host).body(()).expect("request");
        assert_eq!(host_of(&req("Web.Shop.Localhost:8080")).as_deref(), Some("web.shop.localhost"));
        assert_eq!(host_of(&req("web.shop.localhost.")).as_deref(), Some("web.shop.localhost"));
    }
}
