//! The runtime part of the `Backend` port: the live container's panel and
//! the operator's actions on it.

use app::{
    wire::{ActionView, Caller, DeploymentEventView, DeploymentPageView, RuntimeView},
    AppError,
};

use super::{errors, ServerBackend};
use crate::{lifecycle::Action, projects::ProjectStore};

type Res<T> = Result<T, AppError>;

impl ServerBackend {
    pub(super) async fn events(&self, caller: &Caller, deployment_id: i64) -> Res<Vec<DeploymentEventView>> {
        let events = self.engine()?.deployment_events(caller, deployment_id).await.map_err(errors::engine)?;
        Ok(events
            .into_iter()
            .map(|e| DeploymentEventView { kind: e.kind, actor: e.actor, detail: e.detail, at: e.at })
            .collect())
    }

    pub(super) async fn deployment_page_view(
        &self,
        caller: &Caller,
        deployment_id: i64,
    ) -> Res<DeploymentPageView> {
        let events = self.events(caller, deployment_id).await?;
        let engine = self.engine()?;
        let d = engine.get_deployment(caller, deployment_id).await.map_err(errors::engine)?;
        let (project, service) = ProjectStore::new(engine.db.clone())
            .get_service_and_project(d.service_id)
            .await
            .map_err(|e| errors::engine(e.into()))?;
        Ok(DeploymentPageView {
            deployment: self.deployment_view(d).await?,
            service: service.spec.name,
            project: project.name,
            events,
        })
    }

    pub(super) async fn runtime(&self, caller: &Caller, service_id: i64) -> Res<RuntimeView> {
        self.engine()?.service_runtime(caller, service_id).await.map_err(errors::engine)
    }

    pub(super) async fn delete_service_now(
        &self,
        caller: &Caller,
        id: i64,
        confirm: &str,
        delete_volumes: bool,
    ) -> Res<ActionView> {
        let job = self
            .engine()?
            .delete_service(caller, id, confirm, delete_volumes)
            .await
            .map_err(errors::engine)?;
        Ok(ActionView { action: "delete".into(), job_id: Some(job), deployment_id: None })
    }

    pub(super) async fn volumes(&self, caller: &Caller, service_id: i64) -> Res<Vec<app::wire::VolumeView>> {
        let list = self.engine()?.service_volumes(caller, service_id).await.map_err(errors::engine)?;
        Ok(list
            .into_iter()
            .map(|v| app::wire::VolumeView {
                name: v.name,
                path: v.path,
                engine_name: v.engine_name,
                size_bytes: v.size_bytes,
                exists: v.exists,
            })
            .collect())
    }

    pub(super) async fn delete_project_now(&self, caller: &Caller, id: i64, confirm: &str) -> Res<()> {
        self.engine()?.delete_project(caller, id, confirm).await.map_err(errors::engine)
    }

    pub(super) async fn action(&self, caller: &Caller, service_id: i64, action: &str) -> Res<ActionView> {
        let engine = self.engine()?;
        // The role before the input: a viewer learns nothing of the names.
        crate::access::require(caller, app::wire::Role::Deployer)
            .map_err(|e| errors::engine(crate::engine::EngineError::Access(e)))?;
        if action == "redeploy" {
            let d = engine.redeploy(caller, service_id).await.map_err(errors::engine)?;
            return Ok(ActionView { action: action.into(), job_id: None, deployment_id: Some(d.id) });
        }
        let parsed = Action::parse(action).ok_or_else(|| AppError::InvalidField {
            field: "action".into(),
            message: "must be restart, stop, start or redeploy".into(),
        })?;
        let queued = engine.service_action(caller, service_id, parsed).await.map_err(errors::engine)?;
        Ok(ActionView {
            action: queued.action.as_str().into(),
            job_id: Some(queued.job_id),
            deployment_id: Some(queued.deployment_id),
        })
    }
}
