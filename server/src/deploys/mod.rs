//! Deployments: an image id plus a config snapshot, run as a container on
//! the `slipway` network, health-checked, switched to, the old one drained
//! and removed. Use-cases in [`usecases`], the job in [`job`], probes in
//! [`health`], startup clean-up in [`startup`], the edge hand-over in
//! [`switch`].
//!
//! Statuses: pending → starting → live → superseded (replaced by a deploy)
//! or rolled_back (replaced by a rollback); or failed (never became live:
//! unhealthy, cancelled, timed out, interrupted).

pub mod all;
pub mod events;
pub(crate) mod health;
pub(crate) mod job;
mod preview;
pub(crate) mod ready;
pub(crate) mod startup;
pub mod switch;
mod usecases;

use serde::{Deserialize, Serialize};
use sqlx::{sqlite::SqliteRow, Row};

pub use job::{DeployHandler, STOP_GRACE};
pub use preview::{ConfigDiff, RollbackPlan};
pub use usecases::{DeployRequest, MAX_REASON};

use crate::{
    history::duration_ms,
    projects::{HealthCheck, PortSpec, ServiceKind, VolumeSpec},
    service_env::StoredEnv,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    Pending,
    Starting,
    Live,
    Superseded,
    RolledBack,
    Failed,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Pending => "pending",
            DeploymentStatus::Starting => "starting",
            DeploymentStatus::Live => "live",
            DeploymentStatus::Superseded => "superseded",
            DeploymentStatus::RolledBack => "rolled_back",
            DeploymentStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeploymentStatus::Pending,
            "starting" => DeploymentStatus::Starting,
            "live" => DeploymentStatus::Live,
            "superseded" => DeploymentStatus::Superseded,
            "rolled_back" => DeploymentStatus::RolledBack,
            "failed" => DeploymentStatus::Failed,
            _ => return None,
        })
    }

    /// Whether the deployment served traffic at some point.
    pub fn was_live(self) -> bool {
        matches!(self, DeploymentStatus::Live | DeploymentStatus::Superseded | DeploymentStatus::RolledBack)
    }
}

impl std::fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a deployment runs besides its image: the service's settings and
/// environment when it was made. Secret values stay sealed in here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployConfig {
    pub env: Vec<StoredEnv>,
    /// `web` for a deployment made before service kinds.
    #[serde(default)]
    pub kind: ServiceKind,
    pub port: Option<u16>,
    pub health: HealthCheck,
    /// How long a container without a probe must stay up to be healthy.
    #[serde(default = "default_settle")]
    pub settle_secs: u32,
    /// The command instead of the image's (argument vector).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Named volumes mounted; their data is never part of a rollback.
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
    /// Host ports published to container ports.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    pub memory_bytes: u64,
    pub cpu_millis: u32,
    pub drain_secs: u32,
}

fn default_settle() -> u32 {
    crate::projects::DEFAULT_SETTLE_SECS
}

impl DeployConfig {
    /// The edge port when the deployment gets a route (a port, not a worker).
    pub fn route_port(&self) -> Option<u16> {
        self.port.filter(|_| self.kind != ServiceKind::Worker)
    }

    /// Whether the previous container stops before this one starts: two
    /// containers must never write one volume (two databases on one data
    /// directory) or bind one host port.
    pub fn stop_first(&self) -> bool {
        !self.volumes.is_empty() || !self.ports.is_empty()
    }

    pub fn settle(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.settle_secs))
    }
}

/// A deployment row. `config` has secret values sealed; never send it to a
/// browser as is (see [`Deployment::masked`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: i64,
    pub service_id: i64,
    pub build_id: Option<i64>,
    pub job_id: Option<i64>,
    pub image_id: String,
    pub config: DeployConfig,
    pub status: DeploymentStatus,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub rollback_of: Option<i64>,
    pub container_id: Option<String>,
    pub error: Option<String>,
    pub log_tail: Option<String>,
    /// Set while an operator has the (live) deployment stopped.
    pub stopped_at: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
}

impl Deployment {
    /// The deployment with secret env values replaced by a mask.
    pub fn masked(mut self) -> Deployment {
        for var in self.config.env.iter_mut().filter(|v| v.secret) {
            var.value = crate::validate::REDACTED.to_string();
        }
        self
    }
}

pub(crate) const COLUMNS: &str =
    "id, service_id, build_id, job_id, image_id, config, status, reason, actor, \
     rollback_of, container_id, error, log_tail, stopped_at, created_at, started_at, finished_at";

pub(crate) fn from_row(row: &SqliteRow) -> anyhow::Result<Deployment> {
    let status: String = row.try_get("status")?;
    let config: String = row.try_get("config")?;
    let started_at: Option<String> = row.try_get("started_at")?;
    let finished_at: Option<String> = row.try_get("finished_at")?;
    Ok(Deployment {
        id: row.try_get("id")?,
        service_id: row.try_get("service_id")?,
        build_id: row.try_get("build_id")?,
        job_id: row.try_get("job_id")?,
        image_id: row.try_get("image_id")?,
        config: serde_json::from_str(&config)?,
        status: DeploymentStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("unknown deployment status {status:?}"))?,
        reason: row.try_get("reason")?,
        actor: row.try_get("actor")?,
        rollback_of: row.try_get("rollback_of")?,
        container_id: row.try_get("container_id")?,
        error: row.try_get("error")?,
        log_tail: row.try_get("log_tail")?,
        stopped_at: row.try_get("stopped_at")?,
        created_at: row.try_get("created_at")?,
        duration_ms: duration_ms(started_at.as_deref(), finished_at.as_deref()),
        started_at,
        finished_at,
    })
}

/// A health check in words, e.g. `GET /health every 2000 ms, timeout 2000 ms,
/// 15 retries, start period 0 ms`.
pub fn health_text(h: &HealthCheck) -> String {
    let probe = match &h.probe {
        crate::projects::HealthProbe::Http { path } => format!("GET {path}"),
        crate::projects::HealthProbe::Command { argv } => format!("run {argv:?}"),
        crate::projects::HealthProbe::None => return "running without a restart for the settle time".into(),
    };
    format!(
        "{probe} every {} ms, timeout {} ms, {} retries, start period {} ms",
        h.interval_ms, h.timeout_ms, h.retries, h.start_period_ms
    )
}

/// The container name of a deployment (project and service names are
/// slugs; with the project, two projects' services of one name never clash).
pub fn container_name(project: &str, service: &str, deployment_id: i64) -> String {
    format!("slipway-{project}-{service}-{deployment_id}")
}

/// The host name a service answers on: its domain, or
/// `<service>.<project>.localhost`.
pub fn service_host(project: &crate::projects::Project, service: &crate::projects::Service) -> String {
    match &service.spec.domain {
        Some(domain) => domain.clone(),
        None => format!("{}.{}.localhost", service.spec.name, project.name),
    }
}

/// The edge route of `service` to `upstream`: its host and HTTPS policy.
pub fn service_route(
    project: &crate::projects::Project,
    service: &crate::projects::Service,
    upstream: switch::Upstream,
) -> switch::Route {
    switch::Route {
        service_id: service.id,
        host: service_host(project, service),
        upstream,
        policy: switch::RoutePolicy { https_redirect: service.spec.https_redirect, hsts: service.spec.hsts },
    }
}
