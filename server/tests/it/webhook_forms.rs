//! What the forges really send (issue 17, defect 14), through the real
//! dashboard router (in process), a real SQLite file and the real Docker
//! Engine: GitHub's and Gitea's form-encoded deliveries (each signed the
//! way that forge signs), pushes of 2,048 commits, content types that are
//! refused by name, and GitLab retries that keep their `Idempotency-Key`.
//!
//! Most tests open the engine without starting it, so a queued build stays
//! queued and "one build" is exact; one test starts the workers and waits
//! (polling, with a deadline) for the form-encoded push's build to succeed.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use app::wire::Role;
use axum::{body::Body, extract::ConnectInfo, Router};
use hmac::{Hmac, Mac};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use server::{
    deploys::switch::RouteTable,
    docker::DockerEngine,
    engine::Engine,
    jobs::JobStatus,
    projects::{Service, ServiceSpec},
    testkit::{
        app::app_router,
        engine::{anyhow_of, quick_http_check, user},
        wait::unique_suffix,
        DockerKit, GitRepo, TestDataDir, TestEngine,
    },
    webhooks::{Forge, MAX_BODY},
};
use sha2::Sha256;
use tower::ServiceExt;

const LIMIT: Duration = Duration::from_secs(120);
const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

struct Forms {
    router: Router,
    t: TestEngine,
    repo: GitRepo,
    _kit: DockerKit,
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
}

impl Reply {
    fn field(&self, name: &str) -> &str {
        self.body.get(name).and_then(Value::as_str).unwrap_or("")
    }

    fn error(&self) -> (&str, &str) {
        let text = |p| self.body.pointer(p).and_then(Value::as_str).unwrap_or("");
        (text("/error/code"), text("/error/message"))
    }
}

impl Forms {
    /// Workers run only when `start` is set.
    async fn new(start: bool) -> anyhow::Result<Forms> {
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
        let docker = DockerEngine::with_client(kit.docker.clone());
        let (router, _auth) = app_router(&t.engine, docker, t.data.path()).await?;
        Ok(Forms { router, t, repo: GitRepo::http_service("hello from a form")?, _kit: kit })
    }

    fn engine(&self) -> &Engine {
        &self.t.engine
    }

    /// A new service on the repository's `main` (no auto-deploy) and its
    /// webhook secret.
    async fn service(&self) -> anyhow::Result<(Service, String)> {
        let deployer = user(Role::Deployer);
        let unique = unique_suffix();
        let project =
            self.engine().create_project(&deployer, &format!("forms-{unique}")).await.map_err(anyhow_of)?;
        let mut spec = ServiceSpec::new(format!("form-{unique}"), self.repo.url(), 8080);
        spec.health = quick_http_check("/");
        spec.drain_secs = 0;
        let view =
            self.engine().create_service(&deployer, project.id, &spec, &[]).await.map_err(anyhow_of)?;
        let secret = self.engine().webhook_info(&deployer, view.service.id).await.map_err(anyhow_of)?.secret;
        Ok((view.service, secret))
    }

    async fn post(&self, path: &str, headers: &[(String, String)], body: Vec<u8>) -> anyhow::Result<Reply> {
        let mut req = Request::post(path);
        for (name, value) in headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let mut req = req.body(Body::from(body))?;
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 3], 4000))));
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status();
        let bytes = res.into_body().collect().await?.to_bytes();
        let body = serde_json::from_slice(&bytes).with_context(|| {
            format!("{path}: {status} with a body that is not JSON: {}", String::from_utf8_lossy(&bytes))
        })?;
        Ok(Reply { status, body })
    }

    /// (builds, jobs) of the service.
    async fn queued(&self, service_id: i64) -> anyhow::Result<(i64, i64)> {
        let count = |sql: &'static str| {
            sqlx::query_scalar::<_, i64>(sql).bind(service_id).fetch_one(&self.engine().db)
        };
        Ok((
            count("SELECT COUNT(*) FROM builds WHERE service_id = ?").await?,
            count("SELECT COUNT(*) FROM jobs WHERE service_id = ?").await?,
        ))
    }

    /// (status, reason, dedupe) of the service's deliveries, oldest first.
    async fn records(&self, service_id: i64) -> anyhow::Result<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT status, reason, dedupe FROM webhook_deliveries WHERE service_id = ? ORDER BY id",
        )
        .bind(service_id)
        .fetch_all(&self.engine().db)
        .await?)
    }
}

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// `payload=<json>`, encoded as Go's `url.Values.Encode` and GitHub do.
fn form(json: &[u8]) -> Vec<u8> {
    let json = std::str::from_utf8(json).expect("JSON is UTF-8");
    form_urlencoded::Serializer::new(String::new()).append_pair("payload", json).finish().into_bytes()
}

