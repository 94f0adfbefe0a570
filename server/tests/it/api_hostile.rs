//! Hostile input through the REST API, with the engine's corpus
//! (`server::testkit::hostile`, the rows of `tests/it/hostile_inputs.rs`).
//!
//! Every hostile row of every kind is sent through the real in-process router
//! in the API field where that kind arrives: the service settings (create and
//! update), the ref of a build, the name of a project, the image of a
//! deployment. Each must be refused with a 4xx and the API's JSON error
//! (`{ "error": { "code", "message" } }`) whose message names the field, says
//! what the engine's test expects it to say, and echoes neither the value nor
//! the canary; the canary never appears; and the database is byte-for-byte
//! what it was before the request (nothing queued, nothing half-written).
//! Oversized (> 256 KiB) and deeply nested bodies get the same treatment.
//! Controls at the end send the very same bodies with valid values and see
//! them accepted, so the refusals are the values' doing.

use std::collections::BTreeMap;

use app::wire::{EnvVar, HealthProbeForm, Role, ServiceDetail, ServiceSettings};
use axum::{body::Body, Router};
use http::{header, Method, Request};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use server::{
    db::Db,
    engine::Engine,
    testkit::{
        app::OpenedApp,
        hostile::{Canary, Kind, Row},
        DockerKit, TestDataDir, BASE_IMAGE,
    },
};
use tower::ServiceExt;

const PW: &str = "correct horse battery";

/// The API's request body limit (`server::http::api::BODY_LIMIT`).
const LIMIT: usize = 256 * 1024;

/// The tables whose row counts the summary reports.
const COUNTED: [&str; 7] =
    ["projects", "services", "builds", "deployments", "jobs", "service_env", "audit_events"];

/// Where a hostile value arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Endpoint {
    CreateService,
    UpdateService,
    TriggerBuild,
    CreateProject,
    Deploy,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::CreateService => "POST /api/v1/projects/{id}/services",
            Endpoint::UpdateService => "PUT /api/v1/services/{id}",
            Endpoint::TriggerBuild => "POST /api/v1/services/{id}/builds",
            Endpoint::CreateProject => "POST /api/v1/projects",
            Endpoint::Deploy => "POST /api/v1/services/{id}/deployments",
        }
    }

    /// The endpoints each kind arrives through.
    fn of(kind: Kind) -> &'static [Endpoint] {
        match kind {
            Kind::GitRef => &[Endpoint::CreateService, Endpoint::UpdateService, Endpoint::TriggerBuild],
            Kind::GitUrl
            | Kind::ContextPath
            | Kind::DockerfilePath
            | Kind::BuildArg
            | Kind::ServiceName
            | Kind::HealthPath
            | Kind::EnvName => &[Endpoint::CreateService, Endpoint::UpdateService],
            Kind::ProjectName => &[Endpoint::CreateProject],
            Kind::Image => &[Endpoint::Deploy],
        }
    }

    /// The field the refusal must name: the store's name for a service
    /// setting (the env var name is checked before the spec, under its own).
    fn field(self, kind: Kind) -> &'static str {
        match self {
            Endpoint::CreateService | Endpoint::UpdateService => kind.store_field().unwrap_or(kind.field()),
            _ => kind.field(),
        }
    }
}

/// `settings` with `value` in the field of `kind`; `None` for a kind that is
/// not a service setting.
fn with_value(kind: Kind, mut s: ServiceSettings, value: &str) -> Option<ServiceSettings> {
    match kind {
        Kind::GitUrl => s.git_url = value.into(),
        Kind::GitRef => s.branch = value.into(),
        Kind::ContextPath => s.context_path = value.into(),
        Kind::DockerfilePath => s.dockerfile_path = value.into(),
        Kind::BuildArg => s.build_args.push((value.into(), "1".into())),
        Kind::ServiceName => s.name = value.into(),
        Kind::HealthPath => s.health = HealthProbeForm::Http { path: value.into() },
        Kind::EnvName => s.env.push(EnvVar { name: value.into(), value: Some("1".into()), secret: false }),
        Kind::Image | Kind::ProjectName => return None,
    }
    Some(s)
}

