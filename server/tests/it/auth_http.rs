//! Sign-in through the real dashboard router (`server::http::web::router`) on a
//! real SQLite file: cookies, session ids, whoami, logout, the rate limit
//! and the origin check.

use std::{net::SocketAddr, sync::Arc};

use app::wire::{Caller, Role, Via};
use axum::{body::Body, extract::ConnectInfo, Router};
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use leptos::prelude::LeptosOptions;
use server::{
    auth::{Auth, SessionSettings},
    backend::ServerBackend,
    docker::DockerEngine,
    http::web::{router, AppState},
    status::StatusService,
    testkit::TestDataDir,
};
use tower::ServiceExt;

const PW: &str = "correct horse battery";
const HOST: &str = "127.0.0.1:3000";

struct Dashboard {
    router: Router,
    auth: Auth,
    _dir: TestDataDir,
}

async fn dashboard(settings: SessionSettings) -> anyhow::Result<Dashboard> {
    let dir = TestDataDir::new()?;
    let db = dir.open_db().await?;
    let auth = Auth::open(db.clone(), settings).await?;
    let status = StatusService::new(db, Arc::new(DockerEngine::from_env()));
    let backend = Arc::new(ServerBackend::new(status).with_auth(auth.clone()));
    let leptos_options = LeptosOptions::builder()
        .output_name("slipway")
        .site_root(dir.path().join("site").to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .build();
    let router = router(AppState {
        backend,
        leptos_options,
        auth: auth.clone(),
        engine: None,
        edge: None,
        metrics_token: None,
    });
    Ok(Dashboard { router, auth, _dir: dir })
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
}

struct Call<'a> {
    path: &'a str,
    body: String,
    cookie: Option<&'a str>,
    headers: Vec<(&'static str, &'static str)>,
    peer: SocketAddr,
}

fn call(path: &str) -> Call<'_> {
    Call { path, body: String::new(), cookie: None, headers: Vec::new(), peer: ([10, 0, 0, 1], 5000).into() }
}

impl<'a> Call<'a> {
    fn form(mut self, name: &str, password: &str) -> Self {
        self.body = format!("name={name}&password={}", password.replace(' ', "+"));
        self
    }
    fn cookie(mut self, id: &'a str) -> Self {
        self.cookie = Some(id);
        self
    }
    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
    fn peer_ip(mut self, ip: [u8; 4]) -> Self {
        self.peer = (ip, 5000).into();
        self
    }

