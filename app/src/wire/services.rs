//! Projects, services, builds and deployments as the dashboard sees them.
//! Secret values never appear here: a secret variable's `value` is `None`.

use serde::{Deserialize, Serialize};

use super::settings::{EnvVar, ServiceSettings, VolumeForm};

/// A project with its services, for the overview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProjectView {
    pub id: i64,
    pub name: String,
    pub services: Vec<ServiceSummary>,
}

/// One service's line on the overview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ServiceSummary {
    pub id: i64,
    pub project_id: i64,
    pub project: String,
    pub name: String,
    /// web, worker or image.
    #[serde(default)]
    pub kind: String,
    /// The service whose builds this one deploys.
    #[serde(default)]
    pub image_from: Option<String>,
    /// Whether the edge router has a route to it (`host` and `url` apply).
    #[serde(default)]
    pub routed: bool,
    /// Host name the edge router answers on.
    pub host: String,
    /// The service's address through the edge router (from
    /// `SLIPWAY_PUBLIC_URL` or the edge address).
    #[serde(default)]
    pub url: String,
    pub branch: String,
    pub live: Option<DeploymentView>,
    pub last_build: Option<BuildView>,
    /// The live container as last read: running, stopped, exited (code 1), …
    #[serde(default)]
    pub state: Option<String>,
}

/// A service with its settings (secrets masked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ServiceDetail {
    pub id: i64,
    pub project_id: i64,
    pub project: String,
    pub host: String,
    pub settings: ServiceSettings,
}

/// A field the engine refused, for inline display next to that field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BuildView {
    pub id: i64,
    pub service_id: i64,
    pub number: i64,
    /// The job running it: status and progress at `/api/v1/jobs/{id}`.
    pub job_id: Option<i64>,
    pub commit_sha: Option<String>,
    pub git_ref: String,
    /// manual, api, webhook, cli.
    pub trigger: String,
    pub actor: Option<String>,
    /// queued, running, succeeded, failed, cancelled, timed_out, interrupted,
    /// skipped.
    pub status: String,
    pub image_id: Option<String>,
    pub tags: Vec<String>,
    pub phase: Option<String>,
    pub progress: u8,
    pub attempt: i64,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub queued_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    /// Retention removed the image: it cannot be deployed any more.
    pub image_removed: bool,
    /// Started as "build only": not deployed automatically.
    #[serde(default)]
    pub build_only: bool,
    /// `<registry repository>@sha256:…` when the build was pushed to the
    /// project's registry.
    #[serde(default)]
    pub pushed_ref: Option<String>,
}

/// One bar of the service page's build duration chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildPoint {
    pub id: i64,
    pub number: i64,
    pub status: String,
    pub duration_ms: Option<i64>,
    pub created_at: String,
}

/// A build's line in the service page's history table: only what the table
/// shows (the full [`BuildView`] is on the build page and the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRow {
    pub id: i64,
    pub number: i64,
    pub status: String,
    pub git_ref: String,
    pub commit_sha: Option<String>,
    pub trigger: String,
    pub actor: Option<String>,
    pub duration_ms: Option<i64>,
    pub created_at: String,
    /// The run's steps (service containers not counted) and how many of
    /// them succeeded: "3/5 steps". Both 0 for a run without step rows.
    #[serde(default)]
    pub steps_total: i64,
    #[serde(default)]
    pub steps_passed: i64,
}

/// A deployment's line in the service page's history table (no config: the
/// rollback dialog reads it with the preview).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRow {
    pub id: i64,
    pub status: String,
    pub build_id: Option<i64>,
    pub build_number: Option<i64>,
    pub commit_sha: Option<String>,
    pub image_id: String,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub rollback_of: Option<i64>,
    pub error: Option<String>,
    pub log_tail: Option<String>,
    pub created_at: String,
    pub duration_ms: Option<i64>,
}

impl DeploymentRow {
    /// Whether it can be rolled back to (it served), as
    /// [`DeploymentView::can_roll_back_to`].
    pub fn can_roll_back_to(&self) -> bool {
        served(&self.status)
    }
}

/// How many builds the service page's duration chart shows.
pub const CHART_BUILDS: u32 = 50;

/// Everything the service page shows, read by one use-case: the service,
/// the duration chart and the first page of each history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServicePageView {
    pub detail: ServiceDetail,
    pub chart: Vec<BuildPoint>,
    pub builds: HistoryPage<BuildRow>,
    pub deployments: HistoryPage<DeploymentRow>,
    /// The newest [`RECENT_DELIVERIES`] webhook deliveries, for admins only.
    pub deliveries: Option<HistoryPage<super::DeliveryView>>,
    /// The service's URL through the edge router, `scheme://<host>:<port>/`
    /// (from `SLIPWAY_PUBLIC_URL` or `SLIPWAY_EDGE_ADDR`).
    #[serde(default)]
    pub url: String,
    /// For `.localhost` hosts: `curl -H 'Host: <host>' http://<edge address>/`.
    /// Shown, never executed.
    #[serde(default)]
    pub curl: Option<String>,
}

/// How many webhook deliveries the service page lists.
pub const RECENT_DELIVERIES: u32 = 20;

impl BuildView {
    /// Whether the build can still change (queued or running).
    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "queued" | "running")
    }
}

/// A build with the names the build page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BuildDetail {
    pub build: BuildView,
    pub service: String,
    pub project: String,
}

/// The build page's data in one call: the build and its stored log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildPageView {
    pub detail: BuildDetail,
    pub lines: Vec<LogLineView>,
    /// The run's pipeline report.
    pub report: super::BuildReport,
}

/// A deployment's configuration snapshot (secrets masked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConfigView {
    pub env: Vec<EnvVar>,
    /// web, worker or image.
    #[serde(default)]
    pub kind: String,
    /// None for a worker (and an image service without a port).
    pub port: Option<u32>,
    /// The command instead of the image's; empty: the image's.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<VolumeForm>,
    /// e.g. `GET /health every 2000 ms, 15 retries`.
    pub health: String,
    pub memory_mb: u64,
    pub cpu_millis: u32,
    pub drain_secs: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DeploymentView {
    pub id: i64,
    pub service_id: i64,
    pub build_id: Option<i64>,
    /// The job running it: status and progress at `/api/v1/jobs/{id}`.
    pub job_id: Option<i64>,
    pub build_number: Option<i64>,
    pub commit_sha: Option<String>,
    pub image_id: String,
    /// pending, starting, live, superseded, rolled_back, failed.
    pub status: String,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub rollback_of: Option<i64>,
    pub error: Option<String>,
    pub log_tail: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub config: ConfigView,
}

impl DeploymentView {
    /// Whether an earlier deployment can be rolled back to (it served).
    pub fn can_roll_back_to(&self) -> bool {
        served(&self.status)
    }

    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "pending" | "starting")
    }
}

/// A deployment status of one that served traffic and was replaced.
fn served(status: &str) -> bool {
    matches!(status, "superseded" | "rolled_back")
}

/// One page of a history, newest first; `next` is the `before` of the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HistoryPage<T> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

/// One build log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct LogLineView {
    pub seq: u64,
    pub ts: String,
    /// stdout, stderr, system.
    pub stream: String,
    pub text: String,
    /// The pipeline step that wrote it; absent for the run's own lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// What a rollback would change, for the confirmation dialog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RollbackPlanView {
    pub target: DeploymentView,
    pub current: Option<DeploymentView>,
    /// Config fields that differ between the live deployment and the target
    /// (secret values compared but shown masked).
    pub changes: Vec<ConfigChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ConfigChange {
    pub field: String,
    pub live: String,
    pub target: String,
}
