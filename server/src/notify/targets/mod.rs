//! Notification targets: storage and the caller-facing use-cases (viewer
//! lists, admin creates and deletes), role-checked and audited.

use app::wire::{Caller, Role};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::EventKind;
use crate::{
    access::require,
    audit::{self, Event},
    db::Db,
    engine::{Engine, EngineError},
};

/// Longest accepted target URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest target name, in characters (the schema's limit).
pub const MAX_NAME_CHARS: usize = 60;

/// How a target is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// POST of the generic JSON [`super::Message`].
    Webhook,
    /// POST of `{"text": "…"}` (Slack, and chats compatible with its
    /// incoming webhooks).
    Slack,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Webhook => "webhook",
            TargetKind::Slack => "slack",
        }
    }

    pub fn parse(s: &str) -> Option<TargetKind> {
        match s {
            "webhook" => Some(TargetKind::Webhook),
            "slack" => Some(TargetKind::Slack),
            _ => None,
        }
    }
}

/// A target to create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTarget {
    pub name: String,
    /// `webhook` or `slack`.
    pub kind: String,
    /// http(s) URL; a secret (Slack URLs carry a token).
    pub url: String,
    /// Event names, from [`EventKind::ALL`].
    pub events: Vec<String>,
}

/// A target as shown: its URL masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationTarget {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub kind: TargetKind,
    /// `scheme://host[:port]/…`: the rest may be a token.
    pub url_masked: String,
    pub events: Vec<String>,
    pub created_at: String,
}

/// A target as stored, for delivery: the URL still sealed.
#[derive(Debug, Clone)]
pub(crate) struct StoredTarget {
    pub kind: TargetKind,
    pub url_sealed: String,
}

const COLUMNS: &str = "id, project_id, name, kind, url_sealed, events, created_at";

fn invalid(field: &'static str, message: impl Into<String>) -> EngineError {
    EngineError::Invalid { field, message: message.into() }
}

impl Engine {
    /// A project's notification targets, by name (viewer). URLs are masked.
    pub async fn list_notification_targets(
        &self,
        caller: &Caller,
        project_id: i64,
    ) -> Result<Vec<NotificationTarget>, EngineError> {
        require(caller, Role::Viewer)?;
        project_exists(&self.db, project_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notification_targets WHERE project_id = ? ORDER BY name, id"
        ))
        .bind(project_id)
        .fetch_all(&self.db)
        .await?;
        let mut targets = Vec::with_capacity(rows.len());
        for row in &rows {
            targets.push(self.notification_target_view(row)?);
        }
        Ok(targets)
    }

    /// Adds a notification target to a project (admin). The URL is stored
    /// sealed; the answer shows it masked.
    pub async fn create_notification_target(
        &self,
        caller: &Caller,
        project_id: i64,
        new: NewTarget,
    ) -> Result<NotificationTarget, EngineError> {
        require(caller, Role::Admin)?;
        // Every field is checked; the answer names all that were refused.
        let (name, kind, url, events) = (
            valid_name(&new.name),
            TargetKind::parse(new.kind.trim()).ok_or_else(|| invalid("kind", "must be webhook or slack")),
            valid_url(&new.url),
            valid_events(&new.events),
        );
        let (name, kind, url, events) = match (name, kind, url, events) {
            (Ok(name), Ok(kind), Ok(url), Ok(events)) => (name, kind, url, events),
            (name, kind, url, events) => {
                let refused = [name.err(), kind.err(), url.err(), events.err()];
                return Err(EngineError::of_fields(
                    refused.into_iter().flatten().filter_map(as_field).collect(),
                ));
            }
        };
        project_exists(&self.db, project_id).await?;
        let row = sqlx::query(&format!(
            "INSERT INTO notification_targets (project_id, name, kind, url_sealed, events, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}"
        ))
        .bind(project_id)
        .bind(&name)
        .bind(kind.as_str())
        .bind(self.secrets.seal(&url))
        .bind(events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(","))
        .bind(crate::db::now_rfc3339())
        .fetch_one(&self.db)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                EngineError::Project(crate::projects::ProjectError::Conflict {
                    field: "name",
                    message: "this project already has a notification target of this name".into(),
                })
            }
            _ => EngineError::from(e),
        })?;
        let target = self.notification_target_view(&row)?;
        audit::record(
            &self.db,
            Event::by(caller, "notification.create")
                .target(format!("notification_target:{}", target.id))
                .detail(format!("project:{project_id} {} ({})", target.name, kind.as_str())),
        )
        .await;
        tracing::info!(target_id = target.id, project_id, target_name = %target.name, "notification target created");
        Ok(target)
    }

    /// Removes a notification target (admin). Attempts already queued for
    /// it are dropped when they run.
    pub async fn delete_notification_target(
        &self,
        caller: &Caller,
        target_id: i64,
    ) -> Result<(), EngineError> {
        require(caller, Role::Admin)?;
        let row: Option<(i64, String)> =
            sqlx::query_as("DELETE FROM notification_targets WHERE id = ? RETURNING project_id, name")
                .bind(target_id)
                .fetch_optional(&self.db)
                .await?;
        let (project_id, name) = row.ok_or(EngineError::NotFound("notification target"))?;
        audit::record(
            &self.db,
            Event::by(caller, "notification.delete")
                .target(format!("notification_target:{target_id}"))
                .detail(format!("project:{project_id} {name}")),
        )
        .await;
        tracing::info!(target_id, project_id, target_name = %name, "notification target deleted");
        Ok(())
    }

    fn notification_target_view(
        &self,
        row: &sqlx::sqlite::SqliteRow,
    ) -> Result<NotificationTarget, EngineError> {
        let kind: String = row.try_get("kind")?;
        let sealed: String = row.try_get("url_sealed")?;
        let events: String = row.try_get("events")?;
        // An undecryptable URL (another key) still lists, masked blank.
        let url_masked = self.secrets.open(&sealed).map(|url| mask_url(&url)).unwrap_or_else(|_| "…".into());
        Ok(NotificationTarget {
            id: row.try_get("id")?,
            project_id: row.try_get("project_id")?,
            name: row.try_get("name")?,
            kind: TargetKind::parse(&kind)
                .ok_or_else(|| anyhow::anyhow!("unknown notification target kind {kind:?}"))?,
            url_masked,
            events: split_events(&events).into_iter().map(|e| e.as_str().to_string()).collect(),
            created_at: row.try_get("created_at")?,
        })
    }
}

