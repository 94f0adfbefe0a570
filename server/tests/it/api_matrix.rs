//! The REST API's authorization matrix: every operation of the OpenAPI
//! document, called through the real router with no token, a revoked token,
//! an expired token, and the tokens of a viewer, a deployer and an admin.
//! One table row per operation gives the minimum role and the status of an
//! allowed call; an operation without a row (or a row without an operation)
//! fails the test. Refused calls must leave no trace in the database.
//!
//! Also: the OpenAPI document is valid (every `$ref` resolves, every path
//! parameter is declared, every operation answers something), and hostile
//! bodies are refused with a JSON error and write nothing.

use std::collections::BTreeSet;

use app::wire::{Role, ServiceSettings};
use axum::{body::Body, Router};
use http::{header, Method, Request};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use server::{
    auth::Auth,
    engine::Engine,
    projects::ProjectStore,
    testkit::{
        app::{sealed_webhook_secret, seed_history, OpenedApp, Seeded},
        engine::anyhow_of,
        DockerKit, TestDataDir, BASE_IMAGE,
    },
};
use tower::ServiceExt;

const PW: &str = "correct horse battery";

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cred {
    None,
    Revoked,
    Expired,
    User(Role),
}

impl Cred {
    fn tag(self) -> &'static str {
        match self {
            Cred::None => "none",
            Cred::Revoked => "revoked",
            Cred::Expired => "expired",
            Cred::User(r) => r.as_str(),
        }
    }
}

/// Minimum role of an operation (`None`: any signed-in user).
pub(crate) struct Row {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) min: Option<Role>,
    ok: u16,
    call: fn(&Fixture) -> (String, Option<Value>),
}

fn row(
    method: Method,
    path: &'static str,
    min: Option<Role>,
    ok: u16,
    call: fn(&Fixture) -> (String, Option<Value>),
) -> Row {
    Row { method, path, min, ok, call }
}

const V: Option<Role> = Some(Role::Viewer);
const D: Option<Role> = Some(Role::Deployer);
const A: Option<Role> = Some(Role::Admin);

