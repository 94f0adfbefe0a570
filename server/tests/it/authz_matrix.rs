//! The authorization matrix: every server function and the SSE log stream,
//! called over HTTP through the real dashboard router as anonymous, viewer,
//! deployer and admin (real users, real sign-in). One table row per endpoint
//! gives the minimum role and the status an allowed call answers; a server
//! function without a row fails the test.
//!
//! Each role works on fixtures of its own (project, service, builds, a
//! deployment, a user to administer), so one role's mutations never change
//! another role's verdicts. No worker runs: verdicts only, no real builds.

use std::{collections::BTreeSet, net::SocketAddr};

use app::{
    wire::{Role, ServiceSettings},
    AppError,
};
use axum::{body::Body, extract::ConnectInfo, Router};
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use server::{
    auth::{password, Auth},
    engine::Engine,
    jobs::JobStatus,
    projects::ProjectStore,
    testkit::{
        app::{sealed_webhook_secret, seed_history, OpenedApp, Seeded},
        engine::anyhow_of,
        DockerKit, TestDataDir, BASE_IMAGE,
    },
};
use tower::ServiceExt;

const PW: &str = "correct horse battery";
const RESET_PW: &str = "reset horse battery";
const HOST: &str = "127.0.0.1:3000";
const ORIGIN: &str = "http://127.0.0.1:3000";
const STREAM: &str = "GET /api/v1/builds/{id}/log/stream";

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Min {
    Public,
    SignedIn,
    Role(Role),
}

/// What one call sends.
enum Call {
    Form(String),
    Json(Value),
    Stream(i64),
}

struct Row {
    /// `/rpc/<endpoint>`, or [`STREAM`].
    path: &'static str,
    min: Min,
    /// The status of an allowed call with these fixtures.
    ok: u16,
    call: fn(&Fixture) -> Call,
}

const fn row(path: &'static str, min: Min, ok: u16, call: fn(&Fixture) -> Call) -> Row {
    Row { path, min, ok, call }
}

const VIEWER: Min = Min::Role(Role::Viewer);
const DEPLOYER: Min = Min::Role(Role::Deployer);
const ADMIN: Min = Min::Role(Role::Admin);

