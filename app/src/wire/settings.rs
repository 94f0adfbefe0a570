//! A service's settings as the settings form and the API take them
//! ([`ServiceSettings`]), with the kinds, volumes and ports of issue 18, and
//! the ranges the server accepts ([`limits`]).

use serde::{Deserialize, Serialize};

/// How the service's container is judged healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum HealthProbeForm {
    Http {
        path: String,
    },
    /// Argument vector run in the container (no shell).
    Command {
        argv: Vec<String>,
    },
    /// No probe (workers and image services): healthy once running, without
    /// a restart, for `settle_secs`. (A struct variant, so that unknown
    /// fields are refused like the others'.)
    None {},
}

/// What a service runs: `web` (port, route, probe), `worker` (no port, no
/// route) or `image` (an image reference; no git, no build).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ServiceKindForm {
    #[default]
    Web,
    Worker,
    Image,
}

impl ServiceKindForm {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKindForm::Web => "web",
            ServiceKindForm::Worker => "worker",
            ServiceKindForm::Image => "image",
        }
    }
}

/// A host port published to a container port (non-HTTP protocols).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PortForm {
    pub host: u32,
    pub container: u32,
    /// `tcp` (default) or `udp`.
    #[serde(default = "default_tcp")]
    pub protocol: String,
}

fn default_tcp() -> String {
    "tcp".into()
}

/// A named volume: kept across deploys and rollbacks (its data is never
/// rolled back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VolumeForm {
    pub name: String,
    /// Absolute path in the container.
    pub path: String,
}

/// An environment variable. Shown: a secret's `value` is `None`. Submitted:
/// `None` for an existing secret keeps its stored value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub value: Option<String>,
    pub secret: bool,
}

/// Every engine setting of a service, as the settings form edits it.
/// Unknown fields are refused: a misspelt setting must not be dropped
/// silently (and a deep value under an unknown name must not be skipped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    pub name: String,
    #[serde(default)]
    pub kind: ServiceKindForm,
    /// Empty for an image service and for one with `image_from`.
    #[serde(default)]
    pub git_url: String,
    pub branch: String,
    pub context_path: String,
    pub dockerfile_path: String,
    /// `NAME=value` pairs, in order.
    pub build_args: Vec<(String, String)>,
    /// An image service's image reference (already in the engine).
    #[serde(default)]
    pub image: Option<String>,
    /// The service of this project whose builds this one deploys.
    #[serde(default)]
    pub image_from: Option<String>,
    /// The container's command (argument vector, no shell); empty: the image's.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<VolumeForm>,
    /// Host ports published to container ports.
    #[serde(default)]
    pub ports: Vec<PortForm>,
    /// Services of the project a "deploy all" deploys before this one.
    #[serde(default)]
    pub deploy_after: Vec<String>,
    /// A push builds the service only when a changed file matches one of
    /// these globs (empty: every push; a manual build always runs).
    #[serde(default)]
    pub watch_paths: Vec<String>,
    /// The container port: required for `web`, none for `worker`.
    #[serde(default)]
    pub port: Option<u32>,
    pub health: HealthProbeForm,
    /// How long a container without a probe must stay up (seconds).
    #[serde(default = "default_settle")]
    pub settle_secs: u32,
    pub health_interval_ms: u32,
    pub health_timeout_ms: u32,
    pub health_retries: u32,
    pub health_start_period_ms: u32,
    pub memory_mb: u64,
    pub cpu_millis: u32,
    pub auto_deploy: bool,
    pub build_timeout_secs: u32,
    pub drain_secs: u32,
    /// Empty or `None`: `<service>.<project>.localhost`.
    pub domain: Option<String>,
    /// The Dockerfile stage to build; empty or `None`: the last stage.
    #[serde(default)]
    pub target: Option<String>,
    /// Build without the build cache (every step runs again).
    #[serde(default)]
    pub no_cache: bool,
    /// Platforms to build (`linux/amd64`, `linux/arm64`, …); empty: the
    /// engine's own only.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// The pipeline file, relative to the checkout.
    #[serde(default = "default_pipeline_path")]
    pub pipeline_path: String,
    /// A newer push cancels the older pushed runs still queued or running.
    #[serde(default = "default_true")]
    pub supersede_runs: bool,
    /// The edge's plain listener redirects requests to HTTPS (308).
    #[serde(default)]
    pub https_redirect: bool,
    /// HTTPS answers carry `Strict-Transport-Security`.
    #[serde(default)]
    pub hsts: bool,
    pub env: Vec<EnvVar>,
}

fn default_pipeline_path() -> String {
    ".slipway.yml".into()
}

fn default_settle() -> u32 {
    5
}

fn default_true() -> bool {
    true
}

impl ServiceSettings {
    /// A new service's defaults (the engine's), for an empty form.
    pub fn defaults() -> Self {
        ServiceSettings {
            name: String::new(),
            kind: ServiceKindForm::Web,
            git_url: String::new(),
            branch: "main".into(),
            context_path: ".".into(),
            dockerfile_path: "Dockerfile".into(),
            build_args: Vec::new(),
            image: None,
            image_from: None,
            command: Vec::new(),
            volumes: Vec::new(),
            ports: Vec::new(),
            deploy_after: Vec::new(),
            watch_paths: Vec::new(),
            port: Some(8080),
            health: HealthProbeForm::Http { path: "/".into() },
            settle_secs: default_settle(),
            health_interval_ms: 2000,
            health_timeout_ms: 2000,
            health_retries: 15,
            health_start_period_ms: 0,
            memory_mb: 512,
            cpu_millis: 1000,
            auto_deploy: true,
            build_timeout_secs: 1800,
            drain_secs: 30,
            domain: None,
            target: None,
            no_cache: false,
            platforms: Vec::new(),
            pipeline_path: default_pipeline_path(),
            supersede_runs: true,
            https_redirect: false,
            hsts: false,
            env: Vec::new(),
        }
    }
}

/// The ranges the server accepts for a service's numbers (inclusive). The
/// engine checks them (`server::projects`) and the settings form gives its
/// number inputs the same `min`/`max`, so the browser catches most first.
pub mod limits {
    pub const PORT: (u32, u32) = (1, 65535);
    pub const HEALTH_INTERVAL_MS: (u32, u32) = (100, 10 * 60 * 1000);
    pub const HEALTH_TIMEOUT_MS: (u32, u32) = HEALTH_INTERVAL_MS;
    pub const HEALTH_START_PERIOD_MS: (u32, u32) = (0, 60 * 60 * 1000);
    pub const HEALTH_RETRIES: (u32, u32) = (1, 1000);
    /// Docker refuses less than 6 MiB; at most 1 TiB.
    pub const MEMORY_MB: (u64, u64) = (6, 1 << 20);
    pub const CPU_MILLIS: (u32, u32) = (10, 256_000);
    pub const BUILD_TIMEOUT_SECS: (u32, u32) = (30, 24 * 60 * 60);
    pub const DRAIN_SECS: (u32, u32) = (0, 60 * 60);
}
