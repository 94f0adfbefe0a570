//! Wire types of the integrations: API tokens, jobs, audit events, forge
//! webhooks and notification targets.

use serde::{Deserialize, Serialize};

/// An API token as listed: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TokenView {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// The first characters of the token, to tell tokens apart.
    pub prefix: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A token just created: `token` is shown this once and never again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewToken {
    pub token: String,
    pub info: TokenView,
}

/// A background job (build, deploy, notification, retention).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct JobView {
    pub id: i64,
    pub kind: String,
    pub service_id: Option<i64>,
    /// queued, running, succeeded, failed, cancelled, timed_out, interrupted,
    /// skipped.
    pub status: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub phase: Option<String>,
    pub progress: u8,
    pub cancel_requested: bool,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEventView {
    pub id: i64,
    pub at: String,
    pub actor: String,
    /// dashboard, api, webhook, cli, system.
    pub source: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// Audit log filters; `before` pages by id, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
pub struct AuditQuery {
    pub actor: Option<String>,
    /// An action (`login`) or a prefix of dotted actions (`build`).
    pub action: Option<String>,
    pub source: Option<String>,
    pub before: Option<i64>,
    pub limit: Option<u32>,
}

/// A service's forge webhooks: the paths to give the forge (after this
/// server's public URL) and the shared secret (deployers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WebhookInfoView {
    pub service_id: i64,
    pub github: String,
    pub gitlab: String,
    pub gitea: String,
    pub secret: String,
}

/// A project hook's paths (one per forge) and secret (deployers): a push
/// to it builds every service of the project whose repository and branch
/// match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProjectWebhookView {
    pub project_id: i64,
    pub github: String,
    pub gitlab: String,
    pub gitea: String,
    pub secret: String,
}

/// One webhook delivery as received (admins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    pub id: i64,
    pub forge: String,
    pub delivery_id: Option<String>,
    pub event: Option<String>,
    /// built, ping, ignored, duplicate, rejected, claimed.
    pub status: String,
    pub reason: String,
    pub build_id: Option<i64>,
    pub received_at: String,
}

/// A project's notification target; the URL is masked (it may hold a token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NotificationTargetView {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    /// webhook (generic JSON) or slack (`{"text"}`).
    pub kind: String,
    pub url_masked: String,
    /// build.succeeded, build.failed, deploy.succeeded, deploy.failed, deploy.rolled_back.
    pub events: Vec<String>,
    pub created_at: String,
}

/// A new notification target (admins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewNotificationTarget {
    pub name: String,
    pub kind: String,
    pub url: String,
    pub events: Vec<String>,
}

/// One delivery attempt of a notification (or a "Send test"): never the
/// URL; the error is redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationDeliveryView {
    pub id: i64,
    pub target_id: i64,
    /// build.succeeded, …, or `test`.
    pub event: String,
    pub attempt: u32,
    pub ok: bool,
    /// The target's HTTP answer, when one came.
    pub http_status: Option<u16>,
    /// Why no answer came (connection refused, timeout, …).
    pub error: Option<String>,
    pub at: String,
}

impl NotificationDeliveryView {
    /// The result as the page shows it: `ok (HTTP 200)`, `HTTP 500`, or
    /// the error.
    pub fn result(&self) -> String {
        match (self.ok, self.http_status, &self.error) {
            (true, Some(s), _) => format!("ok (HTTP {s})"),
            (true, None, _) => "ok".into(),
            (false, Some(s), _) => format!("failed: HTTP {s}"),
            (false, None, Some(e)) => format!("failed: {e}"),
            (false, None, None) => "failed".into(),
        }
    }
}

/// The notifications page in one answer: the project, its targets and each
/// target's newest deliveries (newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationsPageView {
    pub project_id: i64,
    pub project_name: String,
    pub targets: Vec<NotificationTargetView>,
    pub deliveries: Vec<NotificationDeliveryView>,
}

/// A project's image registry as shown: never the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RegistryView {
    pub project_id: i64,
    /// `host[:port]`, e.g. `ghcr.io` or `127.0.0.1:5000`.
    pub host: String,
    /// The path under the host; each service's images go to
    /// `<host>/<image>/<service>`.
    pub image: String,
    pub username: Option<String>,
    /// Whether a password (or token) is stored; it is never answered.
    pub password_set: bool,
    /// `<host>/<image>/<service>`.
    pub repository_pattern: String,
}

/// A project's registry to set (`PUT /api/v1/projects/{id}/registry`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegistryForm {
    pub host: String,
    pub image: String,
    #[serde(default)]
    pub username: Option<String>,
    /// Absent or empty: the stored password is kept (remove the registry
    /// to forget it).
    #[serde(default)]
    pub password: Option<String>,
}
