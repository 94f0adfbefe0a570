//! Projects and their services: create, update, delete, list.
//!
//! Every field is validated ([`crate::validate`] plus the range checks here)
//! before it is stored; a rejected value comes back as
//! [`ProjectError::Invalid`] naming the field. Role checks belong to the
//! caller-facing use-cases that call this store. Environment variables live
//! in `service_env` and are handled with the secrets module (secret values are
//! stored encrypted).

use std::collections::BTreeMap;

use app::wire::limits;
use serde::{Deserialize, Serialize};
use sqlx::{sqlite::SqliteRow, Row};

use crate::{
    db::{now_rfc3339, Db},
    secrets::Secrets,
    validate::{self, Problems, ValidationError},
};

/// Why a project or service operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// A field failed validation.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// Several fields failed validation (every field is checked).
    #[error("{}", validate::join(.0))]
    Fields(Vec<ValidationError>),
    /// The value of `field` is already taken (a unique name).
    #[error("{field}: {message}")]
    Conflict { field: &'static str, message: String },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The object is still needed (a project with services, a service with
    /// queued or running jobs).
    #[error("{0}")]
    InUse(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("stored {field} is unreadable: {message}")]
    Corrupt { field: &'static str, message: String },
}

impl ProjectError {
    /// The field a validation or conflict error is about.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ProjectError::Invalid { field, .. } | ProjectError::Conflict { field, .. } => Some(field),
            ProjectError::Fields(list) => list.first().map(|e| e.field),
            _ => None,
        }
    }

    /// One refusal as [`ProjectError::Invalid`], several as
    /// [`ProjectError::Fields`].
    pub fn of_fields(mut list: Vec<ValidationError>) -> Self {
        if list.len() == 1 {
            let e = list.remove(0);
            return ProjectError::Invalid { field: e.field, message: e.message };
        }
        ProjectError::Fields(list)
    }

    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ProjectError::Invalid { field, message: message.into() }
    }
}

impl From<ValidationError> for ProjectError {
    fn from(e: ValidationError) -> Self {
        ProjectError::Invalid { field: e.field, message: e.message }
    }
}

type Result<T> = std::result::Result<T, ProjectError>;

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
    pub git_url: String,
    pub branch: String,
    pub context_path: String,
    pub dockerfile_path: String,
    pub build_args: BTreeMap<String, String>,
    pub port: u32,
    pub health: HealthCheck,
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
}

fn default_pipeline_path() -> String {
    crate::pipeline::spec::DEFAULT_PATH.to_string()
}

fn default_true() -> bool {
    true
}

