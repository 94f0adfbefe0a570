//! Edge router overhead, on the real Docker Engine, in two parts.
//!
//! (a) Proxy throughput: a live deployment (busybox `httpd` serving a 1 KiB
//! static file) is loaded by the same closed loop (`BENCH_CONNECTIONS`
//! keep-alive client connections, default 16, each sending the next request
//! when the previous answer is read, for `BENCH_SECONDS`, default 10), first
//! straight at the container's address, then through the edge router
//! (`edge::proxy::serve` on 127.0.0.1 with an `EdgeRouter` as the engine's
//! switch), interleaved twice after a short warm-up of each. Reported:
//! requests/s, p50/p99 latency (connect included when a request needed a
//! new connection), client connections opened, and the throughput ratio
//! edge/direct (goal ≥ 0.8).
//!
//! busybox `httpd` answers `Connection: close` and closes every connection
//! after one response: the direct load opens one TCP connection per request,
//! and so does the edge towards the container (its pooled keep-alive client
//! cannot reuse anything), while the clients' connections to the edge stay
//! open. The edge runs on a tokio runtime of its own (2 workers, as the
//! binary would), the load generator and the engine on another; all of it,
//! Docker and `httpd` share this machine's cores, so the edge's own CPU time
//! is taken from the others.
//!
//! (b) Rollback time: with v1 and v2 deployed, `engine.rollback(…)` to the
//! deployment not live → the edge answering with that version (polled every
//! 5 ms), `BENCH_ROLLBACKS` times (default 7), alternating between v1 and v2.
//! Compared, in the same run and interleaved, with starting a stopped
//! container of the same image (same network, limits, restart policy and
//! init as a deployment) until its first successful HTTP probe (polled every
//! 5 ms, the address read by an inspect after the start): once with
//! `docker start` (the CLI, as an operator would) and once with the Engine
//! API's start call (what Slipway itself uses). Reported: medians and the
//! ratios rollback/start (goal ≤ 1.2×). Missing a goal is reported, not an
//! error. The deployments use the test kit's quick health check (HTTP, 200 ms
//! interval); `BENCH_HEALTH=default` uses the product's default check (2 s
//! interval) instead.
//!
//! Every container and image carries `dev.slipway.test=<run id>`; the bench
//! removes them at the end and checks that none is left.
//!
//! `cargo bench -p server --bench edge_overhead` (`BENCH_SECONDS`,
//! `BENCH_CONNECTIONS`, `BENCH_ROLLBACKS`, `BENCH_HEALTH`)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use app::wire::{Caller, Role};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, StopContainerOptionsBuilder,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use server::builds::TriggerBuild;
use server::deploys::switch::RouteSwitch;
use server::deploys::{DeployRequest, Deployment, DeploymentStatus};
use server::docker::containers::ContainerSpec;
use server::docker::DockerEngine;
use server::edge::{proxy, EdgeRouter};
use server::history::duration_ms;
use server::jobs::JobStatus;
use server::projects::{HealthCheck, ProjectStore, Service};
use server::testkit::engine::{anyhow_of, user};
use server::testkit::{DockerKit, GitRepo, TestDataDir, TestEngine, BASE_IMAGE, TEST_LABEL};
use tokio_util::sync::CancellationToken;

const DEFAULT_SECONDS: u64 = 10;
const DEFAULT_CONNECTIONS: usize = 16;
const DEFAULT_ROLLBACKS: usize = 7;
const WARM_UP: Duration = Duration::from_secs(1);
const GOAL_THROUGHPUT: f64 = 0.8;
const GOAL_ROLLBACK: f64 = 1.2;
const POLL: Duration = Duration::from_millis(5);
const LIMIT: Duration = Duration::from_secs(120);
/// The file the load asks for.
const STATIC_PATH: &str = "/static.txt";
const STATIC_BYTES: usize = 1024;

// ------------------------------------------------------------------ setup --

fn env_number<T: std::str::FromStr + PartialOrd + From<u8>>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) => match v.trim().parse::<T>() {
            Ok(n) if n >= T::from(1) => Ok(n),
            _ => bail!("{name} must be a whole number ≥ 1"),
        },
        Err(_) => Ok(default),
    }
}

