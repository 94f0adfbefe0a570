//! Webhook storm against a live `slipway serve` process: 1,000 deliveries
//! from several concurrent clients within 60 s, mixing distinct pushes (each
//! its own real commit, across three services and the three forges), exact
//! duplicates (same request, same delivery id), forged signatures or tokens
//! (half of them reusing a real delivery id) and malformed JSON (correctly
//! signed; half reusing a real delivery id).
//!
//! Every distinct push must build exactly once with its exact commit, every
//! duplicate must build nothing, every forged or malformed delivery must get
//! a 4xx, and the server must still answer afterwards. The first build of
//! each service must succeed; the rest are cancelled through the dashboard's
//! own `cancel_build` server function, signed in as a deployer.
//!
//! Setup (project, services, a user, the webhook secrets) goes through the
//! engine on the same data dir before the server starts; assertions read the
//! database. Run with `--nocapture` to see the figures.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{ensure, Context};
use app::wire::Role;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{header, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::{json, Value};
use server::{
    auth::{Auth, SessionSettings},
    jobs::JobStatus,
    projects::ServiceSpec,
    testkit::{
        engine::{anyhow_of, quick_http_check, user},
        wait::{unique_suffix, wait_until},
        GitRepo, Installation,
    },
    webhooks::Forge,
};
use sha2::Sha256;

const DISTINCT: usize = 300;
const DUPLICATES: usize = 300;
const FORGED: usize = 200;
const MALFORMED: usize = 200;
const CLIENTS: usize = 8;
const SERVICES: usize = 3;
const PW: &str = "correct horse battery";

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Distinct,
    Duplicate,
    Forged,
    Malformed,
}

/// One planned request.
struct Planned {
    kind: Kind,
    /// The distinct push this delivery repeats or copies the id of.
    push: Option<usize>,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

/// What came back.
struct Outcome {
    status: u16,
    json_status: String,
    build_id: Option<i64>,
    latency: Duration,
}

/// A distinct push: its service, forge, commit and delivery id.
#[derive(Clone)]
struct Push {
    service: usize,
    forge: Forge,
    sha: String,
    delivery: String,
}

/// A small deterministic generator (xorshift), so a failing mix can be rerun.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn headers(
    forge: Forge,
    secret: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    match forge {
        Forge::Github => vec![
            ("x-github-event", event.into()),
            ("x-github-delivery", delivery.into()),
            ("x-hub-signature-256", format!("sha256={}", hmac_hex(secret, body))),
        ],
        Forge::Gitea => vec![
            ("x-gitea-event", event.into()),
            ("x-gitea-delivery", delivery.into()),
            ("x-gitea-signature", hmac_hex(secret, body)),
        ],
        Forge::Gitlab => vec![
            ("x-gitlab-event", if event == "push" { "Push Hook".into() } else { event.into() }),
            ("x-gitlab-event-uuid", delivery.into()),
            ("x-gitlab-token", secret.into()),
        ],
    }
}

fn push_body(forge: Forge, sha: &str, n: usize) -> Bytes {
    let body = match forge {
        Forge::Gitlab => json!({ "object_kind": "push", "ref": "refs/heads/main", "before": "1".repeat(40),
            "after": sha, "checkout_sha": sha, "total_commits_count": 1, "n": n }),
        _ => json!({ "ref": "refs/heads/main", "before": "1".repeat(40), "after": sha,
            "repository": { "full_name": "storm/repo" }, "pusher": { "name": "storm" }, "n": n }),
    };
    Bytes::from(body.to_string())
}

