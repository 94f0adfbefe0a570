//! Notifications end to end: real builds and deploys (real Docker, real git)
//! notify local HTTP receivers started here; a receiver that fails once gets
//! the same notification again after the backoff; a Slack target gets a
//! `{"text": …}` line; a dead target never holds up or fails a build; and
//! target management is validated and admin-only.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::wire::{Caller, Role};
use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    Router,
};
use serde_json::Value;
use server::{
    builds::TriggerBuild,
    deploys::{switch::RouteTable, DeployRequest, DeploymentStatus},
    docker::DockerEngine,
    engine::{Engine, EngineError, EngineSettings},
    jobs::JobStatus,
    notify::{NewTarget, MAX_ATTEMPTS},
    projects::ProjectStore,
    testkit::{
        engine::{anyhow_of, user},
        wait::{unique_suffix, wait_until},
        DockerKit, GitRepo, TestDataDir, TestEngine, BASE_IMAGE,
    },
};
use tokio::task::JoinHandle;

const LIMIT: Duration = Duration::from_secs(120);
const DELIVERY_LIMIT: Duration = Duration::from_secs(30);

/// One request a receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    at: Instant,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
    pub(crate) answered: u16,
}

#[derive(Clone)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Answer 500 to this many requests, then 200.
    fail_first: usize,
}

