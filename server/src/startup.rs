//! Startup: the one place that knows every job handler and assembles the
//! process. [`job_handlers`] registers the handlers by job kind; [`start`]
//! runs the startup sequence (data dir lock, recovery of what a dead process
//! left running, orphan container removal, route table rebuild, then the
//! worker pool, the retention timer and the runtime monitor); [`serve`] is
//! `slipway serve`: the engine, the edge router and the HTTP layer.
//!
//! The engine and the domain modules import none of this, so no handler
//! imports the engine that imports it back.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use app::backend::Backend;

use crate::{
    auth::{Auth, SessionSettings},
    backend::ServerBackend,
    builds::BuildHandler,
    config::Config,
    deploys::DeployHandler,
    docker::DockerEngine,
    edge::{proxy::EdgeConfig, reach::Reach, EdgeRouter},
    engine::{Engine, EngineSettings, BUILD_JOB, DEPLOY_JOB, RETENTION_JOB},
    http::web::AppState,
    jobs::{recover_leased_before, JobQueue, RecoveryReport, Registry, WorkerPool},
    lifecycle::{DeleteHandler, LifecycleHandler, DELETE_JOB, LIFECYCLE_JOB},
    notify::{NotifyHandler, NOTIFY_JOB},
    retention::RetentionHandler,
    status::StatusService,
};

/// Every job kind's handler.
pub fn job_handlers(engine: &Engine) -> Registry {
    Registry::new()
        .register(BUILD_JOB, Arc::new(BuildHandler::new(engine.clone())))
        .register(DEPLOY_JOB, Arc::new(DeployHandler::new(engine.clone())))
        .register(
            crate::deploys::all::DEPLOY_ALL_JOB,
            Arc::new(crate::deploys::all::DeployAllHandler::new(engine.clone())),
        )
        .register(LIFECYCLE_JOB, Arc::new(LifecycleHandler::new(engine.clone())))
        .register(DELETE_JOB, Arc::new(DeleteHandler::new(engine.clone())))
        .register(RETENTION_JOB, Arc::new(RetentionHandler::new(engine.clone())))
        .register(NOTIFY_JOB, Arc::new(NotifyHandler::new(engine.clone())))
}

/// What [`start`] found and did.
#[derive(Debug, Default)]
pub struct StartupReport {
    pub recovery: RecoveryReport,
    /// Containers removed because no live deployment claims them.
    pub orphans_removed: Vec<String>,
    /// Services whose route was restored.
    pub routes_restored: usize,
}

/// A running engine: its pool works until this is dropped or shut down.
pub struct Running {
    pool: Option<WorkerPool>,
    pub report: StartupReport,
    _lock: std::fs::File,
    retention_timer: tokio::task::JoinHandle<()>,
    monitor: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn pool(&self) -> Option<&WorkerPool> {
        self.pool.as_ref()
    }

    /// Stops the workers and the timer. Running jobs keep their lease and
    /// are recovered at the next start.
    pub async fn shutdown(mut self) {
        self.retention_timer.abort();
        self.monitor.abort();
        if let Some(pool) = self.pool.take() {
            pool.shutdown().await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.retention_timer.abort();
        self.monitor.abort();
    }
}

/// The startup sequence (see the module docs). Call before serving.
pub async fn start(engine: &Engine) -> anyhow::Result<Running> {
    let lock = lock_data_dir(&engine.settings.data_dir)?;
    let registry = job_handlers(engine);
    // The lock makes this the only process on the database: every job
    // still `running` belongs to a dead process, whatever its lease says.
    let now = chrono::Utc::now();
    let recovery =
        recover_leased_before(engine.queue.as_ref(), &registry, now + chrono::Duration::days(36_500), now)
            .await?;
    let mut report = StartupReport { recovery, ..StartupReport::default() };
    match crate::deploys::startup::remove_orphans(engine).await {
        Ok(removed) => report.orphans_removed = removed,
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "orphan container removal failed"),
    }
    // Names first: re-making an endpoint may (rarely) change an address.
    if let Err(e) = crate::deploys::startup::publish_names(engine).await {
        tracing::warn!(error = %format!("{e:#}"), "publishing service names failed");
    }
    match crate::deploys::startup::restore_routes(engine).await {
        Ok(n) => report.routes_restored = n,
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "restoring routes failed"),
    }
    // Uploaded certificates are in the store before any listener accepts.
    let certificates = engine.load_certificates().await.unwrap_or_else(|e| {
        tracing::warn!(error = %format!("{e:#}"), "loading the uploaded certificates failed");
        0
    });
    let queue: Arc<dyn JobQueue> = engine.queue.clone();
    let (pool, _) = WorkerPool::start(queue, registry, engine.settings.worker.clone()).await?;
    let retention_timer = tokio::spawn(crate::retention::timer(engine.clone()));
    let monitor =
        tokio::spawn(crate::runtime::monitor::run(engine.clone(), engine.settings.monitor_interval));
    tracing::info!(
        interrupted = report.recovery.interrupted.len(),
        requeued = report.recovery.requeued.len(),
        orphans_removed = report.orphans_removed.len(),
        routes = report.routes_restored,
        certificates,
        "engine started"
    );
    Ok(Running { pool: Some(pool), report, _lock: lock, retention_timer, monitor })
}

