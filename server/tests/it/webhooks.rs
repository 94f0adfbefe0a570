//! Forge webhooks through the real dashboard router (in process), a real
//! SQLite file and the real Docker Engine: `POST /hooks/{forge}/{service}`.
//!
//! Most tests open the engine without starting it, so a queued build stays
//! queued and "nothing queued" is exact; one test starts the workers and
//! watches a pushed commit (not the branch tip) get built and deployed.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use app::wire::Role;
use axum::{body::Body, extract::ConnectInfo, Router};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use leptos::prelude::LeptosOptions;
use serde_json::{json, Value};
use server::{
    auth::{Auth, SessionSettings},
    backend::{errors, ServerBackend},
    deploys::{switch::RouteTable, DeploymentStatus},
    docker::DockerEngine,
    engine::{Engine, EngineError},
    http::web::{router, AppState},
    jobs::JobStatus,
    projects::{Service, ServiceSpec},
    status::StatusService,
    testkit::{
        engine::{anyhow_of, quick_http_check, user},
        wait::unique_suffix,
        DockerKit, GitRepo, TestDataDir, TestEngine,
    },
    webhooks::{Forge, MAX_BODY},
};
use sha2::Sha256;
use tower::ServiceExt;

const LIMIT: Duration = Duration::from_secs(120);

// ------------------------------------------------------------------ harness --

pub(crate) struct Hooks {
    router: Router,
    pub(crate) t: TestEngine,
    pub(crate) repo: GitRepo,
    pub(crate) kit: DockerKit,
}

/// A reply: status and JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn field(&self, name: &str) -> &str {
        self.body.get(name).and_then(Value::as_str).unwrap_or("")
    }

    pub(crate) fn error_code(&self) -> &str {
        self.body.pointer("/error/code").and_then(Value::as_str).unwrap_or("")
    }

    fn build_id(&self) -> Option<i64> {
        self.body.get("build_id").and_then(Value::as_i64)
    }
}

impl Hooks {
    /// Workers run only when `start` is set.
    pub(crate) async fn new(start: bool) -> anyhow::Result<Hooks> {
        let kit = DockerKit::new().await?;
        let t = if start {
            TestEngine::start(&kit).await?
        } else {
            let data = TestDataDir::new()?;
            let settings = TestEngine::settings(&kit, &data);
            let docker = DockerEngine::with_client(kit.docker.clone());
            let routes = Arc::new(RouteTable::new());
            let engine = Engine::open(data.open_db().await?, docker, routes.clone(), settings, None).await?;
            TestEngine { engine, routes, running: None, data }
        };
        let db = t.engine.db.clone();
        let auth = Auth::open(db.clone(), SessionSettings::default()).await?;
        let status = StatusService::new(db, Arc::new(DockerEngine::with_client(kit.docker.clone())));
        let backend =
            Arc::new(ServerBackend::new(status).with_auth(auth.clone()).with_engine(t.engine.clone()));
        let leptos_options = LeptosOptions::builder()
            .output_name("slipway")
            .site_root(t.data.path().join("site").to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .build();
        let state = AppState {
            backend,
            leptos_options,
            auth,
            engine: Some(t.engine.clone()),
            edge: None,
            metrics_token: None,
        };
        Ok(Hooks { router: router(state), t, repo: GitRepo::http_service("hello from a webhook")?, kit })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.t.engine
    }

    /// A service on the test repository's `main`, created through the
    /// catalog use-case (which gives it its webhook secret).
    async fn service(&self, auto_deploy: bool) -> anyhow::Result<Service> {
        let deployer = user(Role::Deployer);
        let unique = unique_suffix();
        let project =
            self.engine().create_project(&deployer, &format!("hooks-{unique}")).await.map_err(anyhow_of)?;
        let mut spec = ServiceSpec::new(format!("hook-{unique}"), self.repo.url(), 8080);
        spec.health = quick_http_check("/");
        spec.drain_secs = 0;
        spec.auto_deploy = auto_deploy;
        let view =
            self.engine().create_service(&deployer, project.id, &spec, &[]).await.map_err(anyhow_of)?;
        Ok(view.service)
    }

    async fn secret(&self, service_id: i64) -> anyhow::Result<String> {
        Ok(self.engine().webhook_info(&user(Role::Deployer), service_id).await.map_err(anyhow_of)?.secret)
    }

    async fn post(&self, path: &str, headers: &[(String, String)], body: Body) -> anyhow::Result<Reply> {
        let mut req = Request::post(path).header("content-type", "application/json");
        for (name, value) in headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let mut req = req.body(body)?;
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 2], 4000))));
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status();
        let bytes = res.into_body().collect().await?.to_bytes();
        let body = serde_json::from_slice(&bytes).with_context(|| {
            format!("{path}: {status} with a body that is not JSON: {}", String::from_utf8_lossy(&bytes))
        })?;
        Ok(Reply { status, body })
    }

    /// A delivery signed (or tokened) with `secret`.
    pub(crate) async fn deliver(&self, d: &Delivery<'_>, secret: &str) -> anyhow::Result<Reply> {
        let headers = d.headers(secret);
        self.post(&d.path(), &headers, Body::from(d.body.clone())).await
    }

    async fn count(&self, sql: &str, service_id: i64) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(sql).bind(service_id).fetch_one(&self.engine().db).await?)
    }

    /// Builds and jobs of the service.
    async fn queued(&self, service_id: i64) -> anyhow::Result<(i64, i64)> {
        Ok((
            self.count("SELECT COUNT(*) FROM builds WHERE service_id = ?", service_id).await?,
            self.count("SELECT COUNT(*) FROM jobs WHERE service_id = ?", service_id).await?,
        ))
    }

    /// (status, reason, build id, dedupe) of the service's deliveries, oldest first.
    async fn records(&self, service_id: i64) -> anyhow::Result<Vec<(String, String, Option<i64>, i64)>> {
        Ok(sqlx::query_as(
            "SELECT status, reason, build_id, dedupe FROM webhook_deliveries WHERE service_id = ? ORDER BY id",
        )
        .bind(service_id)
        .fetch_all(&self.engine().db)
        .await?)
    }
}

