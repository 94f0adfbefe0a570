//! `file://` git URLs (repositories on the server's disk) are refused unless
//! the server allows them (`SLIPWAY_ALLOW_LOCAL_REPOS`, off by default): at
//! service create and update (REST API, and the use-case the dashboard
//! calls), and again at checkout, so a service saved while they were
//! allowed is not cloned once they are not.

use std::time::Duration;

use app::wire::{Role, ServiceSettings};
use axum::body::Body;
use http::{header, Method, Request};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use server::{
    builds::TriggerBuild,
    docker::DockerEngine,
    engine::EngineError,
    jobs::JobStatus,
    projects::ServiceSpec,
    testkit::{
        app::OpenedApp,
        engine::{anyhow_of, user},
        DockerKit, GitRepo, TestDataDir, TestEngine, BASE_IMAGE,
    },
    validate::LOCAL_REPOS_DISABLED,
};
use tower::ServiceExt;

const PW: &str = "correct horse battery";

struct Api {
    app: OpenedApp,
    token: String,
}

/// An opened app (not started) with local repositories allowed or not, and
/// an admin's API token.
async fn api(allow_local_repos: bool) -> anyhow::Result<Api> {
    let app = OpenedApp::with_settings(|s| s.allow_local_repos = allow_local_repos).await?;
    let admin = app.auth.users.create("admin", PW, Role::Admin).await?;
    let (_, token) = app.auth.tokens.create(&admin.caller(), "local-repos", Some(30)).await?;
    Ok(Api { app, token })
}

impl Api {
    async fn send(&self, method: Method, uri: &str, body: Value) -> anyhow::Result<(u16, String)> {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "127.0.0.1:3000")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))?;
        let res = self.app.router.clone().oneshot(req).await?;
        let status = res.status().as_u16();
        let body = String::from_utf8_lossy(&res.into_body().collect().await?.to_bytes()).into_owned();
        Ok((status, body))
    }

    async fn project(&self) -> anyhow::Result<i64> {
        let (status, body) = self.send(Method::POST, "/api/v1/projects", json!({ "name": "disk" })).await?;
        anyhow::ensure!(status == 201, "project: {status} {body}");
        Ok(serde_json::from_str::<Value>(&body)?["id"].as_i64().unwrap_or_default())
    }

    async fn services(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM services").fetch_one(&self.app.engine.db).await?)
    }
}

fn settings(name: &str, git_url: &str) -> ServiceSettings {
    ServiceSettings { name: name.into(), git_url: git_url.into(), ..ServiceSettings::defaults() }
}

/// The refusal: a 4xx whose message names the field and the setting.
fn assert_refused(status: u16, body: &str) {
    assert!((400..500).contains(&status), "status {status}: {body}");
    assert!(body.contains("git_url"), "names the field: {body}");
    assert!(body.contains("SLIPWAY_ALLOW_LOCAL_REPOS"), "names the setting: {body}");
}

#[tokio::test]
async fn api_refuses_file_urls_on_create_and_update_when_not_allowed() -> anyhow::Result<()> {
    let api = api(false).await?;
    let project = api.project().await?;
    let create = format!("/api/v1/projects/{project}/services");
    for url in ["file:///srv/git/app.git", "FILE:///etc", "file://localhost/srv/git/app.git"] {
        let (status, body) = api.send(Method::POST, &create, json!(settings("web", url))).await?;
        assert_refused(status, &body);
    }
    assert_eq!(api.services().await?, 0, "nothing was written");

    // A remote service may not be switched to a local repository either.
    let (status, body) =
        api.send(Method::POST, &create, json!(settings("web", "https://example.com/a.git"))).await?;
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body)?["id"].as_i64().unwrap_or_default();
    let (status, body) = api
        .send(Method::PUT, &format!("/api/v1/services/{id}"), json!(settings("web", "file:///srv/x.git")))
        .await?;
    assert_refused(status, &body);
    let url: String = sqlx::query_scalar("SELECT git_url FROM services WHERE id = ?")
        .bind(id)
        .fetch_one(&api.app.engine.db)
        .await?;
    assert_eq!(url, "https://example.com/a.git");
    Ok(())
}

#[tokio::test]
async fn the_use_case_refuses_file_urls_when_not_allowed() -> anyhow::Result<()> {
    let api = api(false).await?;
    let project = api.project().await?;
    let spec = ServiceSpec::new("web", "file:///srv/git/app.git", 8080);
    let e = api
        .app
        .engine
        .create_service(&user(Role::Deployer), project, &spec, &[])
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("file:// service was created"))?;
    match e {
        EngineError::Invalid { field, message } => {
            assert_eq!(field, "git_url");
            assert_eq!(message, LOCAL_REPOS_DISABLED);
        }
        other => anyhow::bail!("unexpected refusal: {other}"),
    }
    Ok(())
}

#[tokio::test]
async fn api_accepts_file_urls_when_allowed() -> anyhow::Result<()> {
    let api = api(true).await?;
    let project = api.project().await?;
    let create = format!("/api/v1/projects/{project}/services");
    let (status, body) =
        api.send(Method::POST, &create, json!(settings("web", "file:///srv/app.git"))).await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(api.services().await?, 1);
    Ok(())
}

#[tokio::test]
async fn a_saved_file_service_is_not_cloned_once_local_repos_are_off() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let data = TestDataDir::new()?;
    let mut settings = TestEngine::settings(&kit, &data);
    settings.allow_local_repos = false;
    let t = TestEngine::start_with(data, settings, DockerEngine::with_client(kit.docker.clone())).await?;
    let repo = GitRepo::new()?;
    repo.write("Dockerfile", &format!("FROM {BASE_IMAGE}\n"))?;
    repo.commit("one")?;
    // Saved straight into the store, as while local repositories were allowed.
    let service = t.service("disk", "saved", &repo.url()).await?;

    let req = TriggerBuild {
        service_id: service.id,
        git_ref: None,
        trigger: "manual".into(),
        deploy: true,
        build_only: false,
        no_cache: false,
        group: None,
    };
    let queued = t.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    let build = t.wait_build(queued.id, Duration::from_secs(60)).await?;
    assert_eq!(build.status, JobStatus::Failed, "{:?}", build.error);
    let error = build.error.unwrap_or_default();
    assert!(error.contains(LOCAL_REPOS_DISABLED), "{error}");
    assert!(error.contains("git_url"), "{error}");
    assert_eq!(build.commit_sha, None, "nothing was checked out");
    assert!(!t.engine.workspace(build.id).exists(), "no workspace");
    let log = t.engine.build_log(&user(Role::Viewer), build.id, 1).await.map_err(anyhow_of)?;
    let text: Vec<&str> = log.iter().map(|l| l.text.as_str()).collect();
    assert!(text.iter().any(|l| l.contains(LOCAL_REPOS_DISABLED)), "log: {text:?}");
    Ok(())
}
