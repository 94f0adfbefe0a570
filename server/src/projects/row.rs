//! A service as stored: its columns, the row → [`Service`] reading and the
//! spec → column binding shared by INSERT and UPDATE.

use sqlx::{sqlite::SqliteRow, Row};

use super::{HealthCheck, HealthProbe, ProjectError, Result, Service, ServiceKind, ServiceSpec};
use crate::secrets::Secrets;

// ------------------------------------------------------------------- store --

/// Every column of a service, and the name of the service it takes its
/// image from (a subquery: only for SELECT, not RETURNING).
pub(super) const SERVICE_COLUMNS: &str = "id, project_id, name, kind, git_url, branch, context_path, \
     dockerfile_path, build_args, image_ref, image_from_id, command, volumes, settle_secs, watch_paths, \
     (SELECT src.name FROM services AS src WHERE src.id = services.image_from_id) AS image_from_name, \
     (SELECT json_group_array(json_object('host', host_port, 'container', container_port, 'protocol', protocol)) \
      FROM (SELECT * FROM service_ports WHERE service_id = services.id ORDER BY host_port, protocol)) AS ports, \
     (SELECT json_group_array(name) FROM (SELECT a.name FROM service_deploy_after AS d \
      JOIN services AS a ON a.id = d.after_id WHERE d.service_id = services.id ORDER BY a.name)) AS deploy_after, port, health_kind, health_path, health_command, health_interval_ms, health_timeout_ms, \
     health_retries, health_start_period_ms, memory_bytes, cpu_millis, auto_deploy, build_timeout_secs, \
     drain_secs, domain, build_target, no_cache, platforms, pipeline_path, supersede_runs, https_redirect, hsts, \
     git_url_sealed, \
     next_build_number, created_at, updated_at";

pub(super) fn corrupt(field: &'static str, message: impl std::fmt::Display) -> ProjectError {
    ProjectError::Corrupt { field, message: message.to_string() }
}

fn int<T: TryFrom<i64>>(row: &SqliteRow, field: &'static str) -> Result<T> {
    let v: i64 = row.try_get(field)?;
    T::try_from(v).map_err(|_| corrupt(field, "out of range"))
}

pub(super) fn row_to_service(row: &SqliteRow) -> Result<Service> {
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
        "none" => HealthProbe::None,
        _ => return Err(corrupt("health_kind", "unknown kind")),
    };
    let service_kind: String = row.try_get("kind")?;
    let command: Option<String> = row.try_get("command")?;
    let command = match command {
        Some(argv) => Some(serde_json::from_str(&argv).map_err(|e| corrupt("command", e))?),
        None => None,
    };
    let volumes: String = row.try_get("volumes")?;
    Ok(Service {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        spec: ServiceSpec {
            name: row.try_get("name")?,
            kind: ServiceKind::parse(&service_kind).ok_or_else(|| corrupt("kind", "unknown kind"))?,
            git_url: row.try_get("git_url")?,
            branch: row.try_get("branch")?,
            context_path: row.try_get("context_path")?,
            dockerfile_path: row.try_get("dockerfile_path")?,
            build_args,
            image: row.try_get("image_ref")?,
            image_from: row.try_get("image_from_name")?,
            command,
            volumes: serde_json::from_str(&volumes).map_err(|e| corrupt("volumes", e))?,
            ports: serde_json::from_str(&row.try_get::<String, _>("ports")?)
                .map_err(|e| corrupt("ports", e))?,
            deploy_after: serde_json::from_str(&row.try_get::<String, _>("deploy_after")?)
                .map_err(|e| corrupt("deploy_after", e))?,
            watch_paths: serde_json::from_str(&row.try_get::<String, _>("watch_paths")?)
                .map_err(|e| corrupt("watch_paths", e))?,
            port: match row.try_get::<Option<i64>, _>("port")? {
                Some(port) => Some(u32::try_from(port).map_err(|_| corrupt("port", "out of range"))?),
                None => None,
            },
            settle_secs: int(row, "settle_secs")?,
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
            https_redirect: row.try_get::<i64, _>("https_redirect")? != 0,
            hsts: row.try_get::<i64, _>("hsts")? != 0,
        },
        git_url_sealed: row.try_get("git_url_sealed")?,
        image_from_id: row.try_get("image_from_id")?,
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
pub(super) fn bind_spec<'q>(
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
        .bind(spec.kind.as_str())
        .bind(&spec.image)
        .bind(cols.image_from_id)
        .bind(&cols.command)
        .bind(&cols.volumes)
        .bind(spec.settle_secs)
        .bind(&cols.watch_paths)
        .bind(spec.https_redirect)
        .bind(spec.hsts)
}

/// The column list [`bind_spec`] binds, for INSERT.
pub(super) const SPEC_COLUMNS: &str = "name, git_url, branch, context_path, dockerfile_path, build_args, \
     port, health_kind, health_path, health_command, health_interval_ms, health_timeout_ms, health_retries, \
     health_start_period_ms, memory_bytes, cpu_millis, auto_deploy, build_timeout_secs, drain_secs, domain, \
     build_target, no_cache, platforms, pipeline_path, supersede_runs, kind, image_ref, image_from_id, \
     command, volumes, settle_secs, watch_paths, https_redirect, hsts";

/// `SPEC_COLUMNS` as `col = ?` pairs, for UPDATE.
pub(super) fn spec_assignments() -> String {
    SPEC_COLUMNS.split(',').map(|c| format!("{} = ?", c.trim())).collect::<Vec<_>>().join(", ")
}

/// The columns of a validated spec, in `SERVICE_COLUMNS` order from `name`
/// to `platforms`, ready to bind.
pub(super) struct SpecRow {
    /// The id of the service named by `image_from`, resolved by the store.
    pub image_from_id: Option<i64>,
    command: Option<String>,
    volumes: String,
    watch_paths: String,
    build_args: String,
    platforms: String,
    health_kind: &'static str,
    health_path: Option<String>,
    health_command: Option<String>,
    memory_bytes: i64,
}

impl SpecRow {
    pub(super) fn new(spec: &ServiceSpec, image_from_id: Option<i64>) -> Result<SpecRow> {
        let (health_kind, health_path, health_command) = match &spec.health.probe {
            HealthProbe::Http { path } => ("http", Some(path.clone()), None),
            HealthProbe::Command { argv } => (
                "command",
                None,
                Some(serde_json::to_string(argv).map_err(|e| corrupt("health_command", e))?),
            ),
            HealthProbe::None => ("none", None, None),
        };
        let command = match &spec.command {
            Some(argv) => Some(serde_json::to_string(argv).map_err(|e| corrupt("command", e))?),
            None => None,
        };
        Ok(SpecRow {
            image_from_id,
            command,
            volumes: serde_json::to_string(&spec.volumes).map_err(|e| corrupt("volumes", e))?,
            watch_paths: serde_json::to_string(&spec.watch_paths).map_err(|e| corrupt("watch_paths", e))?,
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
