//! The dashboard's HTTP server: Leptos SSR routes, server functions, static
//! assets under `/pkg`.

use std::sync::Arc;

use anyhow::Context;
use app::{backend::Backend, shell, App};
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::services::ServeDir;

use crate::{
    auth::{Auth, SessionSettings},
    backend::ServerBackend,
    config::Config,
    docker::DockerEngine,
    edge::{proxy::EdgeConfig, reach::Reach, EdgeRouter},
    engine::{Engine, EngineSettings},
    status::StatusService,
};

/// Everything the HTTP layer needs, built once at startup.
#[derive(Clone)]
pub struct AppState {
    pub backend: Arc<dyn Backend>,
    pub leptos_options: LeptosOptions,
    /// Sessions and users, for the session layer and caller resolution.
    pub auth: Auth,
    /// The engine, for routes outside the server functions (the log stream);
    /// `None` in tests that serve only sign-in.
    pub engine: Option<Engine>,
    /// The edge router, for its per-route counters on `/metrics`.
    pub edge: Option<Arc<EdgeRouter>>,
    /// When set, `/metrics` needs `Authorization: Bearer <this>`.
    pub metrics_token: Option<String>,
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let db = crate::db::open(&config.data_dir).await?;
    let docker = DockerEngine::from_env();
    let mut settings = EngineSettings::new(&config.data_dir);
    settings.worker.workers = config.workers;
    settings.allow_local_repos = config.allow_local_repos;
    settings.retention.build_cache_budget = config.build_cache_budget;
    if config.allow_local_repos {
        tracing::warn!("file:// git URLs are allowed (SLIPWAY_ALLOW_LOCAL_REPOS): deployers can build any repository on this server's disk");
    }
    let edge = Arc::new(EdgeRouter::new());
    let engine =
        Engine::open(db.clone(), docker.clone(), edge.clone(), settings, config.secret_key.as_deref())
            .await?;
    // Recovery, orphan removal and the route table happen before anything
    // is served, so the edge answers with the live versions from its first
    // request.
    let running = engine.start().await?;
    let edge_listener = tokio::net::TcpListener::bind(config.edge_addr)
        .await
        .with_context(|| format!("cannot listen on {} (SLIPWAY_EDGE_ADDR)", config.edge_addr))?;
    tracing::info!(addr = %config.edge_addr, "edge router listening on http://{}", config.edge_addr);
    let edge_stop = tokio_util::sync::CancellationToken::new();
    let edge_task = tokio::spawn(crate::edge::proxy::serve(
        edge_listener,
        edge.clone(),
        EdgeConfig::default(),
        edge_stop.clone(),
    ));
    let runtime = Arc::new(docker);
    let auth = Auth::open(db.clone(), SessionSettings::default()).await?;
    if let Some(token) = auth.open_setup().await? {
        tracing::warn!(
            "no user exists yet: open http://{}/setup and enter this one-time setup token: {token} \
             (or run `slipway admin create`)",
            config.dashboard_addr
        );
    }
    let session_cleanup = auth.spawn_session_cleanup();
    let backend: Arc<dyn Backend> = Arc::new(
        ServerBackend::new(StatusService::new(db, runtime))
            .with_auth(auth.clone())
            .with_engine(engine.clone())
            .with_reach(Reach::new(config.edge_addr, config.public_url.as_ref())),
    );
    let state = AppState {
        backend,
        leptos_options: leptos_options(&config),
        auth,
        engine: Some(engine.clone()),
        edge: Some(edge.clone()),
        metrics_token: config.metrics_token.clone(),
    };
    let listener = tokio::net::TcpListener::bind(config.dashboard_addr)
        .await
        .with_context(|| format!("cannot listen on {} (SLIPWAY_DASHBOARD_ADDR)", config.dashboard_addr))?;
    tracing::info!(addr = %config.dashboard_addr, "dashboard listening on http://{}", config.dashboard_addr);
    // Connect info: the client address keys the login rate limit.
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("dashboard server failed");
    session_cleanup.abort();
    edge_stop.cancel();
    let _ = edge_task.await;
    running.shutdown().await;
    served
}

pub fn leptos_options(config: &Config) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("slipway")
        .site_root(config.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.dashboard_addr)
        .build()
}

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let backend = state.backend.clone();
    let options = state.leptos_options.clone();
    let pkg_dir = std::path::Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let api = match state.engine.clone() {
        Some(engine) => crate::log_stream::routes(engine.clone())
            .merge(crate::runtime_log_stream::routes(engine.clone()))
            .merge(crate::api::routes(state.backend.clone()))
            .merge(crate::webhooks::routes(engine.clone()))
            .merge(crate::metrics::routes(engine, state.edge.clone(), state.metrics_token.clone())),
        None => Router::new(),
    };
    Router::new()
        .merge(api)
        .leptos_routes_with_context(&options, routes, move || provide_context(backend.clone()), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .nest_service("/pkg", ServeDir::new(pkg_dir))
        // Unknown paths render the 404 page with the backend too, so its
        // top bar knows the signed-in caller.
        .fallback(leptos_axum::file_and_error_handler_with_context(
            {
                let backend = state.backend.clone();
                move || provide_context(backend.clone())
            },
            shell,
        ))
        .layer(axum::middleware::from_fn_with_state(state.auth.clone(), crate::identity::resolve_caller))
        .layer(state.auth.session_layer())
        .layer(axum::middleware::from_fn(crate::auth::origin::reject_cross_origin))
        .with_state(options)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
