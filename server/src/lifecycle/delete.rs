//! Deleting a service (a job) and an empty project (deployer, confirmed by
//! typing the name, audited).
//!
//! A service delete is marked first (`services.deleting_at`, with its job,
//! in one transaction): from then on no build or deploy of it is accepted,
//! and its queued jobs are cancelled. The job then removes, in order, the
//! route, the containers, the images no other service's deployment needs,
//! the build logs and workspaces, and last the rows (history goes with the
//! service; audit events stay). Every step is idempotent and the job is
//! retried after a crash, so a delete that was started always finishes.

use std::time::Duration;

use anyhow::Context;
use app::wire::{Caller, Role};

use crate::{
    access::require,
    audit::{self, Event},
    docker::labels,
    engine::{Engine, EngineError},
    jobs::{CancelOutcome, Job, JobContext, JobHandler, JobQueue, NewJob, RecoveryAction},
    projects::ProjectStore,
};

/// The job kind.
pub const DELETE_JOB: &str = "delete_service";

fn confirm(typed: &str, name: &str, what: &str) -> Result<(), EngineError> {
    if typed.trim() != name {
        return Err(EngineError::Invalid {
            field: "confirm",
            message: format!("type the {what}'s name ({name}) to delete it"),
        });
    }
    Ok(())
}

impl Engine {
    /// Refuses work on a service being deleted.
    pub(crate) async fn ensure_not_deleting(&self, service_id: i64) -> Result<(), EngineError> {
        let deleting: Option<Option<String>> =
            sqlx::query_scalar("SELECT deleting_at FROM services WHERE id = ?")
                .bind(service_id)
                .fetch_optional(&self.db)
                .await?;
        match deleting {
            None => Err(EngineError::NotFound("service")),
            Some(Some(_)) => Err(EngineError::Conflict("the service is being deleted".into())),
            Some(None) => Ok(()),
        }
    }

    /// Starts deleting a service; returns the delete job's id.
    /// Its volumes are kept unless `delete_volumes` (admin only).
    pub async fn delete_service(
        &self,
        caller: &Caller,
        service_id: i64,
        typed: &str,
        delete_volumes: bool,
    ) -> Result<i64, EngineError> {
        require(caller, if delete_volumes { Role::Admin } else { Role::Deployer })?;
        let service = ProjectStore::new(self.db.clone()).get_service(service_id).await?;
        confirm(typed, &service.spec.name, "service")?;
        let mut tx = self.db.begin_with("BEGIN IMMEDIATE").await?;
        let dependents: Vec<String> =
            sqlx::query_scalar("SELECT name FROM services WHERE image_from_id = ? ORDER BY name")
                .bind(service.id)
                .fetch_all(&mut *tx)
                .await?;
        if !dependents.is_empty() {
            return Err(EngineError::Conflict(format!(
                "{} take(s) the image of {}; delete them or change their image first",
                dependents.join(", "),
                service.spec.name
            )));
        }
        let marked = sqlx::query("UPDATE services SET deleting_at = ? WHERE id = ? AND deleting_at IS NULL")
            .bind(crate::db::now_rfc3339())
            .bind(service.id)
            .execute(&mut *tx)
            .await?;
        if marked.rows_affected() != 1 {
            return Err(EngineError::Conflict("the service is already being deleted".into()));
        }
        let job = NewJob::new(DELETE_JOB, Some(service.id), Duration::from_secs(600))
            .max_attempts(5)
            .payload(serde_json::json!({ "delete_volumes": delete_volumes }));
        let job_id = self.queue.enqueue(&mut tx, &job).await?;
        let others: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE service_id = ? AND id != ? AND status IN ('queued', 'running')",
        )
        .bind(service.id)
        .bind(job_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        for id in others {
            let outcome = self.queue.request_cancel(id, chrono::Utc::now()).await?;
            tracing::info!(service_id, job_id = id, ?outcome, "cancelled for the service's delete");
            if outcome == CancelOutcome::CancelledQueued {
                // Its build or deploy row ends as the job did.
                self.finish_cancelled(id).await;
            }
        }
        self.queue.notify();
        audit::record(
            &self.db,
            Event::by(caller, "service.delete").target(format!("service:{service_id}")).detail(format!(
                "service {} ({}); volumes {}",
                service.spec.name,
                service.project_id,
                if delete_volumes { "deleted" } else { "kept" }
            )),
        )
        .await;
        Ok(job_id)
    }

    /// Marks the build or deployment of a job cancelled while queued.
    async fn finish_cancelled(&self, job_id: i64) {
        let now = crate::db::now_rfc3339();
        let builds = sqlx::query(
            "UPDATE builds SET status = 'cancelled', finished_at = ? WHERE job_id = ? AND status = 'queued'",
        )
        .bind(&now)
        .bind(job_id)
        .execute(&self.db)
        .await;
        let deploys = sqlx::query(
            "UPDATE deployments SET status = 'failed', error = 'cancelled: the service is being deleted', \
             finished_at = ? WHERE job_id = ? AND status = 'pending'",
        )
        .bind(&now)
        .bind(job_id)
        .execute(&self.db)
        .await;
        if let Err(e) = builds.and(deploys) {
            tracing::warn!(job_id, error = %e, "cannot mark a cancelled job's row");
        }
    }