// --------------------------------------------------------------- deliveries --

type HmacSha256 = Hmac<Sha256>;

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// One delivery to send.
#[derive(Clone)]
pub(crate) struct Delivery<'a> {
    forge: Forge,
    service_id: i64,
    /// `service_id` is a project's id: the project hook.
    project: bool,
    event: &'a str,
    pub(crate) delivery_id: Option<String>,
    pub(crate) body: Vec<u8>,
}

impl<'a> Delivery<'a> {
    pub(crate) fn new(forge: Forge, service_id: i64, event: &'a str, body: Vec<u8>) -> Self {
        Delivery {
            forge,
            service_id,
            project: false,
            event,
            delivery_id: Some(format!("d-{}", unique_suffix())),
            body,
        }
    }

    /// A push of `sha` to `git_ref`, in the forge's shape and event name.
    fn push(forge: Forge, service_id: i64, git_ref: &str, sha: &str) -> Self {
        let (event, body) = match forge {
            Forge::Github => (
                "push",
                json!({ "ref": git_ref, "before": "1".repeat(40), "after": sha,
                "repository": { "full_name": "o/r" }, "pusher": { "name": "ann" } }),
            ),
            Forge::Gitea => (
                "push",
                json!({ "ref": git_ref, "before": "1".repeat(40), "after": sha,
                "repository": { "full_name": "o/r" } }),
            ),
            Forge::Gitlab => (
                "Push Hook",
                json!({ "object_kind": "push", "ref": git_ref,
                "before": "1".repeat(40), "after": sha, "checkout_sha": sha }),
            ),
        };
        Delivery::new(forge, service_id, event, body.to_string().into_bytes())
    }

    /// The same delivery to project `id`'s hook.
    pub(crate) fn for_project(self, id: i64) -> Self {
        Delivery { service_id: id, project: true, ..self }
    }

    fn path(&self) -> String {
        match self.project {
            true => format!("/hooks/{}/projects/{}", self.forge.as_str(), self.service_id),
            false => format!("/hooks/{}/{}", self.forge.as_str(), self.service_id),
        }
    }

    fn headers(&self, secret: &str) -> Vec<(String, String)> {
        let mut h = Vec::new();
        let (event, delivery) = match self.forge {
            Forge::Github => ("X-GitHub-Event", "X-GitHub-Delivery"),
            Forge::Gitea => ("X-Gitea-Event", "X-Gitea-Delivery"),
            Forge::Gitlab => ("X-Gitlab-Event", "X-Gitlab-Event-UUID"),
        };
        h.push((event.to_string(), self.event.to_string()));
        if let Some(id) = &self.delivery_id {
            h.push((delivery.to_string(), id.clone()));
        }
        match self.forge {
            Forge::Github => {
                h.push(("X-Hub-Signature-256".into(), format!("sha256={}", hmac_hex(secret, &self.body))))
            }
            Forge::Gitea => h.push(("X-Gitea-Signature".into(), hmac_hex(secret, &self.body))),
            Forge::Gitlab => h.push(("X-Gitlab-Token".into(), secret.to_string())),
        }
        h
    }
}

// -------------------------------------------------------------------- tests --