fn static_body() -> String {
    let mut body = String::with_capacity(STATIC_BYTES);
    while body.len() < STATIC_BYTES {
        body.push_str("slipway edge overhead bench: a small static file served by busybox httpd.\n");
    }
    body.truncate(STATIC_BYTES - 1);
    body.push('\n');
    body
}

/// `/` answers the version, `/static.txt` is the 1 KiB file the load gets.
fn service_repo(version: &str) -> anyhow::Result<GitRepo> {
    let repo = GitRepo::new()?;
    repo.write(
        "Dockerfile",
        &format!(
            "FROM {BASE_IMAGE}\nCOPY www /www\nEXPOSE 8080\n\
             CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
        ),
    )?;
    repo.write("www/static.txt", &static_body())?;
    repo.write("www/index.html", version)?;
    repo.commit(version)?;
    Ok(repo)
}

struct Bench {
    te: TestEngine,
    service: Service,
    host: String,
    edge: SocketAddr,
    caller: Caller,
}

impl Bench {
    async fn build(&self) -> anyhow::Result<(i64, String)> {
        let req = TriggerBuild::manual_build_only(self.service.id);
        let queued = self.te.engine.trigger_build(&self.caller, req).await.map_err(anyhow_of)?;
        let built = self.te.wait_build(queued.id, LIMIT).await?;
        ensure!(built.status == JobStatus::Succeeded, "build {} failed: {:?}", built.id, built.error);
        Ok((built.id, built.image_id.context("a succeeded build without an image")?))
    }

    async fn deploy(&self, build_id: i64) -> anyhow::Result<Deployment> {
        let req =
            DeployRequest { service_id: self.service.id, build_id: Some(build_id), ..Default::default() };
        let queued = self.te.engine.deploy(&self.caller, req).await.map_err(anyhow_of)?;
        let dep = self.te.wait_deployment(queued.id, LIMIT).await?;
        ensure!(dep.status == DeploymentStatus::Live, "deployment {} not live: {:?}", dep.id, dep.error);
        Ok(dep)
    }
}

// ------------------------------------------------------------------ HTTP --

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One `GET path` on a new connection: status and body.
async fn get(addr: SocketAddr, host: &str, path: &str) -> anyhow::Result<(u16, Bytes)> {
    let mut sender = connect(addr).await?;
    let req = http::Request::get(path)
        .header(http::header::HOST, host)
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())?;
    let res = tokio::time::timeout(Duration::from_secs(5), async {
        let res = sender.send_request(req).await?;
        let status = res.status().as_u16();
        Ok::<_, anyhow::Error>((status, res.into_body().collect().await?.to_bytes()))
    })
    .await
    .context("no answer within 5 s")??;
    Ok(res)
}

/// Polls `GET /` every [`POLL`] until it answers 200 with `body`.
async fn until_served(addr: SocketAddr, host: &str, body: &str, start: Instant) -> anyhow::Result<Duration> {
    loop {
        if let Ok((200, got)) = get(addr, host, "/").await {
            if got == body.as_bytes() {
                return Ok(start.elapsed());
            }
        }
        ensure!(start.elapsed() < LIMIT, "{addr} did not answer {body:?} within {LIMIT:?}");
        tokio::time::sleep(POLL).await;
    }
}

// ------------------------------------------------------------------ load --

/// CPU ticks: this process (load generator and edge), and the machine's
/// busy and total time (`/proc`), to show what else ran during a run.
#[derive(Clone, Copy, Default)]
struct Cpu {
    process: u64,
    busy: u64,
    total: u64,
}

impl Cpu {
    fn now() -> Cpu {
        let process = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                // Fields after the parenthesized command name; utime and
                // stime are fields 14 and 15 of the whole line.
                let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
                Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
            })
            .unwrap_or(0);
        let (busy, total) = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                let line = s.lines().next()?;
                let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
                let total: u64 = v.iter().take(8).sum();
                let idle = v.get(3)? + v.get(4)?;
                Some((total - idle, total))
            })
            .unwrap_or((0, 1));
        Cpu { process, busy, total }
    }

    /// This process's CPU in cores, and the machine's busy share, since `earlier`.
    fn since(self, earlier: Cpu, wall: Duration) -> (f64, f64) {
        // USER_HZ is 100 on Linux.
        let process = self.process.saturating_sub(earlier.process) as f64 / 100.0 / wall.as_secs_f64();
        let total = self.total.saturating_sub(earlier.total).max(1) as f64;
        (process, self.busy.saturating_sub(earlier.busy) as f64 / total)
    }
}

