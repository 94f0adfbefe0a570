//! Zero failed requests over HTTPS (HTTP/1.1 and HTTP/2 clients) during a
//! deploy and a rollback of a real container.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::wire::Role;
use server::deploys::DeploymentStatus;
use server::testkit::engine::{anyhow_of, user};
use server::testkit::tls::{get, Connection, TestCa};

use crate::edge_router::{build, deploy, percentile, rig, write_version};
use crate::edge_tls::tls_edge;

#[derive(Default)]
struct Load {
    ok: u64,
    unsent: u64,
    failures: Vec<String>,
    latencies_us: Vec<u64>,
}

/// `clients` HTTPS keep-alive connections (even ones HTTP/2) sending
/// `GET /` until `stop`; a request never sent is sent again (counted).
fn start_load(
    addr: std::net::SocketAddr,
    host: &str,
    ca: &TestCa,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<Load>>> {
    let mut tasks = Vec::new();
    for i in 0..clients {
        let tls = ca.client(&[if i % 2 == 0 { "h2" } else { "http/1.1" }])?;
        let (stop, host) = (stop.clone(), host.to_string());
        tasks.push(tokio::spawn(async move {
            let mut load = Load::default();
            let mut connection: Option<Connection> = None;
            while !stop.load(Ordering::Relaxed) {
                if connection.is_none() {
                    match Connection::open(addr, &host, tls.clone()).await {
                        Ok(c) => connection = Some(c),
                        Err(e) => {
                            load.failures.push(format!("connect: {e:#}"));
                            continue;
                        }
                    }
                }
                let Some(c) = connection.as_mut() else { continue };
                let started = Instant::now();
                match tokio::time::timeout(Duration::from_secs(10), c.try_get("/")).await {
                    Ok(Ok(Some(answer))) if answer.status == 200 && answer.body.trim().starts_with('v') => {
                        load.ok += 1;
                        load.latencies_us
                            .push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
                    }
                    Ok(Ok(Some(answer))) => {
                        load.failures.push(format!("HTTP {}: {}", answer.status, answer.body))
                    }
                    Ok(Ok(None)) => {
                        load.unsent += 1;
                        connection = None;
                    }
                    Ok(Err(e)) => {
                        load.failures.push(format!("request: {e:#}"));
                        connection = None;
                    }
                    Err(_) => {
                        load.failures.push("timeout".into());
                        connection = None;
                    }
                }
            }
            load
        }));
    }
    Ok(tasks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_and_a_rollback_under_https_load_fail_no_request() -> anyhow::Result<()> {
    let rig = rig("tlsload").await?;
    let ca = TestCa::new()?;
    let edge = tls_edge(rig.router.clone()).await?;
    std::fs::write(edge.dir.path().join("shop.pem"), ca.issue(&[&rig.host])?.combined())?;
    let v1_build = build(&rig).await?;
    write_version(&rig.repo, "v2")?;
    let v2_build = build(&rig).await?;
    let v1 = deploy(&rig, v1_build).await?;
    assert_eq!(v1.status, DeploymentStatus::Live, "{:?}", v1.error);
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(edge.addr, &rig.host, "/", ca.client(&["h2"])?)
        .await
        .map(|a| a.body.trim().to_string())
        .ok()
        .as_deref()
        != Some("v1")
    {
        anyhow::ensure!(Instant::now() < deadline, "v1 not served over HTTPS");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(edge.addr, &rig.host, &ca, 8, stop.clone())?;
    let started = Instant::now();
    let v2 = deploy(&rig, v2_build).await?;
    assert_eq!(v2.status, DeploymentStatus::Live, "{:?}", v2.error);
    assert_eq!(get(edge.addr, &rig.host, "/", ca.client(&["http/1.1"])?).await?.body.trim(), "v2");
    let queued = rig.t.engine.rollback(&user(Role::Deployer), v1.id, None).await.map_err(anyhow_of)?;
    let back = rig.t.wait_deployment(queued.id, Duration::from_secs(120)).await?;
    assert_eq!(back.status, DeploymentStatus::Live, "{:?}", back.error);
    assert_eq!(get(edge.addr, &rig.host, "/", ca.client(&["h2"])?).await?.body.trim(), "v1");
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);

    let mut all = Load::default();
    for task in load {
        let l = task.await?;
        all.ok += l.ok;
        all.unsent += l.unsent;
        all.failures.extend(l.failures);
        all.latencies_us.extend(l.latencies_us);
    }
    all.latencies_us.sort_unstable();
    let rate = all.ok as f64 / elapsed.as_secs_f64();
    println!(
        "edge_tls_load: {} requests over HTTPS in {:.1} s ({rate:.0} req/s), {} failed, {} sent again, p50 {} us, \
         p99 {} us, a deploy and a rollback",
        all.ok,
        elapsed.as_secs_f64(),
        all.failures.len(),
        all.unsent,
        percentile(&all.latencies_us, 0.5),
        percentile(&all.latencies_us, 0.99)
    );
    assert!(all.failures.is_empty(), "failed requests: {:?}", &all.failures[..all.failures.len().min(10)]);
    assert!(rate >= 100.0, "load was only {rate:.0} req/s");
    Ok(())
}