#[tokio::test]
async fn a_push_builds_exactly_the_pushed_commit_and_deploys_it_when_auto_deploy_is_on() -> anyhow::Result<()>
{
    let hooks = Hooks::new(true).await?;
    let service = hooks.service(true).await?;
    let secret = hooks.secret(service.id).await?;
    // The pushed commit is not the branch tip: a newer one follows it.
    let pushed = hooks.repo.head()?;
    hooks.repo.write("index.html", "a later commit")?;
    let tip = hooks.repo.commit("later")?;
    assert_ne!(pushed, tip);

    let d = Delivery::push(Forge::Github, service.id, "refs/heads/main", &pushed);
    let reply = hooks.deliver(&d, &secret).await?;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    assert_eq!(reply.field("status"), "built");
    let build_id = reply.build_id().context("a build id")?;
    let build = hooks.engine().build(build_id).await.map_err(anyhow_of)?;
    assert_eq!((build.git_ref.as_str(), build.trigger.as_str()), (pushed.as_str(), "webhook"));
    assert_eq!(build.actor.as_deref(), Some("webhook:github"));

    let build = hooks.t.wait_build(build_id, LIMIT).await?;
    assert_eq!(build.status, JobStatus::Succeeded, "{:?}", build.error);
    assert_eq!(build.commit_sha.as_deref(), Some(pushed.as_str()), "the pushed commit, not the tip");
    let deployment = hooks.t.deployment_of_build(build_id).await?;
    let deployment = hooks.t.wait_deployment(deployment, LIMIT).await?;
    assert_eq!(deployment.status, DeploymentStatus::Live, "{:?}", deployment.reason);

    let records = hooks.records(service.id).await?;
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].0.as_str(), records[0].2, records[0].3), ("built", Some(build_id), 1));
    let audit: (String, String, String) = sqlx::query_as(
        "SELECT actor, source, detail FROM audit_events WHERE action = 'build.trigger' AND target = ?",
    )
    .bind(format!("build:{build_id}"))
    .fetch_one(&hooks.engine().db)
    .await?;
    assert_eq!((audit.0.as_str(), audit.1.as_str()), ("webhook:github", "webhook"));
    assert!(audit.2.contains(&pushed), "{}", audit.2);
    // The deploy that auto-deploy queued is audited too, with the push's actor.
    let deployed: (String, String) = sqlx::query_as(
        "SELECT actor, source FROM audit_events WHERE action = 'deploy.create' AND target = ?",
    )
    .bind(format!("deployment:{}", deployment.id))
    .fetch_one(&hooks.engine().db)
    .await?;
    assert_eq!((deployed.0.as_str(), deployed.1.as_str()), ("webhook:github", "webhook"));
    Ok(())
}

#[tokio::test]
async fn the_auto_deploy_flag_is_carried_into_the_queued_build() -> anyhow::Result<()> {
    let hooks = Hooks::new(false).await?;
    let sha = hooks.repo.head()?;
    for auto_deploy in [true, false] {
        let service = hooks.service(auto_deploy).await?;
        let secret = hooks.secret(service.id).await?;
        let reply = hooks
            .deliver(&Delivery::push(Forge::Github, service.id, "refs/heads/main", &sha), &secret)
            .await?;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
        let build = hooks.engine().build(reply.build_id().context("build id")?).await.map_err(anyhow_of)?;
        let payload: String = sqlx::query_scalar("SELECT payload FROM jobs WHERE id = ?")
            .bind(build.job_id.context("job id")?)
            .fetch_one(&hooks.engine().db)
            .await?;
        let payload: Value = serde_json::from_str(&payload)?;
        assert_eq!(payload["deploy"], json!(auto_deploy), "{payload}");
        assert_eq!(build.git_ref, sha);
    }
    Ok(())
}

#[tokio::test]
async fn pings_are_answered_and_other_events_ignored() -> anyhow::Result<()> {
    let hooks = Hooks::new(false).await?;
    let service = hooks.service(false).await?;
    let secret = hooks.secret(service.id).await?;
    let ping = Delivery::new(
        Forge::Github,
        service.id,
        "ping",
        br#"{"zen":"Keep it logically awesome.","hook_id":1}"#.to_vec(),
    );
    let reply = hooks.deliver(&ping, &secret).await?;
    assert_eq!((reply.status, reply.field("status")), (StatusCode::OK, "ping"), "{reply:?}");
    assert_eq!(reply.body["build_id"], Value::Null);

    // Other events, even with a push-like body, do nothing.
    let sha = hooks.repo.head()?;
    let push_body = Delivery::push(Forge::Github, service.id, "refs/heads/main", &sha).body;
    for (forge, event) in [
        (Forge::Github, "issues"),
        (Forge::Gitea, "create"),
        (Forge::Gitlab, "Tag Push Hook"),
        (Forge::Gitlab, "push"),
    ] {
        let d = Delivery::new(forge, service.id, event, push_body.clone());
        let reply = hooks.deliver(&d, &secret).await?;
        assert_eq!((reply.status, reply.field("status")), (StatusCode::OK, "ignored"), "{event}: {reply:?}");
    }
    assert_eq!(hooks.queued(service.id).await?, (0, 0), "nothing queued");
    let statuses: Vec<String> = hooks.records(service.id).await?.into_iter().map(|r| r.0).collect();
    assert_eq!(statuses, ["ping", "ignored", "ignored", "ignored", "ignored"]);
    Ok(())
}

