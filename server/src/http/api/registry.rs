//! A project's image registry: read (viewer, masked), set and clear (admin).

use app::wire::{RegistryForm, RegistryView};
use axum::{extract::State, http::StatusCode, routing::get, Router};

use super::{
    extract::{reply, Admin, ApiResult, Body, Id, Viewer},
    ErrorBody, State as Backend,
};
use crate::http::api::ApiError;

pub fn routes() -> Router<Backend> {
    Router::new()
        .route("/api/v1/projects/{id}/registry", get(get_registry).put(set_registry).delete(clear_registry))
}

/// The project's registry, never with its password; `null` when images stay
/// local.
#[utoipa::path(get, path = "/api/v1/projects/{id}/registry", tag = "registry",
    params(("id" = i64, Path, description = "project id")),
    responses((status = 200, body = Option<RegistryView>), (status = 404, body = ErrorBody)))]
pub async fn get_registry(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
    Id(id): Id,
) -> ApiResult<Option<RegistryView>> {
    reply(b.project_registry(&caller, id).await)
}

/// Sets the registry every build of the project pushes to (admin). The
/// password is sealed at rest; an absent one keeps the stored password.
#[utoipa::path(put, path = "/api/v1/projects/{id}/registry", tag = "registry", request_body = RegistryForm,
    params(("id" = i64, Path, description = "project id")),
    responses((status = 200, body = RegistryView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_registry(
    State(b): State<Backend>,
    Admin(caller): Admin,
    Id(id): Id,
    Body(body): Body<RegistryForm>,
) -> ApiResult<RegistryView> {
    reply(b.set_project_registry(&caller, id, body).await)
}

/// Removes the project's registry (admin): builds stay local again;
/// idempotent.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/registry", tag = "registry",
    params(("id" = i64, Path, description = "project id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn clear_registry(
    State(b): State<Backend>,
    Admin(caller): Admin,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    b.clear_project_registry(&caller, id).await.map_err(ApiError)?;
    Ok(StatusCode::NO_CONTENT)
}
