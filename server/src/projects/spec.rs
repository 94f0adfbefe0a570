//! A service's settings as submitted ([`ServiceSpec`]) and their
//! validation: every field is checked and every refusal named.

use std::collections::BTreeMap;

use app::wire::limits;
use serde::{Deserialize, Serialize};

use super::kind::SETTLE_RANGE;
use super::lists::{build_args, deploy_after, platforms, watch_paths};
use super::{PortSpec, ProjectError, Result, ServiceKind, VolumeSpec, DEFAULT_SETTLE_SECS};
use crate::validate::{self, Problems, ValidationError};

// ------------------------------------------------------------------ limits --

pub const HEALTH_PATH_MAX: usize = 1024;
pub const HEALTH_COMMAND_MAX_ARGS: usize = 64;
// The ranges are shared with the settings form (its inputs' min/max).
const MS_RANGE_INTERVAL: (u32, u32) = limits::HEALTH_INTERVAL_MS;
const MS_RANGE_START_PERIOD: (u32, u32) = limits::HEALTH_START_PERIOD_MS;
const RETRIES_RANGE: (u32, u32) = limits::HEALTH_RETRIES;
const MIB: u64 = 1024 * 1024;
const MEMORY_RANGE: (u64, u64) = (limits::MEMORY_MB.0 * MIB, limits::MEMORY_MB.1 * MIB);
const CPU_MILLIS_RANGE: (u32, u32) = limits::CPU_MILLIS;
const BUILD_TIMEOUT_RANGE: (u32, u32) = limits::BUILD_TIMEOUT_SECS;
const DRAIN_RANGE: (u32, u32) = limits::DRAIN_SECS;
pub const MAX_BUILD_ARGS: usize = 256;

// ------------------------------------------------------------------- types --

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub created_at: String,
}

/// How a deployment's container is judged healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HealthProbe {
    /// GET this path on the service port; 2xx/3xx is healthy.
    Http { path: String },
    /// Run this argument vector in the container (no shell); exit 0 is healthy.
    Command { argv: Vec<String> },
    /// No probe (workers and image services only): healthy once the
    /// container has stayed running, without a restart, for the settle time.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub probe: HealthProbe,
    pub interval_ms: u32,
    pub timeout_ms: u32,
    pub retries: u32,
    pub start_period_ms: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            probe: HealthProbe::Http { path: "/".into() },
            interval_ms: 2000,
            timeout_ms: 2000,
            retries: 15,
            start_period_ms: 0,
        }
    }
}

/// A service's settings, as submitted (create and update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub name: String,
    #[serde(default)]
    pub kind: ServiceKind,
    /// Empty for an `image` service and for one that takes its image from
    /// another service.
    pub git_url: String,
    pub branch: String,
    pub context_path: String,
    pub dockerfile_path: String,
    pub build_args: BTreeMap<String, String>,
    /// The image reference an `image` service deploys.
    #[serde(default)]
    pub image: Option<String>,
    /// The service of the same project whose builds this one deploys.
    #[serde(default)]
    pub image_from: Option<String>,
    /// The container's command, an argument vector; `None`: the image's.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
    /// Host ports published to container ports.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// Services of the project a "deploy all" deploys before this one.
    #[serde(default)]
    pub deploy_after: Vec<String>,
    /// A push builds the service only when a changed file matches one of
    /// these globs (empty: every push).
    #[serde(default)]
    pub watch_paths: Vec<String>,
    /// The container port (required for `web`, none for `worker`).
    pub port: Option<u32>,
    pub health: HealthCheck,
    /// How long a container without a probe must stay up to be healthy.
    #[serde(default = "default_settle")]
    pub settle_secs: u32,
    pub memory_bytes: u64,
    pub cpu_millis: u32,
    pub auto_deploy: bool,
    pub build_timeout_secs: u32,
    pub drain_secs: u32,
    /// Host name on the edge router; `<service>.<project>.localhost` when
    /// `None`.
    #[serde(default)]
    pub domain: Option<String>,
    /// The Dockerfile stage to build; `None`: the last one.
    #[serde(default)]
    pub target: Option<String>,
    /// Build every step again, ignoring the build cache.
    #[serde(default)]
    pub no_cache: bool,
    /// Platforms to build (`linux/arm64`, …); empty: the engine's own.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// The pipeline file, relative to the checkout (default `.slipway.yml`).
    #[serde(default = "default_pipeline_path")]
    pub pipeline_path: String,
    /// A newer push cancels this service's older pushed runs still queued
    /// or running (default on).
    #[serde(default = "default_true")]
    pub supersede_runs: bool,
    /// The edge's plain listener redirects this service's requests to
    /// HTTPS (308; ACME challenge paths excepted).
    #[serde(default)]
    pub https_redirect: bool,
    /// HTTPS answers carry `Strict-Transport-Security` (one year).
    #[serde(default)]
    pub hsts: bool,
}