/// The table. Within one credential the rows run in order: reads of the
/// queued build come before its cancel.
pub(crate) fn table() -> Vec<Row> {
    use Method as M;
    vec![
        row(M::GET, "/api/v1/whoami", None, 200, |_| ("/api/v1/whoami".into(), None)),
        row(M::GET, "/api/v1/projects", V, 200, |_| ("/api/v1/projects".into(), None)),
        row(M::GET, "/api/v1/services/{id}", V, 200, |f| (format!("/api/v1/services/{}", f.service), None)),
        row(M::GET, "/api/v1/services/{id}/builds", V, 200, |f| {
            (format!("/api/v1/services/{}/builds?limit=5", f.service), None)
        }),
        row(M::GET, "/api/v1/builds/{id}", V, 200, |f| (format!("/api/v1/builds/{}", f.queued_build), None)),
        row(M::GET, "/api/v1/builds/{id}/log", V, 200, |f| {
            (format!("/api/v1/builds/{}/log?after=0", f.queued_build), None)
        }),
        row(M::GET, "/api/v1/builds/{id}/report", V, 200, |f| {
            (format!("/api/v1/builds/{}/report", f.queued_build), None)
        }),
        row(M::GET, "/api/v1/builds/{id}/log/stream", V, 200, |f| {
            (format!("/api/v1/builds/{}/log/stream", f.queued_build), None)
        }),
        row(M::GET, "/api/v1/services/{id}/deployments", V, 200, |f| {
            (format!("/api/v1/services/{}/deployments", f.service), None)
        }),
        row(M::GET, "/api/v1/deployments/{id}", V, 200, |f| {
            (format!("/api/v1/deployments/{}", f.old_deployment), None)
        }),
        row(M::GET, "/api/v1/deployments/{id}/rollback", V, 200, |f| {
            (format!("/api/v1/deployments/{}/rollback", f.old_deployment), None)
        }),
        row(M::GET, "/api/v1/deployments/{id}/events", V, 200, |f| {
            (format!("/api/v1/deployments/{}/events", f.old_deployment), None)
        }),
        row(M::GET, "/api/v1/services/{id}/runtime", V, 200, |f| {
            (format!("/api/v1/services/{}/runtime", f.service), None)
        }),
        // Nothing is live in the fixture: allowed calls get 409 after the role check.
        row(M::GET, "/api/v1/services/{id}/logs", V, 409, |f| {
            (format!("/api/v1/services/{}/logs?tail=10", f.service), None)
        }),
        row(M::POST, "/api/v1/services/{id}/restart", D, 409, |f| {
            (format!("/api/v1/services/{}/restart", f.service), None)
        }),
        row(M::POST, "/api/v1/services/{id}/stop", D, 409, |f| {
            (format!("/api/v1/services/{}/stop", f.service), None)
        }),
        row(M::POST, "/api/v1/services/{id}/start", D, 409, |f| {
            (format!("/api/v1/services/{}/start", f.service), None)
        }),
        row(M::POST, "/api/v1/services/{id}/redeploy", D, 409, |f| {
            (format!("/api/v1/services/{}/redeploy", f.service), None)
        }),
        row(M::GET, "/api/v1/jobs/{id}", V, 200, |f| (format!("/api/v1/jobs/{}", f.job), None)),
        row(M::POST, "/api/v1/projects", D, 201, |f| {
            ("/api/v1/projects".into(), Some(json!({ "name": format!("new-{}", f.tag) })))
        }),
        row(M::POST, "/api/v1/projects/{id}/services", D, 201, |f| {
            (
                format!("/api/v1/projects/{}/services", f.project),
                Some(json!(settings(&format!("new-{}", f.tag)))),
            )
        }),
        row(M::PUT, "/api/v1/services/{id}", D, 200, |f| {
            let s = ServiceSettings { branch: "updated".into(), ..settings(&format!("svc-{}", f.tag)) };
            (format!("/api/v1/services/{}", f.service), Some(json!(s)))
        }),
        row(M::POST, "/api/v1/services/{id}/builds", D, 202, |f| {
            (format!("/api/v1/services/{}/builds", f.service), Some(json!({ "ref": "main" })))
        }),
        row(M::POST, "/api/v1/builds/{id}/cancel", D, 200, |f| {
            (format!("/api/v1/builds/{}/cancel", f.queued_build), None)
        }),
        row(M::POST, "/api/v1/services/{id}/deployments", D, 202, |f| {
            let body = json!({ "build_id": f.good_build, "reason": "matrix" });
            (format!("/api/v1/services/{}/deployments", f.service), Some(body))
        }),
        row(M::POST, "/api/v1/deployments/{id}/rollback", D, 202, |f| {
            (
                format!("/api/v1/deployments/{}/rollback", f.old_deployment),
                Some(json!({ "reason": "matrix" })),
            )
        }),
        row(M::GET, "/api/v1/tokens", None, 200, |_| ("/api/v1/tokens".into(), None)),
        // Every credential here is a token, and a token never mints another
        // (it could outlive its own expiry or revocation): 403 for all.
        row(M::POST, "/api/v1/tokens", None, 403, |f| {
            (
                "/api/v1/tokens".into(),
                Some(json!({ "name": format!("made-{}", f.tag), "expires_in_days": 7 })),
            )
        }),
        row(M::DELETE, "/api/v1/tokens/{id}", None, 200, |f| {
            (format!("/api/v1/tokens/{}", f.spare_token), None)
        }),
        row(M::GET, "/api/v1/audit", A, 200, |_| ("/api/v1/audit?action=build&limit=5".into(), None)),
        row(M::GET, "/api/v1/services/{id}/webhook", D, 200, |f| {
            (format!("/api/v1/services/{}/webhook", f.service), None)
        }),
        row(M::POST, "/api/v1/services/{id}/webhook/rotate", D, 200, |f| {
            (format!("/api/v1/services/{}/webhook/rotate", f.service), None)
        }),
        row(M::GET, "/api/v1/services/{id}/webhook/deliveries", A, 200, |f| {
            (format!("/api/v1/services/{}/webhook/deliveries?limit=5", f.service), None)
        }),
        row(M::GET, "/api/v1/projects/{id}/webhook", D, 200, |f| {
            (format!("/api/v1/projects/{}/webhook", f.project), None)
        }),
        row(M::POST, "/api/v1/projects/{id}/webhook/rotate", D, 200, |f| {
            (format!("/api/v1/projects/{}/webhook/rotate", f.project), None)
        }),
        row(M::GET, "/api/v1/projects/{id}/webhook/deliveries", A, 200, |f| {
            (format!("/api/v1/projects/{}/webhook/deliveries?limit=5", f.project), None)
        }),
        row(M::GET, "/api/v1/projects/{id}/notifications", V, 200, |f| {
            (format!("/api/v1/projects/{}/notifications", f.project), None)
        }),
        row(M::POST, "/api/v1/projects/{id}/notifications", A, 201, |f| {
            let body = json!({ "name": format!("made-{}", f.tag), "kind": "webhook",
                "url": "http://127.0.0.1:9/hook", "events": ["build.failed"] });
            (format!("/api/v1/projects/{}/notifications", f.project), Some(body))
        }),
        row(M::DELETE, "/api/v1/notifications/{id}", A, 204, |f| {
            (format!("/api/v1/notifications/{}", f.target), None)
        }),
        row(M::PUT, "/api/v1/projects/{id}/registry", A, 200, |f| {
            let body = json!({ "host": "127.0.0.1:5999", "image": format!("made-{}", f.tag),
                "username": "u", "password": "matrix-secret" });
            (format!("/api/v1/projects/{}/registry", f.project), Some(body))
        }),
        row(M::GET, "/api/v1/projects/{id}/registry", V, 200, |f| {
            (format!("/api/v1/projects/{}/registry", f.project), None)
        }),
        row(M::DELETE, "/api/v1/projects/{id}/registry", A, 204, |f| {
            (format!("/api/v1/projects/{}/registry", f.project), None)
        }),
        row(M::GET, "/api/v1/certificates", V, 200, |_| ("/api/v1/certificates".into(), None)),
        row(M::POST, "/api/v1/certificates", A, 201, |f| {
            let (chain, key) = &f.spare_certificate;
            ("/api/v1/certificates".into(), Some(json!({ "chain_pem": chain, "key_pem": key })))
        }),
        row(M::DELETE, "/api/v1/certificates/{id}", A, 204, |f| {
            (format!("/api/v1/certificates/{}", f.certificate), None)
        }),
        // A wrong confirmation conflicts with the name, after the role check.
        row(M::DELETE, "/api/v1/projects/{id}", D, 409, |f| {
            (format!("/api/v1/projects/{}?confirm=wrong", f.project), None)
        }),
        row(M::GET, "/api/v1/services/{id}/volumes", V, 200, |f| {
            (format!("/api/v1/services/{}/volumes", f.service), None)
        }),
        // The service has no such volume: 404 after the role check.
        row(M::DELETE, "/api/v1/services/{id}/volumes/{name}", A, 404, |f| {
            (format!("/api/v1/services/{}/volumes/data", f.service), None)
        }),
        row(M::POST, "/api/v1/projects/{id}/deploy-all", D, 202, |f| {
            (format!("/api/v1/projects/{}/deploy-all", f.project), None)
        }),
        // Last: the service is marked for deletion (no worker runs here).
        row(M::DELETE, "/api/v1/services/{id}", D, 202, |f| {
            (format!("/api/v1/services/{}?confirm=svc-{}", f.service, f.tag), None)
        }),
        // After the delete: its one service is being deleted, so nothing is
        // built (the build count above stays exact).
        row(M::POST, "/api/v1/projects/{id}/build-all", D, 202, |f| {
            (format!("/api/v1/projects/{}/build-all", f.project), None)
        }),
    ]
}

