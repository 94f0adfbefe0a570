//! The edge router against Debian's nginx as a reverse proxy, in one run,
//! on the real Docker Engine (issue 15's measurement).
//!
//! The upstream is nginx 1.22 in a container deployed by Slipway (built
//! from `slipway-test/debian-nginx:1`, one worker, `return 200 "ok\n"`,
//! keep-alive without a request limit). In front of it, in turn:
//! - **edge**: `edge::proxy::serve` on the edge's own threads, as `slipway
//!   serve` runs it (`edge::runtime`, `BENCH_EDGE_WORKERS` threads, default
//!   the product's);
//! - **nginx**: the host's `nginx` (Debian 1.22) as a child process, **one**
//!   worker, `upstream … keepalive 64`, HTTP/1.1 upstream, and the same
//!   `X-Forwarded-*` headers the edge sets;
//! - **direct**: the container itself, once, for reference.
//!
//! Load: `wrk -t2 -c16 -d<BENCH_SECONDS, 6>s --latency`, a 2 s warm-up of
//! each proxy, then `BENCH_ROUNDS` (default 5: with 3, the median p99
//! moved by up to 1.7x between identical runs) rounds in alternating order
//! (edge, nginx / nginx, edge / …). A "Non-2xx" or socket error fails the
//! bench. Reported: req/s, p50 and p99 per round, their medians, and the
//! goals: edge throughput ≥ 1.0× nginx's, edge p99 ≤ 1.5× nginx's. A missed
//! goal is printed; `BENCH_STRICT=1` makes it exit 1.
//!
//! Everything shares this machine's cores: wrk, both proxies, the upstream
//! and Docker. Needs `wrk` and `nginx` (`make bench` installs them).
//! To profile the edge: `perf record -g -p <this process>` during a round.
//!
//! `cargo bench -p server --bench edge_vs_nginx`

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use app::wire::Role;
use server::builds::TriggerBuild;
use server::deploys::switch::RouteSwitch;
use server::deploys::{DeployRequest, DeploymentStatus};
use server::docker::DockerEngine;
use server::edge::{proxy, runtime, EdgeRouter};
use server::jobs::JobStatus;
use server::testkit::engine::{anyhow_of, user};
use server::testkit::wrk::Round;
use server::testkit::{ensure_nginx_image, free_port, DockerKit, GitRepo, TestDataDir, TestEngine};
use tokio_util::sync::CancellationToken;

/// The binary's allocator (server/src/main.rs), so the edge allocates here
/// as it does in `slipway serve`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GOAL_THROUGHPUT: f64 = 1.0;
const GOAL_P99: f64 = 1.5;
const LIMIT: Duration = Duration::from_secs(300);

const UPSTREAM_CONF: &str = "worker_processes 1;\npid /tmp/nginx.pid;\nerror_log stderr warn;\n\
events { worker_connections 4096; }\n\
http {\n  access_log off;\n  keepalive_requests 1000000;\n  keepalive_timeout 300s;\n\
  server {\n    listen 8080;\n    location / { default_type text/plain; return 200 \"ok\\n\"; }\n  }\n}\n";

fn env_number(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().ok().filter(|n| *n >= 1).with_context(|| format!("{name} must be ≥ 1")),
        Err(_) => Ok(default),
    }
}

fn wrk(url: &str, host: &str, seconds: u64) -> anyhow::Result<Round> {
    server::testkit::wrk::run(url, &format!("Host: {host}"), seconds)
}

