//! The runtime routes over HTTP through the real router: hostile ids and
//! queries get a 4xx naming the problem, and the caller is checked before
//! the input (an anonymous request with a bad id is a 401, not a 400).

use app::wire::Role;
use axum::body::Body;
use http::{header, Method, Request};
use http_body_util::BodyExt;
use serde_json::Value;
use server::{
    projects::{ProjectStore, ServiceSpec},
    testkit::app::OpenedApp,
};
use tower::ServiceExt;

async fn call(
    app: &OpenedApp,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = Request::builder().method(method).uri(path).header(header::HOST, "127.0.0.1:3000");
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let res = app.router.clone().oneshot(req.body(Body::empty())?).await?;
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

#[tokio::test]
async fn hostile_runtime_requests_are_refused_after_the_caller_check() -> anyhow::Result<()> {
    let app = OpenedApp::new().await?;
    let viewer = app.auth.users.create("rt-viewer", "correct horse battery", Role::Viewer).await?;
    let (_, token) = app.auth.tokens.create(&viewer.caller(), "rt", None).await?;
    let store = ProjectStore::new(app.engine.db.clone());
    let project = store.create_project("rt").await?;
    let service = store.create_service(project.id, &ServiceSpec::new("web", "file:///nowhere", 8080)).await?;
    let s = service.id;

    // Anonymous: 401 whatever the id or query says.
    for path in [
        "/api/v1/services/abc/logs".to_string(),
        "/api/v1/services/0/runtime".into(),
        format!("/api/v1/services/{s}/logs?tail=abc"),
        "/api/v1/deployments/-1/events".into(),
    ] {
        let (status, body) = call(&app, Method::GET, &path, None).await?;
        assert_eq!(status, 401, "{path}: {body}");
    }
    let (status, _) = call(&app, Method::POST, "/api/v1/services/abc/restart", None).await?;
    assert_eq!(status, 401);

    // Signed in: a bad id or query is a 422 (as documented) with a message naming it.
    let cases = [
        ("/api/v1/services/abc/logs".to_string(), "id"),
        ("/api/v1/services/0/runtime".into(), "id"),
        (format!("/api/v1/services/{s}/logs?tail=-1"), "tail"),
        (format!("/api/v1/services/{s}/logs?tail=10001"), "tail"),
        (format!("/api/v1/services/{s}/logs?since=5y"), "since"),
        (format!("/api/v1/services/{s}/logs?since=%24(reboot)"), "since"),
        (format!("/api/v1/services/{s}/logs?follow=maybe"), "follow"),
        (format!("/api/v1/services/{s}/logs?shell=1"), "shell"),
        (format!("/api/v1/services/{s}/logs?deployment=0"), "deployment"),
    ];
    for (path, names) in cases {
        let (status, body) = call(&app, Method::GET, &path, Some(&token)).await?;
        assert_eq!(status, 422, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{path}: the message {message:?} names {names}");
    }
    // Ids that do not exist.
    let (status, _) = call(&app, Method::GET, "/api/v1/services/999999/runtime", Some(&token)).await?;
    assert_eq!(status, 404);
    let (status, _) = call(&app, Method::GET, "/api/v1/deployments/999999/events", Some(&token)).await?;
    assert_eq!(status, 404);
    // A viewer may not act, whatever the body.
    let (status, _) =
        call(&app, Method::POST, &format!("/api/v1/services/{s}/restart"), Some(&token)).await?;
    assert_eq!(status, 403);
    let (status, _) =
        call(&app, Method::DELETE, &format!("/api/v1/services/{s}?confirm=web"), Some(&token)).await?;
    assert_eq!(status, 403);
    assert!(store.get_service(s).await.is_ok(), "nothing was deleted");
    Ok(())
}