    async fn send(self, app: &Dashboard) -> anyhow::Result<Reply> {
        let mut req = Request::post(self.path)
            .header(header::HOST, HOST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json");
        if let Some(id) = self.cookie {
            req = req.header(header::COOKIE, format!("id={id}"));
        }
        for (k, v) in self.headers {
            req = req.header(k, v);
        }
        let mut req = req.body(Body::from(self.body))?;
        req.extensions_mut().insert(ConnectInfo(self.peer));
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

async fn whoami(app: &Dashboard, cookie: Option<&str>) -> anyhow::Result<Caller> {
    let mut c = call("/rpc/whoami");
    c.cookie = cookie;
    let reply = c.send(app).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    Ok(serde_json::from_str(&reply.body)?)
}

/// Signs in and returns the new session id.
async fn sign_in(app: &Dashboard, name: &str, cookie: Option<&str>) -> anyhow::Result<String> {
    let mut c = call("/rpc/login").form(name, PW);
    c.cookie = cookie;
    let reply = c.send(app).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.session_id().ok_or_else(|| anyhow::anyhow!("no session cookie: {:?}", reply.set_cookie))
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_whoami_follows_it() -> anyhow::Result<()> {
    let app = dashboard(SessionSettings::default()).await?;
    let ann = app.auth.users.create("ann", PW, Role::Deployer).await?;
    assert_eq!(whoami(&app, None).await?, Caller::Anonymous);

    let reply = call("/rpc/login").form("ann", PW).send(&app).await?;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let expected = Caller::User { id: ann.id, name: "ann".into(), role: Role::Deployer, via: Via::Session };
    assert_eq!(serde_json::from_str::<Caller>(&reply.body)?, expected);
    assert_eq!(reply.set_cookie.len(), 1, "{:?}", reply.set_cookie);
    let cookie = &reply.set_cookie[0];
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.split("; ").any(|a| a == flag), "{flag} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "not Secure by default (plain http): {cookie}");
    let id = reply.session_id().expect("session cookie");
    assert_eq!(whoami(&app, Some(&id)).await?, expected);
    Ok(())
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_setting_says_https() -> anyhow::Result<()> {
    let app = dashboard(SessionSettings { secure: true, ..SessionSettings::default() }).await?;
    app.auth.users.create("ann", PW, Role::Viewer).await?;

    let reply = call("/rpc/login").form("ann", PW).send(&app).await?;

    assert!(reply.set_cookie[0].split("; ").any(|a| a == "Secure"), "{:?}", reply.set_cookie);
    Ok(())
}

#[tokio::test]
async fn the_session_id_changes_at_login_and_the_old_one_dies() -> anyhow::Result<()> {
    let app = dashboard(SessionSettings::default()).await?;
    app.auth.users.create("ann", PW, Role::Viewer).await?;
    app.auth.users.create("bob", PW, Role::Admin).await?;

    // An existing session signs in again (as someone else): new id.
    let first = sign_in(&app, "ann", None).await?;
    let second = sign_in(&app, "bob", Some(&first)).await?;
    assert_ne!(first, second);
    assert_eq!(whoami(&app, Some(&first)).await?, Caller::Anonymous, "the old id is gone");
    assert!(matches!(whoami(&app, Some(&second)).await?, Caller::User { name, .. } if name == "bob"));

    // A planted (fixation) id is never adopted.
    let planted = "AAAAAAAAAAAAAAAAAAAAAA";
    let third = sign_in(&app, "ann", Some(planted)).await?;
    assert_ne!(third, planted);
    assert_eq!(whoami(&app, Some(planted)).await?, Caller::Anonymous);
    Ok(())
}

#[tokio::test]
async fn logout_removes_the_cookie_and_ends_the_session() -> anyhow::Result<()> {
    let app = dashboard(SessionSettings::default()).await?;
    app.auth.users.create("ann", PW, Role::Viewer).await?;
    let id = sign_in(&app, "ann", None).await?;

    let reply = call("/rpc/logout").cookie(&id).send(&app).await?;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let removal = reply.set_cookie.iter().find(|c| c.starts_with("id=")).expect("cookie removal");
    assert!(removal.contains("Max-Age=0") || removal.contains("Expires=Thu, 01 Jan 1970"), "{removal}");
    assert_eq!(whoami(&app, Some(&id)).await?, Caller::Anonymous, "replaying the old cookie");
    Ok(())
}

#[tokio::test]
async fn wrong_unknown_and_disabled_are_refused_and_disabling_ends_sessions() -> anyhow::Result<()> {
    let app = dashboard(SessionSettings::default()).await?;
    app.auth.users.create("root", PW, Role::Admin).await?;
    let ann = app.auth.users.create("ann", PW, Role::Viewer).await?;

    let wrong = call("/rpc/login").form("ann", "not the password").send(&app).await?;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.body.contains("wrong name or password"), "{}", wrong.body);
    assert_eq!(wrong.session_id(), None, "no session for a failed login");
    let unknown = call("/rpc/login").form("nobody", PW).send(&app).await?;
    assert_eq!(unknown.status, StatusCode::FORBIDDEN);
    assert_eq!(unknown.body, wrong.body, "unknown names read like wrong passwords");

    let id = sign_in(&app, "ann", None).await?;
    app.auth.users.set_disabled(ann.id, true).await?;
    assert_eq!(whoami(&app, Some(&id)).await?, Caller::Anonymous, "disabled: the session ends");
    let disabled = call("/rpc/login").form("ann", PW).send(&app).await?;
    assert_eq!(disabled.status, StatusCode::FORBIDDEN);
    assert!(disabled.body.contains("this account is disabled"), "{}", disabled.body);

    // Re-enabled, the old session stays dead; a password change ends sessions too.
    app.auth.users.set_disabled(ann.id, false).await?;
    assert_eq!(whoami(&app, Some(&id)).await?, Caller::Anonymous);
    let id = sign_in(&app, "ann", None).await?;
    app.auth.users.set_password(ann.id, "another long password").await?;
    assert_eq!(whoami(&app, Some(&id)).await?, Caller::Anonymous);
    Ok(())
}

#[tokio::test]
async fn five_failures_lock_the_name_for_that_address() -> anyhow::Result<()> {
    let app = dashboard(SessionSettings::default()).await?;
    app.auth.users.create("ann", PW, Role::Viewer).await?;

    for _ in 0..5 {
        let reply = call("/rpc/login").form("ann", "not the password").send(&app).await?;
        assert!(reply.body.contains("wrong name or password"), "{}", reply.body);
    }
    let locked = call("/rpc/login").form("ann", PW).send(&app).await?;

    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    let error: serde_json::Value = serde_json::from_str(&locked.body)?;
    let message = error["message"].as_str().unwrap_or_default();
    let secs: u64 = message
        .strip_prefix("too many failed logins, try again in ")
        .and_then(|rest| rest.strip_suffix(" s"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected message: {message}"));
    assert!((890..=900).contains(&secs), "{secs}");
    assert_eq!(locked.session_id(), None);

    // Another address still gets in, and its success does not unlock the first.
    let elsewhere = call("/rpc/login").form("ann", PW).peer_ip([10, 0, 0, 2]).send(&app).await?;
    assert_eq!(elsewhere.status, StatusCode::OK, "{}", elsewhere.body);
    let still = call("/rpc/login").form("ann", PW).send(&app).await?;
    assert!(still.body.contains("too many failed logins"), "{}", still.body);
    Ok(())
}

#[tokio::test]
async fn cross_origin_posts_are_refused() -> anyhow::Result<()> {
    let app = dashboard(SessionSettings::default()).await?;
    app.auth.users.create("ann", PW, Role::Viewer).await?;

    let foreign = [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("origin", "http://127.0.0.1:3001"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ];
    for (name, value) in foreign {
        let reply = call("/rpc/login").form("ann", PW).header(name, value).send(&app).await?;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(reply.body.contains("cross-origin request refused"), "{}", reply.body);
        assert_eq!(reply.session_id(), None);
    }
    let same = call("/rpc/login")
        .form("ann", PW)
        .header("origin", "http://127.0.0.1:3000")
        .header("sec-fetch-site", "same-origin")
        .send(&app)
        .await?;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    Ok(())
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_the_absolute_limit() -> anyhow::Result<()> {
    use std::time::Duration;
    let idle = SessionSettings { idle_timeout: Duration::from_secs(1), ..SessionSettings::default() };
    let absolute = SessionSettings { absolute_timeout: Duration::from_secs(1), ..SessionSettings::default() };
    for settings in [idle, absolute] {
        let app = dashboard(settings).await?;
        app.auth.users.create("ann", PW, Role::Viewer).await?;
        let id = sign_in(&app, "ann", None).await?;
        assert!(matches!(whoami(&app, Some(&id)).await?, Caller::User { .. }), "{settings:?}");

        tokio::time::sleep(Duration::from_millis(2100)).await;

        assert_eq!(whoami(&app, Some(&id)).await?, Caller::Anonymous, "{settings:?}");
    }
    Ok(())
}
