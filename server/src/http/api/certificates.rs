//! The edge's HTTPS certificates: list (viewer), upload and delete (admin).

use app::wire::{CertificateForm, CertificateView};
use axum::{extract::State, http::StatusCode, routing::get, Router};

use super::{
    extract::{reply, Admin, ApiResult, Body, Id, Viewer},
    ErrorBody, State as Backend,
};
use crate::http::api::ApiError;

pub fn routes() -> Router<Backend> {
    Router::new()
        .route("/api/v1/certificates", get(list_certificates).post(upload_certificate))
        .route("/api/v1/certificates/{id}", axum::routing::delete(delete_certificate))
}

/// Every certificate the HTTPS listener serves, uploaded or from the
/// certificate directory, soonest expiry first. Never a private key.
#[utoipa::path(get, path = "/api/v1/certificates", tag = "certificates",
    responses((status = 200, body = Vec<CertificateView>), (status = 401, body = ErrorBody)))]
pub async fn list_certificates(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
) -> ApiResult<Vec<CertificateView>> {
    reply(b.list_certificates(&caller).await)
}

/// Uploads a certificate (admin): a PEM chain (leaf first) and its key. It
/// is served for its own DNS names at once, and replaces every upload whose
/// names it covers (a renewal). The key is sealed at rest. A chain that is
/// not PEM, a key of another certificate, an expired certificate or one
/// with no DNS name is 422 naming the field; nothing is stored.
#[utoipa::path(post, path = "/api/v1/certificates", tag = "certificates", request_body = CertificateForm,
    responses((status = 201, body = CertificateView), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload_certificate(
    State(b): State<Backend>,
    Admin(caller): Admin,
    Body(body): Body<CertificateForm>,
) -> Result<(StatusCode, axum::Json<CertificateView>), ApiError> {
    let view = b.upload_certificate(&caller, body).await.map_err(ApiError)?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// Deletes an uploaded certificate (admin). Its names stop being served
/// unless another certificate covers them.
#[utoipa::path(delete, path = "/api/v1/certificates/{id}", tag = "certificates",
    params(("id" = i64, Path, description = "certificate id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_certificate(
    State(b): State<Backend>,
    Admin(caller): Admin,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    b.delete_certificate(&caller, id).await.map_err(ApiError)?;
    Ok(StatusCode::NO_CONTENT)
}
