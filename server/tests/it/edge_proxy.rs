//! The edge proxy's HTTP behaviour against a local upstream written in the
//! test: forwarded headers, hop-by-hop removal, streaming bodies, upgrades,
//! 404 for unknown hosts, 502 for a dead upstream, 504 for a slow one.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use server::{
    deploys::switch::{Route, RouteSwitch, Upstream},
    edge::{proxy, EdgeRouter},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

type Body = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into()).map_err(|never| match never {}).boxed()
}

/// The upstream: `/headers` lists the request headers, `/count` counts the
/// uploaded bytes, `/upgrade` switches to an echo protocol, `/slow` answers
/// after 3 s.
async fn upstream(mut req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    Ok(match path.as_str() {
        "/headers" => {
            let mut lines: Vec<String> =
                req.headers().iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?"))).collect();
            lines.sort();
            let mut res = Response::new(full(lines.join("\n")));
            res.headers_mut().insert("keep-alive", "timeout=5".parse().expect("value"));
            res.headers_mut().insert("x-upstream", "yes".parse().expect("value"));
            res
        }
        "/count" => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
            Response::new(full(body.to_string()))
        }
        "/upgrade" => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(upgraded) = on_upgrade.await {
                    let mut io = TokioIo::new(upgraded);
                    let mut buf = [0u8; 64];
                    while let Ok(n) = io.read(&mut buf).await {
                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            });
            let mut res = Response::new(full(""));
            *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            res.headers_mut().insert(header::CONNECTION, "upgrade".parse().expect("value"));
            res.headers_mut().insert(header::UPGRADE, "echo".parse().expect("value"));
            res
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Response::new(full("late"))
        }
        _ => Response::new(full("hello")),
    })
}

async fn start_upstream() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(upstream))
                    .with_upgrades(),
            );
        }
    });
    Ok(addr)
}

struct Edge {
    addr: SocketAddr,
    router: Arc<EdgeRouter>,
    _stop: tokio_util::sync::DropGuard,
}

async fn start_edge() -> anyhow::Result<Edge> {
    let router = Arc::new(EdgeRouter::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let config = proxy::EdgeConfig {
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    tokio::spawn(proxy::serve(listener, router.clone(), config, stop.clone()));
    Ok(Edge { addr, router, _stop: stop.drop_guard() })
}

fn route(host: &str, upstream: SocketAddr) -> Route {
    Route {
        service_id: 1,
        host: host.into(),
        upstream: Upstream { deployment_id: 1, container_id: "local".into(), addr: upstream },
        policy: Default::default(),
    }
}

async fn send(edge: SocketAddr, req: Request<Body>) -> anyhow::Result<Response<Incoming>> {
    let stream = tokio::net::TcpStream::connect(edge).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn.with_upgrades());
    Ok(sender.send_request(req).await?)
}

async fn text(res: Response<Incoming>) -> anyhow::Result<String> {
    Ok(String::from_utf8_lossy(&res.into_body().collect().await?.to_bytes()).into_owned())
}

fn get(host: &str, path: &str) -> anyhow::Result<Request<Body>> {
    Ok(Request::get(path)
        .header(header::HOST, host)
        .body(Empty::new().map_err(|never| match never {}).boxed())?)
}

#[tokio::test]
async fn forwards_headers_and_strips_hop_by_hop_ones() -> anyhow::Result<()> {
    let up = start_upstream().await?;
    let edge = start_edge().await?;
    edge.router.switch(route("app.shop.localhost", up)).await?;

    let req = Request::get("/headers?x=1")
        .header(header::HOST, "App.Shop.Localhost:8080")
        .header(header::CONNECTION, "keep-alive, x-hop")
        .header("x-hop", "secret")
        .header("x-forwarded-for", "10.0.0.9")
        .header("x-end-to-end", "kept")
        .body(Empty::new().map_err(|never| match never {}).boxed())?;
    let res = send(edge.addr, req).await?;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key("keep-alive"), "hop-by-hop response header removed");
    assert_eq!(res.headers().get("x-upstream").map(|v| v.as_bytes()), Some(&b"yes"[..]));
    let seen = text(res).await?;
    assert!(seen.contains("x-forwarded-for: 10.0.0.9, 127.0.0.1"), "{seen}");
    assert!(seen.contains("x-forwarded-proto: http"), "{seen}");
    assert!(seen.contains("x-forwarded-host: app.shop.localhost"), "{seen}");
    assert!(seen.contains("x-end-to-end: kept"), "{seen}");
    assert!(!seen.contains("x-hop"), "a header named by Connection is hop-by-hop: {seen}");
    Ok(())
}

