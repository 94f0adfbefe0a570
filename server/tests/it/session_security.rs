//! Session security through the real dashboard router, beyond what
//! `auth_http.rs` covers (cookie flags, id cycling at login, logout, the
//! login rate limit, origin refusal of sign-in, timeouts): cross-origin
//! server function calls by a signed-in user, password changes, disabling
//! through the admin function, the shared rate limit, and first-run setup.

use std::{net::SocketAddr, sync::Arc};

use app::{
    wire::{Caller, Role, SetupInfo, Via},
    AppError,
};
use axum::{body::Body, extract::ConnectInfo, Router};
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use server::{
    auth::Auth,
    deploys::switch::RouteTable,
    docker::DockerEngine,
    engine::{Engine, EngineSettings},
    projects::ProjectStore,
    testkit::{app::app_router, TestDataDir},
};
use tower::ServiceExt;

const PW: &str = "correct horse battery";
const PW2: &str = "another horse battery";
const HOST: &str = "127.0.0.1:3000";
const ORIGIN: &str = "http://127.0.0.1:3000";

struct Dashboard {
    router: Router,
    auth: Auth,
    engine: Engine,
    _dir: TestDataDir,
}

/// The router with an engine that is opened but not started (no worker,
/// no Docker call: these tests only touch users, sessions and projects).
async fn dashboard() -> anyhow::Result<Dashboard> {
    let dir = TestDataDir::new()?;
    let db = dir.open_db().await?;
    let docker = DockerEngine::from_env();
    let engine = Engine::open(
        db.clone(),
        docker.clone(),
        Arc::new(RouteTable::new()),
        EngineSettings { allow_local_repos: true, ..EngineSettings::new(dir.path()) },
        None,
    )
    .await?;
    let (router, auth) = app_router(&engine, docker, dir.path()).await?;
    Ok(Dashboard { router, auth, engine, _dir: dir })
}

struct Reply {
    status: StatusCode,
    set_cookie: Vec<String>,
    body: String,
}

impl Reply {
    /// The value of the `id` session cookie this reply sets.
    fn session_id(&self) -> Option<String> {
        self.set_cookie.iter().find_map(|c| c.strip_prefix("id=")?.split(';').next().map(str::to_owned))
    }

    fn error(&self) -> AppError {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not an AppError ({e}): {}", self.body))
    }

    fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("unexpected body ({e}): {}", self.body))
    }
}

/// A same-origin POST (as the dashboard's own pages send), JSON or form.
struct Post<'a> {
    path: &'a str,
    body: Body,
    form: bool,
    cookie: Option<&'a str>,
    headers: Vec<(&'static str, &'static str)>,
}

fn json_post(path: &str, body: Value) -> Post<'_> {
    Post {
        path,
        body: Body::from(body.to_string()),
        form: false,
        cookie: None,
        headers: vec![("origin", ORIGIN)],
    }
}

fn form_post<'a>(path: &'a str, body: &str) -> Post<'a> {
    Post {
        path,
        body: Body::from(body.to_owned()),
        form: true,
        cookie: None,
        headers: vec![("origin", ORIGIN)],
    }
}

impl<'a> Post<'a> {
    fn cookie(mut self, id: &'a str) -> Self {
        self.cookie = Some(id);
        self
    }

    /// Replaces the same-origin headers with these.
    fn headers(mut self, headers: &[(&'static str, &'static str)]) -> Self {
        self.headers = headers.to_vec();
        self
    }

    async fn send(self, app: &Dashboard) -> anyhow::Result<Reply> {
        let content_type = if self.form { "application/x-www-form-urlencoded" } else { "application/json" };
        let mut req = Request::post(self.path)
            .header(header::HOST, HOST)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, "application/json");
        if let Some(id) = self.cookie {
            req = req.header(header::COOKIE, format!("id={id}"));
        }
        for (k, v) in self.headers {
            req = req.header(k, v);
        }
        let mut req = req.body(self.body)?;
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5000))));
        let res = app.router.clone().oneshot(req).await?;
        let status = res.status();
        let set_cookie = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let body = String::from_utf8_lossy(&res.into_body().collect().await?.to_bytes()).into_owned();
        Ok(Reply { status, set_cookie, body })
    }
}

fn credentials(name: &str, password: &str) -> String {
    format!("name={name}&password={}", password.replace(' ', "+"))
}

