//! API tokens (any signed-in user, for their own tokens), the audit log
//! (admin), a service's webhooks and a project's notification targets.

use leptos::prelude::*;
use server_fn::codec::Json;

use crate::{
    error::AppError,
    wire::{
        AuditEventView, AuditQuery, DeliveryView, HistoryPage, NewNotificationTarget, NewToken,
        NotificationDeliveryView, NotificationTargetView, NotificationsPageView, ProjectWebhookView,
        RegistryForm, RegistryView, TokenView, WebhookInfoView,
    },
};

/// The caller's API tokens (an admin sees everyone's).
#[server(prefix = "/rpc", endpoint = "list_tokens", input = Json)]
pub async fn list_tokens() -> Result<Vec<TokenView>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.list_tokens(&caller()).await)
}

/// Creates a token; the answer holds the token text, shown this once.
#[server(prefix = "/rpc", endpoint = "create_token", input = Json)]
pub async fn create_token(name: String, expires_in_days: Option<u32>) -> Result<NewToken, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.create_token(&caller(), name, expires_in_days).await)
}

/// Revokes one of the caller's tokens (an admin may revoke any).
#[server(prefix = "/rpc", endpoint = "revoke_token", input = Json)]
pub async fn revoke_token(token_id: i64) -> Result<TokenView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.revoke_token(&caller(), token_id).await)
}

/// Audit events, newest first, filtered (admin).
#[server(prefix = "/rpc", endpoint = "list_audit", input = Json)]
pub async fn list_audit(query: AuditQuery) -> Result<Vec<AuditEventView>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.list_audit(&caller(), query).await)
}

/// The service's webhook paths and secret (deployer).
#[server(prefix = "/rpc", endpoint = "webhook_info", input = Json)]
pub async fn webhook_info(service_id: i64) -> Result<WebhookInfoView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.webhook_info(&caller(), service_id).await)
}

/// Replaces the service's webhook secret (deployer).
#[server(prefix = "/rpc", endpoint = "rotate_webhook_secret", input = Json)]
pub async fn rotate_webhook_secret(service_id: i64) -> Result<WebhookInfoView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.rotate_webhook_secret(&caller(), service_id).await)
}

/// Webhook deliveries of a service, newest first (admin).
#[server(prefix = "/rpc", endpoint = "list_deliveries", input = Json)]
pub async fn list_deliveries(
    service_id: i64,
    before: Option<i64>,
    limit: Option<u32>,
) -> Result<HistoryPage<DeliveryView>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.list_deliveries(&caller(), service_id, before, limit).await)
}

/// The project hook's paths and secret (deployer).
#[server(prefix = "/rpc", endpoint = "project_webhook_info", input = Json)]
pub async fn project_webhook_info(project_id: i64) -> Result<ProjectWebhookView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.project_webhook_info(&caller(), project_id).await)
}

/// Replaces the project hook's secret (deployer).
#[server(prefix = "/rpc", endpoint = "rotate_project_webhook_secret", input = Json)]
pub async fn rotate_project_webhook_secret(project_id: i64) -> Result<ProjectWebhookView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.rotate_project_webhook_secret(&caller(), project_id).await)
}

/// A project's notification targets (viewer; URLs masked).
#[server(prefix = "/rpc", endpoint = "list_notification_targets", input = Json)]
pub async fn list_notification_targets(project_id: i64) -> Result<Vec<NotificationTargetView>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.list_notification_targets(&caller(), project_id).await)
}

/// Adds a notification target to a project (admin).
#[server(prefix = "/rpc", endpoint = "create_notification_target", input = Json)]
pub async fn create_notification_target(
    project_id: i64,
    target: NewNotificationTarget,
) -> Result<NotificationTargetView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.create_notification_target(&caller(), project_id, target).await)
}

/// Removes a notification target (admin).
#[server(prefix = "/rpc", endpoint = "delete_notification_target", input = Json)]
pub async fn delete_notification_target(target_id: i64) -> Result<(), AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.delete_notification_target(&caller(), target_id).await)
}

/// The notifications page in one call: the project, its targets and their
/// newest deliveries (viewer).
#[server(prefix = "/rpc", endpoint = "notifications_page", input = Json)]
pub async fn notifications_page(project_id: i64) -> Result<NotificationsPageView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.notifications_page(&caller(), project_id).await)
}

/// Sends a test message to a notification target now and records the
/// delivery (deployer). A failing target is an answer with `ok: false`.
#[server(prefix = "/rpc", endpoint = "send_test_notification", input = Json)]
pub async fn send_test_notification(target_id: i64) -> Result<NotificationDeliveryView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.send_test_notification(&caller(), target_id).await)
}

/// A project's image registry, never its password; `None`: images stay
/// local (viewer).
#[server(prefix = "/rpc", endpoint = "project_registry", input = Json)]
pub async fn project_registry(project_id: i64) -> Result<Option<RegistryView>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.project_registry(&caller(), project_id).await)
}

/// Sets the registry the project's builds push to (admin).
#[server(prefix = "/rpc", endpoint = "set_project_registry", input = Json)]
pub async fn set_project_registry(project_id: i64, form: RegistryForm) -> Result<RegistryView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.set_project_registry(&caller(), project_id, form).await)
}

/// Removes the project's registry (admin).
#[server(prefix = "/rpc", endpoint = "clear_project_registry", input = Json)]
pub async fn clear_project_registry(project_id: i64) -> Result<(), AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.clear_project_registry(&caller(), project_id).await)
}