#[tokio::test]
async fn pushes_to_other_branches_tags_and_deletions_are_ignored() -> anyhow::Result<()> {
    let hooks = Hooks::new(false).await?;
    let service = hooks.service(false).await?;
    let secret = hooks.secret(service.id).await?;
    let sha = hooks.repo.head()?;
    let zeros = "0".repeat(40);
    for (git_ref, after) in [
        ("refs/heads/dev", sha.as_str()),
        ("refs/tags/main", sha.as_str()),
        ("main", sha.as_str()),
        ("refs/heads/main/more", sha.as_str()),
        ("refs/heads/main", zeros.as_str()),
    ] {
        let reply =
            hooks.deliver(&Delivery::push(Forge::Github, service.id, git_ref, after), &secret).await?;
        assert_eq!(
            (reply.status, reply.field("status")),
            (StatusCode::OK, "ignored"),
            "{git_ref}: {reply:?}"
        );
    }
    assert_eq!(hooks.queued(service.id).await?, (0, 0), "nothing queued");
    Ok(())
}

#[tokio::test]
async fn forged_altered_or_unsigned_deliveries_are_refused() -> anyhow::Result<()> {
    let hooks = Hooks::new(false).await?;
    let service = hooks.service(false).await?;
    let secret = hooks.secret(service.id).await?;
    let sha = hooks.repo.head()?;
    let wrong = "f".repeat(64);
    for forge in Forge::ALL {
        let d = Delivery::push(forge, service.id, "refs/heads/main", &sha);
        // Signed with another secret.
        let reply = hooks.deliver(&d, &wrong).await?;
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{reply:?}"
        );
        // The signature header left out.
        let mut headers = d.headers(&secret);
        headers.retain(|(name, _)| !name.contains("Signature") && !name.contains("Token"));
        let reply = hooks.post(&d.path(), &headers, Body::from(d.body.clone())).await?;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{forge:?} unsigned: {reply:?}");
        if forge != Forge::Gitlab {
            // One byte of the body changed after signing: `main` → `maio`.
            let headers = d.headers(&secret);
            let altered = String::from_utf8(d.body.clone())?.replace("refs/heads/main", "refs/heads/maio");
            let reply = hooks.post(&d.path(), &headers, Body::from(altered)).await?;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{forge:?} altered: {reply:?}");
        }
    }
    // A malformed signature header.
    let d = Delivery::push(Forge::Github, service.id, "refs/heads/main", &sha);
    let mut headers = d.headers(&secret);
    headers.retain(|(name, _)| name != "X-Hub-Signature-256");
    headers.push(("X-Hub-Signature-256".into(), "sha1=abc".into()));
    let reply = hooks.post(&d.path(), &headers, Body::from(d.body.clone())).await?;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");

    assert_eq!(hooks.queued(service.id).await?, (0, 0), "nothing queued");
    let records = hooks.records(service.id).await?;
    assert_eq!(records.len(), 9);
    for (status, reason, build, dedupe) in &records {
        assert_eq!((status.as_str(), *build, *dedupe), ("rejected", None, 0), "{reason}");
        assert!(!reason.contains(&secret) && !reason.contains(&wrong), "no secret in the reason");
    }
    Ok(())
}