impl ServiceSpec {
    /// A spec with the defaults for everything but name, URL and port.
    pub fn new(name: impl Into<String>, git_url: impl Into<String>, port: u32) -> Self {
        ServiceSpec {
            name: name.into(),
            git_url: git_url.into(),
            branch: "main".into(),
            context_path: ".".into(),
            dockerfile_path: "Dockerfile".into(),
            build_args: BTreeMap::new(),
            port,
            health: HealthCheck::default(),
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
        let git_url = p.check(validate::git_url(&self.git_url));
        let branch =
            p.check(validate::git_ref(&self.branch).map_err(|e| ValidationError::new("branch", e.message)));
        let context_path = p.check(validate::rel_path("context_path", &self.context_path));
        let dockerfile_path = p.check(validate::rel_path("dockerfile_path", &self.dockerfile_path));
        let port = p.check(validate::port(self.port));
        let health = validate_health(&self.health, p);
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
        Some(ServiceSpec {
            name: name?,
            git_url: git_url?,
            branch: branch?,
            context_path: context_path?,
            dockerfile_path: dockerfile_path?,
            build_args: build_args?,
            port: u32::from(port?),
            health: health?,
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
        })
    }
}

/// Most platforms one service builds.
const MAX_PLATFORMS: usize = 4;

/// Known, distinct platforms, normalized; at most [`MAX_PLATFORMS`].
fn platforms(list: &[String], p: &mut Problems) -> Option<Vec<String>> {
    if list.len() > MAX_PLATFORMS {
        p.add("platforms", format!("at most {MAX_PLATFORMS} platforms"));
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for raw in list {
        let platform = p.check(validate::platform(raw))?;
        if out.contains(&platform) {
            p.add("platforms", format!("{platform} is listed twice"));
            return None;
        }
        out.push(platform);
    }
    Some(out)
}

fn build_args(args: &BTreeMap<String, String>, p: &mut Problems) -> Option<BTreeMap<String, String>> {
    if args.len() > MAX_BUILD_ARGS {
        p.add("build_args", format!("at most {MAX_BUILD_ARGS} entries"));
        return None;
    }
    let mut out = BTreeMap::new();
    for (name, value) in args {
        let name = p.check(validate::build_arg_name(name))?;
        let value = p
            .check(validate::env_value(value).map_err(|e| {
                ValidationError::new("build_args", format!("value of {name}: {}", e.message))
            }))?;
        out.insert(name, value);
    }
    Some(out)
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

/// Maps a unique-constraint violation to a conflict on `field`.
fn conflict_on(field: &'static str, message: &'static str) -> impl FnOnce(sqlx::Error) -> ProjectError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() && db.message().contains("services.domain") => {
            ProjectError::Conflict { field: "domain", message: "another service uses this domain".into() }
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            ProjectError::Conflict { field, message: message.to_string() }
        }
        _ => ProjectError::Database(e),
    }
}

// ------------------------------------------------------------------- store --

const SERVICE_COLUMNS: &str = "id, project_id, name, git_url, branch, context_path, dockerfile_path, \
     build_args, port, health_kind, health_path, health_command, health_interval_ms, health_timeout_ms, \
     health_retries, health_start_period_ms, memory_bytes, cpu_millis, auto_deploy, build_timeout_secs, \
     drain_secs, domain, build_target, no_cache, platforms, pipeline_path, supersede_runs, git_url_sealed, \
     next_build_number, created_at, updated_at";

fn corrupt(field: &'static str, message: impl std::fmt::Display) -> ProjectError {
    ProjectError::Corrupt { field, message: message.to_string() }
}

fn int<T: TryFrom<i64>>(row: &SqliteRow, field: &'static str) -> Result<T> {
    let v: i64 = row.try_get(field)?;
    T::try_from(v).map_err(|_| corrupt(field, "out of range"))
}

fn row_to_service(row: &SqliteRow) -> Result<Service> {
    let build_args: String = row.try_get("build_args")?;
    let build_args = serde_json::from_str(&build_args).map_err(|e| corrupt("build_args", e))?;
    let kind: String = row.try_get("health_kind")?;
    let probe = match kind.as_str() {
        "http" => HealthProbe::Http {
            path: row
                .try_get::<Option<String>, _>("health_path")?
                .ok_or_else(|| corrupt("health_path", "missing"))?,
        },
        "command" => {
            let argv: Option<String> = row.try_get("health_command")?;
            let argv = argv.ok_or_else(|| corrupt("health_command", "missing"))?;
            HealthProbe::Command {
                argv: serde_json::from_str(&argv).map_err(|e| corrupt("health_command", e))?,
            }
        }
        _ => return Err(corrupt("health_kind", "unknown kind")),
    };
    Ok(Service {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        spec: ServiceSpec {
            name: row.try_get("name")?,
            git_url: row.try_get("git_url")?,
            branch: row.try_get("branch")?,
            context_path: row.try_get("context_path")?,
            dockerfile_path: row.try_get("dockerfile_path")?,
            build_args,
            port: int(row, "port")?,
            health: HealthCheck {
                probe,
                interval_ms: int(row, "health_interval_ms")?,
                timeout_ms: int(row, "health_timeout_ms")?,
                retries: int(row, "health_retries")?,
                start_period_ms: int(row, "health_start_period_ms")?,
            },
            memory_bytes: int(row, "memory_bytes")?,
            cpu_millis: int(row, "cpu_millis")?,
            auto_deploy: row.try_get::<i64, _>("auto_deploy")? != 0,
            build_timeout_secs: int(row, "build_timeout_secs")?,
            drain_secs: int(row, "drain_secs")?,
            domain: row.try_get("domain")?,
            target: row.try_get("build_target")?,
            no_cache: row.try_get::<i64, _>("no_cache")? != 0,
            platforms: serde_json::from_str(&row.try_get::<String, _>("platforms")?)
                .map_err(|e| corrupt("platforms", e))?,
            pipeline_path: row.try_get("pipeline_path")?,
            supersede_runs: row.try_get::<i64, _>("supersede_runs")? != 0,
        },
        git_url_sealed: row.try_get("git_url_sealed")?,
        next_build_number: row.try_get("next_build_number")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Service {
    /// The git URL to fetch from, credentials included.
    pub fn real_git_url(&self, secrets: &Secrets) -> Result<String> {
        match &self.git_url_sealed {
            Some(sealed) => secrets.open(sealed).map_err(|e| corrupt("git_url_sealed", e)),
            None => Ok(self.spec.git_url.clone()),
        }
    }
}

/// Binds a service's settings in the column order shared by INSERT and UPDATE.
fn bind_spec<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    spec: &'q ServiceSpec,
    cols: &'q SpecRow,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    query
        .bind(&spec.name)
        .bind(&spec.git_url)
        .bind(&spec.branch)
        .bind(&spec.context_path)
        .bind(&spec.dockerfile_path)
        .bind(&cols.build_args)
        .bind(spec.port)
        .bind(cols.health_kind)
        .bind(&cols.health_path)
        .bind(&cols.health_command)
        .bind(spec.health.interval_ms)
        .bind(spec.health.timeout_ms)
        .bind(spec.health.retries)
        .bind(spec.health.start_period_ms)
        .bind(cols.memory_bytes)
        .bind(spec.cpu_millis)
        .bind(spec.auto_deploy)
        .bind(spec.build_timeout_secs)
        .bind(spec.drain_secs)
        .bind(&spec.domain)
        .bind(&spec.target)
        .bind(spec.no_cache)
        .bind(&cols.platforms)
        .bind(&spec.pipeline_path)
        .bind(spec.supersede_runs)
}

/// The columns of a validated spec, in `SERVICE_COLUMNS` order from `name`
/// to `platforms`, ready to bind.
struct SpecRow {
    build_args: String,
    platforms: String,
    health_kind: &'static str,
    health_path: Option<String>,
    health_command: Option<String>,
    memory_bytes: i64,
}

impl SpecRow {
    fn new(spec: &ServiceSpec) -> Result<SpecRow> {
        let (health_kind, health_path, health_command) = match &spec.health.probe {
            HealthProbe::Http { path } => ("http", Some(path.clone()), None),
            HealthProbe::Command { argv } => (
                "command",
                None,
                Some(serde_json::to_string(argv).map_err(|e| corrupt("health_command", e))?),
            ),
        };
        Ok(SpecRow {
            build_args: serde_json::to_string(&spec.build_args).map_err(|e| corrupt("build_args", e))?,
            platforms: serde_json::to_string(&spec.platforms).map_err(|e| corrupt("platforms", e))?,
            health_kind,
            health_path,
            health_command,
            memory_bytes: i64::try_from(spec.memory_bytes)
                .map_err(|_| ProjectError::invalid("memory_bytes", "too large"))?,
        })
    }
}

/// Projects and services in the database.
#[derive(Clone)]
pub struct ProjectStore {
    db: Db,
    /// Seals git URL credentials; without it they are stored as given.
    sealer: Option<Secrets>,
}

impl ProjectStore {
    pub fn new(db: Db) -> Self {
        ProjectStore { db, sealer: None }
    }

    /// A store that keeps git URL credentials sealed (what every use-case
    /// that takes a URL from a user goes through).
    pub fn sealing(db: Db, secrets: Secrets) -> Self {
        ProjectStore { db, sealer: Some(secrets) }
    }

    /// The validated spec to store, with its git URL's credentials masked,
    /// and the sealed URL when it carried any.
    fn for_storage(&self, spec: &ServiceSpec) -> Result<(ServiceSpec, Option<String>)> {
        let mut spec = spec.validate()?;
        let masked = validate::redact_url(&spec.git_url);
        let sealed = match &self.sealer {
            Some(sealer) if masked != spec.git_url => Some(sealer.seal(&spec.git_url)),
            _ => None,
        };
        if sealed.is_some() {
            spec.git_url = masked;
        }
        Ok((spec, sealed))
    }

    pub async fn create_project(&self, name: &str) -> Result<Project> {
        let name = validate::slug("project", name)?;
        let created_at = now_rfc3339();
        let id = sqlx::query_scalar("INSERT INTO projects (name, created_at) VALUES (?, ?) RETURNING id")
            .bind(&name)
            .bind(&created_at)
            .fetch_one(&self.db)
            .await
            .map_err(conflict_on("project", "a project with this name exists"))?;
        Ok(Project { id, name, created_at })
    }

    pub async fn rename_project(&self, id: i64, name: &str) -> Result<Project> {
        let name = validate::slug("project", name)?;
        let row = sqlx::query("UPDATE projects SET name = ? WHERE id = ? RETURNING id, name, created_at")
            .bind(&name)
            .bind(id)
            .fetch_optional(&self.db)
            .await
            .map_err(conflict_on("project", "a project with this name exists"))?
            .ok_or(ProjectError::NotFound { what: "project" })?;
        Ok(Project {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// Deletes an empty project; delete its services first.
    pub async fn delete_project(&self, id: i64) -> Result<()> {
        // IMMEDIATE: take the write lock before the check, so nothing slips in.
        let mut tx = self.db.begin_with("BEGIN IMMEDIATE").await?;
        let services: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM services WHERE project_id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if services > 0 {
            return Err(ProjectError::InUse(format!("the project still has {services} service(s)")));
        }
        let done = sqlx::query("DELETE FROM projects WHERE id = ?").bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(ProjectError::NotFound { what: "project" });
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_project(&self, id: i64) -> Result<Project> {
        let row = sqlx::query("SELECT id, name, created_at FROM projects WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.db)
            .await?
            .ok_or(ProjectError::NotFound { what: "project" })?;
        Ok(Project {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// All projects, by name.
    pub async fn list_projects(&self) -> Result<Vec<Project>> {
        let rows = sqlx::query("SELECT id, name, created_at FROM projects ORDER BY name")
            .fetch_all(&self.db)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Project {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn create_service(&self, project_id: i64, spec: &ServiceSpec) -> Result<Service> {
        let (spec, sealed) = self.for_storage(spec)?;
        let cols = SpecRow::new(&spec)?;
        let now = now_rfc3339();
        let sql = format!(
            "INSERT INTO services (project_id, name, git_url, branch, context_path, dockerfile_path, \
                 build_args, port, health_kind, health_path, health_command, health_interval_ms, \
                 health_timeout_ms, health_retries, health_start_period_ms, memory_bytes, cpu_millis, \
                 auto_deploy, build_timeout_secs, drain_secs, domain, build_target, no_cache, platforms, \
                 pipeline_path, supersede_runs, git_url_sealed, created_at, updated_at) \
             SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? \
             FROM projects WHERE id = ? \
             RETURNING {SERVICE_COLUMNS}"
        );
        let row = bind_spec(sqlx::query(&sql), &spec, &cols)
            .bind(&sealed)
            .bind(&now)
            .bind(&now)
            .bind(project_id)
            .fetch_optional(&self.db)
            .await
            .map_err(conflict_on("service", "a service with this name exists in the project"))?
            .ok_or(ProjectError::NotFound { what: "project" })?;
        row_to_service(&row)
    }

    /// Replaces a service's settings (its name included).
    pub async fn update_service(&self, id: i64, spec: &ServiceSpec) -> Result<Service> {
        let (spec, sealed) = self.for_storage(spec)?;
        let cols = SpecRow::new(&spec)?;
        let sql = format!(
            "UPDATE services SET name = ?, git_url = ?, branch = ?, context_path = ?, dockerfile_path = ?, \
                 build_args = ?, port = ?, health_kind = ?, health_path = ?, health_command = ?, \
                 health_interval_ms = ?, health_timeout_ms = ?, health_retries = ?, \
                 health_start_period_ms = ?, memory_bytes = ?, cpu_millis = ?, auto_deploy = ?, \
                 build_timeout_secs = ?, drain_secs = ?, domain = ?, build_target = ?, no_cache = ?, \
                 platforms = ?, pipeline_path = ?, supersede_runs = ?, git_url_sealed = ?, updated_at = ? \
             WHERE id = ? RETURNING {SERVICE_COLUMNS}"
        );
        let row = bind_spec(sqlx::query(&sql), &spec, &cols)
            .bind(&sealed)
            .bind(now_rfc3339())
            .bind(id)
            .fetch_optional(&self.db)
            .await
            .map_err(conflict_on("service", "a service with this name exists in the project"))?
            .ok_or(ProjectError::NotFound { what: "service" })?;
        row_to_service(&row)
    }

    /// Deletes a service and its history. Refused while it has queued or
    /// running jobs; its containers must be removed by the caller first.
    pub async fn delete_service(&self, id: i64) -> Result<()> {
        // IMMEDIATE: take the write lock before the check, so nothing slips in.
        let mut tx = self.db.begin_with("BEGIN IMMEDIATE").await?;
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE service_id = ? AND status IN ('queued', 'running')",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if active > 0 {
            return Err(ProjectError::InUse(format!("the service has {active} queued or running job(s)")));
        }
        let done = sqlx::query("DELETE FROM services WHERE id = ?").bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(ProjectError::NotFound { what: "service" });
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_service(&self, id: i64) -> Result<Service> {
        let row = sqlx::query(&format!("SELECT {SERVICE_COLUMNS} FROM services WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?
            .ok_or(ProjectError::NotFound { what: "service" })?;
        row_to_service(&row)
    }

    /// A service and its project, read in one query.
    pub async fn get_service_and_project(&self, id: i64) -> Result<(Project, Service)> {
        let row = sqlx::query(&format!(
            "SELECT {SERVICE_COLUMNS}, \
             (SELECT name FROM projects WHERE id = services.project_id) AS project_name, \
             (SELECT created_at FROM projects WHERE id = services.project_id) AS project_created_at \
             FROM services WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.db)
        .await?
        .ok_or(ProjectError::NotFound { what: "service" })?;
        let service = row_to_service(&row)?;
        let project = Project {
            id: service.project_id,
            name: row.try_get("project_name")?,
            created_at: row.try_get("project_created_at")?,
        };
        Ok((project, service))
    }

    /// A project's services, by name.
    pub async fn list_services(&self, project_id: i64) -> Result<Vec<Service>> {
        let rows = sqlx::query(&format!(
            "SELECT {SERVICE_COLUMNS} FROM services WHERE project_id = ? ORDER BY name"
        ))
        .bind(project_id)
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(row_to_service).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> anyhow::Result<(tempfile::TempDir, ProjectStore)> {
        let dir = tempfile::tempdir()?;
        let db = crate::db::open(dir.path()).await?;
        Ok((dir, ProjectStore::new(db)))
    }

    fn spec() -> ServiceSpec {
        ServiceSpec::new("api", "https://github.com/o/r.git", 8080)
    }

    #[tokio::test]
    async fn projects_and_services_round_trip() -> anyhow::Result<()> {
        let (_dir, store) = store().await?;
        let project = store.create_project("shop").await?;
        assert_eq!(store.list_projects().await?, vec![project.clone()]);

        let mut spec = spec();
        spec.context_path = "./services/api/".into();
        spec.build_args.insert("NODE_ENV".into(), "production".into());
        spec.health = HealthCheck {
            probe: HealthProbe::Command {
                argv: vec!["curl".into(), "-f".into(), "http://localhost/".into()],
            },
            ..HealthCheck::default()
        };
        let service = store.create_service(project.id, &spec).await?;
        assert_eq!(service.spec.context_path, "services/api", "normalized");
        assert_eq!(service.spec.health, spec.health);
        assert_eq!(service.next_build_number, 1);
        assert_eq!(store.get_service(service.id).await?, service);
        let other = store.create_project("other").await?;
        store.create_service(other.id, &ServiceSpec::new("api", "https://example.com/b.git", 8080)).await?;
        assert_eq!(store.get_service_and_project(service.id).await?, (project.clone(), service.clone()));
        assert!(matches!(
            store.get_service_and_project(service.id + 100).await,
            Err(ProjectError::NotFound { what: "service" })
        ));

        let mut changed = service.spec.clone();
        changed.port = 9090;
        changed.auto_deploy = false;
        changed.health.probe = HealthProbe::Http { path: "/healthz".into() };
        let updated = store.update_service(service.id, &changed).await?;
        assert_eq!(updated.spec, changed);
        assert_eq!(store.list_services(project.id).await?, vec![updated]);

        assert!(matches!(store.delete_project(project.id).await, Err(ProjectError::InUse(_))));
        store.delete_service(service.id).await?;
        store.delete_project(project.id).await?;
        assert_eq!(store.list_projects().await?, vec![other]);
        assert!(matches!(
            store.get_project(project.id).await,
            Err(ProjectError::NotFound { what: "project" })
        ));
        Ok(())
    }

    #[tokio::test]
    async fn domains_are_normalized_and_unique() -> anyhow::Result<()> {
        let (_dir, store) = store().await?;
        let p = store.create_project("shop").await?;
        let mut first = spec();
        first.domain = Some("Shop.Example.COM.".into());
        let created = store.create_service(p.id, &first).await?;
        assert_eq!(created.spec.domain.as_deref(), Some("shop.example.com"));
        let mut second = spec();
        second.name = "admin".into();
        second.domain = Some("shop.example.com".into());
        let e = store.create_service(p.id, &second).await.expect_err("taken");
        assert!(matches!(e, ProjectError::Conflict { field: "domain", .. }), "{e}");
        second.domain = None;
        assert_eq!(store.create_service(p.id, &second).await?.spec.domain, None);
        Ok(())
    }

    #[tokio::test]
    async fn names_are_unique() -> anyhow::Result<()> {
        let (_dir, store) = store().await?;
        let p = store.create_project("shop").await?;
        let e = store.create_project("shop").await.expect_err("duplicate project");
        assert!(matches!(e, ProjectError::Conflict { field: "project", .. }), "{e}");
        store.create_service(p.id, &spec()).await?;
        let e = store.create_service(p.id, &spec()).await.expect_err("duplicate service");
        assert_eq!(e.field(), Some("service"));
        let e = store.create_service(p.id + 100, &spec()).await.expect_err("missing project");
        assert!(matches!(e, ProjectError::NotFound { what: "project" }));
        Ok(())
    }

    #[tokio::test]
    async fn every_field_is_validated_and_named() -> anyhow::Result<()> {
        let (_dir, store) = store().await?;
        let p = store.create_project("shop").await?;
        assert_eq!(store.create_project("Shop!").await.expect_err("bad name").field(), Some("project"));
        assert_eq!(store.rename_project(p.id, "-x").await.expect_err("bad name").field(), Some("project"));

        type Edit = fn(&mut ServiceSpec);
        let cases: Vec<(Edit, &str)> = vec![
            (|s| s.name = "API".into(), "service"),
            (|s| s.git_url = "ext::sh -c id".into(), "git_url"),
            (|s| s.branch = "main;id".into(), "branch"),
            (|s| s.context_path = "../x".into(), "context_path"),
            (|s| s.dockerfile_path = "/Dockerfile".into(), "dockerfile_path"),
            (|s| _ = s.build_args.insert("A-B".into(), "x".into()), "build_arg"),
            (|s| _ = s.build_args.insert("A".into(), "x\0".into()), "build_args"),
            (|s| s.port = 0, "port"),
            (|s| s.health.probe = HealthProbe::Http { path: "healthz".into() }, "health_path"),
            (|s| s.health.probe = HealthProbe::Http { path: "/a b".into() }, "health_path"),
            (|s| s.health.probe = HealthProbe::Command { argv: vec![] }, "health_command"),
            (|s| s.health.probe = HealthProbe::Command { argv: vec!["-x".into()] }, "health_command"),
            (|s| s.health.interval_ms = 0, "health_interval_ms"),
            (|s| s.health.timeout_ms = u32::MAX, "health_timeout_ms"),
            (|s| s.health.retries = 0, "health_retries"),
            (|s| s.health.start_period_ms = u32::MAX, "health_start_period_ms"),
            (|s| s.memory_bytes = 1024, "memory_bytes"),
            (|s| s.cpu_millis = 0, "cpu_millis"),
            (|s| s.build_timeout_secs = 0, "build_timeout_secs"),
            (|s| s.drain_secs = 100_000, "drain_secs"),
            (|s| s.domain = Some("localhost".into()), "domain"),
            (|s| s.domain = Some("a_b.example.com".into()), "domain"),
            (|s| s.domain = Some("-x.example.com".into()), "domain"),
        ];
        for (edit, field) in cases {
            let mut s = spec();
            edit(&mut s);
            let e = store.create_service(p.id, &s).await.expect_err(field);
            assert_eq!(e.field(), Some(field), "{e}");
        }
        assert!(store.list_services(p.id).await?.is_empty(), "nothing stored");
        Ok(())
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let mut s = spec();
        s.name = "API".into();
        s.port = 0;
        s.health.retries = 0;
        s.memory_bytes = 1024;
        s.domain = Some("localhost".into());
        match s.validate() {
            Err(ProjectError::Fields(list)) => {
                let fields: Vec<&str> = list.iter().map(|e| e.field).collect();
                assert_eq!(fields, ["service", "port", "health_retries", "memory_bytes", "domain"]);
                let memory = list.iter().find(|e| e.field == "memory_bytes").map(|e| e.message.as_str());
                assert_eq!(memory, Some("must be between 6 and 1048576 MB"));
            }
            other => panic!("expected every field refused, got {other:?}"),
        }
        assert_eq!(spec().validate().map(|v| v.port).ok(), Some(spec().port));
    }
}