/// Valid settings of a new service named `name`, with a build arg and both
/// a plain and a secret variable, so an update that touched them would show.
fn settings(name: &str) -> ServiceSettings {
    ServiceSettings {
        name: name.into(),
        git_url: format!("https://example.com/shop/{name}.git"),
        build_args: vec![("NODE_ENV".into(), "production".into())],
        health: HealthProbeForm::Http { path: "/healthz".into() },
        env: vec![
            EnvVar { name: "GREETING".into(), value: Some("hello".into()), secret: false },
            EnvVar { name: "DB_PASSWORD".into(), value: Some("s3cret".into()), secret: true },
        ],
        ..ServiceSettings::defaults()
    }
}

struct Api {
    router: Router,
    engine: Engine,
    token: String,
    _data: TestDataDir,
    _kit: DockerKit,
}

/// An opened (not started: no worker runs a job) engine on the real Docker
/// engine, its router, and an admin's API token.
async fn api() -> anyhow::Result<Api> {
    let OpenedApp { router, auth, engine, data, kit } = OpenedApp::new().await?;
    let admin = auth.users.create("admin", PW, Role::Admin).await?;
    let (_, token) = auth.tokens.create(&admin.caller(), "hostile", Some(30)).await?;
    Ok(Api { router, engine, token, _data: data, _kit: kit })
}

#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

impl Api {
    fn request(&self, method: Method, uri: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "127.0.0.1:3000")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
    }

    async fn send(&self, method: Method, uri: &str, body: impl Into<Body>) -> anyhow::Result<Reply> {
        self.send_raw(self.request(method, uri).body(body.into())?).await
    }

    async fn send_raw(&self, req: Request<Body>) -> anyhow::Result<Reply> {
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status().as_u16();
        let content_type =
            res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = String::from_utf8_lossy(&res.into_body().collect().await?.to_bytes()).into_owned();
        Ok(Reply { status, content_type, body })
    }

    /// Every table but the tokens' (whose `last_used_at` each call may
    /// touch), row by row, every column quoted: any write shows.
    async fn snapshot(&self) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
        snapshot(&self.engine.db).await
    }
}

async fn snapshot(db: &Db) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT IN ('api_tokens', '_sqlx_migrations') ORDER BY name",
    )
    .fetch_all(db)
    .await?;
    let mut out = BTreeMap::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
            .bind(&table)
            .fetch_all(db)
            .await?;
        let row = columns.iter().map(|c| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || '|' || ");
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT {row} FROM \"{table}\" ORDER BY 1")).fetch_all(db).await?;
        out.insert(table, rows);
    }
    Ok(out)
}

/// The tables that differ between two snapshots.
fn changed(before: &BTreeMap<String, Vec<String>>, after: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names.into_iter().filter(|t| before.get(*t) != after.get(*t)).cloned().collect()
}

fn counts(snap: &BTreeMap<String, Vec<String>>) -> String {
    COUNTED.iter().map(|t| format!("{t}={}", snap.get(*t).map_or(0, Vec::len))).collect::<Vec<_>>().join(" ")
}

fn short(text: &str) -> String {
    let cut: String = text.chars().take(160).collect();
    format!("{cut:?}{}", if cut.len() < text.len() { "…" } else { "" })
}

/// What a refusal must look like.
struct Expect<'a> {
    /// The value that must not be echoed (values under 8 bytes, such as "-"
    /// or "API", may legitimately occur in a message, as in the engine test).
    value: &'a str,
    /// For a validation refusal (422 `invalid_field`): the field it names
    /// and the fragment its message contains (`Row::says`).
    field: Option<(&'a str, &'a str)>,
}