/// The host's nginx as a reverse proxy to `upstream`, stopped on drop.
struct HostNginx {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl HostNginx {
    fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let d = dir.path().display();
        let conf = format!(
            "daemon off;\nuser root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               upstream app {{ server {upstream}; keepalive 64; }}\n\
               server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://app;\n\
                   proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n\
                   proxy_set_header Host $host;\n\
                   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                   proxy_set_header X-Forwarded-Proto $scheme;\n      proxy_set_header X-Forwarded-Host $host;\n\
                 }}\n  }}\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf)?;
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .spawn()
            .context("cannot run nginx (make bench installs it)")?;
        let nginx = HostNginx { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(nginx.addr).is_err() {
            ensure!(Instant::now() < deadline, "nginx did not listen on {}: {}", nginx.addr, nginx.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for HostNginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its worker (a SIGKILL would orphan it).
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid; no memory is passed.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds and deploys the nginx upstream; returns its host and address.
async fn deploy_upstream(
    te: &TestEngine,
    kit: &DockerKit,
    router: &EdgeRouter,
) -> anyhow::Result<(String, SocketAddr)> {
    let base = ensure_nginx_image(&kit.docker).await?;
    let repo = GitRepo::new()?;
    repo.write(
        "Dockerfile",
        &format!(
            "FROM {base}\nCOPY nginx.conf /etc/nginx/nginx.conf\nEXPOSE 8080\n\
             CMD [\"nginx\", \"-g\", \"daemon off;\"]\n"
        ),
    )?;
    repo.write("nginx.conf", UPSTREAM_CONF)?;
    repo.commit("upstream")?;
    let unique = kit.run_id.rsplit('-').next().unwrap_or_default();
    let name = format!("edge-nginx-{}", &unique[unique.len().saturating_sub(8)..]);
    let service = te.service("bench", &name, &repo.url()).await?;
    let caller = user(Role::Deployer);
    let queued = te
        .engine
        .trigger_build(&caller, TriggerBuild::manual_build_only(service.id))
        .await
        .map_err(anyhow_of)?;
    let built = te.wait_build(queued.id, LIMIT).await?;
    ensure!(built.status == JobStatus::Succeeded, "build {} failed: {:?}", built.id, built.error);
    let req = DeployRequest { service_id: service.id, build_id: Some(built.id), ..Default::default() };
    let queued = te.engine.deploy(&caller, req).await.map_err(anyhow_of)?;
    let dep = te.wait_deployment(queued.id, LIMIT).await?;
    ensure!(dep.status == DeploymentStatus::Live, "deployment {} not live: {:?}", dep.id, dep.error);
    let route = router.route(service.id).context("the deployed upstream has no route")?;
    Ok((route.host, route.upstream.addr))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn report(name: &str, r: &Round) {
    println!("edge_vs_nginx: {name:<6} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms", r.rps, r.p50, r.p99);
}

async fn bench(kit: &DockerKit, router: Arc<EdgeRouter>, edge: SocketAddr) -> anyhow::Result<bool> {
    let seconds = env_number("BENCH_SECONDS", 6)?;
    let rounds = env_number("BENCH_ROUNDS", 5)?;
    let data = TestDataDir::new()?;
    let settings = TestEngine::settings(kit, &data);
    let docker = DockerEngine::with_client(kit.docker.clone());
    let mut te = TestEngine::start_with_switch(data, settings, docker, router.clone()).await?;
    let (host, upstream) = deploy_upstream(&te, kit, &router).await?;
    let nginx = tokio::task::block_in_place(|| HostNginx::start(upstream))?;
    let url = |addr: SocketAddr| format!("http://{addr}/");

    let measured = tokio::task::block_in_place(|| -> anyhow::Result<(Vec<Round>, Vec<Round>)> {
        report("direct", &wrk(&url(upstream), &host, seconds)?);
        wrk(&url(edge), &host, 2)?;
        wrk(&url(nginx.addr), &host, 2)?;
        let (mut edge_rounds, mut nginx_rounds) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let mut each = |name: &str| -> anyhow::Result<()> {
                let (addr, into) =
                    if name == "edge" { (edge, &mut edge_rounds) } else { (nginx.addr, &mut nginx_rounds) };
                let r = wrk(&url(addr), &host, seconds)?;
                report(name, &r);
                into.push(r);
                Ok(())
            };
            let order = if round % 2 == 0 { ["edge", "nginx"] } else { ["nginx", "edge"] };
            for name in order {
                each(name)?;
            }
        }
        Ok((edge_rounds, nginx_rounds))
    })?;
    ensure!(nginx.log().lines().all(|l| !l.contains("[error]")), "nginx logged errors:\n{}", nginx.log());
    let (edge_rounds, nginx_rounds) = measured;
    let med = |rounds: &[Round], f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    let throughput = med(&edge_rounds, |r| r.rps) / med(&nginx_rounds, |r| r.rps);
    let p99 = med(&edge_rounds, |r| r.p99) / med(&nginx_rounds, |r| r.p99);
    println!(
        "edge_vs_nginx: medians: edge {:.0} req/s p99 {:.3} ms; nginx {:.0} req/s p99 {:.3} ms",
        med(&edge_rounds, |r| r.rps),
        med(&edge_rounds, |r| r.p99),
        med(&nginx_rounds, |r| r.rps),
        med(&nginx_rounds, |r| r.p99)
    );
    let met_throughput = throughput >= GOAL_THROUGHPUT;
    let met_p99 = p99 <= GOAL_P99;
    println!(
        "edge_vs_nginx: summary: throughput edge/nginx {throughput:.3} (goal ≥ {GOAL_THROUGHPUT}{}); p99 edge/nginx \
         {p99:.2}× (goal ≤ {GOAL_P99}×{})",
        if met_throughput { ", met" } else { ", MISSED" },
        if met_p99 { ", met" } else { ", MISSED" },
    );
    drop(nginx);
    if let Some(running) = te.running.take() {
        running.shutdown().await;
    }
    drop(te);
    Ok(met_throughput && met_p99)
}

fn main() -> anyhow::Result<()> {
    let workers = env_number("BENCH_EDGE_WORKERS", runtime::default_workers() as u64)? as usize;
    // As `slipway serve` runs it: the edge's own threads, a listener each.
    let threads = runtime::EdgeThreads::start(workers)?;
    let router = Arc::new(EdgeRouter::new());
    let listeners = threads.listen("127.0.0.1:0".parse()?)?;
    let edge = listeners.first().context("no listener")?.local_addr()?;
    let stop = CancellationToken::new();
    for (handle, listener) in threads.handles().iter().zip(listeners) {
        handle.spawn(proxy::serve(listener, router.clone(), proxy::EdgeConfig::default(), stop.clone()));
    }
    println!("edge_vs_nginx: the edge runs on {workers} thread(s) of its own");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let result = rt.block_on(async {
        let kit = DockerKit::new().await?;
        let result = bench(&kit, router, edge).await;
        kit.cleanup().await?;
        result
    });
    stop.cancel();
    drop(threads);
    let met = result?;
    if !met && std::env::var("BENCH_STRICT").as_deref() == Ok("1") {
        bail!("a goal was missed (BENCH_STRICT=1)");
    }
    Ok(())
}