fn path(forge: Forge, service_id: i64) -> String {
    format!("/hooks/{}/{}", forge.as_str(), service_id)
}

/// GitHub's headers: the signature covers `signed` (GitHub signs the body
/// as sent, form-encoded or not).
fn github(content_type: &str, event: &str, secret: &str, signed: &[u8]) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), content_type.into()),
        ("X-GitHub-Event".into(), event.into()),
        ("X-GitHub-Delivery".into(), format!("gh-{}", unique_suffix())),
        ("X-Hub-Signature-256".into(), format!("sha256={}", hmac_hex(secret, signed))),
    ]
}

/// Gitea's headers: the signature covers `signed` (Gitea signs the JSON
/// payload, also when it sends it form-encoded).
fn gitea(content_type: &str, event: &str, secret: &str, signed: &[u8]) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), content_type.into()),
        ("X-Gitea-Event".into(), event.into()),
        ("X-Gitea-Delivery".into(), format!("gt-{}", unique_suffix())),
        ("X-Gitea-Signature".into(), hmac_hex(secret, signed)),
    ]
}

/// A GitHub-shaped push of `sha` to `main` carrying `commits` commits
/// (GitHub lists up to 2,048 in one payload), each about 1.1 KB.
fn big_push(sha: &str, commits: usize) -> Vec<u8> {
    let commit = |n: usize| {
        json!({
            "id": format!("{:040x}", n + 1), "tree_id": format!("{:040x}", n + 7),
            "distinct": true, "message": format!("change {n}: {}", "a commit message line ".repeat(24)),
            "timestamp": "2026-12-05T20:00:00Z",
            "url": format!("https://github.com/o/r/commit/{:040x}", n + 1),
            "author": { "name": "Ann Example", "email": "ann@example.com", "username": "ann" },
            "committer": { "name": "Ann Example", "email": "ann@example.com", "username": "ann" },
            "added": [format!("src/module_{n}/new_file.rs")],
            "removed": [],
            "modified": [format!("src/module_{n}/lib.rs"), format!("src/module_{n}/tests.rs"), "Cargo.lock"],
        })
    };
    let list: Vec<Value> = (0..commits).map(commit).collect();
    json!({ "ref": "refs/heads/main", "before": "1".repeat(40), "after": sha,
        "repository": { "full_name": "o/r" }, "pusher": { "name": "ann" },
        "head_commit": list.last(), "commits": list })
    .to_string()
    .into_bytes()
}

// -------------------------------------------------------------------- tests --

