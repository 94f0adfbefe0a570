//! The engine: everything builds and deploys need, shared by the use-cases
//! (called by the dashboard, the REST API and webhooks alike) and the job
//! handlers. [`Engine::start`] runs the startup sequence: data dir lock,
//! recovery of what a dead process left running, orphan container removal,
//! route table rebuild, then the worker pool and the retention timer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::{
    access::AccessError,
    builds::BuildHandler,
    db::Db,
    deploys::{switch::RouteSwitch, DeployHandler},
    docker::{labels, DockerEngine},
    jobs::{
        recover_leased_before, JobQueue, RecoveryReport, Registry, SqliteJobQueue, WorkerConfig, WorkerPool,
    },
    logs::LogHub,
    projects::ProjectError,
    retention::{RetentionHandler, RetentionPolicy},
    secrets::Secrets,
};

/// Job kinds.
pub const BUILD_JOB: &str = "build";
pub const DEPLOY_JOB: &str = "deploy";
pub const RETENTION_JOB: &str = "retention";

/// Why a use-case refused or failed; maps to a 4xx/5xx at the boundary.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// Several fields refused at once (a form is checked whole).
    #[error("{}", crate::validate::join(.0))]
    Fields(Vec<crate::validate::ValidationError>),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is valid but the current state forbids it.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for EngineError {
    fn from(e: sqlx::Error) -> Self {
        EngineError::Internal(e.into())
    }
}

impl EngineError {
    /// One refusal as [`EngineError::Invalid`], several as
    /// [`EngineError::Fields`].
    pub fn of_fields(mut list: Vec<crate::validate::ValidationError>) -> Self {
        if list.len() == 1 {
            let e = list.remove(0);
            return EngineError::Invalid { field: e.field, message: e.message };
        }
        EngineError::Fields(list)
    }
}

impl From<crate::validate::ValidationError> for EngineError {
    fn from(e: crate::validate::ValidationError) -> Self {
        EngineError::Invalid { field: e.field, message: e.message }
    }
}

/// Engine settings; [`EngineSettings::new`] gives the production defaults.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub data_dir: PathBuf,
    pub worker: WorkerConfig,
    /// Labels put on every container and image besides Slipway's own (tests
    /// mark their objects with these).
    pub extra_labels: HashMap<String, String>,
    pub retention: RetentionPolicy,
    /// Container log lines kept on a failed deployment.
    pub log_tail_lines: usize,
    /// `file://` git URLs may be saved and checked out
    /// (`SLIPWAY_ALLOW_LOCAL_REPOS`; off by default).
    pub allow_local_repos: bool,
    /// How often the runtime monitor samples live containers.
    pub monitor_interval: Duration,
}

impl EngineSettings {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EngineSettings {
            data_dir: data_dir.into(),
            worker: WorkerConfig::default(),
            extra_labels: HashMap::new(),
            retention: RetentionPolicy::default(),
            log_tail_lines: 50,
            allow_local_repos: false,
            monitor_interval: Duration::from_secs(5),
        }
    }
}

pub struct Inner {
    pub db: Db,
    pub queue: Arc<SqliteJobQueue>,
    pub logs: LogHub,
    pub docker: DockerEngine,
    pub secrets: Secrets,
    pub switch: Arc<dyn RouteSwitch>,
    pub settings: EngineSettings,
    /// `instance.uid`, on every object's [`labels::INSTANCE`] label.
    pub instance: String,
    /// Live containers' state and usage, in memory.
    pub monitor: Arc<crate::runtime::Monitor>,
}

/// Cheap to clone; every use-case and handler holds one.
#[derive(Clone)]
pub struct Engine(Arc<Inner>);

impl std::ops::Deref for Engine {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// What [`Engine::start`] found and did.
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

impl Engine {
    pub fn new(
        db: Db,
        docker: DockerEngine,
        secrets: Secrets,
        switch: Arc<dyn RouteSwitch>,
        settings: EngineSettings,
        instance: String,
    ) -> Engine {
        Engine(Arc::new(Inner {
            queue: Arc::new(SqliteJobQueue::new(db.clone())),
            logs: LogHub::new(&settings.data_dir),
            db,
            docker,
            secrets,
            switch,
            settings,
            instance,
            monitor: Arc::new(crate::runtime::Monitor::new()),
        }))
    }