/// The mix, shuffled.
fn plan(pushes: &[Push], service_ids: &[i64], secrets: &[String], rng: &mut Rng) -> Vec<Planned> {
    let path = |p: &Push| format!("/hooks/{}/{}", p.forge.as_str(), service_ids[p.service]);
    let mut out = Vec::new();
    let distinct: Vec<Planned> = pushes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let body = push_body(p.forge, &p.sha, i);
            let headers = headers(p.forge, &secrets[p.service], "push", &p.delivery, &body);
            Planned { kind: Kind::Distinct, push: Some(i), path: path(p), headers, body }
        })
        .collect();
    for _ in 0..DUPLICATES {
        let original = &distinct[rng.below(distinct.len())];
        out.push(Planned {
            kind: Kind::Duplicate,
            push: original.push,
            path: original.path.clone(),
            headers: original.headers.clone(),
            body: original.body.clone(),
        });
    }
    for n in 0..FORGED {
        let i = rng.below(pushes.len());
        let p = &pushes[i];
        // Half reuse the real delivery id (sent before or after the real one).
        let delivery = if n % 2 == 0 { p.delivery.clone() } else { format!("forged-{n}") };
        let body = push_body(p.forge, &p.sha, i);
        let headers = headers(p.forge, &"f".repeat(64), "push", &delivery, &body);
        out.push(Planned { kind: Kind::Forged, push: Some(i), path: path(p), headers, body });
    }
    for n in 0..MALFORMED {
        let i = rng.below(pushes.len());
        let p = &pushes[i];
        let body = match n % 4 {
            0 => Bytes::from(format!(r#"{{"ref": "refs/heads/main", "after": "{}"#, p.sha)),
            1 => Bytes::from(format!("{}{}", "[".repeat(5_000), "]".repeat(5_000))),
            2 => Bytes::from_static(b"payload=%7B%7D"),
            _ => Bytes::from(format!(r#"{{"ref": "refs/heads/main", "after": "{}"}} trailing"#, p.sha)),
        };
        let delivery = if n % 2 == 0 { p.delivery.clone() } else { format!("malformed-{n}") };
        let headers = headers(p.forge, &secrets[p.service], "push", &delivery, &body);
        out.push(Planned { kind: Kind::Malformed, push: Some(i), path: path(p), headers, body });
    }
    out.extend(distinct);
    // Fisher-Yates.
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i + 1));
    }
    out
}

async fn send(client: &HttpClient, base: &str, p: &Planned) -> anyhow::Result<Outcome> {
    let mut req = Request::post(format!("{base}{}", p.path)).header(header::CONTENT_TYPE, "application/json");
    for (name, value) in &p.headers {
        req = req.header(*name, value.as_str());
    }
    let started = Instant::now();
    let res = client.request(req.body(Full::new(p.body.clone()))?).await?;
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await?.to_bytes();
    let latency = started.elapsed();
    let json: Value = serde_json::from_slice(&bytes).context("a JSON reply")?;
    Ok(Outcome {
        status,
        json_status: json.get("status").and_then(Value::as_str).unwrap_or("").to_string(),
        build_id: json.get("build_id").and_then(Value::as_i64),
        latency,
    })
}

