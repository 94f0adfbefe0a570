//! The engine: everything builds and deploys need, shared by the use-cases
//! (called by the dashboard, the REST API and webhooks alike) and the job
//! handlers. It knows no handler: `crate::startup` registers them and runs
//! the startup sequence.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{
    access::AccessError,
    db::Db,
    deploys::switch::RouteSwitch,
    docker::{labels, DockerEngine},
    jobs::{JobQueue, SqliteJobQueue, WorkerConfig},
    logs::LogHub,
    projects::ProjectError,
    retention::RetentionPolicy,
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
    /// The certificates the edge's HTTPS listener serves, shared with its
    /// router; the engine loads the uploaded ones into it.
    pub certs: Arc<crate::edge::tls::store::CertStore>,
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
            certs: Arc::default(),
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
    /// What the builds of one push share while they run, in memory.
    pub groups: crate::builds::group::Groups,
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
            groups: crate::builds::group::Groups::default(),
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
}

/// How long a deploy job may take: the health check's whole budget (or the
/// settle time), the drain, and time for the engine calls around them.
pub fn deploy_timeout(config: &crate::deploys::DeployConfig) -> Duration {
    let health = &config.health;
    let per_try = u64::from(health.interval_ms) + u64::from(health.timeout_ms);
    let health_ms = match health.probe {
        crate::projects::HealthProbe::None => u64::from(config.settle_secs) * 1000,
        _ => u64::from(health.start_period_ms) + u64::from(health.retries) * per_try,
    };
    Duration::from_millis(health_ms) + Duration::from_secs(u64::from(config.drain_secs) + 120)
}
