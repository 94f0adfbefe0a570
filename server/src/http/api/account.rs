//! Who am I, API tokens, job status and the audit log.

use app::wire::{AuditEventView, AuditQuery, Caller, JobView, NewToken, TokenView};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{delete, get},
    Json, Router,
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    extract::{reply, Admin, ApiResult, Body, Id, Params, SessionUser, Viewer},
    ErrorBody, State as Backend,
};
use crate::http::api::ApiError;

pub fn routes() -> Router<Backend> {
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/jobs/{id}", get(get_job))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route("/api/v1/audit", get(list_audit))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    pub name: String,
    /// Days until the token expires (1 to 3650); never when absent.
    pub expires_in_days: Option<u32>,
}

/// The signed-in user (401 when anonymous).
#[utoipa::path(get, path = "/api/v1/whoami", tag = "account",
    responses((status = 200, body = Caller), (status = 401, body = ErrorBody)))]
pub async fn whoami(Viewer(caller): Viewer) -> ApiResult<Caller> {
    Ok(Json(caller))
}

/// A job's status, phase and progress.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
pub async fn get_job(State(b): State<Backend>, Viewer(caller): Viewer, Id(id): Id) -> ApiResult<JobView> {
    reply(b.get_job(&caller, id).await)
}

/// The caller's API tokens (an admin's list has everyone's).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "account",
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(State(b): State<Backend>, Viewer(caller): Viewer) -> ApiResult<Vec<TokenView>> {
    reply(b.list_tokens(&caller).await)
}

/// Creates a token acting with the caller's role; the answer holds the
/// token itself, which is never shown again.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "account", request_body = NewTokenRequest,
    responses((status = 201, body = NewToken),
        (status = 403, body = ErrorBody, description = "called with an API token: tokens are made from a dashboard session")))]
pub async fn create_token(
    State(b): State<Backend>,
    SessionUser(caller): SessionUser,
    Body(body): Body<NewTokenRequest>,
) -> Result<(StatusCode, Json<NewToken>), ApiError> {
    Ok((StatusCode::CREATED, reply(b.create_token(&caller, body.name, body.expires_in_days).await)?))
}

/// Revokes one of the caller's tokens (an admin may revoke any).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "account",
    params(("id" = i64, Path, description = "token id")),
    responses((status = 200, body = TokenView), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
    Id(id): Id,
) -> ApiResult<TokenView> {
    reply(b.revoke_token(&caller, id).await)
}

/// Audit events, newest first, with filters (admin).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEventView>), (status = 403, body = ErrorBody)))]
pub async fn list_audit(
    State(b): State<Backend>,
    Admin(caller): Admin,
    Params(q): Params<AuditQuery>,
) -> ApiResult<Vec<AuditEventView>> {
    reply(b.list_audit(&caller, q).await)
}