/// The problems with `reply` as a refusal of a hostile request.
fn judge(reply: &Reply, expect: &Expect, canary: &Canary) -> Vec<String> {
    let mut problems = Vec::new();
    if !(400..500).contains(&reply.status) {
        problems.push(format!("status {} is not a 4xx", reply.status));
    }
    if !reply.content_type.starts_with("application/json") {
        problems.push(format!("content type {:?}", reply.content_type));
    }
    if reply.body.contains(canary.target()) {
        problems.push("the body echoes the canary path".into());
    }
    let parsed: Option<Value> = serde_json::from_str(&reply.body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error")).and_then(Value::as_object);
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_str);
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str);
    let (Some(code), Some(message)) = (code, message) else {
        problems.push(format!("not an API error body: {}", short(&reply.body)));
        return problems;
    };
    // A refusal of fields also lists them: `error.fields` [{field, message}].
    let fields = error.and_then(|e| e.get("fields"));
    let keys = if code == "invalid_field" { 3 } else { 2 };
    if parsed.as_ref().and_then(Value::as_object).map(|o| o.len()) != Some(1)
        || error.map(|e| e.len()) != Some(keys)
    {
        problems.push(format!(
            "the error body is not error.code, error.message (and error.fields for a field): {}",
            short(&reply.body)
        ));
    }
    if let Some((field, _)) = expect.field {
        let listed = fields.and_then(Value::as_array).and_then(|a| a.first()).and_then(|f| f.get("field"));
        if listed.and_then(Value::as_str) != Some(field) {
            problems.push(format!("error.fields does not list {field:?}: {}", short(&reply.body)));
        }
    }
    if code.is_empty() || message.trim().is_empty() {
        problems.push(format!("empty code or message: {}", short(&reply.body)));
    }
    if expect.value.len() >= 8 && message.contains(expect.value) {
        problems.push(format!("the message echoes the rejected value: {}", short(message)));
    }
    if let Some((field, says)) = expect.field {
        if reply.status != 422 || code != "invalid_field" {
            problems.push(format!("expected a 422 invalid_field refusal, got {} {code}", reply.status));
        }
        if !message.starts_with(&format!("{field}: ")) {
            problems.push(format!("the message does not name the field {field:?}: {}", short(message)));
        }
        if !message.contains(says) {
            problems.push(format!("the message does not say {says:?}: {}", short(message)));
        }
    }
    problems
}

/// `body` as JSON text with the value of `key` replaced by `raw` (JSON text
/// that `serde_json::Value` could not hold: too deep for its parser).
fn with_raw(mut body: Value, key: &str, raw: &str) -> String {
    body[key] = json!("\u{1}");
    body.to_string().replace("\"\\u0001\"", raw)
}

/// Ids of the objects the hostile requests aim at.
struct Fixture {
    project: i64,
    service: i64,
    /// The existing service's settings as the API shows them (the secret's
    /// value is `None`: kept as stored on update).
    stored: ServiceSettings,
}

/// A project and a valid service, made through the API (201: the control
/// that the create body is accepted as such).
async fn fixture(api: &Api) -> anyhow::Result<Fixture> {
    let reply = api.send(Method::POST, "/api/v1/projects", json!({ "name": "shop" }).to_string()).await?;
    anyhow::ensure!(reply.status == 201, "project: {} {}", reply.status, reply.body);
    let project = serde_json::from_str::<Value>(&reply.body)?["id"].as_i64().unwrap_or_default();
    let uri = format!("/api/v1/projects/{project}/services");
    let reply = api.send(Method::POST, &uri, json!(settings("api")).to_string()).await?;
    anyhow::ensure!(reply.status == 201, "service: {} {}", reply.status, reply.body);
    let detail: ServiceDetail = serde_json::from_str(&reply.body)?;
    Ok(Fixture { project, service: detail.id, stored: detail.settings })
}

/// The request that carries `value` as a `kind` through `endpoint`.
fn hostile_request(
    endpoint: Endpoint,
    kind: Kind,
    value: &str,
    f: &Fixture,
) -> Option<(Method, String, Value)> {
    Some(match endpoint {
        Endpoint::CreateService => (
            Method::POST,
            format!("/api/v1/projects/{}/services", f.project),
            json!(with_value(kind, settings("web"), value)?),
        ),
        Endpoint::UpdateService => (
            Method::PUT,
            format!("/api/v1/services/{}", f.service),
            json!(with_value(kind, f.stored.clone(), value)?),
        ),
        Endpoint::TriggerBuild => {
            (Method::POST, format!("/api/v1/services/{}/builds", f.service), json!({ "ref": value }))
        }
        Endpoint::CreateProject => (Method::POST, "/api/v1/projects".into(), json!({ "name": value })),
        Endpoint::Deploy => {
            (Method::POST, format!("/api/v1/services/{}/deployments", f.service), json!({ "image": value }))
        }
    })
}

