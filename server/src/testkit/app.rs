//! The whole dashboard/API router in-process, on a test engine: what
//! `slipway serve` builds, without sockets (drive it with `tower::oneshot`).

use std::{path::Path, sync::Arc};

use axum::Router;
use leptos::prelude::LeptosOptions;

use super::{DockerKit, TestDataDir, TestEngine};
use crate::{
    auth::{Auth, SessionSettings},
    backend::ServerBackend,
    deploys::switch::RouteTable,
    docker::DockerEngine,
    engine::Engine,
    status::StatusService,
    web::{router, AppState},
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
        let kit = DockerKit::new().await?;
        let data = TestDataDir::new()?;
        let db = data.open_db().await?;
        let docker = DockerEngine::with_client(kit.docker.clone());
        let settings = TestEngine::settings(&kit, &data);
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
