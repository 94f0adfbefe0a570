//! The lifecycle job: restart, stop or start a live deployment.
//!
//! - **Restart** starts a fresh container of the same deployment (same
//!   image, same config snapshot), waits until it is healthy, switches the
//!   route, records it as the deployment's container, drains and removes the
//!   old one: no downtime, as a deploy.
//! - **Stop** records the stop first, parks the route (503), then stops the
//!   container (kept, for Start).
//! - **Start** starts the container, waits until healthy, switches the route
//!   back, then clears the stop.
//!
//! Crash safety: the database is written before the container work on stop
//! and after it on start and restart, and startup makes the containers
//! agree with it (a stopped deployment's container is stopped again, a
//! restart's container that was never recorded is an orphan).

use std::time::Duration;

use anyhow::Context;
use tracing::Instrument;

use super::{Action, Payload};
use crate::{
    deploys::{
        container_name, events, job::STOP_GRACE, ready, service_host, service_route, switch::Upstream,
        Deployment, DeploymentStatus,
    },
    docker::labels,
    engine::Engine,
    jobs::{Job, JobContext, JobHandler, Outcome, RecoveryAction},
    projects::ProjectStore,
};

pub struct LifecycleHandler {
    engine: Engine,
}

impl LifecycleHandler {
    pub fn new(engine: Engine) -> Self {
        LifecycleHandler { engine }
    }

    async fn live(&self, payload: &Payload) -> anyhow::Result<Deployment> {
        let dep = self.engine.deployment(payload.deployment_id).await?;
        anyhow::ensure!(
            dep.status == DeploymentStatus::Live,
            "deployment #{} is no longer live ({})",
            dep.id,
            dep.status
        );
        Ok(dep)
    }

    async fn run_action(&self, ctx: &JobContext, payload: &Payload) -> anyhow::Result<()> {
        let engine = &self.engine;
        let dep = self.live(payload).await?;
        let store = ProjectStore::new(engine.db.clone());
        let service = store.get_service(dep.service_id).await?;
        let project = store.get_project(service.project_id).await?;
        let container = dep.container_id.clone().context("the live deployment has no container")?;
        let actor = Some(payload.actor.as_str());
        match payload.action {
            Action::Stop => {
                if dep.stopped_at.is_some() {
                    return Ok(());
                }
                ctx.set_progress("stop", 20).await?;
                sqlx::query("UPDATE deployments SET stopped_at = ? WHERE id = ? AND status = 'live'")
                    .bind(crate::db::now_rfc3339())
                    .bind(dep.id)
                    .execute(&engine.db)
                    .await?;
                if dep.config.route_port().is_some() {
                    engine.switch.park(service.id, service_host(&project, &service)).await;
                }
                engine.docker.stop_container(&container, STOP_GRACE).await?;
                events::record(&engine.db, dep.id, events::STOPPED, actor, None).await;
            }
            Action::Start => {
                ctx.set_progress("start", 20).await?;
                engine.docker.start_container(&container).await?;
                ctx.set_progress("health", 40).await?;
                let addr = ready::come_into_service(engine, &project, &service, &dep, &container).await?;
                ctx.set_progress("switch", 80).await?;
                match addr {
                    Some(addr) => {
                        let upstream =
                            Upstream { deployment_id: dep.id, container_id: container.clone(), addr };
                        engine.switch.switch(service_route(&project, &service, upstream)).await?;
                    }
                    None => engine.switch.remove(service.id).await,
                }
                sqlx::query("UPDATE deployments SET stopped_at = NULL WHERE id = ?")
                    .bind(dep.id)
                    .execute(&engine.db)
                    .await?;
                events::record(&engine.db, dep.id, events::STARTED, actor, None).await;
            }
            Action::Restart => {
                anyhow::ensure!(dep.stopped_at.is_none(), "the service is stopped: start it instead");
                ctx.set_progress("start", 20).await?;
                let name =
                    format!("{}-r{}", container_name(&project.name, &service.spec.name, dep.id), ctx.job.id);
                let spec = ready::container_spec(engine, &project, &service, &dep, name).await?;
                let fresh = engine.docker.run_container(&spec).await?;
                ctx.set_progress("health", 40).await?;
                let addr = ready::come_into_service(engine, &project, &service, &dep, &fresh).await?;
                ctx.set_progress("switch", 80).await?;
                let replaced = match addr {
                    Some(addr) => {
                        let upstream = Upstream { deployment_id: dep.id, container_id: fresh.clone(), addr };
                        engine.switch.switch(service_route(&project, &service, upstream)).await?
                    }
                    None => None,
                };
                let recorded = sqlx::query(
                    "UPDATE deployments SET container_id = ? \
                     WHERE id = ? AND status = 'live' AND stopped_at IS NULL AND container_id = ?",
                )
                .bind(&fresh)
                .bind(dep.id)
                .bind(&container)
                .execute(&engine.db)
                .await?;
                if recorded.rows_affected() != 1 {
                    engine.restore_route(service.id).await;
                    anyhow::bail!("the deployment changed during the restart");
                }
                ctx.set_progress("drain", 90).await?;
                if let Some(old) = replaced.filter(|u| u.container_id == container) {
                    let drain = Duration::from_secs(u64::from(dep.config.drain_secs));
                    let drained = engine.switch.drain(&old, drain).await;
                    tracing::info!(?drained, "old container drained");
                }
                engine.docker.remove_container(&container, STOP_GRACE).await?;
                events::record(&engine.db, dep.id, events::RESTARTED, actor, None).await;
            }
        }
        ctx.set_progress("done", 100).await?;
        Ok(())
    }