#[tokio::test]
async fn every_hostile_row_is_refused_by_the_api_and_writes_nothing() -> anyhow::Result<()> {
    let api = api().await?;
    let canary = Canary::new();
    let f = fixture(&api).await?;
    let service_uri = format!("/api/v1/services/{}", f.service);
    let shown_before = api.send(Method::GET, &service_uri, Body::empty()).await?;
    let before = api.snapshot().await?;
    let mut baseline = before.clone();

    let mut problems = Vec::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut per_endpoint: BTreeMap<Endpoint, BTreeMap<u16, usize>> = BTreeMap::new();
    let mut sent = 0;
    for kind in Kind::ALL {
        let rows: Vec<Row> = kind.hostile(canary.target());
        for &endpoint in Endpoint::of(kind) {
            for row in &rows {
                let Some((method, uri, body)) = hostile_request(endpoint, kind, &row.value, &f) else {
                    problems.push(format!("{kind:?} has no request for {}", endpoint.label()));
                    continue;
                };
                let reply = api.send(method, &uri, body.to_string()).await?;
                sent += 1;
                *statuses.entry(reply.status).or_default() += 1;
                *per_endpoint.entry(endpoint).or_default().entry(reply.status).or_default() += 1;
                let expect = Expect { value: &row.value, field: Some((endpoint.field(kind), row.says)) };
                let here = format!("{} {kind:?} {}", endpoint.label(), short(&row.value));
                problems.extend(judge(&reply, &expect, &canary).into_iter().map(|p| format!("{here}: {p}")));
                let after = api.snapshot().await?;
                let dirty = changed(&baseline, &after);
                if !dirty.is_empty() {
                    problems.push(format!(
                        "{here}: {} {} wrote to {dirty:?}",
                        reply.status,
                        short(&reply.body)
                    ));
                    baseline = after; // judge the next rows on their own
                }
            }
        }
    }

    // The existing service reads exactly as before, through the API too.
    let shown_after = api.send(Method::GET, &service_uri, Body::empty()).await?;
    if (shown_after.status, &shown_after.body) != (shown_before.status, &shown_before.body) {
        problems.push(format!(
            "the service changed: {} -> {}",
            short(&shown_before.body),
            short(&shown_after.body)
        ));
    }
    canary.assert_untouched();
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    assert!(sent >= 30, "only {sent} hostile requests were sent");
    eprintln!(
        "api hostile: {sent} hostile rows sent, statuses {statuses:?}; per endpoint {:?}; db unchanged ({})",
        per_endpoint.iter().map(|(e, s)| (e.label(), s)).collect::<Vec<_>>(),
        counts(&before),
    );

    // Controls: the same bodies with valid values are accepted and do write.
    let controls: Vec<(Method, String, Value, u16)> = vec![
        (Method::POST, format!("/api/v1/projects/{}/services", f.project), json!(settings("web")), 201),
        (
            Method::PUT,
            service_uri.clone(),
            json!(ServiceSettings { branch: "next".into(), ..f.stored.clone() }),
            200,
        ),
        (Method::POST, format!("{service_uri}/builds"), json!({ "ref": "main" }), 202),
        (Method::POST, "/api/v1/projects".into(), json!({ "name": "shop-2" }), 201),
        (Method::POST, format!("{service_uri}/deployments"), json!({ "image": BASE_IMAGE }), 202),
    ];
    for (method, uri, body, want) in controls {
        let reply = api.send(method.clone(), &uri, body.to_string()).await?;
        assert_eq!(reply.status, want, "control {method} {uri}: {}", short(&reply.body));
    }
    let after = api.snapshot().await?;
    for table in ["projects", "services", "builds", "deployments", "jobs", "service_env"] {
        assert!(
            changed(&before, &after).contains(&table.to_string()),
            "the controls did not write to {table}"
        );
    }
    canary.assert_untouched();
    Ok(())
}