#[tokio::test]
async fn malformed_and_deeply_nested_json_is_refused() -> anyhow::Result<()> {
    let hooks = Hooks::new(false).await?;
    let service = hooks.service(false).await?;
    let secret = hooks.secret(service.id).await?;
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", br#"{"ref": "refs/heads/main", "after": "#.to_vec()),
        ("empty", Vec::new()),
        ("form encoded", b"payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D".to_vec()),
        ("not utf-8", vec![0xff, 0xfe, b'{', b'}']),
        ("trailing garbage", br#"{"ref": "refs/heads/main"} x"#.to_vec()),
        ("10,000 nested arrays", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()),
        (
            "10,000 nested objects",
            format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000)).into_bytes(),
        ),
    ];
    for (what, body) in bodies {
        let d = Delivery::new(Forge::Github, service.id, "push", body);
        let reply = hooks.deliver(&d, &secret).await?;
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::BAD_REQUEST, "invalid"),
            "{what}: {reply:?}"
        );
    }
    // Well-formed JSON that is not a push payload.
    for body in [json!([1, 2]), json!("refs/heads/main"), json!({ "ref": ["refs/heads/main"] }), json!({})] {
        let d = Delivery::new(Forge::Gitea, service.id, "push", body.to_string().into_bytes());
        let reply = hooks.deliver(&d, &secret).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {reply:?}");
    }
    assert_eq!(hooks.queued(service.id).await?, (0, 0), "nothing queued");
    assert!(hooks.records(service.id).await?.iter().all(|r| r.0 == "rejected" && r.3 == 0));
    Ok(())
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused_with_413() -> anyhow::Result<()> {
    let hooks = Hooks::new(false).await?;
    let service = hooks.service(false).await?;
    let secret = hooks.secret(service.id).await?;
    let sha = hooks.repo.head()?;
    // A valid push padded past the cap (25 MiB and a margin), correctly signed.
    let pad = "x".repeat(MAX_BODY);
    let body = json!({ "ref": "refs/heads/main", "after": sha, "pad": pad }).to_string().into_bytes();
    let d = Delivery::new(Forge::Github, service.id, "push", body);
    let mut headers = d.headers(&secret);
    // With a declared length...
    headers.push(("content-length".into(), d.body.len().to_string()));
    let reply = hooks.post(&d.path(), &headers, Body::from(d.body.clone())).await?;
    assert_eq!(
        (reply.status, reply.error_code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        "{reply:?}"
    );
    // ...and streamed in chunks without one.
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        d.body.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let reply =
        hooks.post(&d.path(), &d.headers(&secret), Body::from_stream(futures::stream::iter(chunks))).await?;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{reply:?}");
    // The limit comes first, even for a service that does not exist.
    let reply = hooks.post("/hooks/github/999999", &headers, Body::from(d.body.clone())).await?;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Exactly the limit is read (and then judged on its signature).
    let reply = hooks.post(&d.path(), &d.headers(&wrong_secret()), Body::from(vec![b' '; MAX_BODY])).await?;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");

    assert_eq!(hooks.queued(service.id).await?, (0, 0), "nothing queued");
    let statuses: Vec<(String, String)> =
        hooks.records(service.id).await?.into_iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    assert!(statuses[..2].iter().all(|(s, r)| s == "rejected" && r.contains("larger than")), "{statuses:?}");
    Ok(())
}

fn wrong_secret() -> String {
    "0".repeat(64)
}

#[tokio::test]
async fn hostile_refs_commits_and_headers_run_nothing_and_write_nothing_half() -> anyhow::Result<()> {
    let hooks = Hooks::new(false).await?;
    let service = hooks.service(false).await?;
    let secret = hooks.secret(service.id).await?;
    let sha = hooks.repo.head()?;
    let huge = format!("refs/heads/{}", "a".repeat(200_000));
    let payloads = vec![
        json!({ "ref": "refs/heads/$(id)", "after": sha }),
        json!({ "ref": "--upload-pack=touch /tmp/pwned", "after": sha }),
        json!({ "ref": "refs/heads/main;id", "after": sha }),
        json!({ "ref": "refs/heads/main\nid", "after": sha }),
        json!({ "ref": huge, "after": sha }),
        json!({ "ref": "refs/heads/main", "after": "--upload-pack=touch /tmp/pwned" }),
        json!({ "ref": "refs/heads/main", "after": "$(id)" }),
        json!({ "ref": "refs/heads/main", "after": "g".repeat(40) }),
        json!({ "ref": "refs/heads/main", "after": &sha[..12] }),
        json!({ "ref": "refs/heads/main", "after": format!("{sha}0") }),
        json!({ "ref": "refs/heads/main", "after": format!("{sha} ") }),
        json!({ "ref": "refs/heads/main", "after": format!("-{}", &sha[1..]) }),
        json!({ "ref": "refs/heads/main", "after": { "sha": sha } }),
        json!({ "ref": "refs/heads/main", "after": 1234567 }),
        json!({ "ref": null, "after": sha }),
    ];
    for payload in payloads {
        let d = Delivery::new(Forge::Github, service.id, "push", payload.to_string().into_bytes());
        let reply = hooks.deliver(&d, &secret).await?;
        let refused = reply.status.is_client_error();
        let ignored = reply.status == StatusCode::OK && reply.field("status") == "ignored";
        assert!(refused || ignored, "{payload:.80}: {reply:?}");
        assert!(!reply.body.to_string().contains("pwned"), "the value is not echoed");
    }
    // Hostile header values on an otherwise good push: refused.
    let good = Delivery::push(Forge::Github, service.id, "refs/heads/main", &sha);
    for (name, value) in [
        ("X-GitHub-Delivery", "$(id)".to_string()),
        ("X-GitHub-Delivery", "x".repeat(500)),
        ("X-GitHub-Delivery", "a b".to_string()),
        ("X-GitHub-Event", "push\tx".to_string()),
        ("X-GitHub-Event", "p".repeat(500)),
    ] {
        let mut headers = good.headers(&secret);
        headers.retain(|(n, _)| n != name);
        headers.push((name.to_string(), value));
        let reply = hooks.post(&good.path(), &headers, Body::from(good.body.clone())).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}: {reply:?}");
    }
    // Paths that name no hook.
    for path in [
        "/hooks/bitbucket/1",
        "/hooks/github/abc",
        "/hooks/github/999999",
        "/hooks/github/-1",
        "/hooks/github/1%3Bid",
    ] {
        let reply = hooks.post(path, &good.headers(&secret), Body::from(good.body.clone())).await?;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}: {reply:?}");
    }

    assert_eq!(hooks.queued(service.id).await?, (0, 0), "nothing queued");
    let records = hooks.records(service.id).await?;
    assert_eq!(records.len(), 20, "every delivery to the service is recorded once");
    for (status, reason, build, dedupe) in &records {
        assert!(status == "rejected" || status == "ignored", "{status}: {reason}");
        assert_eq!(*build, None);
        assert!(!reason.contains("pwned") && !reason.contains("$(id)") && reason.len() < 300, "{reason}");
        assert!(*dedupe == 0 || status == "ignored");
    }
    let stored_ids: Vec<Option<String>> =
        sqlx::query_scalar("SELECT delivery_id FROM webhook_deliveries WHERE status = 'rejected' AND reason LIKE '%X-GitHub-Delivery%'")
            .fetch_all(&hooks.engine().db)
            .await?;
    assert_eq!(stored_ids, vec![None, None, None], "malformed delivery ids are not stored");
    Ok(())
}

