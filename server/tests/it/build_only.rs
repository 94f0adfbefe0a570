//! "Deploy automatically after every successful build (unless started as
//! Build only)": a build started from the dashboard (server function) or the
//! API deploys when the service deploys automatically, and does not when it
//! was started as build only. The choice is made when the build is queued
//! and kept in its job, so it survives a restart: the builds are queued by
//! one engine that never runs them, and run by a new one on the same data
//! dir (real git, real Docker).

use std::{sync::Arc, time::Duration};

use app::wire::Role;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use server::{
    deploys::switch::RouteTable,
    docker::DockerEngine,
    engine::Engine,
    jobs::JobStatus,
    projects::{ProjectStore, ServiceSpec},
    testkit::{
        app::app_router,
        engine::{anyhow_of, quick_http_check},
        wait::unique_suffix,
        DockerKit, GitRepo, TestDataDir, TestEngine,
    },
};

use crate::rpc::{api, Client};

const PW: &str = "correct horse battery";
const LIMIT: Duration = Duration::from_secs(120);

async fn payload_deploy(engine: &Engine, build: i64) -> anyhow::Result<Value> {
    let payload: String =
        sqlx::query_scalar("SELECT j.payload FROM jobs j JOIN builds b ON b.job_id = j.id WHERE b.id = ?")
            .bind(build)
            .fetch_one(&engine.db)
            .await?;
    Ok(serde_json::from_str::<Value>(&payload)?["deploy"].clone())
}

async fn deployments_of(engine: &Engine, build: i64) -> anyhow::Result<Vec<i64>> {
    Ok(sqlx::query_scalar("SELECT id FROM deployments WHERE build_id = ? ORDER BY id")
        .bind(build)
        .fetch_all(&engine.db)
        .await?)
}

#[tokio::test]
async fn dashboard_and_api_builds_deploy_automatically_unless_build_only_across_a_restart(
) -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let data = TestDataDir::new()?;
    let settings = TestEngine::settings(&kit, &data);
    let docker = DockerEngine::with_client(kit.docker.clone());
    let repo = GitRepo::http_service("auto deploy")?;

    // The process that queues: an engine opened on the data dir, never
    // started (no worker runs), with the dashboard and API in front.
    let db = data.open_db().await?;
    let engine =
        Engine::open(db.clone(), docker.clone(), Arc::new(RouteTable::new()), settings.clone(), None).await?;
    let (router, auth) = app_router(&engine, docker.clone(), data.path()).await?;
    let store = ProjectStore::new(db.clone());
    let project = store.create_project("auto").await?;
    let mut spec = ServiceSpec::new(format!("ad{}", unique_suffix()), repo.url(), 8080);
    spec.health = quick_http_check("/");
    spec.drain_secs = 0;
    assert!(spec.auto_deploy, "new services deploy automatically");
    let service = store.create_service(project.id, &spec).await?;
    let deployer = auth.users.create("builder", PW, Role::Deployer).await?;
    let dashboard = Client::sign_in(&router, "builder", PW).await?;
    let (_, token) = auth.tokens.create(&deployer.caller(), "cli", None).await?;

    // The Build button: the service's setting decides (deploy).
    let clicked = dashboard
        .rpc(
            "trigger_build",
            json!({ "service_id": service.id, "git_ref": null, "deploy": false, "build_only": false }),
        )
        .await?;
    assert_eq!(clicked.status, StatusCode::OK, "{}", clicked.text);
    let clicked_id = clicked.body["id"].as_i64().unwrap_or_default();
    assert_eq!(clicked.body["build_only"], false);
    // The API (and `slipway build --build-only`): build only.
    let path = format!("/api/v1/services/{}/builds", service.id);
    let only = api(&router, Method::POST, &path, &token, Some(json!({ "build_only": true }))).await?;
    assert_eq!(only.status, StatusCode::ACCEPTED, "{}", only.text);
    let only_id = only.body["id"].as_i64().unwrap_or_default();
    assert_eq!(only.body["build_only"], true);
    // Both at once is refused, naming the field.
    let both = api(&router, Method::POST, &path, &token, Some(json!({ "build_only": true, "deploy": true })))
        .await?;
    assert_eq!(both.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", both.text);
    assert!(
        both.body["error"]["message"].as_str().is_some_and(|m| m.starts_with("build_only:")),
        "{}",
        both.text
    );
    // The decision is in each job, written with the build.
    assert_eq!(payload_deploy(&engine, clicked_id).await?, json!(true));
    assert_eq!(payload_deploy(&engine, only_id).await?, json!(false));
    drop((router, auth, dashboard, engine, store));
    db.close().await;

    // A new process on the same data dir runs them.
    let t = TestEngine::start_with(data, settings, docker).await?;
    let built = t.wait_build(clicked_id, LIMIT).await?;
    assert_eq!(built.status, JobStatus::Succeeded, "{:?}", built.error);
    let deployed = t.deployment_of_build(clicked_id).await?;
    let live = t.wait_deployment(deployed, LIMIT).await?;
    assert!(live.status.was_live(), "{live:?}");
    assert_eq!(deployments_of(&t.engine, clicked_id).await?, [deployed]);

    let built_only = t.wait_build(only_id, LIMIT).await?;
    assert_eq!(built_only.status, JobStatus::Succeeded, "{:?}", built_only.error);
    assert!(built_only.build_only);
    // Success and the deploy it asks for are one transaction: none now means none ever.
    assert!(deployments_of(&t.engine, only_id).await?.is_empty(), "a build-only build was deployed");
    let view =
        t.engine.get_build(&server::testkit::engine::user(Role::Viewer), only_id).await.map_err(anyhow_of)?;
    assert!(view.build_only);
    Ok(())
}
