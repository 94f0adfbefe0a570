//! The edge router against real containers: zero failed requests under load
//! through 20 alternating deploys and rollbacks, an unhealthy deploy under
//! load, and a slow request drained on the old container.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::wire::Role;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use server::{
    builds::TriggerBuild,
    deploys::{DeployRequest, DeploymentStatus},
    edge::{proxy, EdgeRouter},
    jobs::JobStatus,
    projects::{HealthCheck, ProjectStore, Service},
    testkit::{
        engine::{anyhow_of, user},
        DockerKit, GitRepo, TestDataDir, TestEngine, BASE_IMAGE,
    },
};
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(120);

/// A service answering its version on `/` and, on `/cgi-bin/slow`, after 2 s.
pub(crate) fn versioned_repo() -> anyhow::Result<GitRepo> {
    let repo = GitRepo::new()?;
    repo.write(
        "Dockerfile",
        &format!(
            "FROM {BASE_IMAGE}\nCOPY www /www\nRUN chmod +x /www/cgi-bin/slow\nEXPOSE 8080\n\
             CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
        ),
    )?;
    Ok(repo)
}

pub(crate) fn write_version(repo: &GitRepo, version: &str) -> anyhow::Result<()> {
    repo.write("www/index.html", version)?;
    repo.write(
        "www/cgi-bin/slow",
        &format!("#!/bin/sh\nsleep 2\nprintf 'Content-Type: text/plain\\r\\n\\r\\n{version}-slow'\n"),
    )?;
    repo.commit(version)?;
    Ok(())
}

pub(crate) struct Rig {
    pub t: TestEngine,
    pub edge: SocketAddr,
    pub host: String,
    pub router: Arc<EdgeRouter>,
    pub service: Service,
    pub repo: GitRepo,
    _stop: tokio_util::sync::DropGuard,
    _kit: DockerKit,
}

pub(crate) async fn rig(name: &'static str) -> anyhow::Result<Rig> {
    let kit = DockerKit::new().await?;
    let data = TestDataDir::new()?;
    let settings = TestEngine::settings(&kit, &data);
    let router = Arc::new(EdgeRouter::new());
    let docker = server::docker::DockerEngine::with_client(kit.docker.clone());
    let t = TestEngine::start_with_switch(data, settings, docker, router.clone()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let edge = listener.local_addr()?;
    let stop = CancellationToken::new();
    tokio::spawn(proxy::serve(listener, router.clone(), proxy::EdgeConfig::default(), stop.clone()));
    let repo = versioned_repo()?;
    write_version(&repo, "v1")?;
    // Container names derive from service names: one per test.
    let service = t.service("shop", name, &repo.url()).await?;
    let mut spec = service.spec.clone();
    spec.drain_secs = 10;
    let service = ProjectStore::new(t.engine.db.clone()).update_service(service.id, &spec).await?;
    Ok(Rig {
        t,
        edge,
        host: format!("{name}.shop.localhost"),
        router,
        service,
        repo,
        _stop: stop.drop_guard(),
        _kit: kit,
    })
}

pub(crate) async fn build(rig: &Rig) -> anyhow::Result<i64> {
    let req = TriggerBuild::manual_build_only(rig.service.id);
    let queued = rig.t.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    let built = rig.t.wait_build(queued.id, LIMIT).await?;
    anyhow::ensure!(built.status == JobStatus::Succeeded, "build failed: {:?}", built.error);
    Ok(built.id)
}

pub(crate) async fn deploy(rig: &Rig, build_id: i64) -> anyhow::Result<server::deploys::Deployment> {
    let req = DeployRequest { service_id: rig.service.id, build_id: Some(build_id), ..Default::default() };
    let queued = rig.t.engine.deploy(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    rig.t.wait_deployment(queued.id, LIMIT).await
}

/// One GET through the edge on a fresh connection.
async fn get(edge: SocketAddr, host: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let stream = tokio::net::TcpStream::connect(edge).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::get(path).header(http::header::HOST, host).body(Empty::<Bytes>::new())?;
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).trim().to_string()))
}

