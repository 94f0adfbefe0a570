//! The edge's HTTPS listener with a test CA (rcgen): each name gets its own
//! certificate over HTTP/1.1 and HTTP/2, a wildcard covers one label, a
//! renewed file is served within 2 s while open connections carry on, and
//! unknown names, missing SNI, expired certificates and garbage hellos are
//! counted without slowing the listener.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use server::{
    deploys::switch::{Route, RouteSwitch, Upstream},
    edge::{proxy, tls, EdgeRouter},
    testkit::tls::{get, Connection, TestCa},
};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

/// An upstream answering `<label> <X-Forwarded-Proto>`.
pub(crate) async fn upstream(label: &'static str) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                let proto =
                    req.headers().get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("-");
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!("{label} {proto}")))))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    Ok(addr)
}

pub(crate) struct TlsEdge {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    _stop: tokio_util::sync::DropGuard,
}

/// The TLS listener on 127.0.0.1 with a watched certificate directory.
pub(crate) async fn tls_edge(router: Arc<EdgeRouter>) -> anyhow::Result<TlsEdge> {
    let dir = tempfile::tempdir()?;
    let stop = CancellationToken::new();
    tls::watch::start(dir.path().to_path_buf(), router.clone(), stop.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = tls::server_config(router.clone())?;
    tokio::spawn(tls::serve_tls(
        listener,
        router.clone(),
        config,
        proxy::EdgeConfig::default(),
        stop.clone(),
    ));
    Ok(TlsEdge { addr, dir, _stop: stop.drop_guard() })
}

pub(crate) fn route(service_id: i64, host: &str, addr: SocketAddr) -> Route {
    Route {
        service_id,
        host: host.into(),
        upstream: Upstream { deployment_id: service_id, container_id: format!("c{service_id}"), addr },
        policy: Default::default(),
    }
}

/// Writes `text` to `path` through a temporary file and a rename.
fn replace(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Polls until the name is served with `der` (or the limit passes).
pub(crate) async fn until_served(
    edge: &TlsEdge,
    ca: &TestCa,
    name: &str,
    der: &[u8],
    limit: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if let Ok(answer) = get(edge.addr, name, "/", ca.client(&["http/1.1"])?).await {
            if answer.peer.as_ref() == der {
                return Ok(start.elapsed());
            }
        }
        anyhow::ensure!(
            start.elapsed() < limit,
            "{name} not served with the new certificate within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_name_gets_its_certificate_over_http1_and_http2() -> anyhow::Result<()> {
    let ca = TestCa::new()?;
    let router = Arc::new(EdgeRouter::new());
    let edge = tls_edge(router.clone()).await?;
    let a = ca.issue(&["a.tls.test"])?;
    let b = ca.issue(&["b.tls.test"])?;
    let wild = ca.issue(&["*.apps.tls.test"])?;
    // One file with chain and key; certbot's live/ layout; another file.
    std::fs::write(edge.dir.path().join("a.pem"), a.combined())?;
    std::fs::create_dir(edge.dir.path().join("b.tls.test"))?;
    std::fs::write(edge.dir.path().join("b.tls.test/fullchain.pem"), &b.chain_pem)?;
    std::fs::write(edge.dir.path().join("b.tls.test/privkey.pem"), &b.key_pem)?;
    std::fs::write(edge.dir.path().join("wildcard.pem"), wild.combined())?;
    router.switch(route(1, "a.tls.test", upstream("A").await?)).await?;
    router.switch(route(2, "b.tls.test", upstream("B").await?)).await?;
    router.switch(route(3, "x.apps.tls.test", upstream("X").await?)).await?;
    until_served(&edge, &ca, "x.apps.tls.test", &wild.der, Duration::from_secs(5)).await?;

    for (name, label, cert) in
        [("a.tls.test", "A", &a), ("b.tls.test", "B", &b), ("x.apps.tls.test", "X", &wild)]
    {
        for (alpn, version) in [("http/1.1", http::Version::HTTP_11), ("h2", http::Version::HTTP_2)] {
            let answer = get(edge.addr, name, "/", ca.client(&[alpn])?).await?;
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (200, format!("{label} https").as_str()),
                "{name} {alpn}"
            );
            assert_eq!(answer.version, version, "{name} over {alpn}");
            assert_eq!(answer.peer, cert.der, "{name} gets its own certificate");
        }
    }
    // Several requests multiplexed on one HTTP/2 connection.
    let mut h2 = Connection::open(edge.addr, "a.tls.test", ca.client(&["h2"])?).await?;
    for _ in 0..5 {
        assert_eq!(h2.get("/").await?.body, "A https");
    }

    // A wildcard covers one label only; an unknown name gets no handshake.
    let stats = &router.certs.stats;
    // (Waiting for the directory above counted unknown names too.)
    let unknown = stats.unknown_sni.load(Relaxed);
    for name in ["a.b.apps.tls.test", "c.tls.test"] {
        let refused = get(edge.addr, name, "/", ca.client(&["http/1.1"])?).await;
        assert!(refused.is_err(), "{name}: {refused:?}");
    }
    assert_eq!(stats.unknown_sni.load(Relaxed), unknown + 2);
    // No SNI (an address as the name sends none).
    assert!(get(edge.addr, "127.0.0.1", "/", ca.client(&["http/1.1"])?).await.is_err());
    assert_eq!(stats.no_sni.load(Relaxed), 1);
    assert!(stats.handshakes.load(Relaxed) >= 7);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_file_is_served_within_2_s_and_open_connections_carry_on() -> anyhow::Result<()> {
    let ca = TestCa::new()?;
    let router = Arc::new(EdgeRouter::new());
    let edge = tls_edge(router.clone()).await?;
    let first = ca.issue(&["renew.tls.test"])?;
    let file = edge.dir.path().join("renew.pem");
    std::fs::write(&file, first.combined())?;
    router.switch(route(1, "renew.tls.test", upstream("R").await?)).await?;
    until_served(&edge, &ca, "renew.tls.test", &first.der, Duration::from_secs(5)).await?;

    let mut h1 = Connection::open(edge.addr, "renew.tls.test", ca.client(&["http/1.1"])?).await?;
    let mut h2 = Connection::open(edge.addr, "renew.tls.test", ca.client(&["h2"])?).await?;
    assert_eq!(h1.get("/").await?.body, "R https");

    let second = ca.issue(&["renew.tls.test"])?;
    replace(&file, &second.combined())?;
    let took = until_served(&edge, &ca, "renew.tls.test", &second.der, Duration::from_secs(2)).await?;
    println!("edge_tls: a renewed certificate was served after {took:?}");

    // Connections opened before the swap go on with their certificate.
    for connection in [&mut h1, &mut h2] {
        let answer = connection.get("/").await?;
        assert_eq!((answer.status, answer.body.as_str()), (200, "R https"));
        assert_eq!(answer.peer, first.der);
    }

    // A half-written or garbage file keeps the last good certificate.
    let errors = router.certs.stats.reload_errors.load(Relaxed);
    std::fs::write(&file, "-----BEGIN CERTIFICATE-----\nnot base64\n")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while router.certs.stats.reload_errors.load(Relaxed) == errors {
        anyhow::ensure!(Instant::now() < deadline, "the broken file was never read");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(edge.addr, "renew.tls.test", "/", ca.client(&["h2"])?).await?.peer, second.der);
    // A key of another certificate is refused the same way.
    let other = ca.issue(&["renew.tls.test"])?;
    replace(&file, &format!("{}{}", second.chain_pem, other.key_pem))?;
    let errors = router.certs.stats.reload_errors.load(Relaxed);
    let deadline = Instant::now() + Duration::from_secs(5);
    while router.certs.stats.reload_errors.load(Relaxed) == errors {
        anyhow::ensure!(Instant::now() < deadline, "the mismatched key was never read");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(edge.addr, "renew.tls.test", "/", ca.client(&["http/1.1"])?).await?.peer, second.der);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificates_and_garbage_hellos_are_counted_and_do_not_slow_the_listener(
) -> anyhow::Result<()> {
    let ca = TestCa::new()?;
    let router = Arc::new(EdgeRouter::new());
    let edge = tls_edge(router.clone()).await?;
    let old = ca.issue_valid(&["old.tls.test"], (2020, 1, 1), (2021, 1, 1))?;
    let good = ca.issue(&["good.tls.test"])?;
    std::fs::write(edge.dir.path().join("old.pem"), old.combined())?;
    std::fs::write(edge.dir.path().join("good.pem"), good.combined())?;
    router.switch(route(1, "old.tls.test", upstream("O").await?)).await?;
    router.switch(route(2, "good.tls.test", upstream("G").await?)).await?;
    until_served(&edge, &ca, "good.tls.test", &good.der, Duration::from_secs(5)).await?;
    let stats = &router.certs.stats;

    let expired = get(edge.addr, "old.tls.test", "/", ca.client(&["http/1.1"])?).await;
    let message = format!("{:?}", expired.as_ref().err());
    assert!(expired.is_err() && message.to_lowercase().contains("expired"), "{message}");
    assert_eq!(stats.expired.load(Relaxed), 1);

    // Garbage instead of a hello, a hello cut short, and idle connections:
    // each is one task of its own; the listener keeps answering at once.
    let mut idle = Vec::new();
    for i in 0..50 {
        let mut stream = tokio::net::TcpStream::connect(edge.addr).await?;
        if i % 2 == 0 {
            stream.write_all(b"GET / HTTP/1.1\r\nHost: good.tls.test\r\n\r\n").await?;
        } else {
            stream.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await?;
        }
        idle.push(stream);
    }
    let start = Instant::now();
    let answer = get(edge.addr, "good.tls.test", "/", ca.client(&["h2"])?).await?;
    let took = start.elapsed();
    assert_eq!(answer.body, "G https");
    assert!(took < Duration::from_secs(1), "a good handshake took {took:?} beside 50 bad ones");
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.failed.load(Relaxed) < 25 {
        anyhow::ensure!(Instant::now() < deadline, "garbage hellos not counted: {:?}", stats);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(idle);
    Ok(())
}