fn settings(name: &str) -> ServiceSettings {
    ServiceSettings {
        name: name.into(),
        git_url: "file:///nonexistent/repo".into(),
        ..ServiceSettings::defaults()
    }
}

/// One credential's objects, so one's mutations never change another's verdicts.
pub(crate) struct Fixture {
    tag: &'static str,
    project: i64,
    service: i64,
    queued_build: i64,
    job: i64,
    pub(crate) good_build: i64,
    old_deployment: i64,
    /// A second token of this credential's user, for the revoke row.
    spare_token: i64,
    /// The service's sealed webhook secret before the rows ran.
    webhook_secret: String,
    /// A notification target of the project, for the delete row.
    target: i64,
    /// An uploaded certificate, for the delete row.
    certificate: i64,
    /// Chain and key of a certificate to upload.
    spare_certificate: (String, String),
}

pub(crate) struct Matrix {
    pub(crate) router: Router,
    auth: Auth,
    engine: Engine,
    image_id: String,
    _data: TestDataDir,
    _kit: DockerKit,
}

pub(crate) async fn matrix() -> anyhow::Result<Matrix> {
    let OpenedApp { router, auth, engine, data, kit } = OpenedApp::new().await?;
    let image_id = kit.docker.inspect_image(BASE_IMAGE).await?.id.unwrap_or_default();
    Ok(Matrix { router, auth, engine, image_id, _data: data, _kit: kit })
}

