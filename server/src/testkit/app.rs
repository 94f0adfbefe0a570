//! The whole dashboard/API router in-process, on a test engine: what
//! `slipway serve` builds, without sockets (drive it with `tower::oneshot`).

use std::{path::Path, sync::Arc};

use axum::Router;
use leptos::prelude::LeptosOptions;

use app::wire::Role;

use super::{
    engine::{anyhow_of, user},
    DockerKit, TestDataDir, TestEngine,
};
use crate::{
    auth::{Auth, SessionSettings},
    backend::ServerBackend,
    builds::TriggerBuild,
    deploys::{switch::RouteTable, DeployRequest},
    docker::DockerEngine,
    engine::{Engine, EngineSettings},
    http::web::{router, AppState},
    notify::NewTarget,
    projects::{ProjectStore, ServiceSpec},
    status::StatusService,
};

/// A fresh data dir, an engine on it and the real Docker Engine, opened but
/// not started (no worker runs a job: fixtures stay as written), and the
/// router over it.
pub struct OpenedApp {
    pub router: Router,
    pub auth: Auth,
    pub engine: Engine,
    pub data: TestDataDir,
    pub kit: DockerKit,
}

impl OpenedApp {
    pub async fn new() -> anyhow::Result<Self> {
        OpenedApp::with_settings(|_| {}).await
    }

    /// Like [`new`](Self::new), with the test engine's settings changed by
    /// `adjust` first.
    pub async fn with_settings(adjust: impl FnOnce(&mut EngineSettings)) -> anyhow::Result<Self> {
        let kit = DockerKit::new().await?;
        let data = TestDataDir::new()?;
        let db = data.open_db().await?;
        let docker = DockerEngine::with_client(kit.docker.clone());
        let mut settings = TestEngine::settings(&kit, &data);
        adjust(&mut settings);
        let engine = Engine::open(db, docker.clone(), Arc::new(RouteTable::new()), settings, None).await?;
        let (router, auth) = app_router(&engine, docker, data.path()).await?;
        Ok(OpenedApp { router, auth, engine, data, kit })
    }
}

/// The router over `engine` (sessions, tokens and users on its database)
/// and the `Auth` behind it. The site root is an empty dir under `data_dir`.
pub async fn app_router(
    engine: &Engine,
    docker: DockerEngine,
    data_dir: &Path,
) -> anyhow::Result<(Router, Auth)> {
    let db = engine.db.clone();
    let auth = Auth::open(db.clone(), SessionSettings::default()).await?;
    let status = StatusService::new(db, Arc::new(docker));
    let backend = Arc::new(ServerBackend::new(status).with_auth(auth.clone()).with_engine(engine.clone()));
    let leptos_options = LeptosOptions::builder()
        .output_name("slipway")
        .site_root(data_dir.join("site").to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .build();
    let state = AppState {
        backend,
        leptos_options,
        auth: auth.clone(),
        engine: Some(engine.clone()),
        edge: None,
        metrics_token: None,
    };
    Ok((router(state), auth))
}

/// A service with the history the authorization matrices' rows act on: a
/// queued build, a succeeded one (of `image_id`), a superseded deployment
/// of it, a webhook secret and a notification target of its project.
pub struct Seeded {
    pub project: i64,
    pub service: i64,
    pub queued_build: i64,
    /// The queued build's job.
    pub job: i64,
    pub good_build: i64,
    pub old_deployment: i64,
    /// The service's sealed webhook secret as seeded.
    pub webhook_secret: String,
    pub target: i64,
    /// An uploaded certificate (for `kept-<tag>.matrix.test`), for the
    /// delete rows.
    pub certificate: i64,
    /// A certificate not uploaded yet (`up-<tag>.matrix.test`), for the
    /// upload rows: chain and key PEM.
    pub spare_certificate: (String, String),
}

/// Writes a [`Seeded`] project `prj-<tag>` with service `svc-<tag>`.
pub async fn seed_history(engine: &Engine, image_id: &str, tag: &str) -> anyhow::Result<Seeded> {
    let store = ProjectStore::new(engine.db.clone());
    let project = store.create_project(&format!("prj-{tag}")).await?;
    let spec = ServiceSpec::new(format!("svc-{tag}"), "file:///nonexistent/repo", 8080);
    let service = store.create_service(project.id, &spec).await?;
    let deployer = user(Role::Deployer);
    let trigger = || TriggerBuild::manual_build_only(service.id);
    let queued = engine.trigger_build(&deployer, trigger()).await.map_err(anyhow_of)?;
    let good = engine.trigger_build(&deployer, trigger()).await.map_err(anyhow_of)?;
    sqlx::query("UPDATE builds SET status = 'succeeded', image_id = ?, progress = 100 WHERE id = ?")
        .bind(image_id)
        .bind(good.id)
        .execute(&engine.db)
        .await?;
    let req = DeployRequest { service_id: service.id, build_id: Some(good.id), image: None, reason: None };
    let old = engine.deploy(&deployer, req).await.map_err(anyhow_of)?;
    sqlx::query("UPDATE deployments SET status = 'superseded' WHERE id = ?")
        .bind(old.id)
        .execute(&engine.db)
        .await?;
    let admin = user(Role::Admin);
    engine.webhook_info(&admin, service.id).await.map_err(anyhow_of)?;
    let new = NewTarget {
        name: "fixture".into(),
        kind: "slack".into(),
        // Port 9 (discard) refuses at once: a "Send test" of it fails fast.
        url: "http://127.0.0.1:9/T/B/x".into(),
        events: vec!["deploy.failed".into()],
    };
    let target = engine.create_notification_target(&admin, project.id, new).await.map_err(anyhow_of)?;
    let ca = super::tls::TestCa::new()?;
    let kept = ca.issue(&[&format!("kept-{tag}.matrix.test")])?;
    let form = app::wire::CertificateForm { chain_pem: kept.chain_pem, key_pem: kept.key_pem };
    let certificate = engine.upload_certificate(&admin, form).await.map_err(anyhow_of)?;
    let spare = ca.issue(&[&format!("up-{tag}.matrix.test")])?;
    Ok(Seeded {
        project: project.id,
        service: service.id,
        queued_build: queued.id,
        job: queued.job_id.unwrap_or_default(),
        good_build: good.id,
        old_deployment: old.id,
        webhook_secret: sealed_webhook_secret(engine, service.id).await?,
        target: target.id,
        certificate: certificate.id.unwrap_or_default(),
        spare_certificate: (spare.chain_pem, spare.key_pem),
    })
}

/// The service's webhook secret as stored (sealed).
pub async fn sealed_webhook_secret(engine: &Engine, service_id: i64) -> anyhow::Result<String> {
    let sealed: Option<String> = sqlx::query_scalar("SELECT webhook_secret FROM services WHERE id = ?")
        .bind(service_id)
        .fetch_one(&engine.db)
        .await?;
    sealed.ok_or_else(|| anyhow::anyhow!("service {service_id} has no webhook secret"))
}
