//! A run's report (issue 19): the build row with its pipeline columns and
//! its `build_steps` rows (steps and service containers), read in one query
//! for the steps. Runs without rows (before pipelines, or implicit runs)
//! report one synthetic `build` step derived from the build row.

use app::wire::Role;
use sqlx::{sqlite::SqliteRow, Row};

use crate::{
    access::require,
    builds::Build,
    engine::{Engine, EngineError},
    jobs::JobStatus,
    pipeline::spec::SpecError,
};

/// One `build_steps` row.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub variant: i64,
    pub variant_name: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub exit_code: Option<i64>,
    pub oom: bool,
    pub ignored: bool,
    pub depends_on: Vec<String>,
    pub error: Option<String>,
    pub line: Option<i64>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub healthy_ms: Option<i64>,
}

impl StepRow {
    pub fn is_service(&self) -> bool {
        self.kind == "service"
    }
}

/// A run with what its pipeline did.
#[derive(Debug, Clone)]
pub struct Report {
    pub build: Build,
    pub event: Option<String>,
    pub pipeline: Option<String>,
    pub pipeline_errors: Vec<SpecError>,
    /// Steps and services in planned order (variant, then row id).
    pub steps: Vec<StepRow>,
}

const STEP_COLUMNS: &str = "variant, variant_name, name, kind, status, exit_code, oom, ignored, depends_on, \
     error, line, started_at, finished_at, healthy_ms";

impl Engine {
    /// The report of a run (viewer).
    pub async fn build_report(
        &self,
        caller: &app::wire::Caller,
        build_id: i64,
    ) -> Result<Report, EngineError> {
        require(caller, Role::Viewer)?;
        let build = self.build(build_id).await?;
        let row = sqlx::query("SELECT event, pipeline, pipeline_errors FROM builds WHERE id = ?")
            .bind(build_id)
            .fetch_optional(&self.db)
            .await?
            .ok_or(EngineError::NotFound("build"))?;
        let event: Option<String> = row.try_get("event")?;
        let pipeline: Option<String> = row.try_get("pipeline")?;
        let errors: Option<String> = row.try_get("pipeline_errors")?;
        let pipeline_errors = match errors {
            Some(text) => serde_json::from_str(&text).map_err(|e| EngineError::Internal(e.into()))?,
            None => Vec::new(),
        };
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM build_steps WHERE build_id = ? ORDER BY variant, id"
        ))
        .bind(build_id)
        .fetch_all(&self.db)
        .await?;
        let mut steps = rows.iter().map(step_row).collect::<anyhow::Result<Vec<_>>>()?;
        if steps.is_empty() {
            steps.push(synthetic_step(&build));
            if let Some(deploy) = self.implicit_deploy_step(&build).await? {
                steps.push(deploy);
            }
        }
        Ok(Report { build, event, pipeline, pipeline_errors, steps })
    }
}

impl Engine {
    /// The implicit pipeline's second step: the deployment the build queued
    /// itself (auto-deploy), if it did.
    async fn implicit_deploy_step(&self, build: &Build) -> Result<Option<StepRow>, EngineError> {
        let row = sqlx::query(
            "SELECT status, error, started_at, finished_at FROM deployments \
             WHERE service_id = ? AND build_id = ? AND reason = ? ORDER BY id LIMIT 1",
        )
        .bind(build.service_id)
        .bind(build.id)
        .bind(crate::builds::auto_deploy_reason(build))
        .fetch_optional(&self.db)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status")?;
        let status = match status.as_str() {
            "live" | "superseded" | "rolled_back" => "success",
            "failed" => "failure",
            "starting" => "running",
            _ => "pending",
        };
        Ok(Some(StepRow {
            name: "deploy".into(),
            kind: "deploy".into(),
            status: status.into(),
            depends_on: vec!["build".into()],
            error: row.try_get("error")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            ..synthetic_step(build)
        }))
    }
}

