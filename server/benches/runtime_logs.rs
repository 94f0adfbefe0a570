//! Runtime visibility costs, against the real Docker Engine and the real
//! HTTP router on a socket:
//!
//! 1. **Live container log lag.** A deployed container prints about 10,000
//!    lines/s for `BENCH_SECONDS` (default 10). A client follows
//!    `GET /api/v1/services/{id}/logs?follow=true` (SSE, bearer token) and
//!    measures, per line, the time from the engine's timestamp to receipt.
//!    Goal: p99 ≤ 250 ms, every line received once, in order.
//! 2. **Stats refresh per open page.** The server CPU time (getrusage) that
//!    500 `service_runtime` reads cost (what an open service page asks for
//!    every 5 s), turned into % of one core per open page; and the monitor's
//!    own cost per live container over 20 s. Goal: ≤ 2 % of one core per page.
//!
//! `cargo bench -p server --bench runtime_logs`

use std::process::ExitCode;
use std::time::{Duration, Instant};

use app::wire::Role;
use futures::StreamExt;
use server::{
    builds::TriggerBuild,
    testkit::{
        app::app_router,
        engine::{anyhow_of, user},
        DockerKit, GitRepo, TestEngine,
    },
};

const GOAL_P99_LAG: Duration = Duration::from_millis(250);
const GOAL_PAGE_CORE_PERCENT: f64 = 2.0;
const PAGE_REFRESH: Duration = Duration::from_secs(5);

fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct we pass; nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Lines written between two 10 ms pauses: with the shell loop's own time
/// (about 36 µs a line) that is about 10,000 lines/s.
const BATCH: u64 = 200;

/// Batches of `BATCH` lines, starting 5 s after boot.
fn chatty_repo(seconds: u64) -> anyhow::Result<GitRepo> {
    let batches = seconds * 10_000 / BATCH;
    GitRepo::script_service(
        &format!(
            "#!/bin/sh\necho ok > /www/index.html\nhttpd -p 8080 -h /www\nsleep 5\nb=0\n\
             while [ $b -lt {batches} ]; do i=0; while [ $i -lt {BATCH} ]; do echo \"line $b $i\"; i=$((i+1)); done; \
             b=$((b+1)); sleep 0.01; done\necho done\nexec sleep 3600\n"
        ),
        &[],
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("runtime_logs bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<bool> {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = chatty_repo(seconds)?;
    let service = t.service("bench", "chatty", &repo.url()).await?;
    let req = TriggerBuild {
        service_id: service.id,
        git_ref: None,
        trigger: "cli".into(),
        deploy: true,
        build_only: false,
        no_cache: false,
        group: None,
    };
    let build = t.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    let build = t.wait_build(build.id, Duration::from_secs(180)).await?;
    let dep = t.wait_deployment(t.deployment_of_build(build.id).await?, Duration::from_secs(120)).await?;
    anyhow::ensure!(dep.status.was_live(), "deploy failed: {:?}", dep.error);

    let docker = server::docker::DockerEngine::with_client(kit.docker.clone());
    let (router, auth) = app_router(&t.engine, docker, t.data.path()).await?;
    let viewer = auth.users.create("bench", "correct horse battery", Role::Viewer).await?;
    let (_, token) = auth.tokens.create(&viewer.caller(), "bench", None).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });

    // 1. Log lag.
    let url = format!("http://{addr}/api/v1/services/{}/logs?follow=true&tail=0", service.id);
    let client = reqwest::Client::new();
    let response = client.get(&url).bearer_auth(&token).send().await?;
    anyhow::ensure!(response.status().is_success(), "stream: {}", response.status());
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut lags = Vec::new();
    let (mut expected_b, mut expected_i, mut out_of_order) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let mut first_at = None;
    'read: while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), body.next()).await? {
        buffer.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) else { continue };
            let v: serde_json::Value = serde_json::from_str(data)?;
            let text = v["text"].as_str().unwrap_or_default();
            if text == "done" {
                break 'read;
            }
            let Some(ts) = v["ts"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) else {
                continue;
            };
            let mut parts = text.split_whitespace().skip(1).filter_map(|n| n.parse::<u64>().ok());
            let (Some(b), Some(i)) = (parts.next(), parts.next()) else { continue };
            if (b, i) != (expected_b, expected_i) {
                out_of_order += 1;
            }
            (expected_b, expected_i) = if i == BATCH - 1 { (b + 1, 0) } else { (b, i + 1) };
            first_at.get_or_insert_with(Instant::now);
            let lag = chrono::Utc::now().signed_duration_since(ts.to_utc());
            lags.push(lag.to_std().unwrap_or_default());
        }
    }
    let elapsed = first_at.map_or(started.elapsed(), |f| f.elapsed());
    lags.sort();
    let pct = |p: f64| lags.get(((lags.len() as f64 - 1.0) * p) as usize).copied().unwrap_or_default();
    let expected = seconds * 10_000;
    let received = lags.len() as u64;
    let rate = received as f64 / elapsed.as_secs_f64().max(0.001);
    println!(
        "container log: {received}/{expected} lines in {:.1} s ({rate:.0} lines/s), lag p50 {:?} p99 {:?} max {:?}, \
         out of order {out_of_order}",
        elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        lags.last().copied().unwrap_or_default()
    );
    let lag_ok = pct(0.99) <= GOAL_P99_LAG && received == expected && out_of_order == 0;

    // 2. Stats refresh per open page, and the monitor per container.
    let rpc = format!("http://{addr}/rpc/service_runtime");
    let calls = 500u32;
    let before = cpu_time();
    let wall = Instant::now();
    for _ in 0..calls {
        let answer = client
            .post(&rpc)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(format!("{{\"service_id\":{}}}", service.id))
            .send()
            .await?;
        anyhow::ensure!(answer.status().is_success(), "service_runtime: {}", answer.status());
        answer.bytes().await?;
    }
    // The client runs in this process too: its share is included (an upper bound).
    let per_call = (cpu_time() - before) / calls;
    let page_percent = per_call.as_secs_f64() / PAGE_REFRESH.as_secs_f64() * 100.0;
    println!(
        "stats refresh: {per_call:?} CPU per read (client included), {page_percent:.3} % of one core per open page \
         (one read per {PAGE_REFRESH:?}); {calls} reads in {:?}",
        wall.elapsed()
    );
    let idle = Duration::from_secs(20);
    let before = cpu_time();
    tokio::time::sleep(idle).await;
    let monitor_percent = (cpu_time() - before).as_secs_f64() / idle.as_secs_f64() * 100.0;
    println!("monitor and idle server with 1 live container: {monitor_percent:.3} % of one core");
    let stats_ok = page_percent <= GOAL_PAGE_CORE_PERCENT;
    println!(
        "goals: log lag p99 <= {GOAL_P99_LAG:?} with every line once: {}; stats <= {GOAL_PAGE_CORE_PERCENT} % per page: {}",
        if lag_ok { "met" } else { "MISSED" },
        if stats_ok { "met" } else { "MISSED" }
    );
    Ok(lag_ok && stats_ok)
}
