//! The audit log: who did what, from where (dashboard, API, webhook, CLI).
//!
//! Use-cases call [`record`] after the action took effect. Recording never
//! fails the action: a database error is logged. Details are short texts
//! chosen by the caller and never hold a secret.

use app::wire::{AuditEventView, Caller, Role, Via};
use serde::Serialize;

use crate::{access::require, access::AccessError, db::Db};

/// Where an action came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Dashboard,
    Api,
    Webhook,
    Cli,
    System,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Dashboard => "dashboard",
            Source::Api => "api",
            Source::Webhook => "webhook",
            Source::Cli => "cli",
            Source::System => "system",
        }
    }

    /// The source of a signed-in caller: a session is the dashboard, a
    /// bearer token the API.
    pub fn of(caller: &Caller) -> Source {
        match caller {
            Caller::User { via: Via::Token, .. } => Source::Api,
            _ => Source::Dashboard,
        }
    }
}

impl Source {
    /// The trigger of a build a caller starts by hand: a session click is
    /// `manual`, a bearer token (API, CLI) `api`.
    pub fn build_trigger(caller: &Caller) -> &'static str {
        match Source::of(caller) {
            Source::Api => "api",
            _ => "manual",
        }
    }

    /// The source recorded for what a build's trigger started later (the
    /// deploy queued after it succeeded).
    pub fn of_trigger(trigger: &str) -> Source {
        match trigger {
            "api" => Source::Api,
            "webhook" => Source::Webhook,
            "cli" => Source::Cli,
            _ => Source::Dashboard,
        }
    }
}

/// One audit event to write.
#[derive(Debug, Clone)]
pub struct Event {
    pub actor: String,
    pub source: Source,
    pub action: &'static str,
    pub target: Option<String>,
    pub detail: Option<String>,
}

impl Event {
    /// An event by a signed-in caller (`-` for anonymous).
    pub fn by(caller: &Caller, action: &'static str) -> Event {
        let actor = match caller {
            Caller::User { name, .. } => name.clone(),
            Caller::Anonymous => "-".into(),
        };
        Event { actor, source: Source::of(caller), action, target: None, detail: None }
    }

    /// An event by `actor` from `source` (webhooks, failed logins).
    pub fn from(actor: impl Into<String>, source: Source, action: &'static str) -> Event {
        Event { actor: actor.into(), source, action, target: None, detail: None }
    }

    pub fn target(mut self, target: impl Into<String>) -> Event {
        self.target = Some(target.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Event {
        self.detail = Some(detail.into());
        self
    }
}

/// Writes `event`; errors are logged, never returned.
pub async fn record(db: &Db, event: Event) {
    let result = sqlx::query(
        "INSERT INTO audit_events (at, actor, source, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(crate::db::now_rfc3339())
    .bind(&event.actor)
    .bind(event.source.as_str())
    .bind(event.action)
    .bind(&event.target)
    .bind(&event.detail)
    .execute(db)
    .await;
    match result {
        Ok(_) => tracing::info!(
            actor = %event.actor, source = event.source.as_str(), action = event.action,
            target = event.target.as_deref().unwrap_or(""), "audit"
        ),
        Err(e) => tracing::error!(action = event.action, error = %e, "cannot write the audit event"),
    }
}

/// Filters for [`list`]; `before` pages by id (newest first).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub source: Option<String>,
    pub before: Option<i64>,
    pub limit: Option<u32>,
}

/// Audit events, newest first (admin).
pub async fn list(db: &Db, caller: &Caller, filter: &Filter) -> Result<Vec<AuditEventView>, ListError> {
    require(caller, Role::Admin)?;
    let limit = filter.limit.unwrap_or(50).clamp(1, 200);
    type Row = (i64, String, String, String, String, Option<String>, Option<String>);
    let rows = sqlx::query_as::<_, Row>(
        "SELECT id, at, actor, source, action, \
         COALESCE(CASE \
           WHEN target LIKE 'service:%' THEN (SELECT 'service ' || s.name || ' (' || p.name || ')' \
             FROM services s JOIN projects p ON p.id = s.project_id WHERE s.id = CAST(substr(target, 9) AS INTEGER)) \
           WHEN target LIKE 'project:%' THEN (SELECT 'project ' || name FROM projects \
             WHERE id = CAST(substr(target, 9) AS INTEGER)) \
           WHEN target LIKE 'build:%' THEN (SELECT 'build #' || b.number || ' of ' || s.name || ' (' || p.name || ')' \
             FROM builds b JOIN services s ON s.id = b.service_id JOIN projects p ON p.id = s.project_id \
             WHERE b.id = CAST(substr(target, 7) AS INTEGER)) \
           WHEN target LIKE 'deployment:%' THEN (SELECT 'deployment #' || d.id || ' of ' || s.name || ' (' || p.name || ')' \
             FROM deployments d JOIN services s ON s.id = d.service_id JOIN projects p ON p.id = s.project_id \
             WHERE d.id = CAST(substr(target, 12) AS INTEGER)) \
         END, target) AS target, detail FROM audit_events \
         WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2 OR action LIKE ?2 || '.%') \
         AND (?3 IS NULL OR source = ?3) AND (?4 IS NULL OR id < ?4) ORDER BY id DESC LIMIT ?5",
    )
    .bind(&filter.actor)
    .bind(&filter.action)
    .bind(&filter.source)
    .bind(filter.before)
    .bind(i64::from(limit))
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, at, actor, source, action, target, detail)| AuditEventView {
            id,
            at,
            actor,
            source,
            action,
            target,
            detail,
        })
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}