/// Bodies over the 256 KiB limit (413) and nested far deeper than the JSON
/// parser recurses, on the endpoints above: a JSON 4xx, nothing written.
#[tokio::test]
async fn huge_and_deeply_nested_bodies_are_refused_and_write_nothing() -> anyhow::Result<()> {
    let api = api().await?;
    let canary = Canary::new();
    let f = fixture(&api).await?;
    let before = api.snapshot().await?;
    let services = format!("/api/v1/projects/{}/services", f.project);
    let service = format!("/api/v1/services/{}", f.service);
    let builds = format!("{service}/builds");
    let deployments = format!("{service}/deployments");

    // Well-formed JSON, only too large: the hostile value is the padding.
    let pad = format!("$(touch {})", canary.target()).repeat(LIMIT / 20 + 1);
    let huge_settings = ServiceSettings { git_url: format!("https://example.com/{pad}"), ..settings("web") };
    let huge: Vec<(Method, &str, String)> = vec![
        (Method::POST, "/api/v1/projects", json!({ "name": pad }).to_string()),
        (Method::POST, &services, json!(huge_settings).to_string()),
        (
            Method::PUT,
            &service,
            json!(ServiceSettings { branch: pad.clone(), ..f.stored.clone() }).to_string(),
        ),
        (Method::POST, &builds, json!({ "ref": pad }).to_string()),
        (Method::POST, &deployments, json!({ "image": pad }).to_string()),
    ];
    // Nesting: 40,000 levels (under the size limit, far over the parser's
    // recursion limit) of arrays and of objects, where a value is expected,
    // as the whole body, and in an unknown field of a type that refuses them.
    let depth = 40_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let deep: Vec<(&str, Method, &str, String)> = vec![
        ("project name", Method::POST, "/api/v1/projects", format!("{{\"name\":{arrays}}}")),
        ("project body", Method::POST, "/api/v1/projects", objects.clone()),
        (
            "project unknown",
            Method::POST,
            "/api/v1/projects",
            format!("{{\"name\":\"deep\",\"x\":{arrays}}}"),
        ),
        ("service body", Method::POST, &services, arrays.clone()),
        ("service name", Method::POST, &services, with_raw(json!(settings("web")), "name", &objects)),
        ("service env", Method::POST, &services, with_raw(json!(settings("web")), "env", &arrays)),
        ("update health", Method::PUT, &service, with_raw(json!(f.stored), "health", &objects)),
        ("update build_args", Method::PUT, &service, with_raw(json!(f.stored), "build_args", &arrays)),
        ("build ref", Method::POST, &builds, format!("{{\"ref\":{objects}}}")),
        ("deploy image", Method::POST, &deployments, format!("{{\"image\":{arrays}}}")),
        ("deploy reason", Method::POST, &deployments, format!("{{\"reason\":{objects}}}")),
    ];

    let mut problems = Vec::new();
    let mut statuses: BTreeMap<String, BTreeMap<u16, usize>> = BTreeMap::new();
    let mut baseline = before.clone();
    let mut judge_one = |what: &str,
                         label: String,
                         reply: &Reply,
                         want: Option<u16>,
                         after: &BTreeMap<String, Vec<String>>| {
        *statuses.entry(what.into()).or_default().entry(reply.status).or_default() += 1;
        let expect = Expect { value: &pad, field: None };
        let mut found = judge(reply, &expect, &canary);
        if let Some(want) = want {
            if reply.status != want {
                found.push(format!("expected {want}, got {} {}", reply.status, short(&reply.body)));
            }
        }
        let dirty = changed(&baseline, after);
        if !dirty.is_empty() {
            found.push(format!("wrote to {dirty:?}"));
            baseline = after.clone(); // judge the next cases on their own
        }
        problems.extend(found.into_iter().map(|p| format!("{what} {label}: {p}")));
    };
    for (method, uri, body) in &huge {
        assert!(body.len() > LIMIT, "the huge body is only {} bytes", body.len());
        let label = format!("{method} {uri} ({} KiB)", body.len() / 1024);
        let reply = api.send(method.clone(), uri, body.clone()).await?;
        judge_one("huge", label.clone(), &reply, Some(413), &api.snapshot().await?);
        // The same, streamed in chunks without a length.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            body.as_bytes().chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
        let req = api.request(method.clone(), uri).body(Body::from_stream(futures::stream::iter(chunks)))?;
        let reply = api.send_raw(req).await?;
        judge_one("huge, chunked", label, &reply, Some(413), &api.snapshot().await?);
    }
    let mut deep_statuses = Vec::new();
    for (what, method, uri, body) in &deep {
        assert!(body.len() < LIMIT, "the deep body ({what}) is over the size limit");
        let label = format!("({what}) {method} {uri} {}", short(body));
        let reply = api.send(method.clone(), uri, body.clone()).await?;
        deep_statuses.push(format!("{what}={}", reply.status));
        judge_one("deep", label, &reply, None, &api.snapshot().await?);
    }
    canary.assert_untouched();
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    eprintln!(
        "api hostile bodies: {} huge (x2: sized and chunked), {} deep; statuses {statuses:?}; deep: {}; \
         db unchanged ({})",
        huge.len(),
        deep.len(),
        deep_statuses.join(" "),
        counts(&before)
    );
    Ok(())
}