fn step_row(row: &SqliteRow) -> anyhow::Result<StepRow> {
    let depends_on: String = row.try_get("depends_on")?;
    Ok(StepRow {
        variant: row.try_get("variant")?,
        variant_name: row.try_get("variant_name")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        status: row.try_get("status")?,
        exit_code: row.try_get("exit_code")?,
        oom: row.try_get("oom")?,
        ignored: row.try_get("ignored")?,
        depends_on: serde_json::from_str(&depends_on)?,
        error: row.try_get("error")?,
        line: row.try_get("line")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        healthy_ms: row.try_get("healthy_ms")?,
    })
}

/// The step status a build status stands for.
pub fn step_status(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Queued => "pending",
        JobStatus::Running => "running",
        JobStatus::Succeeded => "success",
        JobStatus::Failed => "failure",
        JobStatus::Cancelled => "cancelled",
        JobStatus::TimedOut | JobStatus::Interrupted => "killed",
        JobStatus::Skipped => "skipped",
    }
}

/// The one step of a run without `build_steps` rows: the build itself.
pub fn synthetic_step(build: &Build) -> StepRow {
    StepRow {
        variant: 0,
        variant_name: "default".into(),
        name: "build".into(),
        kind: "build".into(),
        status: step_status(build.status).into(),
        exit_code: None,
        oom: false,
        ignored: false,
        depends_on: Vec::new(),
        error: build.error.clone(),
        line: None,
        started_at: build.started_at.clone(),
        finished_at: build.finished_at.clone(),
        healthy_ms: None,
    }
}

/// A variant's status from its steps: running while one runs, failure when
/// one failed (not ignored), cancelled or killed when one was, success when
/// all ended otherwise, else pending.
pub fn variant_status<'a>(steps: impl Iterator<Item = &'a StepRow> + Clone) -> &'static str {
    let any = |s: &str| steps.clone().any(|r| r.status == s && !(s == "failure" && r.ignored));
    if any("running") {
        "running"
    } else if any("failure") {
        "failure"
    } else if any("killed") {
        "killed"
    } else if any("cancelled") {
        "cancelled"
    } else if any("pending") {
        "pending"
    } else {
        "success"
    }
}

/// The longest step name a pipeline file accepts.
pub const MAX_STEP_NAME: usize = 63;

/// A `step` filter: 1 to 63 characters of `A-Za-z0-9_.-` (a step name).
pub fn step_filter(step: Option<String>) -> Result<Option<String>, app::AppError> {
    let Some(step) = step else { return Ok(None) };
    let ok = (1..=MAX_STEP_NAME).contains(&step.len())
        && step.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok {
        return Err(app::AppError::InvalidField {
            field: "step".into(),
            message: format!("a step name is 1 to {MAX_STEP_NAME} of letters, digits, '-', '_' and '.'"),
        });
    }
    Ok(Some(step))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, ignored: bool) -> StepRow {
        StepRow { status: status.into(), ignored, ..synthetic_base() }
    }

    fn synthetic_base() -> StepRow {
        StepRow {
            variant: 0,
            variant_name: "default".into(),
            name: "s".into(),
            kind: "commands".into(),
            status: "pending".into(),
            exit_code: None,
            oom: false,
            ignored: false,
            depends_on: Vec::new(),
            error: None,
            line: None,
            started_at: None,
            finished_at: None,
            healthy_ms: None,
        }
    }

    #[test]
    fn variant_status_follows_its_steps() {
        let ok = [row("success", false), row("skipped", false)];
        assert_eq!(variant_status(ok.iter()), "success");
        let ignored = [row("success", false), row("failure", true)];
        assert_eq!(variant_status(ignored.iter()), "success");
        let failed = [row("failure", false), row("skipped", false)];
        assert_eq!(variant_status(failed.iter()), "failure");
        let running = [row("failure", false), row("running", false)];
        assert_eq!(variant_status(running.iter()), "running");
    }

    #[test]
    fn build_statuses_map_to_step_statuses() {
        assert_eq!(step_status(JobStatus::Succeeded), "success");
        assert_eq!(step_status(JobStatus::Failed), "failure");
        assert_eq!(step_status(JobStatus::Queued), "pending");
        assert_eq!(step_status(JobStatus::Interrupted), "killed");
    }
}