#[tokio::test]
async fn a_form_encoded_github_push_builds_the_pushed_commit_and_its_ping_is_answered() -> anyhow::Result<()>
{
    let forms = Forms::new(true).await?;
    let (service, secret) = forms.service().await?;
    let to = path(Forge::Github, service.id);
    // The setup ping, as GitHub sends it by default.
    let ping = form(br#"{"zen":"Design for failure.","hook_id":1,"hook":{"type":"Repository"}}"#);
    let reply = forms.post(&to, &github(FORM, "ping", &secret, &ping), ping.clone()).await?;
    assert_eq!((reply.status, reply.field("status")), (StatusCode::OK, "ping"), "{reply:?}");

    // A push of a commit that is not the branch tip.
    let pushed = forms.repo.head()?;
    forms.repo.write("index.html", "a later commit")?;
    assert_ne!(forms.repo.commit("later")?, pushed);
    let json = json!({ "ref": "refs/heads/main", "before": "1".repeat(40), "after": pushed,
        "repository": { "full_name": "o/r" }, "pusher": { "name": "ann" } });
    let body = form(json.to_string().as_bytes());
    let reply = forms.post(&to, &github(FORM, "push", &secret, &body), body.clone()).await?;
    assert_eq!((reply.status, reply.field("status")), (StatusCode::ACCEPTED, "built"), "{reply:?}");
    let build_id = reply.body["build_id"].as_i64().context("a build id")?;
    let build = forms.t.wait_build(build_id, LIMIT).await?;
    assert_eq!(build.status, JobStatus::Succeeded, "{:?}", build.error);
    assert_eq!(build.commit_sha.as_deref(), Some(pushed.as_str()), "the pushed commit");
    assert_eq!((build.trigger.as_str(), build.actor.as_deref()), ("webhook", Some("webhook:github")));

    let records = forms.records(service.id).await?;
    let statuses: Vec<&str> = records.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(statuses, ["ping", "built"]);
    Ok(())
}

#[tokio::test]
async fn a_push_of_2048_commits_is_accepted_as_json_and_as_a_form() -> anyhow::Result<()> {
    let forms = Forms::new(false).await?;
    let (service, secret) = forms.service().await?;
    let sha = forms.repo.head()?;
    let json = big_push(&sha, 2048);
    assert!(json.len() > 2_000_000 && json.len() < 5_000_000, "{} bytes", json.len());
    let to = path(Forge::Github, service.id);
    let reply = forms.post(&to, &github(JSON, "push", &secret, &json), json.clone()).await?;
    assert_eq!((reply.status, reply.field("status")), (StatusCode::ACCEPTED, "built"), "{reply:?}");

    let body = form(&json);
    assert!(body.len() > json.len() && body.len() < MAX_BODY, "{} bytes", body.len());
    let reply = forms.post(&to, &github(FORM, "push", &secret, &body), body.clone()).await?;
    assert_eq!((reply.status, reply.field("status")), (StatusCode::ACCEPTED, "built"), "{reply:?}");
    // Gitea sends the same size of push; it signs the JSON, not the form.
    let reply =
        forms.post(&path(Forge::Gitea, service.id), &gitea(FORM, "push", &secret, &json), body).await?;
    assert_eq!((reply.status, reply.field("status")), (StatusCode::ACCEPTED, "built"), "{reply:?}");
    assert_eq!(forms.queued(service.id).await?, (3, 3));
    Ok(())
}

#[tokio::test]
async fn gitea_form_deliveries_are_verified_over_the_payload_gitea_signs() -> anyhow::Result<()> {
    let forms = Forms::new(false).await?;
    let (service, secret) = forms.service().await?;
    let sha = forms.repo.head()?;
    let to = path(Forge::Gitea, service.id);
    let json = json!({ "ref": "refs/heads/main", "before": "1".repeat(40), "after": sha,
        "repository": { "full_name": "o/r" }, "commits": [{ "message": "a + b & c=d %20 ü" }] })
    .to_string()
    .into_bytes();
    let body = form(&json);

    // As Gitea sends it: the form, with the HMAC of the JSON inside it.
    let reply = forms.post(&to, &gitea(FORM, "push", &secret, &json), body.clone()).await?;
    assert_eq!((reply.status, reply.field("status")), (StatusCode::ACCEPTED, "built"), "{reply:?}");
    // A ping, form-encoded.
    let ping = form(b"{}");
    let reply = forms.post(&to, &gitea(FORM, "ping", &secret, b"{}"), ping).await?;
    assert_eq!((reply.status, reply.field("status")), (StatusCode::OK, "ping"), "{reply:?}");
    // A Gitea-compatible sender that signs the body as sent is accepted too.
    let reply = forms.post(&to, &gitea(FORM, "push", &secret, &body), body.clone()).await?;
    assert_eq!((reply.status, reply.field("status")), (StatusCode::ACCEPTED, "built"), "{reply:?}");

    // A wrong secret is still a wrong signature, and says so.
    let reply = forms.post(&to, &gitea(FORM, "push", &"0".repeat(64), &json), body.clone()).await?;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(reply.error(), ("unauthenticated", "signature does not match"));
    // One byte of the payload changed after signing.
    let altered = form(&String::from_utf8(json.clone())?.replace("a + b", "a - b").into_bytes());
    let reply = forms.post(&to, &gitea(FORM, "push", &secret, &json), altered).await?;
    assert_eq!(reply.error(), ("unauthenticated", "signature does not match"), "{reply:?}");
    assert_eq!(forms.queued(service.id).await?, (2, 2));
    Ok(())
}

#[tokio::test]
async fn wrong_signatures_on_github_forms_still_say_signature_does_not_match() -> anyhow::Result<()> {
    let forms = Forms::new(false).await?;
    let (service, secret) = forms.service().await?;
    let sha = forms.repo.head()?;
    let to = path(Forge::Github, service.id);
    let json = json!({ "ref": "refs/heads/main", "after": sha }).to_string().into_bytes();
    let body = form(&json);
    for (what, headers) in [
        ("another secret", github(FORM, "push", &"f".repeat(64), &body)),
        // GitHub signs the form as sent: an HMAC of the JSON inside is forged.
        ("the HMAC of the decoded payload", github(FORM, "push", &secret, &json)),
    ] {
        let reply = forms.post(&to, &headers, body.clone()).await?;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}: {reply:?}");
        assert_eq!(reply.error(), ("unauthenticated", "signature does not match"), "{what}");
    }
    assert_eq!(forms.queued(service.id).await?, (0, 0), "nothing queued");
    let records = forms.records(service.id).await?;
    assert!(records.iter().all(|r| r.0 == "rejected" && r.1 == "signature does not match" && r.2 == 0));
    Ok(())
}