#[tokio::test]
async fn a_push_without_a_delivery_id_is_refused() -> anyhow::Result<()> {
    let hooks = Hooks::new(false).await?;
    let service = hooks.service(false).await?;
    let secret = hooks.secret(service.id).await?;
    let mut d = Delivery::push(Forge::Gitea, service.id, "refs/heads/main", &hooks.repo.head()?);
    d.delivery_id = None;
    let reply = hooks.deliver(&d, &secret).await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    assert_eq!(hooks.queued(service.id).await?, (0, 0));
    Ok(())
}

#[tokio::test]
async fn duplicate_delivery_ids_build_once_even_when_concurrent() -> anyhow::Result<()> {
    let hooks = Hooks::new(false).await?;
    let service = hooks.service(false).await?;
    let secret = hooks.secret(service.id).await?;
    let d = Delivery::push(Forge::Github, service.id, "refs/heads/main", &hooks.repo.head()?);
    let replies = futures::future::join_all((0..8).map(|_| hooks.deliver(&d, &secret))).await;
    let mut built = 0;
    for reply in replies {
        let reply = reply?;
        match reply.field("status") {
            "built" => built += 1,
            "duplicate" => assert_eq!(reply.status, StatusCode::OK),
            other => panic!("unexpected {other}: {reply:?}"),
        }
    }
    assert_eq!(built, 1);
    let again = hooks.deliver(&d, &secret).await?;
    assert_eq!((again.status, again.field("status")), (StatusCode::OK, "duplicate"));
    assert_eq!(again.build_id(), None);
    assert_eq!(hooks.queued(service.id).await?, (1, 1), "one build");
    let records = hooks.records(service.id).await?;
    assert_eq!(records.iter().filter(|r| r.0 == "duplicate").count(), 8);
    assert_eq!(records.iter().filter(|r| r.3 == 1).count(), 1);
    Ok(())
}

#[tokio::test]
async fn a_forged_delivery_cannot_claim_a_real_delivery_id() -> anyhow::Result<()> {
    let hooks = Hooks::new(false).await?;
    let service = hooks.service(false).await?;
    let secret = hooks.secret(service.id).await?;
    let real = Delivery::push(Forge::Github, service.id, "refs/heads/main", &hooks.repo.head()?);
    // The attacker knows the id and sends first, also as a ping.
    let forged = hooks.deliver(&real, &wrong_secret()).await?;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let forged_ping = Delivery { event: "ping", body: b"{}".to_vec(), ..real.clone() };
    assert_eq!(hooks.deliver(&forged_ping, &wrong_secret()).await?.status, StatusCode::UNAUTHORIZED);

    let reply = hooks.deliver(&real, &secret).await?;
    assert_eq!((reply.status, reply.field("status")), (StatusCode::ACCEPTED, "built"), "{reply:?}");
    assert_eq!(hooks.deliver(&real, &wrong_secret()).await?.status, StatusCode::UNAUTHORIZED);
    assert_eq!(hooks.deliver(&real, &secret).await?.field("status"), "duplicate");
    assert_eq!(hooks.queued(service.id).await?, (1, 1));
    Ok(())
}