/// A local HTTP receiver on 127.0.0.1.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub(crate) async fn start(fail_first: usize) -> anyhow::Result<Receiver> {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let state = ReceiverState { hits: hits.clone(), fail_first };
        let app = Router::new().fallback(receive).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { addr, hits, task })
    }

    /// A URL with a secret in its path, as a Slack hook URL has.
    pub(crate) fn url(&self, secret: &str) -> String {
        format!("http://{}/hook/{secret}", self.addr)
    }

    pub(crate) fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) async fn wait_hits(&self, n: usize) -> anyhow::Result<Vec<Hit>> {
        wait_until(&format!("{n} request(s) at the receiver"), DELIVERY_LIMIT, || async {
            let hits = self.hits();
            Ok((hits.len() >= n).then_some(hits))
        })
        .await
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut hits = state.hits.lock().unwrap_or_else(|e| e.into_inner());
    let status =
        if hits.len() < state.fail_first { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
    hits.push(Hit {
        at: Instant::now(),
        path: uri.path().to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered: status.as_u16(),
    });
    status
}

pub(crate) fn target(name: &str, kind: &str, url: &str, events: &[&str]) -> NewTarget {
    NewTarget {
        name: name.into(),
        kind: kind.into(),
        url: url.into(),
        events: events.iter().map(|e| e.to_string()).collect(),
    }
}

/// A notify job row, its payload parsed.
#[derive(Debug)]
struct NotifyJob {
    id: i64,
    status: String,
    payload: Value,
    last_error: Option<String>,
    created_at: String,
    run_after: String,
}

async fn notify_jobs(engine: &Engine, target_id: i64) -> anyhow::Result<Vec<NotifyJob>> {
    let rows: Vec<(i64, String, String, Option<String>, String, String)> = sqlx::query_as(
        "SELECT id, status, payload, last_error, created_at, run_after FROM jobs WHERE kind = 'notify' ORDER BY id",
    )
    .fetch_all(&engine.db)
    .await?;
    let mut jobs = Vec::new();
    for (id, status, payload, last_error, created_at, run_after) in rows {
        let payload: Value = serde_json::from_str(&payload)?;
        if payload["target_id"].as_i64() == Some(target_id) {
            jobs.push(NotifyJob { id, status, payload, last_error, created_at, run_after });
        }
    }
    Ok(jobs)
}

fn millis_between(from: &str, to: &str) -> anyhow::Result<i64> {
    let from = chrono::DateTime::parse_from_rfc3339(from)?;
    let to = chrono::DateTime::parse_from_rfc3339(to)?;
    Ok((to - from).num_milliseconds())
}

async fn build(t: &TestEngine, service_id: i64, deploy: bool) -> anyhow::Result<server::builds::Build> {
    let req = TriggerBuild {
        service_id,
        git_ref: None,
        trigger: "manual".into(),
        deploy,
        build_only: !deploy,
        no_cache: false,
        group: None,
    };
    let queued = t.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    t.wait_build(queued.id, LIMIT).await
}

#[tokio::test]
async fn a_build_notifies_webhook_after_a_retry_and_slack_while_a_dead_target_blocks_nothing(
) -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service("notify me")?;
    let name = format!("nt{}", unique_suffix());
    let service = t.service("shop", &name, &repo.url()).await?;
    let admin = user(Role::Admin);

    let flaky = Receiver::start(1).await?;
    let slack = Receiver::start(0).await?;
    let other = Receiver::start(0).await?;
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    let secret = format!("s3cr3t-{}", unique_suffix());
    let hook = t
        .engine
        .create_notification_target(
            &admin,
            service.project_id,
            target("ci-hook", "webhook", &flaky.url(&secret), &["build.succeeded", "build.failed"]),
        )
        .await
        .map_err(anyhow_of)?;
    let chat = t
        .engine
        .create_notification_target(
            &admin,
            service.project_id,
            target("team-chat", "slack", &slack.url(&secret), &["build.succeeded"]),
        )
        .await
        .map_err(anyhow_of)?;
    let dead = t
        .engine
        .create_notification_target(
            &admin,
            service.project_id,
            target("dead", "webhook", &format!("http://{closed}/hook/{secret}"), &["build.succeeded"]),
        )
        .await
        .map_err(anyhow_of)?;
    t.engine
        .create_notification_target(
            &admin,
            service.project_id,
            target("deploys-only", "webhook", &other.url(&secret), &["deploy.failed"]),
        )
        .await
        .map_err(anyhow_of)?;

    // The views never show the secret part of a URL, nor does the database.
    let listed = t
        .engine
        .list_notification_targets(&user(Role::Viewer), service.project_id)
        .await
        .map_err(anyhow_of)?;
    assert_eq!(listed.len(), 4);
    let shown = listed.iter().find(|x| x.id == hook.id).expect("listed");
    assert_eq!(shown.url_masked, format!("http://{}/…", flaky.addr));
    assert_eq!(shown.events, ["build.succeeded", "build.failed"]);
    for view in &listed {
        assert!(!view.url_masked.contains(&secret), "{view:?}");
    }
    let sealed: Vec<String> =
        sqlx::query_scalar("SELECT url_sealed FROM notification_targets").fetch_all(&t.engine.db).await?;
    assert!(sealed.iter().all(|s| !s.contains(&secret) && !s.contains("127.0.0.1")));

    let started = Instant::now();
    let built = build(&t, service.id, false).await?;
    eprintln!("build took {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(built.status, JobStatus::Succeeded, "{:?}", built.error);
    // The build row is final before its job row (the job ends after its
    // completion hook): wait for the job to leave `running`.
    let build_job = wait_until("the build's job ends", DELIVERY_LIMIT, || async {
        let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = ?")
            .bind(built.job_id)
            .fetch_one(&t.engine.db)
            .await?;
        Ok((status != "running").then_some(status))
    })
    .await?;
    assert_eq!(build_job, "succeeded", "a dead target must not fail the build's job");

    // The flaky receiver: 500 first, then the same notification after ~1 s.
    let hits = flaky.wait_hits(2).await?;
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!((hits[0].answered, hits[1].answered), (500, 200));
    let gap = hits[1].at - hits[0].at;
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}, before the 1 s backoff");
    assert_eq!(hits[0].body, hits[1].body, "every attempt sends the same notification");
    assert_eq!(hits[1].path, format!("/hook/{secret}"));
    let delivery_ids: Vec<_> = hits.iter().map(|h| h.headers.get("x-slipway-delivery").cloned()).collect();
    assert!(delivery_ids[0].is_some() && delivery_ids[0] == delivery_ids[1], "{delivery_ids:?}");
    assert_eq!(hits[1].headers.get("x-slipway-event").and_then(|v| v.to_str().ok()), Some("build.succeeded"));
    assert_eq!(hits[1].headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    let body = &hits[1].body;
    assert_eq!(body["event"], "build.succeeded");
    assert_eq!(body["project"], "shop");
    assert_eq!(body["service"], name.as_str());
    assert_eq!(body["build"]["id"], built.id);
    assert_eq!(body["build"]["number"], 1);
    assert_eq!(body["build"]["git_ref"], "main");
    assert_eq!(body["build"]["commit"], repo.head()?.as_str());
    assert_eq!(body["build"]["status"], "succeeded");
    assert_eq!(body["build"]["error"], Value::Null);
    assert_eq!(body["deployment"], Value::Null);
    let at = body["at"].as_str().expect("at");
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");

    // In the queue: attempt 1 failed with its error, attempt 2 (a new job,
    // due after the backoff) carried that error and succeeded.
    let jobs = notify_jobs(&t.engine, hook.id).await?;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[0].status, "failed");
    let first_error = jobs[0].last_error.as_deref().unwrap_or("");
    assert!(first_error.contains(&format!("attempt 1 of {MAX_ATTEMPTS}")), "{first_error}");
    assert!(first_error.contains("HTTP 500"), "{first_error}");
    assert_eq!(jobs[1].status, "succeeded");
    assert_eq!(jobs[1].payload["attempt"], 2);
    assert!(jobs[1].payload["last_error"].as_str().is_some_and(|e| e.contains("HTTP 500")));
    assert!(millis_between(&jobs[1].created_at, &jobs[1].run_after)? >= 900);
    // Both attempts are on record for the notifications page, newest first.
    let page =
        t.engine.notifications_overview(&user(Role::Viewer), service.project_id).await.map_err(anyhow_of)?;
    let attempts: Vec<(u32, bool, Option<u16>)> = page
        .deliveries
        .iter()
        .filter(|d| d.target_id == hook.id)
        .map(|d| (d.attempt, d.ok, d.http_status))
        .collect();
    assert_eq!(attempts, [(2, true, Some(200)), (1, false, Some(500))]);

    // Slack: one readable line.
    let chat_hits = slack.wait_hits(1).await?;
    let text = chat_hits[0].body["text"].as_str().expect("a text field");
    assert_eq!(chat_hits[0].body.as_object().map(|o| o.len()), Some(1), "{}", chat_hits[0].body);
    assert!(text.contains(&format!("shop/{name}: build #1 succeeded")), "{text}");
    assert!(text.contains(&format!("main @ {}", &repo.head()?[..7])), "{text}");
    assert_eq!(notify_jobs(&t.engine, chat.id).await?.len(), 1);

    // The dead target: its first attempt failed, a second one is waiting
    // or failed too; neither names the URL.
    let dead_jobs = wait_until("the dead target's retry", DELIVERY_LIMIT, || async {
        let jobs = notify_jobs(&t.engine, dead.id).await?;
        Ok((jobs.len() >= 2).then_some(jobs))
    })
    .await?;
    assert_eq!(dead_jobs[0].status, "failed");
    assert_eq!(dead_jobs[1].payload["attempt"], 2);
    for job in &dead_jobs {
        let text = format!("{:?} {}", job.last_error, job.payload);
        assert!(!text.contains(&secret) && !text.contains(&closed.to_string()), "job {}: {text}", job.id);
    }

    // Not subscribed to build events: nothing.
    assert!(other.hits().is_empty());
    // A target with a retry pending can be deleted (the retry is then dropped).
    t.engine.delete_notification_target(&admin, dead.id).await.map_err(anyhow_of)?;
    Ok(())
}