/// Takes `<data>/slipway.lock` exclusively: a second process on the same
/// data dir would recover the first one's running jobs as orphans.
fn lock_data_dir(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let path = data_dir.join("slipway.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another Slipway process is using the data dir {} (SLIPWAY_DATA_DIR)",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
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
    let edge = Arc::new(EdgeRouter::with_certs(settings.certs.clone()));
    let engine =
        Engine::open(db.clone(), docker.clone(), edge.clone(), settings, config.secret_key.as_deref())
            .await?;
    // Recovery, orphan removal and the route table happen before anything
    // is served, so the edge answers with the live versions from its first
    // request.
    let running = start(&engine).await?;
    // The edge serves on threads of its own (see edge::runtime).
    let edge_threads = crate::edge::runtime::EdgeThreads::start(config.edge_workers)
        .context("cannot start the edge threads")?;
    let edge_listeners = edge_threads
        .listen(config.edge_addr)
        .with_context(|| format!("cannot listen on {} (SLIPWAY_EDGE_ADDR)", config.edge_addr))?;
    tracing::info!(addr = %config.edge_addr, workers = config.edge_workers, "edge router listening on http://{}", config.edge_addr);
    let edge_stop = tokio_util::sync::CancellationToken::new();
    let edge_config = EdgeConfig {
        acme_webroot: config.edge_acme_webroot.clone(),
        https_port: https_port(&config),
        ..EdgeConfig::default()
    };
    for (handle, listener) in edge_threads.handles().iter().zip(edge_listeners) {
        handle.spawn(crate::edge::proxy::serve(
            listener,
            edge.clone(),
            edge_config.clone(),
            edge_stop.clone(),
        ));
    }
    if let Some(addr) = config.edge_tls_addr {
        start_tls(&config, addr, &edge_threads, &edge, &edge_stop).await?;
    }
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
        leptos_options: crate::http::web::leptos_options(&config),
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
    let app = crate::http::web::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("dashboard server failed");
    session_cleanup.abort();
    edge_stop.cancel();
    // Its open connections end with it.
    drop(edge_threads);
    running.shutdown().await;
    served
}

/// The port people reach HTTPS on: `SLIPWAY_PUBLIC_URL`'s when it is https,
/// else the HTTPS listener's; `None` without an HTTPS listener.
fn https_port(config: &Config) -> Option<u16> {
    let listener = config.edge_tls_addr?;
    match &config.public_url {
        Some(public) if public.scheme == "https" => Some(public.port),
        _ => Some(listener.port()),
    }
}

/// The edge's HTTPS listener and its certificate directory, on the edge
/// runtime; the directory is loaded before the first handshake.
async fn start_tls(
    config: &Config,
    addr: std::net::SocketAddr,
    threads: &crate::edge::runtime::EdgeThreads,
    edge: &Arc<EdgeRouter>,
    stop: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use crate::edge::tls;
    if let Some(dir) = &config.edge_cert_dir {
        tls::watch::start(dir.clone(), edge.clone(), stop.clone()).await;
        tracing::info!(dir = %dir.display(), certificates = edge.certs.all().len(), "watching the certificate directory");
    }
    let listeners =
        threads.listen(addr).with_context(|| format!("cannot listen on {addr} (SLIPWAY_EDGE_TLS_ADDR)"))?;
    let tls_config = tls::server_config(edge.clone())?;
    for (handle, listener) in threads.handles().iter().zip(listeners) {
        let serving =
            tls::serve_tls(listener, edge.clone(), tls_config.clone(), EdgeConfig::default(), stop.clone());
        handle.spawn(serving);
    }
    tracing::info!(%addr, "edge router listening on https://{addr}");
    Ok(())
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