/// The matrix. Order matters only within a role: `cancel_build` cancels
/// the fixture's queued build after the reads of it.
fn table() -> Vec<Row> {
    vec![
        row("/rpc/check_status", VIEWER, 200, |_| Call::Form(String::new())),
        row("/rpc/login", Min::Public, 200, |f| {
            Call::Form(format!("name={}&password={}", f.login, PW.replace(' ', "+")))
        }),
        row("/rpc/whoami", Min::Public, 200, |_| Call::Form(String::new())),
        row("/rpc/setup_state", Min::Public, 200, |_| Call::Json(json!({}))),
        // Users exist, so setup is over for everyone.
        row("/rpc/setup_admin", Min::Public, 409, |_| {
            Call::Json(json!({ "token": "wrong", "name": "intruder", "password": PW }))
        }),
        row("/rpc/overview", VIEWER, 200, |_| Call::Json(json!({}))),
        row("/rpc/get_service", VIEWER, 200, |f| Call::Json(json!({ "service_id": f.service }))),
        row("/rpc/service_page", VIEWER, 200, |f| Call::Json(json!({ "service_id": f.service }))),
        row("/rpc/list_builds", VIEWER, 200, |f| {
            Call::Json(json!({ "service_id": f.service, "before": null, "limit": null }))
        }),
        row("/rpc/build_rows", VIEWER, 200, |f| {
            Call::Json(json!({ "service_id": f.service, "before": null }))
        }),
        row("/rpc/build_durations", VIEWER, 200, |f| {
            Call::Json(json!({ "service_id": f.service, "limit": 50 }))
        }),
        row("/rpc/get_build", VIEWER, 200, |f| Call::Json(json!({ "build_id": f.queued_build }))),
        row("/rpc/build_page", VIEWER, 200, |f| Call::Json(json!({ "build_id": f.queued_build }))),
        row("/rpc/build_log", VIEWER, 200, |f| Call::Json(json!({ "build_id": f.queued_build, "after": 0 }))),
        row("/rpc/build_report", VIEWER, 200, |f| Call::Json(json!({ "build_id": f.queued_build }))),
        row(STREAM, VIEWER, 200, |f| Call::Stream(f.queued_build)),
        row("/rpc/list_deployments", VIEWER, 200, |f| {
            Call::Json(json!({ "service_id": f.service, "before": null, "limit": null }))
        }),
        row("/rpc/deployment_rows", VIEWER, 200, |f| {
            Call::Json(json!({ "service_id": f.service, "before": null }))
        }),
        row("/rpc/get_deployment", VIEWER, 200, |f| Call::Json(json!({ "deployment_id": f.old_deployment }))),
        row("/rpc/rollback_preview", VIEWER, 200, |f| {
            Call::Json(json!({ "deployment_id": f.old_deployment }))
        }),
        row("/rpc/project_page", VIEWER, 200, |f| Call::Json(json!({ "project_id": f.project }))),
        row("/rpc/deployment_page", VIEWER, 200, |f| {
            Call::Json(json!({ "deployment_id": f.old_deployment }))
        }),
        row("/rpc/service_runtime", VIEWER, 200, |f| Call::Json(json!({ "service_id": f.service }))),
        // Nothing is live in the fixture: an allowed restart is a 409, after the role check.
        row("/rpc/service_action", DEPLOYER, 409, |f| {
            Call::Json(json!({ "service_id": f.service, "action": "restart" }))
        }),
        row("/rpc/create_project", DEPLOYER, 200, |f| {
            Call::Json(json!({ "name": format!("new-{}", f.tag) }))
        }),
        row("/rpc/create_service", DEPLOYER, 200, |f| {
            Call::Json(json!({ "project_id": f.project, "settings": settings(&format!("new-{}", f.tag)) }))
        }),
        row("/rpc/update_service", DEPLOYER, 200, |f| {
            let settings =
                ServiceSettings { branch: "updated".into(), ..settings(&format!("svc-{}", f.tag)) };
            Call::Json(json!({ "service_id": f.service, "settings": settings }))
        }),
        row("/rpc/trigger_build", DEPLOYER, 200, |f| {
            Call::Json(
                json!({ "service_id": f.service, "git_ref": null, "deploy": false, "build_only": true }),
            )
        }),
        row("/rpc/cancel_build", DEPLOYER, 200, |f| Call::Json(json!({ "build_id": f.queued_build }))),
        row("/rpc/deploy_build", DEPLOYER, 200, |f| {
            Call::Json(json!({ "service_id": f.service, "build_id": f.good_build, "reason": "matrix" }))
        }),
        row("/rpc/rollback", DEPLOYER, 200, |f| {
            Call::Json(json!({ "deployment_id": f.old_deployment, "reason": null }))
        }),
        row("/rpc/list_tokens", Min::SignedIn, 200, |_| Call::Json(json!({}))),
        row("/rpc/create_token", Min::SignedIn, 200, |f| {
            Call::Json(json!({ "name": format!("made-{}", f.tag), "expires_in_days": 30 }))
        }),
        row("/rpc/revoke_token", Min::SignedIn, 200, |f| Call::Json(json!({ "token_id": f.token }))),
        row("/rpc/list_audit", ADMIN, 200, |_| {
            Call::Json(
                json!({ "query": { "actor": null, "action": "login", "source": null, "before": null, "limit": 10 } }),
            )
        }),
        row("/rpc/webhook_info", DEPLOYER, 200, |f| Call::Json(json!({ "service_id": f.service }))),
        row("/rpc/rotate_webhook_secret", DEPLOYER, 200, |f| Call::Json(json!({ "service_id": f.service }))),
        row("/rpc/list_deliveries", ADMIN, 200, |f| {
            Call::Json(json!({ "service_id": f.service, "before": null, "limit": 5 }))
        }),
        row("/rpc/project_webhook_info", DEPLOYER, 200, |f| Call::Json(json!({ "project_id": f.project }))),
        row("/rpc/rotate_project_webhook_secret", DEPLOYER, 200, |f| {
            Call::Json(json!({ "project_id": f.project }))
        }),
        row("/rpc/list_notification_targets", VIEWER, 200, |f| {
            Call::Json(json!({ "project_id": f.project }))
        }),
        row("/rpc/create_notification_target", ADMIN, 200, |f| {
            let target = json!({ "name": format!("made-{}", f.tag), "kind": "webhook",
                "url": "http://127.0.0.1:9/hook", "events": ["build.failed"] });
            Call::Json(json!({ "project_id": f.project, "target": target }))
        }),
        row("/rpc/notifications_page", VIEWER, 200, |f| Call::Json(json!({ "project_id": f.project }))),
        // The fixture's target refuses connections: the failure is the
        // answer (200, recorded), not an error.
        row("/rpc/send_test_notification", DEPLOYER, 200, |f| Call::Json(json!({ "target_id": f.target }))),
        row("/rpc/delete_notification_target", ADMIN, 200, |f| Call::Json(json!({ "target_id": f.target }))),
        row("/rpc/set_project_registry", ADMIN, 200, |f| {
            let form = json!({ "host": "127.0.0.1:5999", "image": format!("made-{}", f.tag),
                "username": "u", "password": "matrix-secret" });
            Call::Json(json!({ "project_id": f.project, "form": form }))
        }),
        row("/rpc/project_registry", VIEWER, 200, |f| Call::Json(json!({ "project_id": f.project }))),
        row("/rpc/clear_project_registry", ADMIN, 200, |f| Call::Json(json!({ "project_id": f.project }))),
        row("/rpc/list_certificates", VIEWER, 200, |_| Call::Json(json!({}))),
        row("/rpc/upload_certificate", ADMIN, 200, |f| {
            let (chain, key) = &f.spare_certificate;
            Call::Json(json!({ "form": { "chain_pem": chain, "key_pem": key } }))
        }),
        row("/rpc/delete_certificate", ADMIN, 200, |f| {
            Call::Json(json!({ "certificate_id": f.certificate }))
        }),
        row("/rpc/list_users", ADMIN, 200, |_| Call::Json(json!({}))),
        row("/rpc/create_user", ADMIN, 200, |f| {
            Call::Json(json!({ "name": format!("made-{}", f.tag), "password": PW, "role": "viewer" }))
        }),
        row("/rpc/set_user_role", ADMIN, 200, |f| {
            Call::Json(json!({ "user_id": f.victim, "role": "deployer" }))
        }),
        row("/rpc/set_user_disabled", ADMIN, 200, |f| {
            Call::Json(json!({ "user_id": f.victim, "disabled": true }))
        }),
        row("/rpc/reset_password", ADMIN, 200, |f| {
            Call::Json(json!({ "user_id": f.victim, "password": RESET_PW }))
        }),
        row("/rpc/delete_project", DEPLOYER, 422, |f| {
            Call::Json(json!({ "project_id": f.project, "confirm": "wrong" }))
        }),
        // The service is marked for deletion (no worker runs here).
        row("/rpc/service_volumes", VIEWER, 200, |f| Call::Json(json!({ "service_id": f.service }))),
        // The service has no such volume: 404 after the role check.
        row("/rpc/delete_volume", ADMIN, 404, |f| {
            Call::Json(json!({ "service_id": f.service, "name": "data" }))
        }),
        row("/rpc/deploy_all", DEPLOYER, 200, |f| Call::Json(json!({ "project_id": f.project }))),
        row("/rpc/delete_service", DEPLOYER, 200, |f| {
            Call::Json(
                json!({ "service_id": f.service, "confirm": format!("svc-{}", f.tag), "delete_volumes": false }),
            )
        }),
        // After the delete: its one service is being deleted, so nothing is built.
        row("/rpc/build_all", DEPLOYER, 200, |f| Call::Json(json!({ "project_id": f.project }))),
        // Same password again: allowed, and the caller stays signed in.
        row("/rpc/change_password", Min::SignedIn, 200, |_| {
            Call::Json(json!({ "current": PW, "new_password": PW }))
        }),
        row("/rpc/logout", Min::Public, 200, |_| Call::Form(String::new())),
    ]
}