#[tokio::test]
async fn unsupported_and_mismatched_content_types_are_named() -> anyhow::Result<()> {
    let forms = Forms::new(false).await?;
    let (service, secret) = forms.service().await?;
    let sha = forms.repo.head()?;
    let json = json!({ "ref": "refs/heads/main", "after": sha }).to_string().into_bytes();
    for (forge, content_type, named) in [
        (Forge::Github, "text/plain; charset=utf-8", "text/plain"),
        (Forge::Gitea, "multipart/form-data; boundary=x", "multipart/form-data"),
        (Forge::Gitlab, "application/xml", "application/xml"),
        (Forge::Github, "text/html<script>", "(not a media type)"),
    ] {
        let mut headers = github(content_type, "push", &secret, &json);
        if forge == Forge::Gitea {
            headers = gitea(content_type, "push", &secret, &json);
        } else if forge == Forge::Gitlab {
            headers = vec![
                ("Content-Type".into(), content_type.into()),
                ("X-Gitlab-Event".into(), "Push Hook".into()),
                ("X-Gitlab-Token".into(), secret.clone()),
            ];
        }
        let reply = forms.post(&path(forge, service.id), &headers, json.clone()).await?;
        assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type}: {reply:?}");
        let (code, message) = reply.error();
        assert_eq!(code, "unsupported_media_type");
        let expected = format!(
            "content type {named} is not supported: choose application/json or \
             application/x-www-form-urlencoded in the forge's webhook settings"
        );
        assert_eq!(message, expected);
    }
    // A form sent as JSON, and JSON sent as a form: named, not a signature error.
    let to = path(Forge::Github, service.id);
    let body = form(&json);
    let reply = forms.post(&to, &github(JSON, "push", &secret, &body), body).await?;
    let (code, message) = reply.error();
    assert_eq!((reply.status, code), (StatusCode::BAD_REQUEST, "invalid"), "{reply:?}");
    assert!(
        message.starts_with("the body is form-encoded (payload=…) but its content type says"),
        "{message}"
    );
    let reply = forms.post(&to, &github(FORM, "push", &secret, &json), json.clone()).await?;
    let (code, message) = reply.error();
    assert_eq!((reply.status, code), (StatusCode::BAD_REQUEST, "invalid"), "{reply:?}");
    assert!(message.contains("has no payload field"), "{message}");
    let gitea_json_as_form = gitea(FORM, "push", &secret, &json);
    let reply = forms.post(&path(Forge::Gitea, service.id), &gitea_json_as_form, json.clone()).await?;
    assert!(reply.error().1.contains("has no payload field"), "{reply:?}");
    // A form whose payload is not JSON.
    let bad = b"payload=%7Bnot+json".to_vec();
    let reply = forms.post(&to, &github(FORM, "push", &secret, &bad), bad).await?;
    assert!(reply.error().1.starts_with("the form's payload field is not valid JSON"), "{reply:?}");

    assert_eq!(forms.queued(service.id).await?, (0, 0), "nothing queued");
    let records = forms.records(service.id).await?;
    assert_eq!(records.len(), 8);
    assert!(records.iter().all(|r| r.0 == "rejected" && r.2 == 0), "{records:?}");
    Ok(())
}

