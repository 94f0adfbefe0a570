//! A live service as it runs: container state, resource usage, health as
//! last probed, operator actions.

use serde::{Deserialize, Serialize};

/// The runtime panel of a service (viewer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RuntimeView {
    pub service_id: i64,
    /// The live deployment; none when nothing is deployed.
    pub deployment_id: Option<i64>,
    /// An operator stopped the service: its host answers 503.
    pub stopped: bool,
    /// The saved settings differ from the live deployment's snapshot.
    pub settings_changed: bool,
    /// As last read from the engine (refreshed every few seconds).
    pub state: Option<ContainerStateView>,
    /// CPU in tenths of a percent of one CPU (1234 = 123.4 %).
    pub cpu_tenths: Option<u32>,
    pub memory_bytes: Option<u64>,
    /// The container's memory limit.
    pub memory_limit_bytes: u64,
    /// The last 15 minutes, oldest first.
    pub points: Vec<UsagePoint>,
    pub probe: Option<ProbeView>,
    /// Stop, start and restart, newest first.
    pub actions: Vec<ActionEventView>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ContainerStateView {
    /// running, restarting, exited, created, paused, dead, or oom_killed.
    pub status: String,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub restart_count: i64,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// Seconds since it started, while running.
    pub uptime_secs: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsagePoint {
    /// Unix seconds.
    pub at: i64,
    pub cpu_tenths: u32,
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProbeView {
    pub ok: bool,
    pub detail: String,
    pub at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ActionEventView {
    pub deployment_id: i64,
    /// stopped, started or restarted.
    pub kind: String,
    pub actor: Option<String>,
    pub at: String,
}

/// A queued restart, stop, start, redeploy or delete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ActionView {
    /// restart, stop, start, redeploy or delete.
    pub action: String,
    /// The job of a restart, stop, start or delete (poll `/api/v1/jobs/{id}`).
    pub job_id: Option<i64>,
    /// The deployment acted on, or the new one of a redeploy (none for a
    /// delete).
    pub deployment_id: Option<i64>,
}

/// A service's named volume (issue 18).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VolumeView {
    pub name: String,
    /// Where the settings mount it; none when no longer declared (kept
    /// until an admin deletes it).
    pub path: Option<String>,
    /// The engine's name.
    pub engine_name: String,
    /// Bytes used, as the engine measured them.
    pub size_bytes: Option<i64>,
    /// Whether the engine holds it (a deployment created it).
    pub exists: bool,
}

/// The builds a "Build all" queued.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BuildAllView {
    /// One build per service that builds its own image.
    pub build_ids: Vec<i64>,
}

/// One step of a deployment's timeline or an operator's action on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DeploymentEventView {
    /// container_started, healthy, switched, drained, old_removed, stopped,
    /// started, restarted.
    pub kind: String,
    pub actor: Option<String>,
    pub detail: Option<String>,
    pub at: String,
}

/// The deployment page: the deployment, its service and its timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentPageView {
    pub deployment: crate::wire::DeploymentView,
    pub service: String,
    pub project: String,
    pub events: Vec<DeploymentEventView>,
}