#[derive(Default)]
struct LoadReport {
    ok: u64,
    /// Requests never written because the idle connection had closed.
    unsent: u64,
    failures: Vec<String>,
    latencies_us: Vec<u64>,
}

/// Keeps `clients` keep-alive connections busy with `GET /` until `stop`.
fn start_load(
    edge: SocketAddr,
    host: &str,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<LoadReport>> {
    (0..clients)
        .map(|_| {
            let stop = stop.clone();
            let host = host.to_string();
            tokio::spawn(async move {
                let mut report = LoadReport::default();
                let mut sender = None;
                while !stop.load(Ordering::Relaxed) {
                    if sender.is_none() {
                        match tokio::net::TcpStream::connect(edge).await {
                            Ok(stream) => {
                                match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                                    Ok((s, conn)) => {
                                        tokio::spawn(conn);
                                        sender = Some(s);
                                    }
                                    Err(e) => report.failures.push(format!("handshake: {e}")),
                                }
                            }
                            Err(e) => report.failures.push(format!("connect: {e}")),
                        }
                    }
                    let Some(s) = sender.as_mut() else { continue };
                    let started = Instant::now();
                    let req = http::Request::get("/")
                        .header(http::header::HOST, &host)
                        .body(Empty::<Bytes>::new())
                        .expect("request");
                    let result = tokio::time::timeout(Duration::from_secs(10), async {
                        let res = match s.try_send_request(req).await {
                            Ok(res) => res,
                            // Never written: the edge had closed this idle
                            // keep-alive connection first. Browsers and HTTP
                            // client pools send such a request again on a new
                            // connection; so does this client (counted).
                            Err(mut e) => match e.take_message() {
                                Some(_) => return Ok(None),
                                None => return Err(e.into_error()),
                            },
                        };
                        let status = res.status();
                        let body = res.into_body().collect().await?.to_bytes();
                        Ok::<_, hyper::Error>(Some((status, body)))
                    })
                    .await;
                    let result = match result {
                        Ok(Ok(None)) => {
                            report.unsent += 1;
                            sender = None;
                            continue;
                        }
                        Ok(Ok(Some(answer))) => Ok(Ok(answer)),
                        Ok(Err(e)) => Ok(Err(e)),
                        Err(elapsed) => Err(elapsed),
                    };
                    match result {
                        Ok(Ok((status, body))) if status.is_success() && body.starts_with(b"v") => {
                            report.ok += 1;
                            report
                                .latencies_us
                                .push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
                        }
                        Ok(Ok((status, body))) => {
                            report
                                .failures
                                .push(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
                        }
                        Ok(Err(e)) => {
                            report.failures.push(format!("request: {e}"));
                            sender = None;
                        }
                        Err(_) => {
                            report.failures.push("timeout".into());
                            sender = None;
                        }
                    }
                }
                report
            })
        })
        .collect()
}

async fn finish_load(tasks: Vec<tokio::task::JoinHandle<LoadReport>>) -> anyhow::Result<LoadReport> {
    let mut all = LoadReport::default();
    for task in tasks {
        let r = task.await?;
        all.ok += r.ok;
        all.unsent += r.unsent;
        all.failures.extend(r.failures);
        all.latencies_us.extend(r.latencies_us);
    }
    all.latencies_us.sort_unstable();
    Ok(all)
}

pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_deploys_and_rollbacks_under_load_fail_no_request() -> anyhow::Result<()> {
    let rig = rig("zero").await?;
    let v1_build = build(&rig).await?;
    write_version(&rig.repo, "v2")?;
    let v2_build = build(&rig).await?;
    let first = deploy(&rig, v1_build).await?;
    assert_eq!(first.status, DeploymentStatus::Live, "{:?}", first.error);
    assert_eq!(get(rig.edge, &rig.host, "/").await?, (200, "v1".into()));

    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(rig.edge, &rig.host, 8, stop.clone());
    let started = Instant::now();
    let mut history = vec![(first.id, "v1")];
    for i in 0..20 {
        let dep = if i % 2 == 0 {
            deploy(&rig, if history.last().map(|h| h.1) == Some("v1") { v2_build } else { v1_build }).await?
        } else {
            let (target, _) = history[history.len() - 2];
            let queued =
                rig.t.engine.rollback(&user(Role::Deployer), target, None).await.map_err(anyhow_of)?;
            rig.t.wait_deployment(queued.id, LIMIT).await?
        };
        assert_eq!(dep.status, DeploymentStatus::Live, "switch {i}: {:?} {:?}", dep.error, dep.log_tail);
        let expected = if history.last().map(|h| h.1) == Some("v1") { "v2" } else { "v1" };
        assert_eq!(get(rig.edge, &rig.host, "/").await?, (200, expected.to_string()), "after switch {i}");
        history.push((dep.id, expected));
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let report = finish_load(load).await?;
    let rate = report.ok as f64 / elapsed.as_secs_f64();
    println!(
        "edge zero-downtime: {} requests in {:.1} s ({rate:.0} req/s), {} failed, {} sent again (idle \
         connection closed first), p50 {} us, p99 {} us, 20 switches",
        report.ok + report.failures.len() as u64,
        elapsed.as_secs_f64(),
        report.failures.len(),
        report.unsent,
        percentile(&report.latencies_us, 0.50),
        percentile(&report.latencies_us, 0.99),
    );
    assert!(
        report.failures.is_empty(),
        "failed requests: {:?}",
        &report.failures[..report.failures.len().min(10)]
    );
    assert!(rate >= 200.0, "load was only {rate:.0} req/s");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_deploy_under_load_fails_no_request() -> anyhow::Result<()> {
    let rig = rig("sick").await?;
    let v1_build = build(&rig).await?;
    let v1 = deploy(&rig, v1_build).await?;
    assert_eq!(v1.status, DeploymentStatus::Live, "{:?} {:?}", v1.error, v1.log_tail);

    let mut spec = rig.service.spec.clone();
    spec.health = HealthCheck { retries: 5, ..server::testkit::engine::quick_http_check("/missing") };
    ProjectStore::new(rig.t.engine.db.clone()).update_service(rig.service.id, &spec).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(rig.edge, &rig.host, 4, stop.clone());
    let failed = deploy(&rig, v1_build).await?;
    stop.store(true, Ordering::Relaxed);
    let report = finish_load(load).await?;

    assert_eq!(failed.status, DeploymentStatus::Failed);
    assert!(report.ok > 0);
    assert!(report.failures.is_empty(), "{:?}", &report.failures[..report.failures.len().min(10)]);
    assert_eq!(get(rig.edge, &rig.host, "/").await?, (200, "v1".into()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_started_before_the_switch_finishes_on_the_old_container() -> anyhow::Result<()> {
    let rig = rig("drain").await?;
    let v1_build = build(&rig).await?;
    let v1 = deploy(&rig, v1_build).await?;
    assert_eq!(v1.status, DeploymentStatus::Live, "{:?} {:?}", v1.error, v1.log_tail);
    write_version(&rig.repo, "v2")?;
    let v2_build = build(&rig).await?;

    let slow = tokio::spawn({
        let (edge, host) = (rig.edge, rig.host.clone());
        async move { get(edge, &host, "/cgi-bin/slow").await }
    });
    // The slow request is in flight on v1 before the deploy starts.
    let v1 = rig.t.engine.live_of(rig.service.id).await?.map(|d| d.id).unwrap_or_default();
    let start = Instant::now();
    while rig.router.in_flight(v1) == 0 {
        anyhow::ensure!(start.elapsed() < Duration::from_secs(5), "the slow request never reached v1");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let switch_started = Instant::now();
    let v2 = deploy(&rig, v2_build).await?;
    assert_eq!(v2.status, DeploymentStatus::Live);
    assert_eq!(slow.await??, (200, "v1-slow".into()), "served to the end by the old container");
    assert!(
        switch_started.elapsed() < Duration::from_secs(10),
        "the drain waited for the request, not the timeout"
    );
    assert_eq!(get(rig.edge, &rig.host, "/").await?, (200, "v2".into()));
    Ok(())
}