fn default_pipeline_path() -> String {
    crate::pipeline::spec::DEFAULT_PATH.to_string()
}

fn default_settle() -> u32 {
    DEFAULT_SETTLE_SECS
}

fn default_true() -> bool {
    true
}

impl ServiceSpec {
    /// A spec with the defaults for everything but name, URL and port.
    pub fn new(name: impl Into<String>, git_url: impl Into<String>, port: u32) -> Self {
        ServiceSpec {
            name: name.into(),
            kind: ServiceKind::Web,
            git_url: git_url.into(),
            branch: "main".into(),
            context_path: ".".into(),
            dockerfile_path: "Dockerfile".into(),
            build_args: BTreeMap::new(),
            image: None,
            image_from: None,
            command: None,
            volumes: Vec::new(),
            ports: Vec::new(),
            deploy_after: Vec::new(),
            watch_paths: Vec::new(),
            port: Some(port),
            health: HealthCheck::default(),
            settle_secs: DEFAULT_SETTLE_SECS,
            memory_bytes: 512 * 1024 * 1024,
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
        }
    }

    /// Checks every field and returns the normalized spec; a refusal names
    /// every field refused, not only the first.
    pub fn validate(&self) -> Result<ServiceSpec> {
        let mut p = Problems::new();
        let spec = self.check(&mut p);
        match (spec, p.finish()) {
            (Some(spec), Ok(())) => Ok(spec),
            (_, Err(list)) => Err(ProjectError::of_fields(list)),
            (None, Ok(())) => Err(ProjectError::invalid("service", "is not valid")),
        }
    }

