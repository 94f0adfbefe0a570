//! Build use-cases. Each checks the caller's role first.

use std::time::Duration;

use app::wire::{BuildPoint, Caller, Role};
use serde::{Deserialize, Serialize};

use super::{from_row, Build, BuildRef, COLUMNS};
use crate::{
    access::require,
    audit::{self, Event},
    engine::{Engine, EngineError, BUILD_JOB},
    history::{Page, PageRequest},
    jobs::{CancelOutcome, JobQueue, NewJob},
    logs::LogLine,
    validate,
};

/// Runs a build gets: the first, plus one retry after an interruption.
const BUILD_ATTEMPTS: u32 = 2;

/// What to build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerBuild {
    pub service_id: i64,
    /// Branch, tag or commit; the service's branch when `None`.
    pub git_ref: Option<String>,
    /// `manual`, `api`, `webhook`.
    pub trigger: String,
    /// Deploy the image once built, whatever the service's auto-deploy
    /// setting.
    pub deploy: bool,
    /// Never deploy this build, whatever the service's auto-deploy setting
    /// ("Build only"). Refused together with `deploy`.
    pub build_only: bool,
    /// Ignore the build cache for this build (`slipway build --no-cache`).
    pub no_cache: bool,
    /// The builds queued together by one push or one "Build all": they
    /// share a checkout per repository and ref, and one image build per set
    /// of identical build inputs (`super::group`).
    #[serde(default)]
    pub group: Option<String>,
}

impl TriggerBuild {
    /// A manual build of the service's branch that never deploys.
    pub fn manual_build_only(service_id: i64) -> Self {
        TriggerBuild { service_id, trigger: "manual".into(), build_only: true, ..Default::default() }
    }
}

/// The job payload of a build.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct BuildPayload {
    pub deploy: bool,
    /// This build ignores the build cache (`slipway build --no-cache`).
    #[serde(default)]
    pub no_cache: bool,
}

fn trigger_name(raw: &str) -> Result<String, EngineError> {
    match raw {
        "manual" | "api" | "webhook" | "cli" => Ok(raw.to_string()),
        "" => Ok("manual".into()),
        _ => Err(EngineError::Invalid {
            field: "trigger",
            message: "must be manual, api, webhook or cli".into(),
        }),
    }
}

impl Engine {
    /// Queues a build (deployer).
    pub async fn trigger_build(&self, caller: &Caller, req: TriggerBuild) -> Result<Build, EngineError> {
        let actor = require(caller, Role::Deployer)?;
        let build = self.enqueue_build(&actor, req).await?;
        audit::record(
            &self.db,
            Event::by(caller, "build.trigger")
                .target(format!("build:{}", build.id))
                .detail(format!("service:{} ref {}", build.service_id, build.git_ref)),
        )
        .await;
        Ok(build)
    }

