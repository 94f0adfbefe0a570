//! A service's forge webhooks (secret, deliveries) and a project's
//! notification targets.

use app::wire::{
    DeliveryView, HistoryPage, NewNotificationTarget, NotificationTargetView, ProjectWebhookView,
    WebhookInfoView,
};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{delete, get, post},
    Json, Router,
};

use super::{
    extract::{reply, Admin, ApiResult, Body, Deployer, Id, Params, Viewer},
    ErrorBody, PageQuery, State as Backend,
};
use crate::http::api::ApiError;

pub fn routes() -> Router<Backend> {
    Router::new()
        .route("/api/v1/services/{id}/webhook", get(webhook_info))
        .route("/api/v1/services/{id}/webhook/rotate", post(rotate_webhook_secret))
        .route("/api/v1/services/{id}/webhook/deliveries", get(list_deliveries))
        .route("/api/v1/projects/{id}/webhook", get(project_webhook_info))
        .route("/api/v1/projects/{id}/webhook/rotate", post(rotate_project_webhook_secret))
        .route("/api/v1/projects/{id}/webhook/deliveries", get(list_project_deliveries))
        .route("/api/v1/projects/{id}/notifications", get(list_targets).post(create_target))
        .route("/api/v1/notifications/{id}", delete(delete_target))
}

/// The hook paths and the shared secret to configure in the forge (deployer).
#[utoipa::path(get, path = "/api/v1/services/{id}/webhook", tag = "webhooks",
    params(("id" = i64, Path, description = "service id")),
    responses((status = 200, body = WebhookInfoView), (status = 403, body = ErrorBody)))]
pub async fn webhook_info(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
) -> ApiResult<WebhookInfoView> {
    reply(b.webhook_info(&caller, id).await)
}

/// Replaces the secret; deliveries signed with the old one are refused (deployer).
#[utoipa::path(post, path = "/api/v1/services/{id}/webhook/rotate", tag = "webhooks",
    params(("id" = i64, Path, description = "service id")),
    responses((status = 200, body = WebhookInfoView), (status = 403, body = ErrorBody)))]
pub async fn rotate_webhook_secret(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
) -> ApiResult<WebhookInfoView> {
    reply(b.rotate_webhook_secret(&caller, id).await)
}

/// Deliveries received for the service, newest first (admin).
#[utoipa::path(get, path = "/api/v1/services/{id}/webhook/deliveries", tag = "webhooks",
    params(("id" = i64, Path, description = "service id"), PageQuery),
    responses((status = 200, body = HistoryPage<DeliveryView>), (status = 403, body = ErrorBody)))]
pub async fn list_deliveries(
    State(b): State<Backend>,
    Admin(caller): Admin,
    Id(id): Id,
    Params(page): Params<PageQuery>,
) -> ApiResult<HistoryPage<DeliveryView>> {
    reply(b.list_deliveries(&caller, id, page.before, page.limit).await)
}

/// The project hook's paths and secret (deployer). A push to it builds
/// every service of the project whose repository and branch match, from one
/// checkout.
#[utoipa::path(get, path = "/api/v1/projects/{id}/webhook", tag = "webhooks",
    params(("id" = i64, Path, description = "project id")),
    responses((status = 200, body = ProjectWebhookView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn project_webhook_info(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
) -> ApiResult<ProjectWebhookView> {
    reply(b.project_webhook_info(&caller, id).await)
}

/// Replaces the project hook's secret; deliveries signed with the old one
/// are refused (deployer).
#[utoipa::path(post, path = "/api/v1/projects/{id}/webhook/rotate", tag = "webhooks",
    params(("id" = i64, Path, description = "project id")),
    responses((status = 200, body = ProjectWebhookView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn rotate_project_webhook_secret(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
) -> ApiResult<ProjectWebhookView> {
    reply(b.rotate_project_webhook_secret(&caller, id).await)
}

/// Deliveries received by the project hook, newest first (admin).
#[utoipa::path(get, path = "/api/v1/projects/{id}/webhook/deliveries", tag = "webhooks",
    params(("id" = i64, Path, description = "project id"), PageQuery),
    responses((status = 200, body = HistoryPage<DeliveryView>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_project_deliveries(
    State(b): State<Backend>,
    Admin(caller): Admin,
    Id(id): Id,
    Params(page): Params<PageQuery>,
) -> ApiResult<HistoryPage<DeliveryView>> {
    reply(b.list_project_deliveries(&caller, id, page.before, page.limit).await)
}

/// A project's notification targets, URLs masked.
#[utoipa::path(get, path = "/api/v1/projects/{id}/notifications", tag = "notifications",
    params(("id" = i64, Path, description = "project id")),
    responses((status = 200, body = Vec<NotificationTargetView>), (status = 404, body = ErrorBody)))]
pub async fn list_targets(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
    Id(id): Id,
) -> ApiResult<Vec<NotificationTargetView>> {
    reply(b.list_notification_targets(&caller, id).await)
}

/// Adds a generic JSON webhook or a Slack-compatible target (admin).
#[utoipa::path(post, path = "/api/v1/projects/{id}/notifications", tag = "notifications",
    request_body = NewNotificationTarget, params(("id" = i64, Path, description = "project id")),
    responses((status = 201, body = NotificationTargetView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the project has a target of this name (`conflict`)")))]
pub async fn create_target(
    State(b): State<Backend>,
    Admin(caller): Admin,
    Id(id): Id,
    Body(body): Body<NewNotificationTarget>,
) -> Result<(StatusCode, Json<NotificationTargetView>), ApiError> {
    Ok((StatusCode::CREATED, reply(b.create_notification_target(&caller, id, body).await)?))
}

/// Removes a notification target (admin).
#[utoipa::path(delete, path = "/api/v1/notifications/{id}", tag = "notifications",
    params(("id" = i64, Path, description = "notification target id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn delete_target(
    State(b): State<Backend>,
    Admin(caller): Admin,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    b.delete_notification_target(&caller, id).await.map_err(ApiError)?;
    Ok(StatusCode::NO_CONTENT)
}