impl Matrix {
    /// A user of `role` (or a spare viewer for the token-less credentials)
    /// and the bearer token the credential sends (`None`: no header).
    pub(crate) async fn credential(
        &self,
        cred: Cred,
    ) -> anyhow::Result<(server::auth::User, Option<String>)> {
        let role = match cred {
            Cred::User(r) => r,
            _ => Role::Admin, // a revoked or expired admin token must not help
        };
        let owner = self.auth.users.create(&format!("u-{}", cred.tag()), PW, role).await?;
        let (stored, token) = self.auth.tokens.create(&owner.caller(), "main", Some(30)).await?;
        match cred {
            Cred::None => Ok((owner, None)),
            Cred::Revoked => {
                self.auth.tokens.revoke(&owner.caller(), stored.id).await?;
                Ok((owner, Some(token)))
            }
            Cred::Expired => {
                sqlx::query("UPDATE api_tokens SET expires_at = '2001-01-01T00:00:00.000Z' WHERE id = ?")
                    .bind(stored.id)
                    .execute(&self.engine.db)
                    .await?;
                Ok((owner, Some(token)))
            }
            Cred::User(_) => Ok((owner, Some(token))),
        }
    }

    pub(crate) async fn fixture(
        &self,
        tag: &'static str,
        owner: &server::auth::User,
    ) -> anyhow::Result<Fixture> {
        let seeded = seed_history(&self.engine, &self.image_id, tag).await?;
        let (spare, _) = self.auth.tokens.create(&owner.caller(), "spare", None).await?;
        let Seeded {
            project,
            service,
            queued_build,
            job,
            good_build,
            old_deployment,
            webhook_secret,
            target,
            certificate,
            spare_certificate,
        } = seeded;
        Ok(Fixture {
            tag,
            project,
            service,
            queued_build,
            job,
            good_build,
            old_deployment,
            spare_token: spare.id,
            webhook_secret,
            target,
            certificate,
            spare_certificate,
        })
    }