/// GitLab's headers for a push; `uuid` is `X-Gitlab-Event-UUID`.
fn gitlab(secret: &str, key: Option<&str>, uuid: Option<&str>) -> Vec<(String, String)> {
    let mut h = vec![
        ("Content-Type".to_string(), JSON.to_string()),
        ("X-Gitlab-Event".into(), "Push Hook".into()),
        ("X-Gitlab-Token".into(), secret.into()),
    ];
    h.extend(key.map(|k| ("Idempotency-Key".to_string(), k.to_string())));
    h.extend(uuid.map(|u| ("X-Gitlab-Event-UUID".to_string(), u.to_string())));
    h
}

#[tokio::test]
async fn gitlab_retries_with_the_same_idempotency_key_build_once() -> anyhow::Result<()> {
    let forms = Forms::new(false).await?;
    let (service, secret) = forms.service().await?;
    let sha = forms.repo.head()?;
    let to = path(Forge::Gitlab, service.id);
    let push = json!({ "object_kind": "push", "ref": "refs/heads/main", "after": sha, "checkout_sha": sha })
        .to_string()
        .into_bytes();
    let key = format!("k-{}", unique_suffix());
    let first = forms.post(&to, &gitlab(&secret, Some(&key), Some("uuid-a")), push.clone()).await?;
    assert_eq!((first.status, first.field("status")), (StatusCode::ACCEPTED, "built"), "{first:?}");
    // Retries: the same key, another event UUID, or none.
    for uuid in [Some("uuid-b"), None, Some("uuid-c")] {
        let reply = forms.post(&to, &gitlab(&secret, Some(&key), uuid), push.clone()).await?;
        assert_eq!(
            (reply.status, reply.field("status")),
            (StatusCode::OK, "duplicate"),
            "{uuid:?}: {reply:?}"
        );
        assert!(reply.field("reason").starts_with("idempotency key already received"), "{reply:?}");
        assert_eq!(reply.body["build_id"], Value::Null);
    }
    // Concurrent retries of another event: one build.
    let other = format!("k-{}", unique_suffix());
    let retries = (0..6).map(|n| {
        let uuid = format!("uuid-x{n}");
        let headers = gitlab(&secret, Some(&other), Some(uuid.as_str()).filter(|_| n % 2 == 0));
        let body = push.clone();
        let to = to.clone();
        let forms = &forms;
        async move { forms.post(&to, &headers, body).await }
    });
    let mut built = 0;
    for reply in futures::future::join_all(retries).await {
        let reply = reply?;
        match reply.field("status") {
            "built" => built += 1,
            "duplicate" => assert_eq!(reply.status, StatusCode::OK),
            other => panic!("unexpected {other}: {reply:?}"),
        }
    }
    assert_eq!(built, 1, "one build for one idempotency key");
    // The event UUID still deduplicates by itself; a new key and UUID build.
    let reply = forms.post(&to, &gitlab(&secret, Some("k-new-1"), Some("uuid-a")), push.clone()).await?;
    assert!(reply.field("reason").starts_with("delivery id already received"), "{reply:?}");
    let reply = forms.post(&to, &gitlab(&secret, Some("k-new-2"), Some("uuid-new")), push.clone()).await?;
    assert_eq!(reply.field("status"), "built", "{reply:?}");
    // A malformed key is refused, naming the header, and builds nothing.
    let reply = forms.post(&to, &gitlab(&secret, Some("k; DROP"), Some("uuid-z")), push.clone()).await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    assert_eq!(reply.error().1, "malformed idempotency-key header");

    assert_eq!(forms.queued(service.id).await?, (3, 3), "one build per event");
    let records = forms.records(service.id).await?;
    assert_eq!(records.iter().filter(|r| r.0 == "built").count(), 3);
    assert_eq!(records.iter().filter(|r| r.0 == "duplicate").count(), 3 + 5 + 1);
    let keys: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT idempotency_key FROM webhook_deliveries WHERE service_id = ? AND dedupe = 1 ORDER BY id",
    )
    .bind(service.id)
    .fetch_all(&forms.engine().db)
    .await?;
    assert_eq!(keys, [Some(key), Some(other), Some("k-new-2".to_string())]);
    Ok(())
}