    /// Queues a build for `actor` (a user, or a webhook's source): the build
    /// row and its job in one transaction.
    ///
    /// Whether the build deploys once it succeeds is decided here, once:
    /// when asked (`deploy`), or when the service deploys automatically and
    /// the build is not "build only". The decision goes into the job's
    /// payload, in the same transaction, so a retry after a crash and the
    /// success hook (which queues the deploy with the success, see
    /// `BuildHandler::succeeded`) read the same answer.
    pub async fn enqueue_build(&self, actor: &str, req: TriggerBuild) -> Result<Build, EngineError> {
        let trigger = trigger_name(&req.trigger)?;
        if req.deploy && req.build_only {
            return Err(EngineError::Invalid {
                field: "build_only",
                message: "A build cannot be both deployed and build only.".into(),
            });
        }
        let git_ref = match req.git_ref.as_deref().map(str::trim) {
            Some(r) if !r.is_empty() => Some(validate::git_ref(r)?),
            _ => None,
        };
        let mut tx = self.db.begin_with("BEGIN IMMEDIATE").await?;
        // Only a service that builds its own image is built: an image
        // service has no repository, and a service with `image_from` deploys
        // its source's builds.
        let source: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT kind, (SELECT src.name FROM services AS src WHERE src.id = services.image_from_id) \
             FROM services WHERE id = ?",
        )
        .bind(req.service_id)
        .fetch_optional(&mut *tx)
        .await?;
        match source {
            Some((kind, _)) if kind == "image" => {
                return Err(EngineError::Conflict(
                    "an image service is not built: deploy it to run its image reference".into(),
                ))
            }
            Some((_, Some(from))) => {
                return Err(EngineError::Conflict(format!(
                    "this service takes its image from {from}: build {from} instead"
                )))
            }
            _ => {}
        }
        let row: Option<(i64, String, i64, bool)> = sqlx::query_as(
            "UPDATE services SET next_build_number = next_build_number + 1 WHERE id = ? AND deleting_at IS NULL \
             RETURNING next_build_number - 1, branch, build_timeout_secs, auto_deploy",
        )
        .bind(req.service_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (number, branch, timeout_secs, auto_deploy) = row.ok_or(EngineError::NotFound("service"))?;
        let git_ref = git_ref.unwrap_or(branch);
        let deploy = req.deploy || (auto_deploy && !req.build_only);
        let job =
            NewJob::new(BUILD_JOB, Some(req.service_id), Duration::from_secs(timeout_secs.unsigned_abs()))
                .payload(
                    serde_json::to_value(BuildPayload { deploy, no_cache: req.no_cache })
                        .map_err(anyhow::Error::from)?,
                )
                .max_attempts(BUILD_ATTEMPTS);
        let job_id = self.queue.enqueue(&mut tx, &job).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO builds (service_id, number, job_id, git_ref, trigger, actor, status, created_at, build_only, \
             push_group) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?) RETURNING {COLUMNS}"
        ))
        .bind(req.service_id)
        .bind(number)
        .bind(job_id)
        .bind(&git_ref)
        .bind(&trigger)
        .bind(actor)
        .bind(crate::db::now_rfc3339())
        .bind(req.build_only)
        .bind(&req.group)
        .fetch_one(&mut *tx)
        .await?;
        let build = from_row(&row)?;
        tx.commit().await?;
        self.queue.notify();
        tracing::info!(build_id = build.id, service_id = req.service_id, number, %git_ref, %trigger, %actor, deploy, "build queued");
        if trigger == "webhook" {
            if let Err(e) = self.supersede(&build).await {
                tracing::warn!(build_id = build.id, error = %e, "cannot cancel the runs this push supersedes");
            }
        }
        Ok(build)
    }

    /// A newer push supersedes the service's older pushed runs of the same
    /// branch still queued or running, when the service says so
    /// (`supersede_runs`, default on) and runs a pipeline file (its newest
    /// run read one; implicit builds and deploys are never cancelled this
    /// way). They are cancelled; their error says by which build.
    async fn supersede(&self, newer: &Build) -> anyhow::Result<()> {
        let row: Option<(bool, String, Option<String>)> = sqlx::query_as(
            "SELECT s.supersede_runs, s.branch, \
                 (SELECT pipeline FROM builds WHERE service_id = s.id AND pipeline IS NOT NULL \
                  ORDER BY id DESC LIMIT 1) \
             FROM services s WHERE s.id = ?",
        )
        .bind(newer.service_id)
        .fetch_optional(&self.db)
        .await?;
        let Some((enabled, service_branch, pipeline)) = row else { return Ok(()) };
        if !enabled || pipeline.is_none_or(|p| p == "implicit") {
            return Ok(());
        }
        let branch = super::changes::branch_of(&newer.git_ref, &service_branch);
        if branch.is_none() {
            return Ok(());
        }
        let older: Vec<(i64, Option<i64>, String)> = sqlx::query_as(
            "SELECT id, job_id, git_ref FROM builds WHERE service_id = ? AND trigger = 'webhook' AND id < ? \
             AND status IN ('queued', 'running')",
        )
        .bind(newer.service_id)
        .bind(newer.id)
        .fetch_all(&self.db)
        .await?;
        let older = older
            .into_iter()
            .filter(|(_, _, git_ref)| super::changes::branch_of(git_ref, &service_branch) == branch)
            .map(|(id, job_id, _)| (id, job_id));
        let note = format!("superseded by build #{}", newer.number);
        for (id, job_id) in older {
            sqlx::query("UPDATE builds SET error = ? WHERE id = ? AND status IN ('queued', 'running')")
                .bind(&note)
                .bind(id)
                .execute(&self.db)
                .await?;
            let Some(job_id) = job_id else { continue };
            if let CancelOutcome::CancelledQueued =
                self.queue.request_cancel(job_id, chrono::Utc::now()).await?
            {
                sqlx::query("UPDATE builds SET status = 'cancelled', finished_at = ? WHERE id = ? AND status = 'queued'")
                    .bind(crate::db::now_rfc3339())
                    .bind(id)
                    .execute(&self.db)
                    .await?;
            }
            tracing::info!(build_id = id, by = newer.id, "run superseded");
        }
        Ok(())
    }

    /// Cancels a queued or running build (deployer). Cancelling a finished
    /// build is refused.
    pub async fn cancel_build(&self, caller: &Caller, build_id: i64) -> Result<Build, EngineError> {
        let actor = require(caller, Role::Deployer)?;
        let build = self.build(build_id).await?;
        let Some(job_id) = build.job_id.filter(|_| !build.status.is_terminal()) else {
            return Err(EngineError::Conflict(format!(
                "build #{} has already finished ({})",
                build.number, build.status
            )));
        };
        match self.queue.request_cancel(job_id, chrono::Utc::now()).await? {
            CancelOutcome::CancelledQueued => {
                sqlx::query(
                    "UPDATE builds SET status = 'cancelled', error = 'cancelled before it started', \
                     finished_at = ? WHERE id = ? AND status = 'queued'",
                )
                .bind(crate::db::now_rfc3339())
                .bind(build_id)
                .execute(&self.db)
                .await?;
            }
            CancelOutcome::Requested | CancelOutcome::AlreadyFinished | CancelOutcome::NotFound => {}
        }
        tracing::info!(build_id, %actor, "build cancel requested");
        audit::record(&self.db, Event::by(caller, "build.cancel").target(format!("build:{build_id}"))).await;
        self.build(build_id).await
    }

    /// One build (viewer).
    pub async fn get_build(&self, caller: &Caller, build_id: i64) -> Result<Build, EngineError> {
        require(caller, Role::Viewer)?;
        self.build(build_id).await
    }

    /// Internal read without a role check (jobs, tests).
    pub async fn build(&self, build_id: i64) -> Result<Build, EngineError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM builds WHERE id = ?"))
            .bind(build_id)
            .fetch_optional(&self.db)
            .await?
            .ok_or(EngineError::NotFound("build"))?;
        Ok(from_row(&row)?)
    }

    /// Number and commit of several builds in one query, for a page of
    /// deployments (internal, no role check). Missing ids are left out.
    pub async fn build_refs(&self, ids: &[i64]) -> Result<Vec<BuildRef>, EngineError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Only placeholders are formatted in; the ids are bound.
        let marks = vec!["?"; ids.len()].join(", ");
        let sql = format!("SELECT id, number, commit_sha FROM builds WHERE id IN ({marks})");
        let mut query = sqlx::query_as::<_, (i64, i64, Option<String>)>(&sql);
        for id in ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.db).await?;
        Ok(rows.into_iter().map(|(id, number, commit_sha)| BuildRef { id, number, commit_sha }).collect())
    }

    /// The service's newest build, if any (internal, no role check).
    pub async fn latest_build(&self, service_id: i64) -> Result<Option<Build>, EngineError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM builds WHERE service_id = ? ORDER BY id DESC LIMIT 1"
        ))
        .bind(service_id)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// A service's builds, newest first (viewer).
    pub async fn list_builds(
        &self,
        caller: &Caller,
        service_id: i64,
        page: PageRequest,
    ) -> Result<Page<Build>, EngineError> {
        require(caller, Role::Viewer)?;
        let limit = page.limit();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM builds WHERE service_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(service_id)
        .bind(page.before())
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.db)
        .await?;
        let builds = rows.iter().map(from_row).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Page::from_rows(builds, limit, |b| b.id))
    }

    /// The service's newest builds as chart points (viewer): five columns,
    /// the run time computed by SQLite, rather than whole builds.
    pub async fn build_durations(
        &self,
        caller: &Caller,
        service_id: i64,
        limit: u32,
    ) -> Result<Vec<BuildPoint>, EngineError> {
        require(caller, Role::Viewer)?;
        let rows: Vec<(i64, i64, String, Option<i64>, String)> = sqlx::query_as(
            "SELECT id, number, status, \
             CAST(ROUND((julianday(finished_at) - julianday(started_at)) * 86400000) AS INTEGER), created_at \
             FROM builds WHERE service_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(service_id)
        .bind(i64::from(limit))
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, number, status, duration_ms, created_at)| BuildPoint {
                id,
                number,
                status,
                duration_ms,
                created_at,
            })
            .collect())
    }

    /// A build's stored log lines from `from_seq` on (viewer). For a live
    /// follow, see [`crate::logs::LogHub::subscribe`] after the same check.
    pub async fn build_log(
        &self,
        caller: &Caller,
        build_id: i64,
        from_seq: u64,
    ) -> Result<Vec<LogLine>, EngineError> {
        require(caller, Role::Viewer)?;
        self.build(build_id).await?;
        self.logs.read_from(build_id, from_seq).await.map_err(|e| EngineError::Internal(e.into()))
    }
}