    /// Whether each mutating row's work is visible in the fixture.
    async fn effects(&self, f: &Fixture) -> anyhow::Result<Vec<(&'static str, bool)>> {
        let db = &self.engine.db;
        let count = |sql: &'static str, id: i64| sqlx::query_scalar::<_, i64>(sql).bind(id).fetch_one(db);
        let service = ProjectStore::new(db.clone()).get_service(f.service).await?;
        let queued = self.engine.build(f.queued_build).await.map_err(anyhow_of)?;
        let projects = ProjectStore::new(db.clone()).list_projects().await?;
        Ok(vec![
            ("POST /api/v1/projects", projects.iter().any(|p| p.name == format!("new-{}", f.tag))),
            (
                "POST /api/v1/projects/{id}/services",
                count("SELECT COUNT(*) FROM services WHERE project_id = ?", f.project).await? == 2,
            ),
            ("PUT /api/v1/services/{id}", service.spec.branch == "updated"),
            (
                "DELETE /api/v1/services/{id}",
                count("SELECT COUNT(*) FROM services WHERE id = ? AND deleting_at IS NOT NULL", f.service)
                    .await?
                    == 1,
            ),
            (
                "POST /api/v1/services/{id}/builds",
                count("SELECT COUNT(*) FROM builds WHERE service_id = ?", f.service).await? == 3,
            ),
            ("POST /api/v1/builds/{id}/cancel", queued.status.as_str() == "cancelled"),
            (
                "POST /api/v1/services/{id}/deployments",
                count(
                    "SELECT COUNT(*) FROM deployments WHERE service_id = ? AND reason = 'matrix'",
                    f.service,
                )
                .await?
                    >= 1,
            ),
            (
                "POST /api/v1/deployments/{id}/rollback",
                count("SELECT COUNT(*) FROM deployments WHERE rollback_of = ?", f.old_deployment).await? == 1,
            ),
            (
                "POST /api/v1/services/{id}/webhook/rotate",
                sealed_webhook_secret(&self.engine, f.service).await? != f.webhook_secret,
            ),
            (
                "POST /api/v1/projects/{id}/webhook/rotate",
                count(
                    "SELECT COUNT(*) FROM audit_events WHERE action = 'project.webhook_rotate' \
                     AND target = 'project:' || ?",
                    f.project,
                )
                .await?
                    == 1,
            ),
            (
                "POST /api/v1/projects/{id}/notifications",
                count(
                    "SELECT COUNT(*) FROM notification_targets WHERE project_id = ? AND name LIKE 'made-%'",
                    f.project,
                )
                .await?
                    == 1,
            ),
            (
                "PUT /api/v1/projects/{id}/registry",
                count(
                    "SELECT COUNT(*) FROM audit_events WHERE action = 'registry.set' AND target = 'project:' || ?",
                    f.project,
                )
                .await?
                    == 1,
            ),
            (
                "DELETE /api/v1/projects/{id}/registry",
                count(
                    "SELECT COUNT(*) FROM audit_events WHERE action = 'registry.clear' AND target = 'project:' || ?",
                    f.project,
                )
                .await?
                    == 1,
            ),
            (
                "POST /api/v1/projects/{id}/deploy-all",
                count(
                    "SELECT COUNT(*) FROM jobs WHERE kind = 'deploy_all' AND json_extract(payload, '$.project_id') = ?",
                    f.project,
                )
                .await?
                    == 1,
            ),
            (
                "DELETE /api/v1/notifications/{id}",
                count("SELECT COUNT(*) FROM notification_targets WHERE id = ?", f.target).await? == 0,
            ),
            (
                "POST /api/v1/certificates",
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM edge_certificates WHERE names LIKE ?")
                    .bind(format!("%\"up-{}.matrix.test\"%", f.tag))
                    .fetch_one(db)
                    .await?
                    == 1,
            ),
            ("DELETE /api/v1/certificates/{id}", count("SELECT COUNT(*) FROM edge_certificates WHERE id = ?", f.certificate).await? == 0),
            (
                "DELETE /api/v1/tokens/{id}",
                count(
                    "SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NOT NULL AND id = ?",
                    f.spare_token,
                )
                .await?
                    == 1,
            ),
        ])
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let mut req = Request::builder().method(method).uri(uri).header(header::HOST, "127.0.0.1:3000");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => {
                req.header(header::CONTENT_TYPE, "application/json").body(Body::from(v.to_string()))?
            }
            None => req.body(Body::empty())?,
        };
        self.send_raw(req).await
    }

    pub(crate) async fn send_raw(&self, req: Request<Body>) -> anyhow::Result<Reply> {
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status().as_u16();
        let content_type =
            res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        // An open event stream never ends: its status and type are the verdict.
        let body = if content_type.starts_with("text/event-stream") {
            String::new()
        } else {
            String::from_utf8_lossy(&res.into_body().collect().await?.to_bytes()).into_owned()
        };
        Ok(Reply { status, content_type, body })
    }
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    content_type: String,
    pub(crate) body: String,
}

impl Reply {
    /// The `{ "error": { "code", "message" } }` body's code, if it is one
    /// with a non-empty message.
    pub(crate) fn error_code(&self) -> Option<String> {
        let v: Value = serde_json::from_str(&self.body).ok()?;
        let message = v["error"]["message"].as_str().filter(|m| !m.is_empty())?;
        let _ = message;
        v["error"]["code"].as_str().map(str::to_string)
    }
}