fn settings(name: &str) -> ServiceSettings {
    ServiceSettings {
        name: name.into(),
        git_url: "file:///nonexistent/repo".into(),
        ..ServiceSettings::defaults()
    }
}

/// One role's objects.
struct Fixture {
    tag: &'static str,
    /// Who the `login` row signs in as.
    login: String,
    project: i64,
    service: i64,
    /// Queued (no worker runs); cancelled by the `cancel_build` row.
    queued_build: i64,
    /// Marked succeeded with the base image, so it can be deployed.
    good_build: i64,
    /// Marked superseded (it "served"), so it can be rolled back to.
    old_deployment: i64,
    /// A user for the admin rows to change.
    victim: i64,
    /// An API token of the `login` user, for the `revoke_token` row.
    token: i64,
    /// The service's sealed webhook secret before the rows ran.
    webhook_secret: String,
    /// A notification target of the project, for the delete row.
    target: i64,
    /// An uploaded certificate, for the delete row.
    certificate: i64,
    /// Chain and key of a certificate to upload.
    spare_certificate: (String, String),
}

struct Matrix {
    router: Router,
    auth: Auth,
    engine: Engine,
    image_id: String,
    _data: TestDataDir,
    _kit: DockerKit,
}

async fn matrix() -> anyhow::Result<Matrix> {
    let OpenedApp { router, auth, engine, data, kit } = OpenedApp::new().await?;
    let image_id = kit.docker.inspect_image(BASE_IMAGE).await?.id.unwrap_or_default();
    Ok(Matrix { router, auth, engine, image_id, _data: data, _kit: kit })
}

