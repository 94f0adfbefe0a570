//! Builds: the use-cases (trigger, cancel, history, logs) in [`usecases`],
//! the job that checks out, builds and tags in [`job`].
//!
//! A build's status set is the job status set (queued → running →
//! succeeded | failed | cancelled | timed_out | interrupted), so
//! [`BuildStatus`] is [`JobStatus`], plus `skipped`: a pipeline run that
//! its commit (`[skip ci]`) or its file's top-level `when` skipped.

mod changes;
pub mod group;
mod image_job;
pub mod images;
mod job;
mod pipeline_job;
mod succeeded;
mod usecases;

use serde::{Deserialize, Serialize};
use sqlx::{sqlite::SqliteRow, Row};

pub use job::BuildHandler;
pub use usecases::TriggerBuild;

use crate::history::duration_ms;
use crate::jobs::JobStatus;

pub type BuildStatus = JobStatus;

/// The `reason` of the deployment a build queues itself (auto-deploy, the
/// implicit pipeline's deploy step).
pub fn auto_deploy_reason(build: &Build) -> String {
    format!("build #{} ({})", build.number, build.trigger)
}

/// A build row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub id: i64,
    pub service_id: i64,
    /// Per service, from 1.
    pub number: i64,
    pub job_id: Option<i64>,
    pub commit_sha: Option<String>,
    pub git_ref: String,
    /// `manual`, `api`, `webhook`.
    pub trigger: String,
    pub actor: Option<String>,
    pub status: BuildStatus,
    pub image_id: Option<String>,
    pub tags: Vec<String>,
    pub phase: Option<String>,
    pub progress: u8,
    pub attempt: i64,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Set when retention removed the image.
    pub image_removed_at: Option<String>,
    /// Started as "build only": never deployed automatically.
    pub build_only: bool,
    /// `<registry repository>@<digest>` when the build was pushed.
    pub pushed_ref: Option<String>,
    /// Queue wait (created → started) and run time (started → finished).
    pub queued_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    /// The builds queued with it by one push or "Build all" (`group`).
    pub push_group: Option<String>,
}

pub(crate) const COLUMNS: &str = "id, service_id, number, job_id, commit_sha, git_ref, trigger, actor, \
     status, image_id, tags, phase, progress, attempt, error, created_at, started_at, finished_at, \
     image_removed_at, build_only, pushed_ref, push_group";

/// What a deployment shows of its build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRef {
    pub id: i64,
    pub number: i64,
    pub commit_sha: Option<String>,
}

pub(crate) fn from_row(row: &SqliteRow) -> anyhow::Result<Build> {
    let status: String = row.try_get("status")?;
    let tags: String = row.try_get("tags")?;
    let created_at: String = row.try_get("created_at")?;
    let started_at: Option<String> = row.try_get("started_at")?;
    let finished_at: Option<String> = row.try_get("finished_at")?;
    Ok(Build {
        id: row.try_get("id")?,
        service_id: row.try_get("service_id")?,
        number: row.try_get("number")?,
        job_id: row.try_get("job_id")?,
        commit_sha: row.try_get("commit_sha")?,
        git_ref: row.try_get("git_ref")?,
        trigger: row.try_get("trigger")?,
        actor: row.try_get("actor")?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("unknown build status {status:?}"))?,
        image_id: row.try_get("image_id")?,
        tags: serde_json::from_str(&tags)?,
        phase: row.try_get("phase")?,
        progress: u8::try_from(row.try_get::<i64, _>("progress")?).unwrap_or(100),
        attempt: row.try_get("attempt")?,
        error: row.try_get("error")?,
        queued_ms: duration_ms(Some(&created_at), started_at.as_deref()),
        duration_ms: duration_ms(started_at.as_deref(), finished_at.as_deref()),
        created_at,
        started_at,
        finished_at,
        image_removed_at: row.try_get("image_removed_at")?,
        build_only: row.try_get("build_only")?,
        pushed_ref: row.try_get("pushed_ref")?,
        push_group: row.try_get("push_group")?,
    })
}
