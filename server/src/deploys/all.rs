//! "Deploy all" and "Build all" of a project (issue 18).
//!
//! Deploy all is a job of its own (`deploy_all`, no service, so it never
//! waits behind one): level by level in `deploy_after` order it queues a
//! normal deployment of each service (its newest build, its source's for
//! `image_from`, its image reference for an `image` service) and waits
//! until they are live or failed before the next level. A service whose
//! predecessor failed, or that has nothing to deploy, is skipped. Each
//! deployment is an ordinary deploy job, so a crash (`kill -9`) at any
//! point leaves every service on its old or its new deployment; the
//! interrupted orchestrator is not retried (the operator decides).
//!
//! Build all queues one build of each service that builds its own image;
//! services with `image_from` deploy through their source's build.

use std::time::Duration;

use anyhow::Context;
use app::wire::{Caller, Role};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::{DeployRequest, DeploymentStatus};
use crate::{
    access::require,
    audit::{self, Event},
    builds::TriggerBuild,
    engine::{Engine, EngineError},
    jobs::{Job, JobContext, JobHandler, JobQueue, NewJob, RecoveryAction},
    projects::{order, ProjectStore},
};

/// The job kind.
pub const DEPLOY_ALL_JOB: &str = "deploy_all";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payload {
    project_id: i64,
    actor: String,
}

impl Engine {
    /// Queues a "deploy all" of the project (deployer); returns its job id.
    pub async fn deploy_all(&self, caller: &Caller, project_id: i64) -> Result<i64, EngineError> {
        let actor = require(caller, Role::Deployer)?;
        let project = ProjectStore::new(self.db.clone()).get_project(project_id).await?;
        let payload =
            serde_json::to_value(Payload { project_id: project.id, actor }).map_err(anyhow::Error::from)?;
        let job = NewJob::new(DEPLOY_ALL_JOB, None, Duration::from_secs(3 * 3600)).payload(payload);
        let mut tx = self.db.begin_with("BEGIN IMMEDIATE").await?;
        let job_id = self.queue.enqueue(&mut tx, &job).await?;
        tx.commit().await?;
        self.queue.notify();
        audit::record(
            &self.db,
            Event::by(caller, "project.deploy_all")
                .target(format!("project:{}", project.id))
                .detail(format!("job:{job_id}")),
        )
        .await;
        Ok(job_id)
    }

    /// Queues one build of every service of the project that builds its own
    /// image (deployer); returns the builds' ids.
    pub async fn build_all(&self, caller: &Caller, project_id: i64) -> Result<Vec<i64>, EngineError> {
        require(caller, Role::Deployer)?;
        let store = ProjectStore::new(self.db.clone());
        let project = store.get_project(project_id).await?;
        let mut ids = Vec::new();
        // One group: services sharing a repository and branch share one
        // checkout, and identical build inputs one image build.
        let group = format!("all-{}", crate::builds::group::new_group_id());
        for service in store.list_services(project.id).await? {
            if !service.spec.builds_own_image() || self.ensure_not_deleting(service.id).await.is_err() {
                continue;
            }
            let req = TriggerBuild {
                service_id: service.id,
                trigger: audit::Source::build_trigger(caller).into(),
                group: Some(group.clone()),
                ..TriggerBuild::default()
            };
            ids.push(self.trigger_build(caller, req).await?.id);
        }
        Ok(ids)
    }
}

pub struct DeployAllHandler {
    engine: Engine,
}

impl DeployAllHandler {
    pub fn new(engine: Engine) -> Self {
        DeployAllHandler { engine }
    }

