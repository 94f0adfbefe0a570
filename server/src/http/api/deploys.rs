//! Deployments: deploy a build or an image with a reason, list, get,
//! rollback (with its preview).

use app::wire::{DeploymentView, HistoryPage, RollbackPlanView};
use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    extract::{reply, ApiResult, Body, Deployer, Id, Params, Viewer},
    ErrorBody, PageQuery, State as Backend,
};
use crate::http::api::ApiError;

pub fn routes() -> Router<Backend> {
    Router::new()
        .route("/api/v1/services/{id}/deployments", get(list_deployments).post(deploy))
        .route("/api/v1/deployments/{id}", get(get_deployment))
        .route("/api/v1/deployments/{id}/rollback", get(rollback_preview).post(rollback))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeployment {
    /// The build to deploy; the service's newest successful build when
    /// neither this nor `image` is given.
    pub build_id: Option<i64>,
    /// An image already in the Docker engine (id or reference).
    pub image: Option<String>,
    /// Why (shown in the history).
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub reason: Option<String>,
}

/// A service's deployments, newest first.
#[utoipa::path(get, path = "/api/v1/services/{id}/deployments", tag = "deployments",
    params(("id" = i64, Path, description = "service id"), PageQuery),
    responses((status = 200, body = HistoryPage<DeploymentView>), (status = 404, body = ErrorBody)))]
pub async fn list_deployments(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
    Id(id): Id,
    Params(page): Params<PageQuery>,
) -> ApiResult<HistoryPage<DeploymentView>> {
    reply(b.list_deployments(&caller, id, page.before, page.limit).await)
}

/// Queues a deployment of a build or an image (deployer); `202`.
#[utoipa::path(post, path = "/api/v1/services/{id}/deployments", tag = "deployments", request_body = NewDeployment,
    params(("id" = i64, Path, description = "service id")),
    responses((status = 202, body = DeploymentView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn deploy(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
    Body(body): Body<NewDeployment>,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    let result = match body.image {
        Some(image) if body.build_id.is_none() => b.deploy_image(&caller, id, image, body.reason).await,
        Some(_) => Err(app::AppError::InvalidField {
            field: "image".into(),
            message: "give a build or an image, not both".into(),
        }),
        None => b.deploy_build(&caller, id, body.build_id, body.reason).await,
    };
    Ok((StatusCode::ACCEPTED, reply(result)?))
}

/// One deployment with its config snapshot (secrets masked).
#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deployments",
    params(("id" = i64, Path, description = "deployment id")),
    responses((status = 200, body = DeploymentView), (status = 404, body = ErrorBody)))]
pub async fn get_deployment(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
    Id(id): Id,
) -> ApiResult<DeploymentView> {
    reply(b.get_deployment(&caller, id).await)
}

/// What rolling back to this deployment would change.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/rollback", tag = "deployments",
    params(("id" = i64, Path, description = "the deployment to roll back to")),
    responses((status = 200, body = RollbackPlanView), (status = 404, body = ErrorBody)))]
pub async fn rollback_preview(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
    Id(id): Id,
) -> ApiResult<RollbackPlanView> {
    reply(b.rollback_preview(&caller, id).await)
}

/// Rolls back to this deployment: its image and config (deployer); `202`.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/rollback", tag = "deployments", request_body = RollbackRequest,
    params(("id" = i64, Path, description = "the deployment to roll back to")),
    responses((status = 202, body = DeploymentView), (status = 409, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn rollback(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
    Body(body): Body<RollbackRequest>,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    Ok((StatusCode::ACCEPTED, reply(b.rollback(&caller, id, body.reason).await)?))
}
