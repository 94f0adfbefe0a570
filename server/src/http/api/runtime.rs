//! A live service's runtime: its panel (state, usage, last probe) and the
//! operator's actions (restart, stop, start, redeploy). The container log
//! stream is `crate::http::runtime_log_stream`.

use app::wire::{ActionView, DeploymentEventView, RuntimeView};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{delete, get, post},
    Json, Router,
};
use serde::Deserialize;

use super::{
    extract::{reply, ApiResult, Deployer, Id, Params, Viewer},
    ErrorBody, State as Backend,
};
use crate::http::api::ApiError;

pub fn routes() -> Router<Backend> {
    Router::new()
        .route("/api/v1/services/{id}/runtime", get(runtime))
        .route("/api/v1/services/{id}/restart", post(restart))
        .route("/api/v1/services/{id}/stop", post(stop))
        .route("/api/v1/services/{id}/start", post(start))
        .route("/api/v1/services/{id}/redeploy", post(redeploy))
        .route("/api/v1/deployments/{id}/events", get(deployment_events))
        .route("/api/v1/services/{id}", delete(delete_service))
        .route("/api/v1/projects/{id}", delete(delete_project))
}

/// The live container's state, CPU and memory (with the last 15 minutes),
/// health as last probed, and the stop/start/restart history (viewer).
#[utoipa::path(get, path = "/api/v1/services/{id}/runtime", tag = "runtime",
    params(("id" = i64, Path, description = "service id")),
    responses((status = 200, body = RuntimeView), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn runtime(State(b): State<Backend>, Viewer(caller): Viewer, Id(id): Id) -> ApiResult<RuntimeView> {
    reply(b.service_runtime(&caller, id).await)
}

async fn act(
    b: Backend,
    caller: app::wire::Caller,
    id: i64,
    action: &str,
) -> Result<(StatusCode, Json<ActionView>), ApiError> {
    Ok((StatusCode::ACCEPTED, reply(b.service_action(&caller, id, action.into()).await)?))
}

/// Restarts the live container without downtime: a fresh container of the
/// same deployment is started, probed and switched to (deployer); `202`.
#[utoipa::path(post, path = "/api/v1/services/{id}/restart", tag = "runtime",
    params(("id" = i64, Path, description = "service id")),
    responses((status = 202, body = ActionView), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn restart(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
) -> Result<(StatusCode, Json<ActionView>), ApiError> {
    act(b, caller, id, "restart").await
}

/// Stops the service: its container stops, its host answers 503 (deployer); `202`.
#[utoipa::path(post, path = "/api/v1/services/{id}/stop", tag = "runtime",
    params(("id" = i64, Path, description = "service id")),
    responses((status = 202, body = ActionView), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn stop(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
) -> Result<(StatusCode, Json<ActionView>), ApiError> {
    act(b, caller, id, "stop").await
}

/// Starts a stopped service again, health-checked (deployer); `202`.
#[utoipa::path(post, path = "/api/v1/services/{id}/start", tag = "runtime",
    params(("id" = i64, Path, description = "service id")),
    responses((status = 202, body = ActionView), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn start(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
) -> Result<(StatusCode, Json<ActionView>), ApiError> {
    act(b, caller, id, "start").await
}

/// Deploys the live image again with the current settings (deployer); `202`.
#[utoipa::path(post, path = "/api/v1/services/{id}/redeploy", tag = "runtime",
    params(("id" = i64, Path, description = "service id")),
    responses((status = 202, body = ActionView), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn redeploy(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
) -> Result<(StatusCode, Json<ActionView>), ApiError> {
    act(b, caller, id, "redeploy").await
}

/// A deployment's timeline, oldest first: container started, first healthy
/// probe, switched, drained, old removed, and stop/start/restart (viewer).
#[utoipa::path(get, path = "/api/v1/deployments/{id}/events", tag = "runtime",
    params(("id" = i64, Path, description = "deployment id")),
    responses((status = 200, body = Vec<DeploymentEventView>), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deployment_events(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
    Id(id): Id,
) -> ApiResult<Vec<DeploymentEventView>> {
    reply(b.deployment_events(&caller, id).await)
}

/// The name typed to confirm a delete.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    /// The name of what is deleted, typed again.
    pub confirm: String,
}

/// The name typed to confirm a service's delete, and whether its volumes go.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConfirmService {
    /// The service's name, typed again.
    pub confirm: String,
    /// Delete its volumes and their data too (admin; default false: they
    /// are kept).
    #[serde(default)]
    pub delete_volumes: Option<bool>,
}

/// A well-formed confirmation that is not the current name conflicts with
/// what is there (409); the dashboard shows the same refusal by its field.
fn mismatch(e: app::AppError) -> app::AppError {
    match e {
        app::AppError::InvalidField { field, message } if field == "confirm" => {
            app::AppError::Conflict(message)
        }
        e => e,
    }
}

/// Deletes the service: containers, images no other service needs, route,
/// webhook secret, logs and history (the audit events stay). Runs as a job
/// that finishes even after a crash (deployer); `202`.
#[utoipa::path(delete, path = "/api/v1/services/{id}", tag = "runtime",
    params(("id" = i64, Path, description = "service id"), ConfirmService),
    responses((status = 202, body = ActionView), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn delete_service(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
    Params(ConfirmService { confirm, delete_volumes }): Params<ConfirmService>,
) -> Result<(StatusCode, Json<ActionView>), ApiError> {
    let delete_volumes = delete_volumes.unwrap_or(false);
    Ok((
        StatusCode::ACCEPTED,
        reply(b.delete_service(&caller, id, confirm, delete_volumes).await.map_err(mismatch))?,
    ))
}

/// Deletes a project with no services (deployer); `204`.
#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "runtime",
    params(("id" = i64, Path, description = "project id"), Confirm),
    responses((status = 204, description = "deleted"), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn delete_project(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
    Params(Confirm { confirm }): Params<Confirm>,
) -> Result<StatusCode, ApiError> {
    let _ = reply(b.delete_project(&caller, id, confirm).await.map_err(mismatch))?;
    Ok(StatusCode::NO_CONTENT)
}