    /// Deletes a project that has no services left.
    pub async fn delete_project(
        &self,
        caller: &Caller,
        project_id: i64,
        typed: &str,
    ) -> Result<(), EngineError> {
        require(caller, Role::Deployer)?;
        let store = ProjectStore::new(self.db.clone());
        let project = store.get_project(project_id).await?;
        confirm(typed, &project.name, "project")?;
        store.delete_project(project.id).await?;
        // Its network goes too (a failure here is retried at startup).
        let network = crate::docker::app_network::project_network(&self.instance, project.id);
        if let Err(e) = self.docker.remove_project_network(&network).await {
            tracing::warn!(error = %e, %network, "cannot remove the deleted project's network");
        }
        audit::record(
            &self.db,
            Event::by(caller, "project.delete").target(format!("project:{project_id}")).detail(project.name),
        )
        .await;
        Ok(())
    }
}

pub struct DeleteHandler {
    engine: Engine,
}

impl DeleteHandler {
    pub fn new(engine: Engine) -> Self {
        DeleteHandler { engine }
    }

    async fn delete(&self, job: &Job) -> anyhow::Result<()> {
        let engine = &self.engine;
        let service_id = job.service_id.context("the delete job names no service")?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM services WHERE id = ?")
            .bind(service_id)
            .fetch_optional(&engine.db)
            .await?;
        if exists.is_none() {
            return Ok(()); // finished before a crash
        }
        engine.switch.remove(service_id).await;
        let id_label = service_id.to_string();
        let containers = engine
            .docker
            .containers_labelled(&[(labels::INSTANCE, &engine.instance), (labels::SERVICE_ID, &id_label)])
            .await?;
        for c in containers {
            engine.docker.remove_container(&c.id, Duration::from_secs(5)).await?;
            tracing::info!(container = %c.name, "removed");
        }
        // Its volumes only when the delete asked for it (admin); by default
        // they stay, with their data.
        if job.payload.get("delete_volumes").and_then(serde_json::Value::as_bool) == Some(true) {
            for volume in engine.docker.service_volumes(&engine.instance, service_id).await? {
                engine.docker.remove_volume(&volume.engine_name).await?;
                tracing::info!(volume = %volume.engine_name, "volume of a deleted service removed");
            }
        }
        // Images of its builds and deployments that no other service's
        // deployment runs or can roll back to, and no other service's build
        // made (a push's services of identical inputs share one image).
        let images: Vec<String> = sqlx::query_scalar(
            "SELECT image_id FROM builds WHERE service_id = ?1 AND image_id IS NOT NULL \
             UNION SELECT image_id FROM deployments WHERE service_id = ?1 \
             EXCEPT SELECT image_id FROM deployments WHERE service_id != ?1 \
             EXCEPT SELECT image_id FROM builds WHERE service_id != ?1 AND image_id IS NOT NULL \
                 AND image_removed_at IS NULL",
        )
        .bind(service_id)
        .fetch_all(&engine.db)
        .await?;
        for image in images {
            let removed = engine.docker.remove_image(&image).await?;
            tracing::info!(%image, ?removed, "image of a deleted service");
        }
        let builds: Vec<i64> = sqlx::query_scalar("SELECT id FROM builds WHERE service_id = ?")
            .bind(service_id)
            .fetch_all(&engine.db)
            .await?;
        for build in builds {
            remove_path(&engine.logs.log_path(build)).await?;
            remove_path(&engine.workspace(build)).await?;
        }
        let mut tx = engine.db.begin_with("BEGIN IMMEDIATE").await?;
        // This job outlives its service (its row would go with it).
        sqlx::query("UPDATE jobs SET service_id = NULL WHERE id = ?").bind(job.id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM services WHERE id = ?").bind(service_id).execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(service_id, "service deleted");
        Ok(())
    }
}

/// Removes a file or a directory tree; a missing one is fine.
async fn remove_path(path: &std::path::Path) -> anyhow::Result<()> {
    let result = match tokio::fs::metadata(path).await {
        Ok(m) if m.is_dir() => tokio::fs::remove_dir_all(path).await,
        Ok(_) => tokio::fs::remove_file(path).await,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[async_trait::async_trait]
impl JobHandler for DeleteHandler {
    async fn run(&self, ctx: JobContext) -> anyhow::Result<()> {
        let span =
            tracing::info_span!("delete_service", job_id = ctx.job.id, service_id = ctx.job.service_id);
        tracing::Instrument::instrument(self.delete(&ctx.job), span).await
    }

    async fn on_interrupted(&self, _job: &Job) -> anyhow::Result<RecoveryAction> {
        // Every step can run again: finish the delete.
        Ok(RecoveryAction::Retry)
    }
}