impl Matrix {
    async fn fixture(&self, tag: &'static str, login: &str) -> anyhow::Result<Fixture> {
        let seeded = seed_history(&self.engine, &self.image_id, tag).await?;
        let victim = self.auth.users.create(&format!("victim-{tag}"), PW, Role::Viewer).await?;
        let owner = self.auth.users.get_by_name(login).await?.ok_or_else(|| anyhow::anyhow!("no {login}"))?;
        let (token, _) = self.auth.tokens.create(&owner.caller(), "matrix", None).await?;
        let Seeded {
            project,
            service,
            queued_build,
            good_build,
            old_deployment,
            webhook_secret,
            target,
            certificate,
            spare_certificate,
            ..
        } = seeded;
        Ok(Fixture {
            tag,
            login: login.into(),
            project,
            service,
            queued_build,
            good_build,
            old_deployment,
            victim: victim.id,
            token: token.id,
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
        let projects = ProjectStore::new(db.clone()).list_projects().await?;
        let service = ProjectStore::new(db.clone()).get_service(f.service).await?;
        let victim = self.auth.users.get(f.victim).await?.expect("victim");
        let victim_hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ?")
            .bind(f.victim)
            .fetch_one(db)
            .await?;
        let queued = self.engine.build(f.queued_build).await.map_err(anyhow_of)?;
        let deploys = "SELECT COUNT(*) FROM deployments WHERE service_id = ? AND reason = 'matrix'";
        let rollbacks = "SELECT COUNT(*) FROM deployments WHERE rollback_of = ?";
        Ok(vec![
            ("/rpc/create_project", projects.iter().any(|p| p.name == format!("new-{}", f.tag))),
            (
                "/rpc/create_service",
                count("SELECT COUNT(*) FROM services WHERE project_id = ?", f.project).await? == 2,
            ),
            ("/rpc/update_service", service.spec.branch == "updated"),
            (
                "/rpc/delete_service",
                count("SELECT COUNT(*) FROM services WHERE id = ? AND deleting_at IS NOT NULL", f.service)
                    .await?
                    == 1,
            ),
            (
                "/rpc/trigger_build",
                count("SELECT COUNT(*) FROM builds WHERE service_id = ?", f.service).await? == 3,
            ),
            ("/rpc/cancel_build", queued.status == JobStatus::Cancelled),
            (
                "/rpc/deploy_all",
                count(
                    "SELECT COUNT(*) FROM jobs WHERE kind = 'deploy_all' AND json_extract(payload, '$.project_id') = ?",
                    f.project,
                )
                .await?
                    == 1,
            ),
            ("/rpc/deploy_build", count(deploys, f.service).await? == 1),
            ("/rpc/rollback", count(rollbacks, f.old_deployment).await? == 1),
            ("/rpc/create_user", self.auth.users.get_by_name(&format!("made-{}", f.tag)).await?.is_some()),
            ("/rpc/set_user_role", victim.role == Role::Deployer),
            ("/rpc/set_user_disabled", victim.disabled),
            ("/rpc/reset_password", password::verify(RESET_PW, &victim_hash)),
            (
                "/rpc/rotate_webhook_secret",
                sealed_webhook_secret(&self.engine, f.service).await? != f.webhook_secret,
            ),
            (
                "/rpc/rotate_project_webhook_secret",
                count(
                    "SELECT COUNT(*) FROM audit_events WHERE action = 'project.webhook_rotate' \
                     AND target = 'project:' || ?",
                    f.project,
                )
                .await?
                    == 1,
            ),
            (
                "/rpc/create_notification_target",
                count(
                    "SELECT COUNT(*) FROM notification_targets WHERE project_id = ? AND name LIKE 'made-%'",
                    f.project,
                )
                .await?
                    == 1,
            ),
            (
                "/rpc/send_test_notification",
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM audit_events WHERE action = 'notification.test' AND target = ?",
                )
                .bind(format!("notification_target:{}", f.target))
                .fetch_one(db)
                .await?
                    == 1,
            ),
            (
                "/rpc/delete_notification_target",
                count("SELECT COUNT(*) FROM notification_targets WHERE id = ?", f.target).await? == 0,
            ),
            (
                "/rpc/upload_certificate",
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM edge_certificates WHERE names LIKE ?")
                    .bind(format!("%\"up-{}.matrix.test\"%", f.tag))
                    .fetch_one(db)
                    .await?
                    == 1,
            ),
            ("/rpc/delete_certificate", count("SELECT COUNT(*) FROM edge_certificates WHERE id = ?", f.certificate).await? == 0),
            (
                "/rpc/create_token",
                count("SELECT COUNT(*) FROM api_tokens WHERE name LIKE 'made-%' AND id > ?", f.token).await?
                    == 1,
            ),
            (
                "/rpc/revoke_token",
                count("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NOT NULL AND id = ?", f.token)
                    .await?
                    == 1,
            ),
        ])
    }

    async fn send(&self, path: &str, call: Call, cookie: Option<&str>) -> anyhow::Result<Reply> {
        let builder = match &call {
            Call::Stream(_) => Request::get(path),
            Call::Form(_) => Request::post(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, ORIGIN),
            Call::Json(_) => Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ORIGIN, ORIGIN),
        };
        let mut builder = builder.header(header::HOST, HOST).header(header::ACCEPT, "application/json");
        if let Some(id) = cookie {
            builder = builder.header(header::COOKIE, format!("id={id}"));
        }
        let body = match call {
            Call::Form(text) => Body::from(text),
            Call::Json(value) => Body::from(value.to_string()),
            Call::Stream(_) => Body::empty(),
        };
        let mut req = builder.body(body)?;
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5000))));
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status();
        let content_type =
            res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let set_cookie: Vec<String> = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        // An open event stream never ends: its status and type are the verdict.
        let body = if content_type.starts_with("text/event-stream") {
            String::new()
        } else {
            String::from_utf8_lossy(&res.into_body().collect().await?.to_bytes()).into_owned()
        };
        Ok(Reply { status, content_type, set_cookie, body })
    }

    /// Signs `name` in and returns the session id.
    async fn sign_in(&self, name: &str) -> anyhow::Result<String> {
        let call = Call::Form(format!("name={name}&password={}", PW.replace(' ', "+")));
        let reply = self.send("/rpc/login", call, None).await?;
        anyhow::ensure!(
            reply.status == StatusCode::OK,
            "sign-in of {name}: {} {}",
            reply.status,
            short(&reply.body)
        );
        reply.session_id().flatten().ok_or_else(|| anyhow::anyhow!("no session cookie for {name}"))
    }
}