fn short(body: &str) -> &str {
    body.char_indices().nth(200).map_or(body, |(i, _)| &body[..i])
}

fn allowed(min: Option<Role>, cred: Cred) -> bool {
    match cred {
        Cred::User(role) => min.is_none_or(|needed| role.includes(needed)),
        _ => false,
    }
}

fn judge(row: &Row, cred: Cred, reply: &Reply) -> Option<String> {
    let here = format!("{} {} as {}", row.method, row.path, cred.tag());
    let (status, code) = match cred {
        _ if allowed(row.min, cred) => (row.ok, None),
        Cred::User(_) => (403, Some("forbidden")),
        _ => (401, Some("unauthenticated")),
    };
    if reply.status != status {
        return Some(format!("{here}: expected {status}, got {} {}", reply.status, short(&reply.body)));
    }
    match code {
        Some(code) if reply.error_code().as_deref() != Some(code) => {
            Some(format!("{here}: body is not a {code} error: {}", short(&reply.body)))
        }
        None if row.path.ends_with("/stream") && !reply.content_type.starts_with("text/event-stream") => {
            Some(format!("{here}: content type {}", reply.content_type))
        }
        None if row.ok != 204
            && !row.path.ends_with("/stream")
            && serde_json::from_str::<Value>(&reply.body).is_err() =>
        {
            Some(format!("{here}: not JSON: {}", short(&reply.body)))
        }
        _ => None,
    }
}

#[tokio::test]
async fn every_operation_answers_each_credential_as_the_table_says() -> anyhow::Result<()> {
    let m = matrix().await?;
    let started = std::time::Instant::now();
    let creds = [
        Cred::None,
        Cred::Revoked,
        Cred::Expired,
        Cred::User(Role::Viewer),
        Cred::User(Role::Deployer),
        Cred::User(Role::Admin),
    ];
    let mut problems = Vec::new();
    let mut calls = 0;
    for cred in creds {
        let (owner, token) = m.credential(cred).await?;
        let fixture = m.fixture(cred.tag(), &owner).await?;
        for row in table() {
            let (uri, body) = (row.call)(&fixture);
            let reply = m.send(row.method.clone(), &uri, body, token.as_deref()).await?;
            calls += 1;
            problems.extend(judge(&row, cred, &reply));
        }
        for (op, happened) in m.effects(&fixture).await? {
            let row = table()
                .into_iter()
                .find(|r| format!("{} {}", r.method, r.path) == op)
                .ok_or_else(|| anyhow::anyhow!("no row {op}"))?;
            if happened != allowed(row.min, cred) {
                problems.push(format!("{op} as {}: side effect happened = {happened}", cred.tag()));
            }
        }
    }
    // Tokens remember their last use; the revoked and expired ones were never "used".
    let used: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT u.name, t.last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.name = 'main'")
            .fetch_all(&m.engine.db)
            .await?;
    for (name, last_used) in used {
        let should = matches!(name.as_str(), "u-viewer" | "u-deployer" | "u-admin");
        if last_used.is_some() != should {
            problems.push(format!("token of {name}: last_used_at = {last_used:?}"));
        }
    }
    assert!(problems.is_empty(), "{} wrong verdicts:\n{}", problems.len(), problems.join("\n"));
    eprintln!("api matrix: {calls} calls in {:?}", started.elapsed());
    Ok(())
}

/// Every operation in the document has a row, and every row is documented.
#[test]
fn the_table_covers_exactly_the_documented_operations() {
    let doc = server::http::api::contract::document();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    let rows: BTreeSet<String> = table().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    let missing: Vec<_> = documented.difference(&rows).collect();
    let stale: Vec<_> = rows.difference(&documented).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "without a row: {missing:?}; undocumented rows: {stale:?}"
    );
    assert_eq!(rows.len(), table().len(), "one row per operation");
}