/// The refusal of one field, from a check of this module.
fn as_field(e: EngineError) -> Option<crate::validate::ValidationError> {
    match e {
        EngineError::Invalid { field, message } => {
            Some(crate::validate::ValidationError::new(field, message))
        }
        _ => None,
    }
}

async fn project_exists(db: &Db, project_id: i64) -> Result<(), EngineError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM projects WHERE id = ?")
        .bind(project_id)
        .fetch_optional(db)
        .await?;
    found.map(|_| ()).ok_or(EngineError::NotFound("project"))
}

/// Ids and names of the project's targets subscribed to `event`.
pub(crate) async fn subscribed(
    db: &Db,
    project_id: i64,
    event: EventKind,
) -> anyhow::Result<Vec<(i64, String)>> {
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, name, events FROM notification_targets WHERE project_id = ? ORDER BY id")
            .bind(project_id)
            .fetch_all(db)
            .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, _, events)| split_events(events).contains(&event))
        .map(|(id, name, _)| (id, name))
        .collect())
}

/// A target for delivery, or `None` when it was deleted.
pub(crate) async fn stored(db: &Db, target_id: i64) -> anyhow::Result<Option<StoredTarget>> {
    let row = sqlx::query("SELECT kind, url_sealed FROM notification_targets WHERE id = ?")
        .bind(target_id)
        .fetch_optional(db)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let kind: String = row.try_get("kind")?;
    Ok(Some(StoredTarget {
        kind: TargetKind::parse(&kind)
            .ok_or_else(|| anyhow::anyhow!("unknown notification target kind {kind:?}"))?,
        url_sealed: row.try_get("url_sealed")?,
    }))
}

fn split_events(stored: &str) -> Vec<EventKind> {
    stored.split(',').filter_map(|e| EventKind::parse(e.trim())).collect()
}

fn valid_name(raw: &str) -> Result<String, EngineError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid("name", format!("must be at most {MAX_NAME_CHARS} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "must not contain control characters"));
    }
    Ok(name.to_string())
}

/// An absolute http(s) URL with a host, at most [`MAX_URL_BYTES`], without
/// whitespace or control characters. Errors never repeat the URL (it is a
/// secret).
pub fn valid_url(raw: &str) -> Result<String, EngineError> {
    let url = raw.trim();
    if url.is_empty() {
        return Err(invalid("url", "must not be empty"));
    }
    if url.len() > MAX_URL_BYTES {
        return Err(invalid("url", format!("must be at most {MAX_URL_BYTES} bytes")));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("url", "must not contain spaces or control characters"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| invalid("url", "is not a valid URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("url", "must start with https:// or http://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("url", "must name a host"));
    }
    // WHATWG URLs allow `*`, `!`, `$`… in a host name; DNS does not.
    let dns_label = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if parsed.domain().is_some_and(|d| !d.split('.').all(dns_label)) {
        return Err(invalid(
            "url",
            "the host must be a DNS name (letters, digits, '-' and dots) or an IP address",
        ));
    }
    Ok(url.to_string())
}

fn valid_events(raw: &[String]) -> Result<Vec<EventKind>, EngineError> {
    let mut events = Vec::new();
    for name in raw {
        let event = EventKind::parse(name.trim()).ok_or_else(|| {
            let known: Vec<&str> = EventKind::ALL.iter().map(|e| e.as_str()).collect();
            invalid("events", format!("unknown event; choose from {}", known.join(", ")))
        })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    if events.is_empty() {
        return Err(invalid("events", "choose at least one event"));
    }
    // Stored in the canonical order.
    Ok(EventKind::ALL.into_iter().filter(|e| events.contains(e)).collect())
}

/// `scheme://host[:port]/…`: the path and query may hold a token.
pub fn mask_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(port) => format!("{}://{host}:{port}/…", u.scheme()),
                None => format!("{}://{host}/…", u.scheme()),
            }
        }
        Err(_) => "…".into(),
    }
}

#[cfg(test)]
mod tests;