    /// Opens the engine on the database in `settings.data_dir`.
    pub async fn open(
        db: Db,
        docker: DockerEngine,
        switch: Arc<dyn RouteSwitch>,
        settings: EngineSettings,
        secret_key: Option<&str>,
    ) -> anyhow::Result<Engine> {
        let secrets = Secrets::load(&settings.data_dir, secret_key)?;
        let instance = crate::db::instance_uid(&db).await?;
        Ok(Engine::new(db, docker, secrets, switch, settings, instance))
    }

    pub fn registry(&self) -> Registry {
        Registry::new()
            .register(BUILD_JOB, Arc::new(BuildHandler::new(self.clone())))
            .register(DEPLOY_JOB, Arc::new(DeployHandler::new(self.clone())))
            .register(
                crate::lifecycle::LIFECYCLE_JOB,
                Arc::new(crate::lifecycle::LifecycleHandler::new(self.clone())),
            )
            .register(
                crate::lifecycle::DELETE_JOB,
                Arc::new(crate::lifecycle::DeleteHandler::new(self.clone())),
            )
            .register(RETENTION_JOB, Arc::new(RetentionHandler::new(self.clone())))
            .register(crate::notify::NOTIFY_JOB, Arc::new(crate::notify::NotifyHandler::new(self.clone())))
    }

    /// A job's status and progress (viewer).
    pub async fn get_job(
        &self,
        caller: &app::wire::Caller,
        job_id: i64,
    ) -> Result<crate::jobs::Job, EngineError> {
        crate::access::require(caller, app::wire::Role::Viewer)?;
        self.queue.get(job_id).await?.ok_or(EngineError::NotFound("job"))
    }

    /// Where build `id` is checked out.
    pub fn workspace(&self, build_id: i64) -> PathBuf {
        self.settings.data_dir.join("workspaces").join(format!("build-{build_id}"))
    }

    /// Slipway's labels (plus the extra ones) for an object of `service`.
    pub fn labels(&self, project: &str, service: &str, service_id: i64) -> HashMap<String, String> {
        let mut labels = self.settings.extra_labels.clone();
        labels.insert(labels::MANAGED.into(), "true".into());
        labels.insert(labels::INSTANCE.into(), self.instance.clone());
        labels.insert(labels::PROJECT.into(), project.into());
        labels.insert(labels::SERVICE.into(), service.into());
        labels.insert(labels::SERVICE_ID.into(), service_id.to_string());
        labels
    }

    /// The startup sequence (see the module docs). Call before serving.
    pub async fn start(&self) -> anyhow::Result<Running> {
        let lock = lock_data_dir(&self.settings.data_dir)?;
        let registry = self.registry();
        // The lock makes this the only process on the database: every job
        // still `running` belongs to a dead process, whatever its lease says.
        let now = chrono::Utc::now();
        let recovery =
            recover_leased_before(self.queue.as_ref(), &registry, now + chrono::Duration::days(36_500), now)
                .await?;
        let mut report = StartupReport { recovery, ..StartupReport::default() };
        match crate::deploys::startup::remove_orphans(self).await {
            Ok(removed) => report.orphans_removed = removed,
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "orphan container removal failed"),
        }
        match crate::deploys::startup::restore_routes(self).await {
            Ok(n) => report.routes_restored = n,
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "restoring routes failed"),
        }
        let queue: Arc<dyn JobQueue> = self.queue.clone();
        let (pool, _) = WorkerPool::start(queue, registry, self.settings.worker.clone()).await?;
        let retention_timer = tokio::spawn(crate::retention::timer(self.clone()));
        let monitor =
            tokio::spawn(crate::runtime::monitor::run(self.clone(), self.settings.monitor_interval));
        tracing::info!(
            interrupted = report.recovery.interrupted.len(),
            requeued = report.recovery.requeued.len(),
            orphans_removed = report.orphans_removed.len(),
            routes = report.routes_restored,
            "engine started"
        );
        Ok(Running { pool: Some(pool), report, _lock: lock, retention_timer, monitor })
    }
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

/// How long a deploy job may take: the health check's whole budget, the
/// drain, and time for the engine calls around them.
pub fn deploy_timeout(health: &crate::projects::HealthCheck, drain_secs: u32) -> Duration {
    let per_try = u64::from(health.interval_ms) + u64::from(health.timeout_ms);
    let health_ms = u64::from(health.start_period_ms) + u64::from(health.retries) * per_try;
    Duration::from_millis(health_ms) + Duration::from_secs(u64::from(drain_secs) + 120)
}