#[derive(Default)]
struct Load {
    ok: u64,
    errors: Vec<String>,
    latencies: Vec<Duration>,
    connections: u64,
    window: Duration,
    /// This process's CPU (cores) and the machine's busy share, summed
    /// over `runs` runs.
    cpu: (f64, f64),
    runs: u32,
}

impl Load {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    fn merge(&mut self, other: Load) {
        self.ok += other.ok;
        self.errors.extend(other.errors);
        self.latencies.extend(other.latencies);
        self.connections += other.connections;
        self.window += other.window;
        self.cpu = (self.cpu.0 + other.cpu.0, self.cpu.1 + other.cpu.1);
        self.runs += other.runs;
    }
}

/// One client connection's closed loop until `deadline`; reconnects when
/// the server closes (busybox httpd: after every response).
async fn client_loop(target: SocketAddr, host: Arc<str>, expect: Arc<[u8]>, deadline: Instant) -> Load {
    let mut out = Load::default();
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    while Instant::now() < deadline {
        let started = Instant::now();
        let s = match sender.as_mut() {
            Some(s) => s,
            None => match connect(target).await {
                Ok(s) => {
                    out.connections += 1;
                    sender.insert(s)
                }
                Err(e) => {
                    out.errors.push(format!("connect: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let req = http::Request::get(STATIC_PATH)
            .header(http::header::HOST, &*host)
            .body(Empty::<Bytes>::new())
            .expect("a valid request");
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            let res = s.send_request(req).await?;
            let close = res
                .headers()
                .get(http::header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            let status = res.status();
            let body = res.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, close, body))
        })
        .await;
        match answer {
            Ok(Ok((status, close, body))) if status == http::StatusCode::OK && body == *expect => {
                if Instant::now() <= deadline {
                    out.ok += 1;
                    out.latencies.push(started.elapsed());
                }
                if close {
                    sender = None;
                }
            }
            Ok(Ok((status, _, body))) => {
                out.errors.push(format!("HTTP {status}, {} bytes", body.len()));
                sender = None;
            }
            Ok(Err(e)) => {
                out.errors.push(format!("request: {e}"));
                sender = None;
            }
            Err(_) => {
                out.errors.push("no answer within 10 s".into());
                sender = None;
            }
        }
    }
    out
}

/// The closed-loop load on `target` for `duration`.
async fn load(
    target: SocketAddr,
    host: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Load> {
    let host: Arc<str> = host.into();
    let expect: Arc<[u8]> = static_body().into_bytes().into();
    let cpu = Cpu::now();
    let begun = Instant::now();
    let deadline = begun + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(client_loop(target, host.clone(), expect.clone(), deadline)))
        .collect();
    let mut all = Load::default();
    for task in tasks {
        all.merge(task.await?);
    }
    all.window = duration;
    all.cpu = Cpu::now().since(cpu, begun.elapsed());
    all.runs = 1;
    all.latencies.sort_unstable();
    Ok(all)
}

/// Nearest rank.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

fn sorted(values: impl Iterator<Item = Duration>) -> Vec<Duration> {
    let mut v: Vec<Duration> = values.collect();
    v.sort_unstable();
    v
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn describe(name: &str, l: &Load) -> String {
    format!(
        "{name:<7} {:>7.0} req/s  p50 {:>8}  p99 {:>8}  {:>7} requests  {:>6} client connections  {} errors  \
         (bench process {:.2} cores, machine {:.0}% busy)",
        l.rate(),
        us(percentile(&l.latencies, 50.0)),
        us(percentile(&l.latencies, 99.0)),
        l.ok,
        l.connections,
        l.errors.len(),
        l.cpu.0 / f64::from(l.runs.max(1)),
        l.cpu.1 * 100.0 / f64::from(l.runs.max(1))
    )
}

async fn throughput(b: &Bench, direct: SocketAddr, connections: usize, seconds: u64) -> anyhow::Result<f64> {
    let duration = Duration::from_secs(seconds);
    println!(
        "edge_overhead (a): {connections} keep-alive client connections, closed loop, {seconds} s per run, \
         GET {STATIC_PATH} ({STATIC_BYTES} bytes); container {direct}, edge {}",
        b.edge
    );
    println!("  busybox httpd closes every connection after one response (Connection: close):");
    println!("  direct = one client connection per request; edge = kept client connections, one upstream per request");
    let warm_direct = load(direct, &b.host, connections, WARM_UP).await?;
    let warm_edge = load(b.edge, &b.host, connections, WARM_UP).await?;
    println!(
        "  warm-up (not counted): direct {:.0} req/s, edge {:.0} req/s",
        warm_direct.rate(),
        warm_edge.rate()
    );
    let mut direct_all = Load::default();
    let mut edge_all = Load::default();
    for round in 1..=2 {
        let d = load(direct, &b.host, connections, duration).await?;
        println!("  run {round} {}", describe("direct", &d));
        let e = load(b.edge, &b.host, connections, duration).await?;
        println!("  run {round} {}", describe("edge", &e));
        for (name, l) in [("direct", &d), ("edge", &e)] {
            if !l.errors.is_empty() {
                println!("    {name} errors (first 5): {:?}", &l.errors[..l.errors.len().min(5)]);
            }
        }
        direct_all.merge(d);
        edge_all.merge(e);
    }
    direct_all.latencies.sort_unstable();
    edge_all.latencies.sort_unstable();
    println!("  total {}", describe("direct", &direct_all));
    println!("  total {}", describe("edge", &edge_all));
    let ratio = edge_all.rate() / direct_all.rate();
    let verdict = if ratio >= GOAL_THROUGHPUT { "meets" } else { "MISSES" };
    println!(
        "edge_overhead (a): throughput edge/direct = {ratio:.3} ({verdict} the goal ≥ {GOAL_THROUGHPUT}); \
         p50 {} vs {}, p99 {} vs {} (edge vs direct)",
        us(percentile(&edge_all.latencies, 50.0)),
        us(percentile(&direct_all.latencies, 50.0)),
        us(percentile(&edge_all.latencies, 99.0)),
        us(percentile(&direct_all.latencies, 99.0)),
    );
    Ok(ratio)
}

// -------------------------------------------------------------- rollback --

/// One rollback: call → edge serving the target's version.
struct RollbackRun {
    to_edge: Duration,
    /// Call → the new container answering the version at its own address
    /// (polled from when its id is recorded, so at most this).
    container_answers: Duration,
    /// created_at → started_at of the deployment row (job pickup).
    pickup: Duration,
    /// started_at → finished_at (container start, health check, switch).
    start_to_live: Duration,
}

fn between(a: Option<&str>, b: Option<&str>) -> Duration {
    Duration::from_millis(duration_ms(a, b).and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
}

/// Call → the new deployment's container answering `version` directly.
async fn container_answers(
    b: &Bench,
    dep_id: i64,
    version: &str,
    start: Instant,
) -> anyhow::Result<Duration> {
    let addr = loop {
        let dep = b.te.engine.deployment(dep_id).await.map_err(anyhow_of)?;
        if let Some(id) = dep.container_id {
            if let Some(ip) = b.te.engine.docker.container_state(&id).await?.and_then(|s| s.ip) {
                break SocketAddr::new(ip, 8080);
            }
        }
        ensure!(start.elapsed() < LIMIT, "deployment {dep_id} has no container after {LIMIT:?}");
        tokio::time::sleep(POLL).await;
    };
    until_served(addr, "direct", version, start).await
}

async fn rollback_once(
    b: &Bench,
    target: &Deployment,
    version: &str,
) -> anyhow::Result<(RollbackRun, Deployment)> {
    let start = Instant::now();
    let queued = b.te.engine.rollback(&b.caller, target.id, None).await.map_err(anyhow_of)?;
    let (to_edge, direct) = tokio::join!(
        until_served(b.edge, &b.host, version, start),
        container_answers(b, queued.id, version, start)
    );
    let (to_edge, container_answers) = (to_edge?, direct?);
    let dep = b.te.wait_deployment(queued.id, LIMIT).await?;
    ensure!(dep.status == DeploymentStatus::Live, "rollback {} not live: {:?}", dep.id, dep.error);
    let run = RollbackRun {
        to_edge,
        container_answers,
        pickup: between(Some(&dep.created_at), dep.started_at.as_deref()),
        start_to_live: between(dep.started_at.as_deref(), dep.finished_at.as_deref()),
    };
    Ok((run, dep))
}

#[derive(Clone, Copy)]
enum Starter {
    Cli,
    Api,
}

/// Starts the stopped container and waits for its first good HTTP answer;
/// then stops it again (not timed).
async fn start_once(b: &Bench, id: &str, version: &str, how: Starter) -> anyhow::Result<Duration> {
    let docker = &b.te.engine.docker;
    let client = docker.client()?;
    let start = Instant::now();
    match how {
        Starter::Cli => {
            let id = id.to_string();
            let out =
                tokio::task::spawn_blocking(move || Command::new("docker").args(["start", &id]).output())
                    .await?
                    .context("cannot run docker start")?;
            ensure!(
                out.status.success(),
                "docker start failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Starter::Api => client.start_container(id, None).await?,
    }
    let ip = docker.container_state(id).await?.and_then(|s| s.ip).context("the container has no address")?;
    let served = until_served(SocketAddr::new(ip, 8080), "baseline", version, start).await?;
    client.stop_container(id, Some(StopContainerOptionsBuilder::new().t(10).build())).await?;
    let stopped = Instant::now();
    while docker.container_state(id).await?.is_some_and(|s| s.running) {
        ensure!(stopped.elapsed() < LIMIT, "the baseline container did not stop");
        tokio::time::sleep(POLL).await;
    }
    Ok(served)
}

async fn rollbacks(
    b: &Bench,
    kit: &DockerKit,
    n: usize,
    deps: [(Deployment, String); 2],
) -> anyhow::Result<(f64, f64)> {
    let health = &deps[0].0.config.health;
    println!(
        "edge_overhead (b): {n} rollbacks (call → edge serves the version, polled every {} ms) vs starting a \
         stopped container of the same image → first good HTTP probe (polled every {} ms); health check of \
         the deployments: interval {} ms, timeout {} ms, start period {} ms",
        POLL.as_millis(),
        POLL.as_millis(),
        health.interval_ms,
        health.timeout_ms,
        health.start_period_ms
    );
    // A container like a deployment's (same image, network, limits,
    // restart policy, init), started once, then stopped.
    let [(v1, v1_text), (v2, v2_text)] = deps;
    let mut labels = kit.labels();
    labels.insert("dev.slipway.bench".into(), "edge-overhead-baseline".into());
    let project_id = server::projects::ProjectStore::new(b.te.engine.db.clone())
        .get_service(v1.service_id)
        .await?
        .project_id;
    let network = server::docker::app_network::project_network(&b.te.engine.instance, project_id);
    let baseline =
        b.te.engine
            .docker
            .run_container(&ContainerSpec {
                name: format!("slipway-edge-bench-baseline-{}", kit.run_id),
                image: v1.image_id.clone(),
                env: vec![],
                port: Some(8080),
                command: None,
                network,
                volumes: vec![],
                published: vec![],
                labels,
                memory_bytes: v1.config.memory_bytes,
                cpu_millis: v1.config.cpu_millis,
            })
            .await?;
    let warm = until_served(
        SocketAddr::new(
            b.te.engine.docker.container_state(&baseline).await?.and_then(|s| s.ip).context("no address")?,
            8080,
        ),
        "baseline",
        &v1_text,
        Instant::now(),
    )
    .await?;
    println!("  baseline container created and started once ({} to first answer), now stopped", ms(warm));
    b.te.engine
        .docker
        .client()?
        .stop_container(&baseline, Some(StopContainerOptionsBuilder::new().t(10).build()))
        .await?;
    // The baseline runs v1's image: it always answers v1.
    let baseline_text = v1_text.clone();

    // The live one is v2; roll back to v1, then to v2 (now rolled back), …
    let mut live = (v2, v2_text);
    let mut other = (v1, v1_text);
    let mut runs = Vec::with_capacity(n);
    let mut cli = Vec::with_capacity(n);
    let mut api = Vec::with_capacity(n);
    for i in 0..n {
        let rollback_first = i % 2 == 0;
        let mut line = format!("  #{i}:");
        if !rollback_first {
            cli.push(start_once(b, &baseline, &baseline_text, Starter::Cli).await?);
            api.push(start_once(b, &baseline, &baseline_text, Starter::Api).await?);
        }
        let (run, dep) = rollback_once(b, &other.0, &other.1).await?;
        line.push_str(&format!(
            " rollback to #{} ({}) {} [container answers {}, pickup {}, start→live {}]",
            other.0.id,
            other.1.split_whitespace().next().unwrap_or_default(),
            ms(run.to_edge),
            ms(run.container_answers),
            ms(run.pickup),
            ms(run.start_to_live)
        ));
        runs.push(run);
        if rollback_first {
            cli.push(start_once(b, &baseline, &baseline_text, Starter::Cli).await?);
            api.push(start_once(b, &baseline, &baseline_text, Starter::Api).await?);
        }
        line.push_str(&format!(
            "; docker start (CLI) {}; start (API) {}",
            ms(cli[cli.len() - 1]),
            ms(api[api.len() - 1])
        ));
        println!("{line}");
        // The rolled-back-to deployment is the new live one; the replaced
        // one is the next target.
        let replaced = b.te.engine.deployment(live.0.id).await.map_err(anyhow_of)?;
        ensure!(replaced.status == DeploymentStatus::RolledBack, "#{} is {}", replaced.id, replaced.status);
        let version = other.1.clone();
        other = (replaced, std::mem::take(&mut live.1));
        live = (dep, version);
    }
    let to_edge = sorted(runs.iter().map(|r| r.to_edge));
    let answers = sorted(runs.iter().map(|r| r.container_answers));
    let lag = sorted(runs.iter().map(|r| r.to_edge.saturating_sub(r.container_answers)));
    let pickup = sorted(runs.iter().map(|r| r.pickup));
    let start_to_live = sorted(runs.iter().map(|r| r.start_to_live));
    let cli = sorted(cli.into_iter());
    let api = sorted(api.into_iter());
    let row = |name: &str, v: &[Duration]| {
        println!(
            "  {name:<44} median {:>7}  min {:>7}  max {:>7}",
            ms(median(v)),
            ms(v[0]),
            ms(v[v.len() - 1])
        );
    };
    row("rollback call → edge serves the version", &to_edge);
    row("  call → new container answers directly", &answers);
    row("  new container answers → edge serves it", &lag);
    row("  queued → job started (row)", &pickup);
    row("  job started → live (row)", &start_to_live);
    row("docker start (CLI) → first good probe", &cli);
    row("start (Engine API) → first good probe", &api);
    let ratio_cli = median(&to_edge).as_secs_f64() / median(&cli).as_secs_f64();
    let ratio_api = median(&to_edge).as_secs_f64() / median(&api).as_secs_f64();
    let verdict = |r: f64| if r <= GOAL_ROLLBACK { "meets" } else { "MISSES" };
    println!(
        "edge_overhead (b): rollback/docker start (CLI) = {ratio_cli:.2}× ({} the goal ≤ {GOAL_ROLLBACK}×); \
         rollback/start (API) = {ratio_api:.2}× ({})",
        verdict(ratio_cli),
        verdict(ratio_api)
    );
    Ok((ratio_cli, ratio_api))
}

// ------------------------------------------------------------------ main --

async fn bench(kit: &DockerKit, router: Arc<EdgeRouter>, edge: SocketAddr) -> anyhow::Result<()> {
    let seconds = env_number("BENCH_SECONDS", DEFAULT_SECONDS)?;
    let connections = env_number("BENCH_CONNECTIONS", DEFAULT_CONNECTIONS)?;
    let n = env_number("BENCH_ROLLBACKS", DEFAULT_ROLLBACKS)?;
    let data = TestDataDir::new()?;
    let settings = TestEngine::settings(kit, &data);
    let docker = DockerEngine::with_client(kit.docker.clone());
    let te = TestEngine::start_with_switch(data, settings, docker, router.clone()).await?;
    // Container names derive from service names, which are global to the
    // Docker engine: unique per run.
    let unique = kit.run_id.rsplit('-').next().unwrap_or_default();
    let name = format!("edge-bench-{}", &unique[unique.len().saturating_sub(8)..]);
    let v1_text = format!("v1 {}", kit.run_id);
    let v2_text = format!("v2 {}", kit.run_id);
    let repo = service_repo(&v1_text)?;
    let mut service = te.service("bench", &name, &repo.url()).await?;
    // The test kit's quick check (200 ms interval) unless the product's
    // default check (2 s interval) is asked for.
    match std::env::var("BENCH_HEALTH").as_deref() {
        Ok("default") => {
            let mut spec = service.spec.clone();
            spec.health = HealthCheck::default();
            service = ProjectStore::new(te.engine.db.clone()).update_service(service.id, &spec).await?;
        }
        Ok("quick") | Err(_) => {}
        Ok(other) => bail!("BENCH_HEALTH must be quick or default, not {other:?}"),
    }
    let b =
        Bench { host: format!("{name}.bench.localhost"), te, service, edge, caller: user(Role::Deployer) };

    let setup = Instant::now();
    let (v1_build, _) = b.build().await?;
    let v1 = b.deploy(v1_build).await?;
    ensure!(
        get(edge, &b.host, "/").await? == (200, Bytes::from(v1_text.clone())),
        "the edge does not serve v1"
    );
    let direct = router.route(b.service.id).context("no route")?.upstream.addr;
    println!("edge_overhead: v1 built and live in {}", ms(setup.elapsed()));

    let ratio = throughput(&b, direct, connections, seconds).await?;

    repo.write("www/index.html", &v2_text)?;
    repo.commit("v2")?;
    let (v2_build, _) = b.build().await?;
    b.deploy(v2_build).await?;
    ensure!(
        get(edge, &b.host, "/").await? == (200, Bytes::from(v2_text.clone())),
        "the edge does not serve v2"
    );
    let v1 = b.te.engine.deployment(v1.id).await.map_err(anyhow_of)?;
    let v2 = b.te.engine.live_of(b.service.id).await?.context("nothing live")?;
    let (ratio_cli, ratio_api) = rollbacks(&b, kit, n, [(v1, v1_text), (v2, v2_text)]).await?;
    println!(
        "edge_overhead: summary: throughput edge/direct {ratio:.3} (goal ≥ {GOAL_THROUGHPUT}); rollback/docker \
         start {ratio_cli:.2}× CLI, {ratio_api:.2}× API (goal ≤ {GOAL_ROLLBACK}×)"
    );

    let Bench { mut te, .. } = b;
    if let Some(running) = te.running.take() {
        running.shutdown().await;
    }
    drop(te);
    Ok(())
}

/// Removes the run's objects and fails if any container or image is left.
async fn check_cleanup(kit: &DockerKit) -> anyhow::Result<()> {
    kit.cleanup().await?;
    let filter = HashMap::from([("label".to_string(), vec![format!("{TEST_LABEL}={}", kit.run_id)])]);
    let images = kit
        .docker
        .list_images(Some(ListImagesOptionsBuilder::new().all(true).filters(&filter).build()))
        .await?;
    let containers = kit
        .docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filter).build()))
        .await?;
    ensure!(
        images.is_empty() && containers.is_empty(),
        "cleanup left {} images and {} containers",
        images.len(),
        containers.len()
    );
    println!("edge_overhead: cleanup done, no container or image of the run left");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // The edge on a runtime of its own, as in the binary; the engine and the
    // load generator on another.
    let edge_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("edge")
        .enable_all()
        .build()?;
    let router = Arc::new(EdgeRouter::new());
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let edge = std_listener.local_addr()?;
    let listener = {
        let _entered = edge_rt.enter();
        tokio::net::TcpListener::from_std(std_listener)?
    };
    let stop = CancellationToken::new();
    edge_rt.spawn(proxy::serve(listener, router.clone(), proxy::EdgeConfig::default(), stop.clone()));

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(async {
        let kit = DockerKit::new().await?;
        // On an error the kit's Drop removes whatever the run made.
        let result = bench(&kit, router, edge).await;
        match result {
            Ok(()) => check_cleanup(&kit).await,
            Err(e) => Err(e),
        }
    });
    stop.cancel();
    edge_rt.shutdown_timeout(Duration::from_secs(5));
    result
}