#[tokio::test]
async fn streams_a_32_mib_chunked_upload_through_to_the_upstream() -> anyhow::Result<()> {
    let up = start_upstream().await?;
    let edge = start_edge().await?;
    edge.router.switch(route("app.shop.localhost", up)).await?;
    // 32 MiB sent as a stream of 64 KiB chunks.
    let chunks = futures::stream::iter(
        (0..512).map(|_| Ok::<_, hyper::Error>(hyper::body::Frame::data(Bytes::from(vec![7u8; 64 * 1024])))),
    );
    let body = http_body_util::StreamBody::new(chunks).boxed();
    let req = Request::post("/count").header(header::HOST, "app.shop.localhost").body(body)?;
    let res = send(edge.addr, req).await?;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(text(res).await?, (32 * 1024 * 1024).to_string());
    Ok(())
}

#[tokio::test]
async fn upgrades_are_tunnelled_and_counted_in_flight() -> anyhow::Result<()> {
    let up = start_upstream().await?;
    let edge = start_edge().await?;
    edge.router.switch(route("app.shop.localhost", up)).await?;
    let req = Request::get("/upgrade")
        .header(header::HOST, "app.shop.localhost")
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "echo")
        .body(Empty::new().map_err(|never| match never {}).boxed())?;
    let res = send(edge.addr, req).await?;
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    let mut io = TokioIo::new(hyper::upgrade::on(res).await?);
    io.write_all(b"ping through the edge").await?;
    let mut buf = [0u8; 21];
    io.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ping through the edge");
    assert_eq!(edge.router.in_flight(1), 1, "an open tunnel keeps its upstream busy");
    drop(io);
    let start = Instant::now();
    while edge.router.in_flight(1) != 0 {
        anyhow::ensure!(start.elapsed() < Duration::from_secs(5), "tunnel never released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[tokio::test]
async fn unknown_hosts_dead_and_slow_upstreams_get_clear_answers_quickly() -> anyhow::Result<()> {
    let up = start_upstream().await?;
    let edge = start_edge().await?;

    let res = send(edge.addr, get("nobody.localhost", "/")?).await?;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body = text(res).await?;
    assert!(body.contains("No service answers on this host.") && !body.contains("127.0.0.1"), "{body}");

    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    edge.router.switch(route("dead.localhost", dead)).await?;
    let start = Instant::now();
    let res = send(edge.addr, get("dead.localhost", "/")?).await?;
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert!(start.elapsed() < Duration::from_secs(3));

    edge.router.switch(Route { service_id: 2, ..route("slow.localhost", up) }).await?;
    let start = Instant::now();
    let res = send(edge.addr, get("slow.localhost", "/slow")?).await?;
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT, "the response timeout is 1 s");
    assert!(start.elapsed() < Duration::from_secs(2), "no hang: {:?}", start.elapsed());

    let stats = edge.router.stats();
    let dead_stats = stats.iter().find(|(id, _)| *id == 1).map(|(_, s)| s.clone()).expect("stats");
    assert_eq!(dead_stats.proxy_errors.load(std::sync::atomic::Ordering::Relaxed), 1);
    Ok(())
}