/// Service settings refuse unknown fields like every other body of the API:
/// a misspelt setting is not silently dropped, and a deeply nested value
/// under an unknown name (which the parser's recursion limit would not catch,
/// as skipped values are not counted) is refused too.
#[tokio::test]
async fn service_settings_with_unknown_fields_are_refused() -> anyhow::Result<()> {
    let api = api().await?;
    let canary = Canary::new();
    let f = fixture(&api).await?;
    let mut baseline = api.snapshot().await?;
    let arrays = format!("{}{}", "[".repeat(40_000), "]".repeat(40_000));
    let services = format!("/api/v1/projects/{}/services", f.project);
    let service = format!("/api/v1/services/{}", f.service);
    let cases: Vec<(Method, &str, String)> = vec![
        (Method::POST, &services, with_raw(json!(settings("web")), "x", &arrays)),
        (Method::PUT, &service, with_raw(json!(f.stored), "x", &arrays)),
        (Method::POST, &services, with_raw(json!(settings("web-2")), "brnach", "\"next\"")),
        (Method::PUT, &service, with_raw(json!(f.stored), "brnach", "\"next\"")),
    ];
    let mut problems = Vec::new();
    for (method, uri, body) in cases {
        let reply = api.send(method.clone(), uri, body.clone()).await?;
        let expect = Expect { value: "", field: None };
        let here = format!("{method} {uri} {}", short(&body));
        problems.extend(judge(&reply, &expect, &canary).into_iter().map(|p| format!("{here}: {p}")));
        let after = api.snapshot().await?;
        let dirty = changed(&baseline, &after);
        if !dirty.is_empty() {
            problems.push(format!("{here}: {} wrote to {dirty:?}", reply.status));
            baseline = after;
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    Ok(())
}

/// The judge itself: a refusal that echoes, leaks the canary, is not a 4xx,
/// is not the API's error body, or names the wrong field does not pass.
#[test]
fn the_judge_catches_echoes_leaks_and_wrong_refusals() {
    let canary = Canary::new();
    let value = format!("main;touch {}", canary.target());
    let reply = |status: u16, code: &str, message: &str| {
        let mut error = json!({ "code": code, "message": message });
        if code == "invalid_field" {
            let (field, text) = message.split_once(": ").unwrap_or(("", message));
            error["fields"] = json!([{ "field": field, "message": text }]);
        }
        Reply { status, content_type: "application/json".into(), body: json!({ "error": error }).to_string() }
    };
    let expect = Expect { value: &value, field: Some(("git_ref", "")) };
    assert!(judge(&reply(422, "invalid_field", "git_ref: may not contain ';'"), &expect, &canary).is_empty());
    for bad in [
        reply(422, "invalid_field", &format!("git_ref: {value} is not a ref")),
        reply(422, "invalid_field", &format!("git_ref: see {}", canary.target())),
        reply(500, "internal", "git_ref: boom"),
        reply(422, "invalid_field", "branch: may not contain ';'"),
        reply(400, "invalid", "git_ref: bad"),
        reply(422, "invalid_field", ""),
        Reply { status: 422, content_type: "text/plain".into(), body: "git_ref: bad".into() },
    ] {
        assert!(!judge(&bad, &expect, &canary).is_empty(), "{bad:?} passed the judge");
    }
    let says = Expect { value: &value, field: Some(("git_ref", "must not start with '-'")) };
    assert!(!judge(&reply(422, "invalid_field", "git_ref: too long"), &says, &canary).is_empty());
    canary.assert_untouched();
}

/// Unknown API paths and bad path or query values of the log stream answer
/// in the API's JSON error shape, not with the dashboard's HTML or axum's
/// plain-text rejections.
#[tokio::test]
async fn unknown_paths_and_bad_stream_parameters_get_json_errors() -> anyhow::Result<()> {
    let api = api().await?;
    for (uri, status) in [
        ("/api/v1/nope", 404),
        ("/api/v1/builds/1/nope/deeper", 404),
        ("/api/v1/builds/abc/log/stream", 422),
        ("/api/v1/builds/1/log/stream?after=x", 422),
    ] {
        let reply = api.send(Method::GET, uri, Body::empty()).await?;
        assert_eq!(reply.status, status, "{uri}: {reply:?}");
        assert!(reply.content_type.starts_with("application/json"), "{uri}: {reply:?}");
        let body: serde_json::Value = serde_json::from_str(&reply.body)?;
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(body["error"]["code"].is_string() && !message.is_empty(), "{uri}: {body}");
    }
    Ok(())
}

/// A password in a service's git URL is a credential: the API shows it
/// masked, and saving the settings back unchanged keeps the stored one.
#[tokio::test]
async fn git_url_passwords_are_masked_and_kept_when_sent_back() -> anyhow::Result<()> {
    let api = api().await?;
    let f = fixture(&api).await?;
    let real = "https://ci:tok3n-value@example.com/shop/private.git";
    let mut s = f.stored.clone();
    s.git_url = real.into();
    let service = format!("/api/v1/services/{}", f.service);
    let reply = api.send(Method::PUT, &service, json!(s).to_string()).await?;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(!reply.body.contains("tok3n-value"), "the password is never shown: {}", reply.body);
    let shown: ServiceDetail = serde_json::from_str(&reply.body)?;
    assert_eq!(shown.settings.git_url, "https://ci:********@example.com/shop/private.git");

    // The form sends the masked URL back with another change.
    let mut again = shown.settings.clone();
    again.branch = "release".into();
    let reply = api.send(Method::PUT, &service, json!(again).to_string()).await?;
    assert_eq!(reply.status, 200, "{reply:?}");
    let get = api.send(Method::GET, &service, Body::empty()).await?;
    assert!(!get.body.contains("tok3n-value"), "{}", get.body);
    let (url, sealed, branch): (String, Option<String>, String) =
        sqlx::query_as("SELECT git_url, git_url_sealed, branch FROM services WHERE id = ?")
            .bind(f.service)
            .fetch_one(&api.engine.db)
            .await?;
    assert_eq!(
        (url.as_str(), branch.as_str()),
        ("https://ci:********@example.com/shop/private.git", "release")
    );
    let sealed = sealed.unwrap_or_default();
    assert!(!sealed.is_empty() && !sealed.contains("tok3n-value"), "sealed at rest: {sealed}");
    let stored = server::projects::ProjectStore::new(api.engine.db.clone()).get_service(f.service).await?;
    assert_eq!(stored.real_git_url(&api.engine.secrets)?, real, "the credentials are kept");
    Ok(())
}
