//! Projects and services.

use app::wire::{ProjectView, ServiceDetail, ServiceSettings};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{get, post},
    Router,
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    extract::{reply, ApiResult, Body, Deployer, Id, Viewer},
    ErrorBody, State as Backend,
};

pub fn routes() -> Router<Backend> {
    Router::new()
        .route("/api/v1/projects", get(list_projects).post(create_project))
        .route("/api/v1/projects/{id}/services", post(create_service))
        .route("/api/v1/services/{id}", get(get_service).put(update_service))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    pub name: String,
}

/// Every project with its services, their live deployment and last build.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    responses((status = 200, body = Vec<ProjectView>), (status = 401, body = ErrorBody)))]
pub async fn list_projects(State(b): State<Backend>, Viewer(caller): Viewer) -> ApiResult<Vec<ProjectView>> {
    reply(b.overview(&caller).await)
}

/// Creates a project (deployer).
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = NewProject,
    responses((status = 201, body = ProjectView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "a project has this name (`conflict`)")))]
pub async fn create_project(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Body(body): Body<NewProject>,
) -> Result<(StatusCode, axum::Json<ProjectView>), crate::http::api::ApiError> {
    let project = reply(b.create_project(&caller, body.name).await)?;
    Ok((StatusCode::CREATED, project))
}

/// Creates a service in a project with its settings and environment (deployer).
#[utoipa::path(post, path = "/api/v1/projects/{id}/services", tag = "services", request_body = ServiceSettings,
    params(("id" = i64, Path, description = "project id")),
    responses((status = 201, body = ServiceDetail), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the project has a service of this name, or another service uses the domain (`conflict`)")))]
pub async fn create_service(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(project_id): Id,
    Body(settings): Body<ServiceSettings>,
) -> Result<(StatusCode, axum::Json<ServiceDetail>), crate::http::api::ApiError> {
    let service = reply(b.create_service(&caller, project_id, settings).await)?;
    Ok((StatusCode::CREATED, service))
}

/// A service's settings; secret env values are never returned.
#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "services",
    params(("id" = i64, Path, description = "service id")),
    responses((status = 200, body = ServiceDetail), (status = 404, body = ErrorBody)))]
pub async fn get_service(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
    Id(id): Id,
) -> ApiResult<ServiceDetail> {
    reply(b.get_service(&caller, id).await)
}

/// Replaces a service's settings and environment (deployer). A secret
/// variable sent with `"value": null` keeps its stored value.
#[utoipa::path(put, path = "/api/v1/services/{id}", tag = "services", request_body = ServiceSettings,
    params(("id" = i64, Path, description = "service id")),
    responses((status = 200, body = ServiceDetail), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the name or domain is taken (`conflict`)")))]
pub async fn update_service(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
    Body(settings): Body<ServiceSettings>,
) -> ApiResult<ServiceDetail> {
    reply(b.update_service(&caller, id, settings).await)
}
