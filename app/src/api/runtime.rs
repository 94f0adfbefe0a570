//! A live service's runtime panel and the operator's actions on it.

use leptos::prelude::*;
use server_fn::codec::Json;

use crate::{
    error::AppError,
    wire::{ActionView, BuildAllView, DeploymentPageView, ProjectView, RuntimeView, VolumeView},
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
/// confirmed by typing its name (deployer). Its volumes stay unless
/// `delete_volumes` (admin). Answers the delete job.
#[server(prefix = "/rpc", endpoint = "delete_service", input = Json)]
pub async fn delete_service(
    service_id: i64,
    confirm: String,
    delete_volumes: bool,
) -> Result<ActionView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.delete_service(&caller(), service_id, confirm, delete_volumes).await)
}

/// The service's named volumes with their sizes (viewer).
#[server(prefix = "/rpc", endpoint = "service_volumes", input = Json)]
pub async fn service_volumes(service_id: i64) -> Result<Vec<VolumeView>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.service_volumes(&caller(), service_id).await)
}

/// Deletes one of the service's volumes and its data (admin, audited).
#[server(prefix = "/rpc", endpoint = "delete_volume", input = Json)]
pub async fn delete_volume(service_id: i64, name: String) -> Result<(), AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.delete_volume(&caller(), service_id, name).await)
}

/// Queues a "deploy all" of the project (deployer); answers its job.
#[server(prefix = "/rpc", endpoint = "deploy_all", input = Json)]
pub async fn deploy_all(project_id: i64) -> Result<ActionView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.deploy_all(&caller(), project_id).await)
}

/// Queues a build of each service of the project that builds its own image (deployer).
#[server(prefix = "/rpc", endpoint = "build_all", input = Json)]
pub async fn build_all(project_id: i64) -> Result<BuildAllView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.build_all(&caller(), project_id).await)
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
