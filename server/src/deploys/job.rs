//! The deploy job: create and start the container, wait until healthy,
//! switch the route, mark live, drain and remove the old container. On any
//! failure the new container goes and the old one keeps serving.

use std::time::Duration;

use anyhow::Context;
use tracing::Instrument;

use super::{
    container_name, events, from_row, ready, switch::Upstream, Deployment, DeploymentStatus, COLUMNS,
};
use crate::{
    docker::labels,
    engine::Engine,
    jobs::{Job, JobContext, JobHandler, Outcome, RecoveryAction},
    projects::ProjectStore,
    service_env,
};

/// SIGTERM grace before SIGKILL when removing a replaced container.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

pub struct DeployHandler {
    engine: Engine,
}

impl DeployHandler {
    pub fn new(engine: Engine) -> Self {
        DeployHandler { engine }
    }

    async fn deployment_of(&self, job: &Job) -> anyhow::Result<Deployment> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM deployments WHERE job_id = ?"))
            .bind(job.id)
            .fetch_optional(&self.engine.db)
            .await?
            .with_context(|| format!("job {} has no deployment", job.id))?;
        from_row(&row)
    }

    async fn run_deploy(&self, ctx: &JobContext, dep: &Deployment) -> anyhow::Result<()> {
        let engine = &self.engine;
        let store = ProjectStore::new(engine.db.clone());
        let service = store.get_service(dep.service_id).await?;
        let project = store.get_project(service.project_id).await?;
        sqlx::query(
            "UPDATE deployments SET status = 'starting', started_at = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(crate::db::now_rfc3339())
        .bind(dep.id)
        .execute(&engine.db)
        .await?;

        ctx.set_progress("prepare", 5).await?;
        // An image the engine lacks is pulled by digest from the registry
        // its build pushed it to, when there is one.
        if !crate::registry::publish::ensure_image(engine, service.id, &dep.image_id).await? {
            anyhow::bail!("the image {} no longer exists in the Docker engine", dep.image_id);
        }
        let name = container_name(&project.name, &service.spec.name, dep.id);
        // A leftover of an earlier attempt under the same name goes; a
        // container of that name made by someone else is never touched.
        if let Some(existing) = engine.docker.container_state(&name).await? {
            if existing.labels.get(labels::INSTANCE) != Some(&engine.instance) {
                anyhow::bail!(
                    "a container named {name} exists that this Slipway installation did not create"
                );
            }
            engine.docker.remove_container(&name, Duration::ZERO).await?;
        }
        let spec = ready::container_spec(engine, &project, &service, dep, name).await?;

        // With volumes or published ports, the previous container stops
        // first (see `DeployConfig::stop_first`). A failure from here on
        // starts it again (`fail`).
        if dep.config.stop_first() {
            if let Some(previous) = engine.live_of(service.id).await?.and_then(|o| o.container_id) {
                ctx.set_progress("stop previous", 15).await?;
                engine.docker.stop_container(&previous, STOP_GRACE).await?;
                tracing::info!("previous container stopped first (volumes or published ports)");
                events::record(&engine.db, dep.id, events::OLD_STOPPED, None, None).await;
            }
        }
        ctx.set_progress("start", 20).await?;
        let container_id = engine.docker.run_container(&spec).await?;
        sqlx::query("UPDATE deployments SET container_id = ? WHERE id = ?")
            .bind(&container_id)
            .bind(dep.id)
            .execute(&engine.db)
            .await?;
        tracing::info!(container_id = %container_id, "container started");
        events::record(&engine.db, dep.id, events::CONTAINER_STARTED, None, None).await;

        ctx.set_progress("health", 40).await?;
        let addr = ready::come_into_service(engine, &project, &service, dep, &container_id).await?;
        tracing::info!(?addr, "container healthy");
        events::record(
            &engine.db,
            dep.id,
            events::HEALTHY,
            None,
            Some(super::health_text(&dep.config.health)),
        )
        .await;

        ctx.set_progress("switch", 80).await?;
        let old = engine.live_of(service.id).await?;
        let replaced = match addr {
            Some(addr) => {
                let upstream = Upstream { deployment_id: dep.id, container_id: container_id.clone(), addr };
                let route = super::service_route(&project, &service, upstream);
                engine.switch.switch(route).await?
            }
            // A worker, or an image service without a port: no route (one
            // left from an earlier kind goes).
            None => {
                engine.switch.remove(service.id).await;
                None
            }
        };
        if let Err(e) = self.mark_live(dep, old.as_ref()).await {
            // Undo the switch: the database still says the old one is live.
            self.engine.restore_route(service.id).await;
            return Err(e);
        }
        tracing::info!("deployment live");
        events::record(&engine.db, dep.id, events::SWITCHED, None, None).await;

        ctx.set_progress("drain", 90).await?;
        if let Some(old) = old {
            let drain = Duration::from_secs(u64::from(old.config.drain_secs));
            if let Some(upstream) = replaced.filter(|u| u.deployment_id == old.id) {
                let drained = engine.switch.drain(&upstream, drain).await;
                tracing::info!(old_deployment = old.id, ?drained, "old deployment drained");
                events::record(&engine.db, dep.id, events::DRAINED, None, Some(format!("{drained:?}"))).await;
            }
            if let Some(old_container) = &old.container_id {
                engine.docker.remove_container(old_container, STOP_GRACE).await?;
                tracing::info!(old_deployment = old.id, "old container removed");
                let detail = format!("deployment #{}", old.id);
                events::record(&engine.db, dep.id, events::OLD_REMOVED, None, Some(detail)).await;
            }
        }
        ctx.set_progress("done", 100).await?;
        Ok(())
    }

    /// The new deployment live and the old one superseded (or rolled back),
    /// in one transaction.
    async fn mark_live(&self, dep: &Deployment, old: Option<&Deployment>) -> anyhow::Result<()> {
        let now = crate::db::now_rfc3339();
        let mut tx = self.engine.db.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(old) = old {
            let replaced_as = if dep.rollback_of.is_some() {
                DeploymentStatus::RolledBack
            } else {
                DeploymentStatus::Superseded
            };
            sqlx::query("UPDATE deployments SET status = ? WHERE id = ? AND status = 'live'")
                .bind(replaced_as.as_str())
                .bind(old.id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query(
            "UPDATE deployments SET status = 'live', finished_at = ? WHERE id = ? AND status = 'starting'",
        )
        .bind(&now)
        .bind(dep.id)
        .execute(&mut *tx)
        .await?;
        anyhow::ensure!(done.rows_affected() == 1, "the deployment is no longer starting");
        tx.commit().await?;
        Ok(())
    }

    /// Marks a deployment that never went live `failed`, keeping the new
    /// container's last log lines, and removes that container.
    async fn fail(&self, dep_id: i64, reason: &str) -> anyhow::Result<()> {
        let dep = self.engine.deployment(dep_id).await?;
        if !matches!(dep.status, DeploymentStatus::Pending | DeploymentStatus::Starting) {
            return Ok(());
        }
        // Its container, also when the id was never recorded (a crash right
        // after creating it): found by label.
        let dep_label = dep.id.to_string();
        let mut containers: Vec<String> = self
            .engine
            .docker
            .containers_labelled(&[
                (labels::INSTANCE, &self.engine.instance),
                (labels::DEPLOYMENT_ID, &dep_label),
            ])
            .await
            .map(|found| found.into_iter().map(|c| c.id).collect())
            .unwrap_or_default();
        if let Some(id) = &dep.container_id {
            if !containers.contains(id) {
                containers.push(id.clone());
            }
        }
        let mut tail = None;
        if let Some(first) = containers.first() {
            match self.engine.docker.logs_tail(first, self.engine.settings.log_tail_lines).await {
                // The container may print its secrets: mask them like the build log does.
                Ok(text) if !text.is_empty() => {
                    let secrets = service_env::secret_values(&self.engine.secrets, &dep.config.env);
                    tail = Some(crate::logs::Redactor::new(secrets).apply(&text).into_owned());
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "no log tail"),
            }
        }
        for id in &containers {
            if let Err(e) = self.engine.docker.remove_container(id, Duration::ZERO).await {
                tracing::warn!(error = %e, "cannot remove the failed deployment's container");
            }
        }
        // The live deployment serves again: started when a stop-first
        // deploy stopped it, and routed (a switch before the failure is
        // undone; a restarted container may have a new address).
        self.engine.ensure_live_running(dep.service_id).await;
        self.engine.restore_route(dep.service_id).await;
        sqlx::query(
            "UPDATE deployments SET status = 'failed', error = ?, log_tail = ?, finished_at = ? \
             WHERE id = ? AND status IN ('pending', 'starting')",
        )
        .bind(reason)
        .bind(tail)
        .bind(crate::db::now_rfc3339())
        .bind(dep.id)
        .execute(&self.engine.db)
        .await?;
        tracing::warn!(deployment_id = dep.id, reason, "deployment failed; the previous one keeps serving");
        Ok(())
    }
}

#[async_trait::async_trait]
impl JobHandler for DeployHandler {
    async fn run(&self, ctx: JobContext) -> anyhow::Result<()> {
        let dep = self.deployment_of(&ctx.job).await?;
        let span = tracing::info_span!("deploy", deployment_id = dep.id, rollback_of = dep.rollback_of);
        self.run_deploy(&ctx, &dep).instrument(span).await
    }

    async fn on_finished(&self, job: &Job, outcome: &Outcome) -> anyhow::Result<()> {
        let dep = self.deployment_of(job).await?;
        let reason = match outcome {
            Outcome::Succeeded => None,
            Outcome::Failed(e) => Some(e.clone()),
            Outcome::Cancelled => Some("cancelled".into()),
            Outcome::TimedOut => Some(format!("timed out after {} s", job.timeout.as_secs())),
        };
        let result = match reason {
            Some(reason) => {
                self.fail(dep.id, &reason)
                    .instrument(tracing::info_span!("deploy", deployment_id = dep.id))
                    .await
            }
            None => Ok(()),
        };
        // Notifies by the final status: live (or rolled back to) or failed.
        crate::notify::emit(&self.engine, crate::notify::Subject::Deployment(dep.id)).await;
        result
    }

    async fn on_interrupted(&self, job: &Job) -> anyhow::Result<RecoveryAction> {
        let dep = self.deployment_of(job).await?;
        let reason = "interrupted: Slipway stopped during this deploy; the previous deployment kept serving";
        self.fail(dep.id, reason).instrument(tracing::info_span!("deploy", deployment_id = dep.id)).await?;
        // Never blindly retried: the operator decides.
        Ok(RecoveryAction::GiveUp)
    }
}