/// A form or JSON POST to a server function; returns status and body.
async fn rpc(
    client: &HttpClient,
    base: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<String>,
    json: Option<Value>,
) -> anyhow::Result<(u16, Vec<String>, String)> {
    let mut req = Request::post(format!("{base}{path}")).header(header::ACCEPT, "application/json");
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, format!("id={cookie}"));
    }
    let body = match (form, json) {
        (Some(form), _) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            form
        }
        (None, Some(json)) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            json.to_string()
        }
        (None, None) => String::new(),
    };
    let res = client.request(req.body(Full::new(Bytes::from(body)))?).await?;
    let status = res.status().as_u16();
    let cookies = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let body = String::from_utf8_lossy(&res.into_body().collect().await?.to_bytes()).into_owned();
    Ok((status, cookies, body))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_1000_deliveries_builds_every_distinct_push_exactly_once() -> anyhow::Result<()> {
    // ---- setup, before the server starts: data dir, services, user, commits.
    let inst = Installation::open(env!("CARGO_BIN_EXE_slipway")).await?;
    let (engine, db) = (inst.engine.clone(), inst.db.clone());
    let auth = Auth::open(db.clone(), SessionSettings::default()).await?;
    auth.users.create("stormer", PW, Role::Deployer).await?;
    let deployer = user(Role::Deployer);
    let unique = unique_suffix();
    let repo = GitRepo::http_service("storm")?;
    let project = engine.create_project(&deployer, &format!("storm-{unique}")).await.map_err(anyhow_of)?;
    let (mut service_ids, mut secrets) = (Vec::new(), Vec::new());
    for s in 0..SERVICES {
        let mut spec = ServiceSpec::new(format!("storm{s}-{unique}"), repo.url(), 8080);
        spec.auto_deploy = false;
        spec.health = quick_http_check("/");
        let view = engine.create_service(&deployer, project.id, &spec, &[]).await.map_err(anyhow_of)?;
        service_ids.push(view.service.id);
        secrets.push(engine.webhook_info(&deployer, view.service.id).await.map_err(anyhow_of)?.secret);
    }
    // One real commit per distinct push (same tree, so builds hit the cache).
    let began = Instant::now();
    let tree = repo.git(&["rev-parse", "HEAD^{tree}"])?.trim().to_string();
    let mut parent = repo.head()?;
    let mut pushes = Vec::new();
    for i in 0..DISTINCT {
        let sha =
            repo.git(&["commit-tree", &tree, "-p", &parent, "-m", &format!("push {i}")])?.trim().to_string();
        parent = sha.clone();
        let forge = Forge::ALL[(i / SERVICES) % 3];
        pushes.push(Push {
            service: i % SERVICES,
            forge,
            sha,
            delivery: format!("{i:04}-{}", unique_suffix()),
        });
    }
    repo.git(&["update-ref", "refs/heads/main", &parent])?;
    println!("storm: {DISTINCT} commits made in {:.1} s", began.elapsed().as_secs_f64());
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let planned = Arc::new(plan(&pushes, &service_ids, &secrets, &mut rng));
    ensure!(planned.len() == 1000);

    let server = inst.start_server().await?;
    let base = server.url("");
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    // ---- the storm: as fast as the clients go, or spread evenly over
    // SLIPWAY_STORM_SPREAD_SECS (at most 55) to interleave with running builds.
    let spread = std::env::var("SLIPWAY_STORM_SPREAD_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(Duration::ZERO, |s| Duration::from_secs_f64(s.clamp(0.0, 55.0)));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (planned, next, base) = (planned.clone(), next.clone(), base.clone());
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(p) = planned.get(i) else { return done };
                // Pacing (a schedule, not synchronisation): request i is due
                // at i/n of the spread.
                let due = started + spread.mul_f64(i as f64 / planned.len() as f64);
                tokio::time::sleep_until(due.into()).await;
                done.push((i, send(&client, &base, p).await));
            }
        }));
    }
    let mut outcomes: Vec<Option<Outcome>> = (0..planned.len()).map(|_| None).collect();
    let mut transport_errors = Vec::new();
    for task in tasks {
        for (i, result) in task.await? {
            match result {
                Ok(outcome) => outcomes[i] = Some(outcome),
                Err(e) => transport_errors.push(format!("#{i}: {e:#}")),
            }
        }
    }
    let elapsed = started.elapsed();
    ensure!(transport_errors.is_empty(), "requests failed: {transport_errors:?}\n{}", server.log());
    let outcomes: Vec<Outcome> = outcomes.into_iter().map(|o| o.expect("every request answered")).collect();

    // ---- the figures.
    let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    latencies.sort();
    let mut by_status: HashMap<(u16, String), usize> = HashMap::new();
    for o in &outcomes {
        *by_status.entry((o.status, o.json_status.clone())).or_default() += 1;
    }
    let mut by_status: Vec<_> = by_status.into_iter().collect();
    by_status.sort();
    println!(
        "storm: {} deliveries from {CLIENTS} clients in {:.2} s = {:.0} deliveries/s; \
         latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        outcomes.len(),
        elapsed.as_secs_f64(),
        outcomes.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
    println!("storm: mix {DISTINCT} distinct pushes, {DUPLICATES} exact duplicates, {FORGED} forged, {MALFORMED} malformed");
    for ((status, json_status), n) in &by_status {
        println!("storm:   HTTP {status} {json_status:<10} {n}");
    }
    ensure!(elapsed < Duration::from_secs(60), "the storm took {elapsed:?}");

    // ---- every response as it should be.
    let mut built_by_push: HashMap<usize, Vec<i64>> = HashMap::new();
    for (p, o) in planned.iter().zip(&outcomes) {
        match p.kind {
            Kind::Distinct | Kind::Duplicate => {
                let push = p.push.context("a push")?;
                match (o.status, o.json_status.as_str()) {
                    (202, "built") => {
                        built_by_push.entry(push).or_default().push(o.build_id.context("build id")?)
                    }
                    (200, "duplicate") => ensure!(o.build_id.is_none()),
                    other => anyhow::bail!("push {push}: unexpected {other:?}"),
                }
            }
            Kind::Forged => ensure!(o.status == 401, "forged: {}", o.status),
            Kind::Malformed => ensure!(o.status == 400, "malformed: {}", o.status),
        }
    }
    ensure!(built_by_push.len() == DISTINCT, "{} of {DISTINCT} pushes built", built_by_push.len());
    ensure!(built_by_push.values().all(|b| b.len() == 1), "a push built more than once");

    // ---- the database agrees: one build per push, with its exact commit.
    let builds: Vec<(i64, i64, String, String, String)> = sqlx::query_as(
        "SELECT id, service_id, git_ref, trigger, coalesce(actor, '') FROM builds ORDER BY id",
    )
    .fetch_all(&db)
    .await?;
    ensure!(builds.len() == DISTINCT, "{} builds for {DISTINCT} distinct pushes", builds.len());
    let by_id: HashMap<i64, &(i64, i64, String, String, String)> = builds.iter().map(|b| (b.0, b)).collect();
    for (push, ids) in &built_by_push {
        let p = &pushes[*push];
        let b = by_id.get(&ids[0]).context("the answered build exists")?;
        ensure!(b.1 == service_ids[p.service] && b.2 == p.sha && b.3 == "webhook");
        ensure!(b.4 == format!("webhook:{}", p.forge.as_str()));
    }
    ensure!(builds.iter().map(|b| &b.2).collect::<HashSet<_>>().len() == DISTINCT, "distinct commits");
    let recorded: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status ORDER BY status")
            .fetch_all(&db)
            .await?;
    println!("storm: deliveries recorded by status: {recorded:?}");
    let count = |s: &str| recorded.iter().find(|r| r.0 == s).map(|r| r.1).unwrap_or(0);
    ensure!(count("built") == DISTINCT as i64 && count("duplicate") == DUPLICATES as i64);
    ensure!(count("rejected") == (FORGED + MALFORMED) as i64 && count("claimed") == 0);

    // ---- the server is alive and still answers.
    let ping = Bytes::from_static(b"{\"zen\":\"still here\"}");
    let after = Planned {
        kind: Kind::Distinct,
        push: None,
        path: format!("/hooks/github/{}", service_ids[0]),
        headers: headers(Forge::Github, &secrets[0], "ping", "after-the-storm", &ping),
        body: ping,
    };
    let pong = send(&client, &base, &after).await?;
    ensure!((pong.status, pong.json_status.as_str()) == (200, "ping"), "after the storm: {}", pong.status);
    let log = server.log();
    ensure!(!log.contains("panicked"), "a panic in the server log");
    for trouble in ["cannot record a rejected webhook", "cannot link the delivery", "cannot queue the build"]
    {
        ensure!(!log.contains(trouble), "server log: {trouble}");
    }

    // ---- the first build of each service succeeds with its commit.
    for &service_id in &service_ids {
        let first = builds.iter().find(|b| b.1 == service_id).context("a build")?;
        let build = wait_until(&format!("build {}", first.0), Duration::from_secs(180), || {
            let engine = engine.clone();
            async move {
                let b = engine.build(first.0).await.map_err(anyhow_of)?;
                Ok(b.status.is_terminal().then_some(b))
            }
        })
        .await?;
        ensure!(
            build.status == JobStatus::Succeeded,
            "build {}: {:?} {:?}",
            build.id,
            build.status,
            build.error
        );
        ensure!(build.commit_sha.as_deref() == Some(first.2.as_str()), "built {:?}", build.commit_sha);
    }

    // ---- cancel the rest through the dashboard, signed in as a deployer.
    let form = format!("name=stormer&password={}", PW.replace(' ', "+"));
    let (status, cookies, body) = rpc(&client, &base, "/rpc/login", None, Some(form), None).await?;
    ensure!(status == 200, "sign-in: {status} {body}");
    let cookie = cookies
        .iter()
        .find_map(|c| c.strip_prefix("id=")?.split(';').next().map(str::to_owned))
        .context("a session cookie")?;
    let cancel_started = Instant::now();
    let mut cancelled = 0;
    for (id, ..) in builds.iter().rev() {
        if engine.build(*id).await.map_err(anyhow_of)?.status.is_terminal() {
            continue;
        }
        let (status, _, body) =
            rpc(&client, &base, "/rpc/cancel_build", Some(&cookie), None, Some(json!({ "build_id": id })))
                .await?;
        // 409: it finished between the read and the call.
        ensure!(status == 200 || status == 409, "cancel {id}: {status} {body}");
        cancelled += usize::from(status == 200);
    }
    let finals = wait_until("every build to finish", Duration::from_secs(120), || {
        let db = db.clone();
        async move {
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT status, COUNT(*) FROM builds GROUP BY status ORDER BY status")
                    .fetch_all(&db)
                    .await?;
            Ok(rows
                .iter()
                .all(|(s, _)| s == "succeeded" || s == "cancelled" || s == "failed")
                .then_some(rows))
        }
    })
    .await?;
    println!(
        "storm: {cancelled} builds cancelled through /rpc/cancel_build in {:.1} s; final build statuses {finals:?}",
        cancel_started.elapsed().as_secs_f64()
    );
    ensure!(finals.iter().all(|(s, _)| s != "failed"), "a build failed: {finals:?}\n{}", server.log());
    Ok(())
}
