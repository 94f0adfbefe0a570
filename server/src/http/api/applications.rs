//! Multi-service applications (issue 18): a service's named volumes, and a
//! project's "Deploy all" and "Build all".

use app::wire::{ActionView, BuildAllView, VolumeView};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{delete, get, post},
    Json, Router,
};

use super::{
    extract::{reply, Admin, ApiResult, Deployer, Id, IdAndName, Viewer},
    ErrorBody, State as Backend,
};
use crate::http::api::ApiError;

pub fn routes() -> Router<Backend> {
    Router::new()
        .route("/api/v1/services/{id}/volumes", get(list_volumes))
        .route("/api/v1/services/{id}/volumes/{name}", delete(delete_volume))
        .route("/api/v1/projects/{id}/deploy-all", post(deploy_all))
        .route("/api/v1/projects/{id}/build-all", post(build_all))
}

/// The service's named volumes: where they are mounted, their engine name
/// and size (viewer). Volumes survive deploys, rollbacks and restarts.
#[utoipa::path(get, path = "/api/v1/services/{id}/volumes", tag = "services",
    params(("id" = i64, Path, description = "service id")),
    responses((status = 200, body = Vec<VolumeView>), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_volumes(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
    Id(id): Id,
) -> ApiResult<Vec<VolumeView>> {
    reply(b.service_volumes(&caller, id).await)
}

/// Deletes one of the service's volumes and its data (admin, audited);
/// refused (409) while a container uses it; `204`.
#[utoipa::path(delete, path = "/api/v1/services/{id}/volumes/{name}", tag = "services",
    params(("id" = i64, Path, description = "service id"), ("name" = String, Path, description = "the volume's name")),
    responses((status = 204, description = "deleted"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn delete_volume(
    State(b): State<Backend>,
    Admin(caller): Admin,
    IdAndName(id, name): IdAndName,
) -> Result<StatusCode, ApiError> {
    let _ = reply(b.delete_volume(&caller, id, name).await)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deploys every service of the project in `deploy_after` order, each as a
/// normal deployment; a service whose predecessor failed is skipped
/// (deployer); `202` with the job (`/api/v1/jobs/{id}`).
#[utoipa::path(post, path = "/api/v1/projects/{id}/deploy-all", tag = "deployments",
    params(("id" = i64, Path, description = "project id")),
    responses((status = 202, body = ActionView), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deploy_all(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
) -> Result<(StatusCode, Json<ActionView>), ApiError> {
    Ok((StatusCode::ACCEPTED, reply(b.deploy_all(&caller, id).await)?))
}

/// Queues one build of every service of the project that builds its own
/// image (deployer); `202` with the builds.
#[utoipa::path(post, path = "/api/v1/projects/{id}/build-all", tag = "builds",
    params(("id" = i64, Path, description = "project id")),
    responses((status = 202, body = BuildAllView), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn build_all(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
) -> Result<(StatusCode, Json<BuildAllView>), ApiError> {
    Ok((StatusCode::ACCEPTED, reply(b.build_all(&caller, id).await)?))
}
