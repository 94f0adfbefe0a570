//! Deployments: history, deploy a build, rollback with its preview.

use leptos::prelude::*;
use server_fn::codec::Json;

use crate::{
    error::AppError,
    wire::{DeploymentRow, DeploymentView, HistoryPage, RollbackPlanView},
};

/// A service's deployments, newest first, secrets masked (viewer).
#[server(prefix = "/rpc", endpoint = "list_deployments", input = Json)]
pub async fn list_deployments(
    service_id: i64,
    before: Option<i64>,
    limit: Option<u32>,
) -> Result<HistoryPage<DeploymentView>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.list_deployments(&caller(), service_id, before, limit).await)
}

/// A page of the service page's deployment table (viewer): 25 rows before
/// `before`, newest first.
#[server(prefix = "/rpc", endpoint = "deployment_rows", input = Json)]
pub async fn deployment_rows(
    service_id: i64,
    before: Option<i64>,
) -> Result<HistoryPage<DeploymentRow>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.deployment_rows(&caller(), service_id, before).await)
}

/// One deployment, secrets masked (viewer).
#[server(prefix = "/rpc", endpoint = "get_deployment", input = Json)]
pub async fn get_deployment(deployment_id: i64) -> Result<DeploymentView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.get_deployment(&caller(), deployment_id).await)
}

/// Deploys a build (the service's newest successful one when `build_id` is
/// `None`) with an optional reason (deployer).
#[server(prefix = "/rpc", endpoint = "deploy_build", input = Json)]
pub async fn deploy_build(
    service_id: i64,
    build_id: Option<i64>,
    reason: Option<String>,
) -> Result<DeploymentView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.deploy_build(&caller(), service_id, build_id, reason).await)
}

/// What rolling back to `deployment_id` would change (viewer).
#[server(prefix = "/rpc", endpoint = "rollback_preview", input = Json)]
pub async fn rollback_preview(deployment_id: i64) -> Result<RollbackPlanView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.rollback_preview(&caller(), deployment_id).await)
}

/// Rolls back to an earlier deployment's image and config (deployer).
#[server(prefix = "/rpc", endpoint = "rollback", input = Json)]
pub async fn rollback(deployment_id: i64, reason: Option<String>) -> Result<DeploymentView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.rollback(&caller(), deployment_id, reason).await)
}
