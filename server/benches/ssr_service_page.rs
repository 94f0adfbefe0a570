//! Server-side rendering of the service page with 10,000 builds in its
//! history, measured with `wrk` (Debian's package) against the real
//! `slipway serve` binary (release build) on a seeded SQLite data dir.
//!
//! Seeding: one admin, one project, one service, `BENCH_BUILDS` (default
//! 10,000) finished builds and 100 deployments written straight into the
//! database. The bench signs in over HTTP, checks that the page's first
//! HTML response holds the newest build, then runs
//! `wrk -t2 -c16 -d<BENCH_SECONDS>s --latency` with the session cookie, twice
//! (after a 3 s warm-up), and reports requests/s and p50/p99 latency, and
//! the server's CPU time per page (from /proc: steadier than the others when
//! the machine is busy).
//! Goals: p50 ≤ 10 ms, ≥ 1,000 req/s on 2 cores.
//!
//! `cargo bench -p server --bench ssr_service_page` (`BENCH_BUILDS`,
//! `BENCH_SECONDS`; `BENCH_SAVE_HTML=<file>` keeps the page's HTML). Needs `wrk` on the PATH (`apt-get install wrk`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context};
use app::wire::Role;
use server::auth::UserStore;
use server::projects::{ProjectStore, ServiceSpec};
use server::testkit::{http_get, wrk, ServerProcess, TestDataDir};

const PASSWORD: &str = "bench password 1234";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let builds: i64 = env_or("BENCH_BUILDS", 10_000);
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    ensure!(
        Command::new("wrk").arg("--version").output().is_ok(),
        "wrk is not installed (apt-get install wrk)"
    );

    let data = TestDataDir::new()?;
    let service_id = seed(&data, builds).await?;
    let site = tempfile::tempdir()?;
    let server = ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_slipway")), data.path(), site.path())?;
    let cookie = sign_in(server.addr)?;
    let url = server.url(&format!("/services/{service_id}"));

    let page = get_with_cookie(server.addr, &format!("/services/{service_id}"), &cookie)?;
    ensure!(page.starts_with("HTTP/1.1 200"), "service page answered {}", page.lines().next().unwrap_or(""));
    ensure!(
        page.contains(&format!("data-build-id=\"{builds}\"")),
        "the first HTML lacks the newest build row"
    );
    println!("service page: {} bytes of HTML with {builds} builds in history", page.len());
    if let Ok(path) = std::env::var("BENCH_SAVE_HTML") {
        std::fs::write(&path, &page).with_context(|| format!("cannot write {path}"))?;
    }

    wrk::run(&url, &format!("Cookie: {cookie}"), 3)?;
    for run in 1..=2 {
        let cpu_before = cpu_seconds(server.pid())?;
        let round = wrk::run(&url, &format!("Cookie: {cookie}"), seconds)?;
        let cpu = cpu_seconds(server.pid())? - cpu_before;
        let wrk::Round { p50, p99, rps, requests } = round;
        println!("run {run}: {rps:.0} req/s, p50 {p50:.2} ms, p99 {p99:.2} ms (16 connections, {seconds} s)");
        println!("  server CPU {:.2} ms per page ({requests} pages)", cpu * 1000.0 / requests as f64);
        println!(
            "  goals: p50 ≤ 10 ms {} ; ≥ 1000 req/s {}",
            if p50 <= 10.0 { "met" } else { "MISSED" },
            if rps >= 1000.0 { "met" } else { "MISSED" }
        );
    }
    let _ = http_get(&server.url("/status"));
    Ok(())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn seed(data: &TestDataDir, builds: i64) -> anyhow::Result<i64> {
    let db = data.open_db().await?;
    UserStore::new(db.clone()).create("bench", PASSWORD, Role::Admin).await?;
    let store = ProjectStore::new(db.clone());
    let project = store.create_project("bench").await?;
    let service = store
        .create_service(project.id, &ServiceSpec::new("web", "https://example.com/repo.git", 8080))
        .await?;
    let mut tx = db.begin().await?;
    for n in 1..=builds {
        let status = if n % 7 == 0 { "failed" } else { "succeeded" };
        sqlx::query(
            "INSERT INTO builds (service_id, number, commit_sha, git_ref, trigger, actor, status, image_id, tags, \
             phase, progress, created_at, started_at, finished_at) \
             VALUES (?, ?, ?, 'main', 'manual', 'bench', ?, ?, '[]', 'done', 100, \
             '2026-11-01T10:00:00.000Z', '2026-11-01T10:00:01.000Z', '2026-11-01T10:00:41.500Z')",
        )
        .bind(service.id)
        .bind(n)
        .bind(format!("{n:040x}"))
        .bind(status)
        .bind(format!("sha256:{n:064x}"))
        .execute(&mut *tx)
        .await?;
    }
    let config = r#"{"env":[],"port":8080,"health":{"probe":{"kind":"http","path":"/"},"interval_ms":2000,"timeout_ms":2000,"retries":15,"start_period_ms":0},"memory_bytes":536870912,"cpu_millis":1000,"drain_secs":30}"#;
    for n in 1..=100i64 {
        sqlx::query(
            "INSERT INTO deployments (service_id, build_id, image_id, config, status, reason, actor, created_at, \
             started_at, finished_at) VALUES (?, ?, ?, ?, 'superseded', 'bench', 'bench', \
             '2026-11-01T10:01:00.000Z', '2026-11-01T10:01:00.000Z', '2026-11-01T10:01:02.000Z')",
        )
        .bind(service.id)
        .bind(n)
        .bind(format!("sha256:{n:064x}"))
        .bind(config)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    db.close().await;
    Ok(service.id)
}

/// Signs in through the login server function; returns `name=value`.
fn sign_in(addr: SocketAddr) -> anyhow::Result<String> {
    let body = format!("name=bench&password={}", PASSWORD.replace(' ', "+"));
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "POST /rpc/login HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    ensure!(reply.starts_with("HTTP/1.1 200"), "login failed: {}", reply.lines().next().unwrap_or(""));
    reply
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
        .context("login set no cookie")
}

fn get_with_cookie(addr: SocketAddr, path: &str, cookie: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// User plus system CPU time of a process so far, in seconds (Linux).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).context("unexpected /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks =
        |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).context("no CPU times in /proc stat");
    // utime and stime (fields 14 and 15 of stat) at 11 and 12 after the name.
    let per_second = 100.0; // USER_HZ on Linux
    Ok((ticks(11)? + ticks(12)?) / per_second)
}