async fn sign_in(app: &Dashboard, name: &str, password: &str) -> anyhow::Result<String> {
    let reply = form_post("/rpc/login", &credentials(name, password)).send(app).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.session_id().ok_or_else(|| anyhow::anyhow!("no session cookie: {:?}", reply.set_cookie))
}

async fn whoami(app: &Dashboard, cookie: &str) -> anyhow::Result<Caller> {
    Ok(form_post("/rpc/whoami", "").cookie(cookie).send(app).await?.json())
}

async fn project_names(app: &Dashboard) -> anyhow::Result<Vec<String>> {
    Ok(ProjectStore::new(app.engine.db.clone()).list_projects().await?.into_iter().map(|p| p.name).collect())
}

#[tokio::test]
async fn a_cross_origin_call_by_a_signed_in_deployer_is_refused_and_does_nothing() -> anyhow::Result<()> {
    let app = dashboard().await?;
    app.auth.users.create("dee", PW, Role::Deployer).await?;
    let id = sign_in(&app, "dee", PW).await?;

    let foreign: [&[(&str, &str)]; 3] = [
        &[("origin", "https://evil.example")],
        &[("sec-fetch-site", "cross-site")],
        &[("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")],
    ];
    for (i, headers) in foreign.into_iter().enumerate() {
        let name = format!("evil-{i}");
        let reply = json_post("/rpc/create_project", json!({ "name": name }))
            .cookie(&id)
            .headers(headers)
            .send(&app)
            .await?;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{headers:?}: {}", reply.body);
        assert!(
            matches!(reply.error(), AppError::Forbidden(m) if m.contains("cross-origin request refused")),
            "{}",
            reply.body
        );
    }
    assert_eq!(project_names(&app).await?, Vec::<String>::new(), "no project was made");

    // The same call from the dashboard's own origin works, with the same cookie.
    let same = json_post("/rpc/create_project", json!({ "name": "fine" }))
        .cookie(&id)
        .headers(&[("origin", ORIGIN), ("sec-fetch-site", "same-origin")])
        .send(&app)
        .await?;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    assert_eq!(project_names(&app).await?, ["fine"]);
    Ok(())
}

#[tokio::test]
async fn a_password_change_keeps_the_caller_signed_in_and_ends_their_other_sessions() -> anyhow::Result<()> {
    let app = dashboard().await?;
    let ann = app.auth.users.create("ann", PW, Role::Viewer).await?;
    let here = sign_in(&app, "ann", PW).await?;
    let elsewhere = sign_in(&app, "ann", PW).await?;
    let me = Caller::User { id: ann.id, name: "ann".into(), role: Role::Viewer, via: Via::Session };

    let wrong = json_post("/rpc/change_password", json!({ "current": PW2, "new_password": PW2 }))
        .cookie(&here)
        .send(&app)
        .await?;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", wrong.body);
    assert_eq!(wrong.error().field(), Some("current"));
    assert_eq!(whoami(&app, &elsewhere).await?, me, "a refused change ends nothing");

    let changed = json_post("/rpc/change_password", json!({ "current": PW, "new_password": PW2 }))
        .cookie(&here)
        .send(&app)
        .await?;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let renewed = changed.session_id().expect("the session is re-issued");
    assert_ne!(renewed, here, "under a new id");
    assert_eq!(whoami(&app, &renewed).await?, me, "the caller stays signed in");
    assert_eq!(whoami(&app, &here).await?, Caller::Anonymous, "the old id is gone");
    assert_eq!(whoami(&app, &elsewhere).await?, Caller::Anonymous, "the other session ended");
    let old = form_post("/rpc/login", &credentials("ann", PW)).send(&app).await?;
    assert_eq!(old.status, StatusCode::FORBIDDEN, "{}", old.body);
    sign_in(&app, "ann", PW2).await?;
    Ok(())
}