    /// After a failed, cancelled, timed-out or interrupted action: the
    /// containers and the route agree with the database again.
    async fn clean_up(&self, payload: &Payload) -> anyhow::Result<()> {
        let engine = &self.engine;
        let dep = engine.deployment(payload.deployment_id).await?;
        let dep_label = dep.id.to_string();
        let found = engine
            .docker
            .containers_labelled(&[(labels::INSTANCE, &engine.instance), (labels::DEPLOYMENT_ID, &dep_label)])
            .await?;
        for c in found.into_iter().filter(|c| Some(&c.id) != dep.container_id.as_ref()) {
            tracing::info!(container = %c.name, "removing a restart's unused container");
            engine.docker.remove_container(&c.id, Duration::ZERO).await?;
        }
        if dep.status == DeploymentStatus::Live {
            // Stopped: its container is stopped again and its host parked.
            engine.restore_route(dep.service_id).await;
        }
        Ok(())
    }
}

fn payload_of(job: &Job) -> anyhow::Result<Payload> {
    serde_json::from_value(job.payload.clone()).context("lifecycle job payload")
}

#[async_trait::async_trait]
impl JobHandler for LifecycleHandler {
    async fn run(&self, ctx: JobContext) -> anyhow::Result<()> {
        let payload = payload_of(&ctx.job)?;
        let span = tracing::info_span!(
            "lifecycle",
            job_id = ctx.job.id,
            deployment_id = payload.deployment_id,
            action = payload.action.as_str()
        );
        self.run_action(&ctx, &payload).instrument(span).await
    }

    async fn on_finished(&self, job: &Job, outcome: &Outcome) -> anyhow::Result<()> {
        if matches!(outcome, Outcome::Succeeded) {
            return Ok(());
        }
        let payload = payload_of(job)?;
        tracing::warn!(
            job_id = job.id,
            ?outcome,
            action = payload.action.as_str(),
            "lifecycle action failed"
        );
        self.clean_up(&payload).await
    }

    async fn on_interrupted(&self, job: &Job) -> anyhow::Result<RecoveryAction> {
        let payload = payload_of(job)?;
        self.clean_up(&payload).await?;
        Ok(RecoveryAction::GiveUp)
    }
}