#[tokio::test]
async fn deploys_notify_live_failed_and_rolled_back() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service("v1")?;
    let name = format!("nd{}", unique_suffix());
    let service = t.service("shop", &name, &repo.url()).await?;
    let receiver = Receiver::start(0).await?;
    t.engine
        .create_notification_target(
            &user(Role::Admin),
            service.project_id,
            target(
                "deploys",
                "webhook",
                &receiver.url("x"),
                &["deploy.succeeded", "deploy.failed", "deploy.rolled_back"],
            ),
        )
        .await
        .map_err(anyhow_of)?;
    let deployer = user(Role::Deployer);

    // Build and deploy: deploy.succeeded (the build is not subscribed).
    let built = build(&t, service.id, true).await?;
    assert_eq!(built.status, JobStatus::Succeeded, "{:?}", built.error);
    let first = t.wait_deployment(t.deployment_of_build(built.id).await?, LIMIT).await?;
    assert_eq!(first.status, DeploymentStatus::Live, "{:?}", first.error);
    let hits = receiver.wait_hits(1).await?;
    let body = &hits[0].body;
    assert_eq!(body["event"], "deploy.succeeded");
    assert_eq!(body["deployment"]["id"], first.id);
    assert_eq!(body["deployment"]["status"], "live");
    assert_eq!(body["deployment"]["rollback_of"], Value::Null);
    assert_eq!(body["build"]["id"], built.id);

    // An image without a command never starts: deploy.failed.
    let req = DeployRequest { service_id: service.id, image: Some(BASE_IMAGE.into()), ..Default::default() };
    let queued = t.engine.deploy(&deployer, req).await.map_err(anyhow_of)?;
    let failed = t.wait_deployment(queued.id, LIMIT).await?;
    assert_eq!(failed.status, DeploymentStatus::Failed);
    let hits = receiver.wait_hits(2).await?;
    assert_eq!(hits[1].body["event"], "deploy.failed");
    assert_eq!(hits[1].body["deployment"]["id"], failed.id);
    assert_eq!(hits[1].body["deployment"]["status"], "failed");
    assert!(hits[1].body["deployment"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{}", hits[1].body);

    // A second deploy of the build, then a rollback to the first.
    let req = DeployRequest { service_id: service.id, build_id: Some(built.id), ..Default::default() };
    let queued = t.engine.deploy(&deployer, req).await.map_err(anyhow_of)?;
    let second = t.wait_deployment(queued.id, LIMIT).await?;
    assert_eq!(second.status, DeploymentStatus::Live, "{:?}", second.error);
    let queued = t.engine.rollback(&deployer, first.id, None).await.map_err(anyhow_of)?;
    let back = t.wait_deployment(queued.id, LIMIT).await?;
    assert_eq!(back.status, DeploymentStatus::Live, "{:?}", back.error);
    let hits = receiver.wait_hits(4).await?;
    assert_eq!(hits[2].body["event"], "deploy.succeeded");
    assert_eq!(hits[2].body["deployment"]["id"], second.id);
    assert_eq!(hits[3].body["event"], "deploy.rolled_back");
    assert_eq!(hits[3].body["deployment"]["id"], back.id);
    assert_eq!(hits[3].body["deployment"]["rollback_of"], first.id);
    assert_eq!(hits.len(), 4, "one notification per event");
    Ok(())
}

/// An engine on a temporary database, not started: enough for the
/// target use-cases.
pub(crate) async fn bare_engine() -> anyhow::Result<(Engine, TestDataDir)> {
    let data = TestDataDir::new()?;
    let db = data.open_db().await?;
    let engine = Engine::open(
        db,
        DockerEngine::from_env(),
        Arc::new(RouteTable::new()),
        EngineSettings { allow_local_repos: true, ..EngineSettings::new(data.path()) },
        None,
    )
    .await?;
    Ok((engine, data))
}

fn invalid_field(result: Result<impl std::fmt::Debug, EngineError>) -> Option<&'static str> {
    match result {
        Err(EngineError::Invalid { field, .. }) => Some(field),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn targets_are_validated_and_managed_by_admins_only() -> anyhow::Result<()> {
    let (engine, _data) = bare_engine().await?;
    let project = ProjectStore::new(engine.db.clone()).create_project("shop").await?;
    let admin = user(Role::Admin);
    let good = |url: &str| target("hook", "webhook", url, &["build.failed"]);

    for url in [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://example.com/x",
        "https://",
        "http://exa mple.com/x",
        "https://example.com/\u{0}",
        "hooks.slack.com/services/x",
        "",
    ] {
        let field = invalid_field(engine.create_notification_target(&admin, project.id, good(url)).await);
        assert_eq!(field, Some("url"), "{url:?}");
    }
    let long = format!("https://example.com/{}", "a".repeat(2048));
    assert_eq!(
        invalid_field(engine.create_notification_target(&admin, project.id, good(&long)).await),
        Some("url")
    );
    let unknown_event =
        target("hook", "webhook", "https://example.com/x", &["build.failed", "build.started"]);
    assert_eq!(
        invalid_field(engine.create_notification_target(&admin, project.id, unknown_event).await),
        Some("events")
    );
    let no_event = target("hook", "webhook", "https://example.com/x", &[]);
    assert_eq!(
        invalid_field(engine.create_notification_target(&admin, project.id, no_event).await),
        Some("events")
    );
    let unknown_kind = target("hook", "discord", "https://example.com/x", &["build.failed"]);
    assert_eq!(
        invalid_field(engine.create_notification_target(&admin, project.id, unknown_kind).await),
        Some("kind")
    );
    let bad_name = target(" ", "webhook", "https://example.com/x", &["build.failed"]);
    assert_eq!(
        invalid_field(engine.create_notification_target(&admin, project.id, bad_name).await),
        Some("name")
    );

    // Roles: a deployer can neither create nor delete; a viewer lists.
    let refused = engine
        .create_notification_target(&user(Role::Deployer), project.id, good("https://example.com/x"))
        .await;
    assert!(matches!(refused, Err(EngineError::Access(_))), "{refused:?}");
    let refused = engine.list_notification_targets(&Caller::Anonymous, project.id).await;
    assert!(matches!(refused, Err(EngineError::Access(_))), "{refused:?}");
    let missing =
        engine.create_notification_target(&admin, project.id + 1000, good("https://example.com/x")).await;
    assert!(matches!(missing, Err(EngineError::NotFound(_))), "{missing:?}");
    assert!(engine
        .list_notification_targets(&user(Role::Viewer), project.id)
        .await
        .map_err(anyhow_of)?
        .is_empty());

    let created = engine
        .create_notification_target(
            &admin,
            project.id,
            target(
                "ops",
                "slack",
                "https://hooks.slack.com/services/T0/B0/tok3n",
                &["deploy.failed", "build.failed"],
            ),
        )
        .await
        .map_err(anyhow_of)?;
    assert_eq!(created.url_masked, "https://hooks.slack.com/…");
    assert_eq!(created.events, ["build.failed", "deploy.failed"]);
    let duplicate = engine
        .create_notification_target(
            &admin,
            project.id,
            target("ops", "webhook", "https://example.com/x", &["build.failed"]),
        )
        .await;
    assert!(duplicate.is_err(), "a second target of the same name was accepted");
    let listed =
        engine.list_notification_targets(&user(Role::Viewer), project.id).await.map_err(anyhow_of)?;
    assert_eq!(listed, std::slice::from_ref(&created));

    let refused = engine.delete_notification_target(&user(Role::Deployer), created.id).await;
    assert!(matches!(refused, Err(EngineError::Access(_))), "{refused:?}");
    engine.delete_notification_target(&admin, created.id).await.map_err(anyhow_of)?;
    let again = engine.delete_notification_target(&admin, created.id).await;
    assert!(matches!(again, Err(EngineError::NotFound(_))), "{again:?}");

    // Audited, without the URL.
    let audit: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT action, target, detail FROM audit_events WHERE action LIKE 'notification.%' ORDER BY id",
    )
    .fetch_all(&engine.db)
    .await?;
    let actions: Vec<&str> = audit.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(actions, ["notification.create", "notification.delete"]);
    assert!(audit.iter().all(|(_, _, d)| !d.as_deref().unwrap_or("").contains("tok3n")));
    Ok(())
}
