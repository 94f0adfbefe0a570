//! The edge's HTTPS policy: ACME HTTP-01 challenges answered from a webroot
//! on the plain listener (for every host, redirect on or off), a service's
//! redirect to HTTPS (308, path and query kept), and HSTS on its HTTPS
//! answers only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use server::{
    deploys::switch::{Route, RoutePolicy, RouteSwitch, Upstream},
    edge::{proxy, EdgeRouter},
    testkit::tls::{get, TestCa},
};
use tokio_util::sync::CancellationToken;

use crate::edge_tls::{tls_edge, until_served, upstream};

/// One plain GET: status, `Location`, body.
async fn plain_get(
    edge: SocketAddr,
    host: &str,
    path: &str,
) -> anyhow::Result<(u16, Option<String>, String)> {
    let stream = tokio::net::TcpStream::connect(edge).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::get(path).header(http::header::HOST, host).body(Empty::<Bytes>::new())?;
    let res = sender.send_request(req).await?;
    let location =
        res.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let status = res.status().as_u16();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, location, String::from_utf8_lossy(&body).into_owned()))
}

async fn plain_edge(
    router: Arc<EdgeRouter>,
    config: proxy::EdgeConfig,
) -> anyhow::Result<(SocketAddr, CancellationToken)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    tokio::spawn(proxy::serve(listener, router, config, stop.clone()));
    Ok((addr, stop))
}

fn route(service_id: i64, host: &str, addr: SocketAddr, policy: RoutePolicy) -> Route {
    Route {
        service_id,
        host: host.into(),
        upstream: Upstream { deployment_id: service_id, container_id: format!("p{service_id}"), addr },
        policy,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_redirects_and_hsts_follow_each_services_policy() -> anyhow::Result<()> {
    let ca = TestCa::new()?;
    let router = Arc::new(EdgeRouter::new());
    let tls = tls_edge(router.clone()).await?;
    let cert = ca.issue(&["*.policy.test"])?;
    std::fs::write(tls.dir.path().join("certs.pem"), cert.combined())?;
    let webroot = tempfile::tempdir()?;
    std::fs::create_dir_all(webroot.path().join(".well-known/acme-challenge"))?;
    std::fs::write(webroot.path().join(".well-known/acme-challenge/tok_EN-1"), "tok_EN-1.thumbprint")?;
    let config = proxy::EdgeConfig {
        acme_webroot: Some(webroot.path().to_path_buf()),
        https_port: Some(tls.addr.port()),
        ..Default::default()
    };
    let (edge, _stop) = plain_edge(router.clone(), config).await?;
    let strict = RoutePolicy { https_redirect: true, hsts: true };
    router.switch(route(1, "secure.policy.test", upstream("S").await?, strict)).await?;
    router.switch(route(2, "open.policy.test", upstream("O").await?, RoutePolicy::default())).await?;
    until_served(&tls, &ca, "open.policy.test", &cert.der, Duration::from_secs(5)).await?;

    // The challenge is answered from the webroot, redirect on or not, and
    // for a host without a route too; anything else there is 404.
    for host in ["secure.policy.test", "open.policy.test", "new.example.org"] {
        let got = plain_get(edge, host, "/.well-known/acme-challenge/tok_EN-1").await?;
        assert_eq!(got, (200, None, "tok_EN-1.thumbprint".into()), "{host}");
    }
    for path in ["/.well-known/acme-challenge/missing", "/.well-known/acme-challenge/..%2F..%2Fetc%2Fpasswd"]
    {
        assert_eq!(plain_get(edge, "secure.policy.test", path).await?.0, 404, "{path}");
    }

    // Redirect on: 308 to the same path and query over https.
    let (status, location, _) = plain_get(edge, "secure.policy.test", "/a/b?c=1&d=2").await?;
    assert_eq!(status, 308);
    assert_eq!(location, Some(format!("https://secure.policy.test:{}/a/b?c=1&d=2", tls.addr.port())));
    // Redirect off: proxied as before.
    assert_eq!(plain_get(edge, "open.policy.test", "/").await?, (200, None, "O http".into()));

    // HSTS on the HTTPS answers of the service that asks for it only.
    let secure = get(tls.addr, "secure.policy.test", "/", ca.client(&["h2"])?).await?;
    assert_eq!(secure.body, "S https");
    assert_eq!(
        secure.headers.get("strict-transport-security").map(|v| v.as_bytes()),
        Some(&b"max-age=31536000"[..])
    );
    let open = get(tls.addr, "open.policy.test", "/", ca.client(&["http/1.1"])?).await?;
    assert_eq!(open.body, "O https");
    assert!(open.headers.get("strict-transport-security").is_none());

    // Without a webroot the challenge path is the service's own, never
    // redirected (the CA asks over plain HTTP).
    let (bare, _bare_stop) = plain_edge(
        router.clone(),
        proxy::EdgeConfig { https_port: Some(tls.addr.port()), ..Default::default() },
    )
    .await?;
    let got = tokio::time::timeout(
        Duration::from_secs(5),
        plain_get(bare, "secure.policy.test", "/.well-known/acme-challenge/tok_EN-1"),
    )
    .await??;
    assert_eq!(got, (200, None, "S http".into()));
    Ok(())
}