#[tokio::test]
async fn gitlab_tokens_and_gitea_signatures_are_accepted() -> anyhow::Result<()> {
    let hooks = Hooks::new(false).await?;
    let service = hooks.service(false).await?;
    let secret = hooks.secret(service.id).await?;
    let first = hooks.repo.head()?;
    hooks.repo.write("index.html", "second")?;
    let second = hooks.repo.commit("second")?;

    // GitLab: the token header, checkout_sha wins over after.
    let mut lab = Delivery::push(Forge::Gitlab, service.id, "refs/heads/main", &first);
    lab.body =
        json!({ "object_kind": "push", "ref": "refs/heads/main", "after": second, "checkout_sha": first })
            .to_string()
            .into_bytes();
    let reply = hooks.deliver(&lab, &secret).await?;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    let build = hooks.engine().build(reply.build_id().context("id")?).await.map_err(anyhow_of)?;
    assert_eq!((build.git_ref.as_str(), build.actor.as_deref()), (first.as_str(), Some("webhook:gitlab")));
    // GitLab without X-Gitlab-Event-UUID: X-Gitlab-Webhook-UUID is the id.
    let fallback = Delivery::push(Forge::Gitlab, service.id, "refs/heads/main", &second);
    let mut headers = fallback.headers(&secret);
    headers.retain(|(n, _)| n != "X-Gitlab-Event-UUID");
    headers.push(("X-Gitlab-Webhook-UUID".into(), "wh-uuid-1".into()));
    let reply = hooks.post(&fallback.path(), &headers, Body::from(fallback.body.clone())).await?;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    let again = hooks.post(&fallback.path(), &headers, Body::from(fallback.body.clone())).await?;
    assert_eq!(again.field("status"), "duplicate");

    // Gitea: the bare hex HMAC.
    let tea = Delivery::push(Forge::Gitea, service.id, "refs/heads/main", &second);
    let reply = hooks.deliver(&tea, &secret).await?;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    let build = hooks.engine().build(reply.build_id().context("id")?).await.map_err(anyhow_of)?;
    assert_eq!((build.git_ref.as_str(), build.actor.as_deref()), (second.as_str(), Some("webhook:gitea")));
    // The same delivery id through another forge's path is another delivery.
    let tea_as_hub = Delivery { forge: Forge::Github, ..tea.clone() };
    assert_eq!(hooks.deliver(&tea_as_hub, &secret).await?.status, StatusCode::ACCEPTED);
    // Gitea's optional "Authorization header" setting: not an API token, so
    // it neither signs anyone in nor refuses the signed delivery.
    let with_header = Delivery::push(Forge::Gitea, service.id, "refs/heads/main", &second);
    let mut headers = with_header.headers(&secret);
    headers.push(("Authorization".into(), "Bearer set-in-gitea".into()));
    let reply = hooks.post(&with_header.path(), &headers, Body::from(with_header.body.clone())).await?;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    assert_eq!(hooks.queued(service.id).await?, (5, 5));
    Ok(())
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_for_admins_only() -> anyhow::Result<()> {
    let hooks = Hooks::new(false).await?;
    let service = hooks.service(false).await?;
    let secret = hooks.secret(service.id).await?;
    let d = Delivery::push(Forge::Github, service.id, "refs/heads/main", &hooks.repo.head()?);
    hooks.deliver(&d, &secret).await?; // built
    hooks.deliver(&d, &secret).await?; // duplicate
    hooks.deliver(&d, &wrong_secret()).await?; // rejected
    let ping = Delivery::new(Forge::Gitea, service.id, "ping", b"{}".to_vec());
    hooks.deliver(&ping, &secret).await?;

    let admin = user(Role::Admin);
    let page = hooks.engine().list_deliveries(&admin, service.id, None, Some(3)).await.map_err(anyhow_of)?;
    let statuses: Vec<&str> = page.items.iter().map(|d| d.status.as_str()).collect();
    assert_eq!(statuses, ["ping", "rejected", "duplicate"]);
    let rest =
        hooks.engine().list_deliveries(&admin, service.id, page.next, Some(3)).await.map_err(anyhow_of)?;
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next, None);
    let built = &rest.items[0];
    assert_eq!((built.status.as_str(), built.forge.as_str()), ("built", "github"));
    assert_eq!(built.delivery_id, d.delivery_id);
    assert_eq!(built.event.as_deref(), Some("push"));
    assert!(built.build_id.is_some() && built.reason.contains("build #1"), "{built:?}");
    let rejected = &page.items[1];
    assert!(rejected.reason.contains("signature"), "{rejected:?}");
    // Neither the body nor the signature is stored.
    let signature = hmac_hex(&secret, &d.body);
    let dump: Vec<String> = sqlx::query_scalar(
        "SELECT coalesce(delivery_id,'') || coalesce(event,'') || status || reason FROM webhook_deliveries",
    )
    .fetch_all(&hooks.engine().db)
    .await?;
    assert!(dump
        .iter()
        .all(|row| !row.contains(&signature) && !row.contains("pusher") && !row.contains(&secret)));

    for role in [Role::Deployer, Role::Viewer] {
        let e =
            hooks.engine().list_deliveries(&user(role), service.id, None, None).await.expect_err("refused");
        assert_eq!(errors::engine(e).status(), 403, "{role:?}");
    }
    let e = hooks.engine().list_deliveries(&admin, 999_999, None, None).await.expect_err("no service");
    assert!(matches!(e, EngineError::NotFound(_) | EngineError::Project(_)), "{e:?}");
    Ok(())
}

