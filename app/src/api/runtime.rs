//! A live service's runtime panel and the operator's actions on it.

use leptos::prelude::*;
use server_fn::codec::Json;

use crate::{
    error::AppError,
    wire::{ActionView, DeploymentPageView, ProjectView, RuntimeView},
};

/// The live container's state, usage and last probe (viewer).
#[server(prefix = "/rpc", endpoint = "service_runtime", input = Json)]
pub async fn service_runtime(service_id: i64) -> Result<RuntimeView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.service_runtime(&caller(), service_id).await)
}

/// `restart`, `stop`, `start` or `redeploy` the service (deployer).
#[server(prefix = "/rpc", endpoint = "service_action", input = Json)]
pub async fn service_action(service_id: i64, action: String) -> Result<ActionView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.service_action(&caller(), service_id, action).await)
}

/// The deployment page: the deployment (secrets masked), its service and
/// its timeline (viewer).
#[server(prefix = "/rpc", endpoint = "deployment_page", input = Json)]
pub async fn deployment_page(deployment_id: i64) -> Result<DeploymentPageView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.deployment_page(&caller(), deployment_id).await)
}

/// Deletes the service, its containers, images, routes, logs and history,
/// confirmed by typing its name (deployer). Answers the delete job.
#[server(prefix = "/rpc", endpoint = "delete_service", input = Json)]
pub async fn delete_service(service_id: i64, confirm: String) -> Result<ActionView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.delete_service(&caller(), service_id, confirm).await)
}

/// Deletes a project that has no services, confirmed by its name (deployer).
#[server(prefix = "/rpc", endpoint = "delete_project", input = Json)]
pub async fn delete_project(project_id: i64, confirm: String) -> Result<(), AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.delete_project(&caller(), project_id, confirm).await)
}

/// One project with its services' state, last build and live deployment
/// (viewer).
#[server(prefix = "/rpc", endpoint = "project_page", input = Json)]
pub async fn project_page(project_id: i64) -> Result<ProjectView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.project_page(&caller(), project_id).await)
}