struct Reply {
    status: StatusCode,
    content_type: String,
    set_cookie: Vec<String>,
    body: String,
}

impl Reply {
    /// `Some(Some(id))` when the reply sets the session cookie, `Some(None)`
    /// when it removes it, `None` when it leaves it alone.
    fn session_id(&self) -> Option<Option<String>> {
        let cookie = self.set_cookie.iter().find(|c| c.starts_with("id="))?;
        let removed = cookie.contains("Max-Age=0") || cookie.contains("Expires=Thu, 01 Jan 1970");
        let value = cookie.strip_prefix("id=")?.split(';').next()?.to_owned();
        Some((!removed && !value.is_empty()).then_some(value))
    }
}

fn allowed(min: Min, role: Option<Role>) -> bool {
    match (min, role) {
        (Min::Public, _) => true,
        (_, None) => false,
        (Min::SignedIn, Some(_)) => true,
        (Min::Role(needed), Some(role)) => role.includes(needed),
    }
}

/// The error an AppError-answering endpoint sent (server functions send the
/// AppError itself, the REST stream `{"error": {"code", "message"}}` with a
/// message for every code).
fn app_error(path: &str, body: &str) -> Result<AppError, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): {}", short(body)))?;
    let inner = if path == STREAM {
        let error = value.get("error").cloned().unwrap_or(Value::Null);
        if error.get("message").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(format!("no error message: {}", short(body)));
        }
        if error.get("code").and_then(Value::as_str) == Some("unauthenticated") {
            return Ok(AppError::Unauthenticated);
        }
        error
    } else {
        value
    };
    serde_json::from_value(inner).map_err(|e| format!("not an AppError ({e}): {}", short(body)))
}

/// A body cut short for messages (a 404 page is a whole HTML document).
fn short(body: &str) -> &str {
    body.char_indices().nth(200).map_or(body, |(i, _)| &body[..i])
}