#[tokio::test]
async fn secrets_are_made_at_creation_shown_to_deployers_and_rotated() -> anyhow::Result<()> {
    let hooks = Hooks::new(false).await?;
    let service = hooks.service(false).await?;
    let sealed: Option<String> = sqlx::query_scalar("SELECT webhook_secret FROM services WHERE id = ?")
        .bind(service.id)
        .fetch_one(&hooks.engine().db)
        .await?;
    let sealed = sealed.context("the catalog gave the new service a secret")?;
    let deployer = user(Role::Deployer);
    let info = hooks.engine().webhook_info(&deployer, service.id).await.map_err(anyhow_of)?;
    assert!(!sealed.contains(&info.secret), "stored sealed");
    assert_eq!(info.secret.len(), 64);
    assert_eq!(info.paths.github, format!("/hooks/github/{}", service.id));
    assert_eq!(info.paths.gitlab, format!("/hooks/gitlab/{}", service.id));
    assert_eq!(info.paths.gitea, format!("/hooks/gitea/{}", service.id));
    assert!(!format!("{info:?}").contains(&info.secret), "Debug masks the secret");
    let e = hooks.engine().webhook_info(&user(Role::Viewer), service.id).await.expect_err("viewer");
    assert_eq!(errors::engine(e).status(), 403);
    let e = hooks.engine().rotate_webhook_secret(&user(Role::Viewer), service.id).await.expect_err("viewer");
    assert_eq!(errors::engine(e).status(), 403);

    let sha = hooks.repo.head()?;
    let rotated = hooks.engine().rotate_webhook_secret(&deployer, service.id).await.map_err(anyhow_of)?;
    assert_ne!(rotated.secret, info.secret);
    assert_eq!(hooks.secret(service.id).await?, rotated.secret);
    let old = hooks
        .deliver(&Delivery::push(Forge::Github, service.id, "refs/heads/main", &sha), &info.secret)
        .await?;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "the old secret no longer works");
    let new = hooks
        .deliver(&Delivery::push(Forge::Github, service.id, "refs/heads/main", &sha), &rotated.secret)
        .await?;
    assert_eq!(new.status, StatusCode::ACCEPTED, "{new:?}");
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'service.webhook_rotate' AND target = ? AND actor = 'deployer'",
    )
    .bind(format!("service:{}", service.id))
    .fetch_one(&hooks.engine().db)
    .await?;
    assert_eq!(audited, 1);

    // A service without a secret (made before this existed) refuses every
    // delivery until its settings are opened, which makes one.
    sqlx::query("UPDATE services SET webhook_secret = NULL WHERE id = ?")
        .bind(service.id)
        .execute(&hooks.engine().db)
        .await?;
    let none = hooks.deliver(&Delivery::push(Forge::Gitlab, service.id, "refs/heads/main", &sha), "").await?;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{none:?}");
    let lazy = hooks.secret(service.id).await?;
    assert_eq!(lazy.len(), 64);
    assert_eq!(hooks.secret(service.id).await?, lazy, "generated once");
    let reply =
        hooks.deliver(&Delivery::push(Forge::Gitlab, service.id, "refs/heads/main", &sha), &lazy).await?;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    Ok(())
}