/// Collects every `$ref` in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_is_served_and_valid() -> anyhow::Result<()> {
    let m = matrix().await?;
    let reply = m.send(Method::GET, "/api/v1/openapi.json", None, None).await?;
    assert_eq!(reply.status, 200, "{}", short(&reply.body));
    let doc: Value = serde_json::from_str(&reply.body)?;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "openapi version");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let schemas = doc["components"]["schemas"].as_object().cloned().unwrap_or_default();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty(), "the document references its schemas");
    for r in &all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("foreign $ref {r}"));
        assert!(schemas.contains_key(name), "dangling $ref {r}");
    }
    for (path, item) in doc["paths"].as_object().expect("paths") {
        assert!(path.starts_with("/api/v1/"), "{path}");
        let params: Vec<&str> =
            path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        for (method, op) in item.as_object().expect("item") {
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect()
                })
                .unwrap_or_default();
            assert_eq!(declared, params, "{method} {path}: path parameters");
            let responses = op["responses"].as_object().expect("responses");
            assert!(responses.keys().any(|k| k.starts_with('2')), "{method} {path}: no success response");
        }
    }
    Ok(())
}

/// Bad input through the API: a clear JSON 4xx, and nothing written.
#[tokio::test]
async fn hostile_bodies_are_refused_and_write_nothing() -> anyhow::Result<()> {
    let m = matrix().await?;
    let (owner, token) = m.credential(Cred::User(Role::Admin)).await?;
    let f = m.fixture("hostile", &owner).await?;
    let token = token.as_deref();
    let builds = || sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM builds").fetch_one(&m.engine.db);
    let projects = || sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM projects").fetch_one(&m.engine.db);
    let (builds_before, projects_before) = (builds().await?, projects().await?);
    let build_uri = format!("/api/v1/services/{}/builds", f.service);
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(Method, String, String, u16)> = vec![
        (Method::POST, build_uri.clone(), json!({ "ref": "$(touch /tmp/pwned)" }).to_string(), 422),
        (Method::POST, build_uri.clone(), json!({ "ref": "--upload-pack=evil" }).to_string(), 422),
        (Method::POST, build_uri.clone(), json!({ "ref": "main", "extra": 1 }).to_string(), 422),
        (Method::POST, build_uri.clone(), json!({ "ref": 5 }).to_string(), 422),
        (Method::POST, build_uri.clone(), "{\"ref\": ".into(), 400),
        // 10,000 nested arrays: refused by type before any depth matters.
        (Method::POST, build_uri.clone(), deep.clone(), 422),
        (Method::POST, build_uri.clone(), format!("{{\"ref\":\"{}\"}}", "a".repeat(300 * 1024)), 413),
        (Method::POST, "/api/v1/projects".into(), json!({ "name": "../../etc" }).to_string(), 422),
        (Method::POST, "/api/v1/projects".into(), json!({ "name": "a;rm -rf /" }).to_string(), 422),
        (Method::POST, "/api/v1/services/abc/builds".into(), json!({}).to_string(), 422),
        (Method::POST, "/api/v1/services/-1/builds".into(), json!({}).to_string(), 422),
    ];
    let mut problems = Vec::new();
    for (method, uri, body, want) in cases {
        let req = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(header::HOST, "127.0.0.1:3000")
            .header(header::AUTHORIZATION, format!("Bearer {}", token.unwrap_or_default()))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.clone()))?;
        let reply = m.send_raw(req).await?;
        if reply.status != want || reply.error_code().is_none() {
            problems.push(format!(
                "{method} {uri} {}: {} {}",
                short(&body),
                reply.status,
                short(&reply.body)
            ));
        }
    }
    // Wrong content type and a malformed Authorization header.
    let req = Request::post(&build_uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", token.unwrap_or_default()))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))?;
    let reply = m.send_raw(req).await?;
    if reply.status != 415 || reply.error_code().is_none() {
        problems.push(format!("text/plain body: {} {}", reply.status, short(&reply.body)));
    }
    let req = Request::get("/api/v1/projects")
        .header(header::AUTHORIZATION, "Basic dXNlcjpwdw==")
        .body(Body::empty())?;
    let reply = m.send_raw(req).await?;
    if reply.status != 401 || reply.error_code().as_deref() != Some("unauthenticated") {
        problems.push(format!("Basic auth: {} {}", reply.status, short(&reply.body)));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(builds().await?, builds_before, "no build was queued");
    assert_eq!(projects().await?, projects_before, "no project was created");
    Ok(())
}