    async fn run_all(&self, ctx: &JobContext, payload: &Payload) -> anyhow::Result<()> {
        let engine = &self.engine;
        let store = ProjectStore::new(engine.db.clone());
        let services = store.list_services(payload.project_id).await?;
        let edges: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT service_id, after_id FROM service_deploy_after \
             WHERE service_id IN (SELECT id FROM services WHERE project_id = ?)",
        )
        .bind(payload.project_id)
        .fetch_all(&engine.db)
        .await?;
        let ids: Vec<i64> = services.iter().map(|s| s.id).collect();
        let levels = order::levels(&ids, &edges);
        let name = |id: i64| services.iter().find(|s| s.id == id).map_or("?", |s| s.spec.name.as_str());
        let mut failed: Vec<i64> = Vec::new();
        for (index, level) in levels.iter().enumerate() {
            let percent = u8::try_from(10 + 80 * index / levels.len().max(1)).unwrap_or(90);
            ctx.set_progress(&format!("level {}", index + 1), percent).await?;
            let mut queued = Vec::new();
            for &id in level {
                let blocked: Vec<&str> = edges
                    .iter()
                    .filter(|(s, a)| *s == id && failed.contains(a))
                    .map(|(_, a)| name(*a))
                    .collect();
                if !blocked.is_empty() {
                    tracing::warn!(
                        service = name(id),
                        ?blocked,
                        "skipped: a service it deploys after failed"
                    );
                    failed.push(id);
                    continue;
                }
                match self.queue_one(id, &payload.actor).await {
                    Ok(dep) => queued.push((id, dep)),
                    Err(e) => {
                        // Nothing to deploy (never built) is not a failure.
                        tracing::info!(service = name(id), error = %e, "skipped");
                    }
                }
            }
            for (id, dep) in queued {
                if !self.settled_live(ctx, dep).await? {
                    failed.push(id);
                }
            }
        }
        ctx.set_progress("done", 100).await?;
        if !failed.is_empty() {
            let names: Vec<&str> = failed.iter().map(|id| name(*id)).collect();
            anyhow::bail!("not deployed: {}", names.join(", "));
        }
        Ok(())
    }

    /// Queues the deployment a "Deploy" click would (as the job's actor).
    async fn queue_one(&self, service_id: i64, actor: &str) -> Result<i64, EngineError> {
        let engine = &self.engine;
        engine.ensure_not_deleting(service_id).await?;
        let service = ProjectStore::new(engine.db.clone()).get_service(service_id).await?;
        let req = DeployRequest { service_id, ..DeployRequest::default() };
        let (image_id, build_id) = engine.deploy_target(&service, &req).await?;
        let mut tx = engine.db.begin_with("BEGIN IMMEDIATE").await?;
        let reason = Some("deploy all".to_string());
        let id = engine.queue_deployment(&mut tx, &service, &image_id, build_id, reason, actor, None).await?;
        tx.commit().await?;
        engine.queue.notify();
        Ok(id)
    }

    /// Waits until deployment `id` is live (true) or failed (false).
    async fn settled_live(&self, ctx: &JobContext, id: i64) -> anyhow::Result<bool> {
        loop {
            let dep = self.engine.deployment(id).await.context("a queued deployment")?;
            if dep.status.was_live() {
                return Ok(true);
            }
            if dep.status == DeploymentStatus::Failed {
                return Ok(false);
            }
            tokio::select! {
                _ = ctx.cancel.cancelled() => anyhow::bail!("cancelled"),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }
}

#[async_trait::async_trait]
impl JobHandler for DeployAllHandler {
    async fn run(&self, ctx: JobContext) -> anyhow::Result<()> {
        let payload: Payload = serde_json::from_value(ctx.job.payload.clone())?;
        let span = tracing::info_span!("deploy_all", job_id = ctx.job.id, project_id = payload.project_id);
        self.run_all(&ctx, &payload).instrument(span).await
    }

    async fn on_interrupted(&self, job: &Job) -> anyhow::Result<RecoveryAction> {
        // The deployments it queued are jobs of their own (each recovers on
        // its own: the old deployment keeps serving); the rest is not done.
        tracing::warn!(job_id = job.id, "deploy all interrupted; services keep their old or new deployment");
        Ok(RecoveryAction::GiveUp)
    }
}
