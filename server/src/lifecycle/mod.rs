//! Operating a live service (deployer, audited): restart its container
//! without downtime, stop it (its host answers 503) and start it again, or
//! redeploy its image with the current settings.
//!
//! Restart, stop and start are jobs of the service, like deploys: the queue
//! runs one job per service at a time, so they never interleave with a
//! deploy or a rollback, and a crash mid-way is recovered like a deploy
//! (see [`job`]). Redeploy is a plain deployment.

pub mod delete;
mod job;
pub mod volumes;

use app::wire::{Caller, Role};
use serde::{Deserialize, Serialize};

pub use delete::{DeleteHandler, DELETE_JOB};
pub use job::LifecycleHandler;

use crate::{
    access::require,
    audit::{self, Event},
    engine::{deploy_timeout, Engine, EngineError},
    jobs::{JobQueue, NewJob},
    projects::ProjectStore,
};

/// The job kind.
pub const LIFECYCLE_JOB: &str = "lifecycle";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Restart,
    Stop,
    Start,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Restart => "restart",
            Action::Stop => "stop",
            Action::Start => "start",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "restart" => Action::Restart,
            "stop" => Action::Stop,
            "start" => Action::Start,
            _ => return None,
        })
    }
}

/// The job's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Payload {
    pub action: Action,
    pub deployment_id: i64,
    pub actor: String,
}

/// What was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub job_id: i64,
    pub deployment_id: i64,
    pub action: Action,
}

impl Engine {
    /// Queues a restart, stop or start of the service's live deployment.
    pub async fn service_action(
        &self,
        caller: &Caller,
        service_id: i64,
        action: Action,
    ) -> Result<Queued, EngineError> {
        let actor = require(caller, Role::Deployer)?;
        let service = ProjectStore::new(self.db.clone()).get_service(service_id).await?;
        self.ensure_not_deleting(service.id).await?;
        let live = self
            .live_of(service.id)
            .await?
            .ok_or_else(|| EngineError::Conflict("the service has no live deployment".into()))?;
        let stopped = live.stopped_at.is_some();
        match action {
            Action::Restart if stopped => {
                return Err(EngineError::Conflict("the service is stopped: start it instead".into()))
            }
            Action::Stop if stopped => {
                return Err(EngineError::Conflict("the service is already stopped".into()))
            }
            Action::Start if !stopped => {
                return Err(EngineError::Conflict("the service is already running".into()))
            }
            _ => {}
        }
        let payload = Payload { action, deployment_id: live.id, actor: actor.clone() };
        let timeout = deploy_timeout(&live.config);
        let job = NewJob::new(LIFECYCLE_JOB, Some(service.id), timeout)
            .payload(serde_json::to_value(&payload).map_err(anyhow::Error::from)?);
        let mut tx = self.db.begin_with("BEGIN IMMEDIATE").await?;
        let job_id = self.queue.enqueue(&mut tx, &job).await?;
        tx.commit().await?;
        self.queue.notify();
        tracing::info!(service_id, deployment_id = live.id, job_id, action = action.as_str(), %actor, "queued");
        audit::record(
            &self.db,
            Event::by(
                caller,
                match action {
                    Action::Restart => "service.restart",
                    Action::Stop => "service.stop",
                    Action::Start => "service.start",
                },
            )
            .target(format!("service:{service_id}"))
            .detail(format!("deployment:{}", live.id)),
        )
        .await;
        Ok(Queued { job_id, deployment_id: live.id, action })
    }

    /// Queues a deployment of the live image with the service's current
    /// settings (deployer).
    pub async fn redeploy(
        &self,
        caller: &Caller,
        service_id: i64,
    ) -> Result<crate::deploys::Deployment, EngineError> {
        let actor = require(caller, Role::Deployer)?;
        let service = ProjectStore::new(self.db.clone()).get_service(service_id).await?;
        let live = self
            .live_of(service.id)
            .await?
            .ok_or_else(|| EngineError::Conflict("the service has no live deployment to redeploy".into()))?;
        let reason = Some(format!("redeploy of deployment #{} with the current settings", live.id));
        let mut tx = self.db.begin_with("BEGIN IMMEDIATE").await?;
        let id = self
            .queue_deployment(&mut tx, &service, &live.image_id, live.build_id, reason, &actor, None)
            .await?;
        tx.commit().await?;
        self.queue.notify();
        audit::record(
            &self.db,
            Event::by(caller, "deploy.redeploy")
                .target(format!("deployment:{id}"))
                .detail(format!("redeploy of deployment:{}", live.id)),
        )
        .await;
        self.deployment(id).await
    }
}