    /// Checks every field, noting each refusal in `p`; the normalized spec
    /// when none was refused.
    pub fn check(&self, p: &mut Problems) -> Option<ServiceSpec> {
        let build_args = build_args(&self.build_args, p);
        let name = p.check(validate::slug("service", &self.name));
        let kind_parts = super::kind::check_kind(self, p);
        let branch =
            p.check(validate::git_ref(&self.branch).map_err(|e| ValidationError::new("branch", e.message)));
        let context_path = p.check(validate::rel_path("context_path", &self.context_path));
        let dockerfile_path = p.check(validate::rel_path("dockerfile_path", &self.dockerfile_path));
        let health = validate_health(&self.health, p);
        let settle_secs = p.check(in_range("settle_secs", self.settle_secs, SETTLE_RANGE));
        let deploy_after = deploy_after(&self.deploy_after, p);
        let watch_paths = watch_paths(&self.watch_paths, p);
        let memory_bytes = p.check(in_range("memory_bytes", self.memory_bytes, MEMORY_RANGE).map_err(|_| {
            let (lo, hi) = limits::MEMORY_MB;
            ValidationError::new("memory_bytes", format!("must be between {lo} and {hi} MB"))
        }));
        let cpu_millis = p.check(in_range("cpu_millis", self.cpu_millis, CPU_MILLIS_RANGE));
        let build_timeout_secs =
            p.check(in_range("build_timeout_secs", self.build_timeout_secs, BUILD_TIMEOUT_RANGE));
        let drain_secs = p.check(in_range("drain_secs", self.drain_secs, DRAIN_RANGE));
        let target = match self.target.as_deref() {
            Some(t) if !t.is_empty() => Some(p.check(validate::stage_name("target", t))),
            _ => None,
        };
        let platforms = platforms(&self.platforms, p);
        let pipeline_path = p.check(validate::rel_path("pipeline_path", &self.pipeline_path));
        let domain = match self.domain.as_deref().map(str::trim) {
            Some(d) if !d.is_empty() => Some(p.check(validate::domain(d))),
            _ => None,
        };
        let parts = kind_parts?;
        Some(ServiceSpec {
            name: name?,
            kind: self.kind,
            git_url: parts.git_url,
            branch: branch?,
            context_path: context_path?,
            dockerfile_path: dockerfile_path?,
            build_args: build_args?,
            image: parts.image,
            image_from: parts.image_from,
            command: parts.command,
            volumes: parts.volumes,
            ports: parts.ports,
            deploy_after: deploy_after?,
            watch_paths: watch_paths?,
            port: parts.port,
            health: health?,
            settle_secs: settle_secs?,
            memory_bytes: memory_bytes?,
            cpu_millis: cpu_millis?,
            auto_deploy: self.auto_deploy,
            build_timeout_secs: build_timeout_secs?,
            drain_secs: drain_secs?,
            domain: match domain {
                Some(d) => Some(d?),
                None => None,
            },
            target: match target {
                Some(t) => Some(t?),
                None => None,
            },
            no_cache: self.no_cache,
            platforms: platforms?,
            pipeline_path: pipeline_path?,
            supersede_runs: self.supersede_runs,
            https_redirect: self.https_redirect,
            hsts: self.hsts,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub id: i64,
    pub project_id: i64,
    /// `spec.git_url` has any credentials masked when they are sealed here
    /// (see [`Service::real_git_url`]).
    pub spec: ServiceSpec,
    /// The git URL with its credentials, sealed; `None` when it has none.
    pub git_url_sealed: Option<String>,
    /// The service named by `spec.image_from`.
    pub image_from_id: Option<i64>,
    pub next_build_number: i64,
    pub created_at: String,
    pub updated_at: String,
}

// -------------------------------------------------------------- validation --

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &'static str,
    value: T,
    (lo, hi): (T, T),
) -> std::result::Result<T, ValidationError> {
    if value < lo || value > hi {
        return Err(ValidationError::new(field, format!("must be between {lo} and {hi}")));
    }
    Ok(value)
}

/// An HTTP request path: starts with '/', printable ASCII without spaces.
fn health_path(path: &str) -> std::result::Result<String, ValidationError> {
    let field = "health_path";
    if !path.starts_with('/') {
        return Err(ValidationError::new(field, "must start with '/'"));
    }
    if path.len() > HEALTH_PATH_MAX {
        return Err(ValidationError::new(field, format!("must be at most {HEALTH_PATH_MAX} bytes long")));
    }
    // A plain URL path and query: no shell metacharacters, quotes or
    // brackets, even though a probe never goes near a shell.
    let allowed = |c: u8| c.is_ascii_alphanumeric() || b"-._~/%?=&+,:@".contains(&c);
    if !path.bytes().all(allowed) {
        return Err(ValidationError::new(
            field,
            "may only contain letters, digits and - . _ ~ / % ? = & + , : @",
        ));
    }
    let segments = path.split('?').next().unwrap_or_default();
    if segments.split('/').any(|s| s == "..") {
        return Err(ValidationError::new(field, "must not contain '..' segments"));
    }
    Ok(path.to_string())
}

fn health_command(argv: &[String]) -> std::result::Result<Vec<String>, ValidationError> {
    let field = "health_command";
    if argv.is_empty() || argv.len() > HEALTH_COMMAND_MAX_ARGS {
        return Err(ValidationError::new(
            field,
            format!("must have 1 to {HEALTH_COMMAND_MAX_ARGS} arguments"),
        ));
    }
    if argv[0].is_empty() || argv[0].starts_with('-') {
        return Err(ValidationError::new(field, "must start with a program name"));
    }
    for arg in argv {
        validate::env_value(arg).map_err(|e| ValidationError::new(field, e.message))?;
    }
    Ok(argv.to_vec())
}

fn validate_health(h: &HealthCheck, p: &mut Problems) -> Option<HealthCheck> {
    let probe = match &h.probe {
        HealthProbe::Http { path } => p.check(health_path(path)).map(|path| HealthProbe::Http { path }),
        HealthProbe::Command { argv } => {
            p.check(health_command(argv)).map(|argv| HealthProbe::Command { argv })
        }
        HealthProbe::None => Some(HealthProbe::None),
    };
    let interval_ms = p.check(in_range("health_interval_ms", h.interval_ms, MS_RANGE_INTERVAL));
    let timeout_ms = p.check(in_range("health_timeout_ms", h.timeout_ms, MS_RANGE_INTERVAL));
    let retries = p.check(in_range("health_retries", h.retries, RETRIES_RANGE));
    let start_period_ms =
        p.check(in_range("health_start_period_ms", h.start_period_ms, MS_RANGE_START_PERIOD));
    Some(HealthCheck {
        probe: probe?,
        interval_ms: interval_ms?,
        timeout_ms: timeout_ms?,
        retries: retries?,
        start_period_ms: start_period_ms?,
    })
}