#[tokio::test]
async fn wrong_current_passwords_are_rate_limited_together_with_sign_in() -> anyhow::Result<()> {
    let app = dashboard().await?;
    app.auth.users.create("ann", PW, Role::Viewer).await?;
    let id = sign_in(&app, "ann", PW).await?;
    let attempt = |current: &'static str| {
        json_post("/rpc/change_password", json!({ "current": current, "new_password": PW2 }))
    };

    for _ in 0..5 {
        let reply = attempt("not the password").cookie(&id).send(&app).await?;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
    }
    let limited = attempt(PW).cookie(&id).send(&app).await?;
    let login = form_post("/rpc/login", &credentials("ann", PW)).send(&app).await?;

    for reply in [&limited, &login] {
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.body);
        let AppError::RateLimited(message) = reply.error() else { panic!("{}", reply.body) };
        let secs: u64 = message
            .split_once("try again in ")
            .and_then(|(_, rest)| rest.strip_suffix(" s"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no retry time in: {message}"));
        assert!((1..=900).contains(&secs), "{message}");
    }
    assert_eq!(login.session_id(), None, "no session for a limited sign-in");
    assert!(matches!(whoami(&app, &id).await?, Caller::User { .. }), "still signed in");
    assert!(app.auth.users.verify_login("ann", PW).await.is_ok(), "the password was not changed");
    Ok(())
}

#[tokio::test]
async fn disabling_a_user_through_the_admin_function_ends_their_session_at_the_next_request(
) -> anyhow::Result<()> {
    let app = dashboard().await?;
    app.auth.users.create("root", PW, Role::Admin).await?;
    let ann = app.auth.users.create("ann", PW, Role::Viewer).await?;
    let admin = sign_in(&app, "root", PW).await?;
    let victim = sign_in(&app, "ann", PW).await?;
    let overview = || json_post("/rpc/overview", json!({}));
    assert_eq!(overview().cookie(&victim).send(&app).await?.status, StatusCode::OK);

    let reply = json_post("/rpc/set_user_disabled", json!({ "user_id": ann.id, "disabled": true }))
        .cookie(&admin)
        .send(&app)
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let next = overview().cookie(&victim).send(&app).await?;
    assert_eq!(next.status, StatusCode::UNAUTHORIZED, "{}", next.body);
    assert_eq!(next.error(), AppError::Unauthenticated);
    assert_eq!(whoami(&app, &victim).await?, Caller::Anonymous);
    assert!(
        matches!(whoami(&app, &admin).await?, Caller::User { name, .. } if name == "root"),
        "the admin stays"
    );

    // Re-enabled, the old session stays ended: a new sign-in is needed.
    let enable = json_post("/rpc/set_user_disabled", json!({ "user_id": ann.id, "disabled": false }));
    assert_eq!(enable.cookie(&admin).send(&app).await?.status, StatusCode::OK);
    assert_eq!(whoami(&app, &victim).await?, Caller::Anonymous);
    Ok(())
}

#[tokio::test]
async fn first_run_setup_needs_the_token_creates_a_signed_in_admin_and_happens_once() -> anyhow::Result<()> {
    let app = dashboard().await?;
    let state = || json_post("/rpc/setup_state", json!({}));
    assert_eq!(state().send(&app).await?.json::<SetupInfo>(), SetupInfo { needs_setup: true });
    let token = app.auth.open_setup().await?.expect("a token while no user exists");
    let setup = |token: &str, name: &str| {
        json_post("/rpc/setup_admin", json!({ "token": token, "name": name, "password": PW }))
    };

    let wrong = setup("not-the-token", "mallory").send(&app).await?;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.body);
    assert!(matches!(wrong.error(), AppError::Forbidden(_)), "{}", wrong.body);
    assert_eq!(wrong.session_id(), None);
    assert_eq!(app.auth.users.count().await?, 0);

    // A planted session id is not adopted by the new admin's session.
    let planted = "AAAAAAAAAAAAAAAAAAAAAA";
    let done = setup(&token, "root").cookie(planted).send(&app).await?;
    let caller: Caller = done.json();
    assert!(matches!(&caller, Caller::User { name, role: Role::Admin, .. } if name == "root"), "{caller:?}");
    let id = done.session_id().expect("signed in");
    assert_ne!(id, planted);
    let cookie = done.set_cookie.iter().find(|c| c.starts_with("id=")).expect("cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.split("; ").any(|a| a == flag), "{flag} missing: {cookie}");
    }
    assert_eq!(whoami(&app, &id).await?, caller);
    assert_eq!(state().send(&app).await?.json::<SetupInfo>(), SetupInfo { needs_setup: false });

    let again = setup(&token, "second").send(&app).await?;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(matches!(again.error(), AppError::Conflict(_)), "{}", again.body);
    assert_eq!(app.auth.users.count().await?, 1, "still one user");
    Ok(())
}