/// The verdict problems of one call, empty when it answered as the table says.
fn judge(row: &Row, role: Option<Role>, reply: &Reply) -> Vec<String> {
    let who = role.map_or("anonymous", Role::as_str);
    let here = format!("{} as {who}", row.path);
    let mut problems = Vec::new();
    if allowed(row.min, role) {
        if reply.status.as_u16() != row.ok {
            problems.push(format!(
                "{here}: expected {}, got {} {}",
                row.ok,
                reply.status,
                short(&reply.body)
            ));
        } else if row.ok != 200 {
            match app_error(row.path, &reply.body) {
                Ok(e) if e.status() == row.ok => {}
                other => problems.push(format!("{here}: body is not the {} AppError: {other:?}", row.ok)),
            }
        } else if row.path == STREAM && !reply.content_type.starts_with("text/event-stream") {
            problems.push(format!("{here}: content type {}", reply.content_type));
        }
        return problems;
    }
    let (status, wanted): (u16, fn(&AppError) -> bool) = match role {
        None => (401, |e| *e == AppError::Unauthenticated),
        Some(_) => (403, |e| matches!(e, AppError::Forbidden(_))),
    };
    if reply.status.as_u16() != status {
        problems.push(format!("{here}: expected {status}, got {} {}", reply.status, short(&reply.body)));
    }
    match app_error(row.path, &reply.body) {
        Ok(e) if wanted(&e) => {}
        other => problems.push(format!("{here}: body is not the {status} AppError: {other:?}")),
    }
    problems
}

#[tokio::test]
async fn every_endpoint_answers_each_role_as_the_table_says() -> anyhow::Result<()> {
    let m = matrix().await?;
    let started = std::time::Instant::now();
    m.auth.users.create("spare", PW, Role::Viewer).await?;
    let roles: [(Option<Role>, &'static str); 4] = [
        (None, "anonymous"),
        (Some(Role::Viewer), "viewer"),
        (Some(Role::Deployer), "deployer"),
        (Some(Role::Admin), "admin"),
    ];
    let mut problems = Vec::new();
    let mut calls = 0;
    for (role, tag) in roles {
        // Anonymous exercises `login` with a spare account and never keeps a cookie.
        let login = if role.is_some() { format!("user-{tag}") } else { "spare".to_string() };
        if let Some(r) = role {
            m.auth.users.create(&login, PW, r).await?;
        }
        let fixture = m.fixture(tag, &login).await?;
        let mut cookie = match role {
            Some(_) => Some(m.sign_in(&login).await?),
            None => None,
        };
        for row in table() {
            let path = match (row.call)(&fixture) {
                Call::Stream(id) => format!("/api/v1/builds/{id}/log/stream"),
                _ => row.path.to_string(),
            };
            let reply = m.send(&path, (row.call)(&fixture), cookie.as_deref()).await?;
            calls += 1;
            problems.extend(judge(&row, role, &reply));
            // Like a browser: follow cookie changes (login, change_password);
            // sign in again after logout so later rows still run as this role.
            if role.is_some() {
                match reply.session_id() {
                    Some(Some(id)) => cookie = Some(id),
                    Some(None) => cookie = Some(m.sign_in(&login).await?),
                    None => {}
                }
            }
        }
        // A refused call changed nothing; an allowed one did its work.
        for (path, happened) in m.effects(&fixture).await? {
            let row = table().into_iter().find(|r| r.path == path).expect("a row");
            if happened != allowed(row.min, role) {
                problems.push(format!("{path} as {tag}: side effect happened = {happened}"));
            }
        }
    }
    assert!(problems.is_empty(), "{} wrong verdicts:\n{}", problems.len(), problems.join("\n"));
    eprintln!("authz matrix: {calls} calls in {:?}", started.elapsed());
    Ok(())
}

#[test]
fn every_registered_server_function_has_a_row() {
    let registered: BTreeSet<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| {
            assert_eq!(method, http::Method::POST, "{path}");
            path.to_string()
        })
        .collect();
    let rows: BTreeSet<String> =
        table().iter().map(|r| r.path).filter(|p| *p != STREAM).map(str::to_string).collect();
    let missing: Vec<_> = registered.difference(&rows).collect();
    let stale: Vec<_> = rows.difference(&registered).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "without a row: {missing:?}; rows without a function: {stale:?}"
    );
    assert_eq!(table().len(), rows.len() + 1, "one row per endpoint");
}
