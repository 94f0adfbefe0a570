//! The delivery record: one row per delivery to a known service or project
//! hook, accepted or not, and the claim that deduplicates delivery ids and GitLab idempotency
//! keys (see the module docs of [`super`] for how it makes a build happen at
//! most once).

use serde::{Deserialize, Serialize};

use super::Forge;
use crate::db::{now_rfc3339, Db};

/// Delivery statuses.
pub const BUILT: &str = "built";
pub const PING: &str = "ping";
pub const IGNORED: &str = "ignored";
pub const DUPLICATE: &str = "duplicate";
pub const REJECTED: &str = "rejected";
/// Claimed, build being queued (final only after a crash at that moment).
pub const CLAIMED: &str = "claimed";

/// A recorded delivery, as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    /// `None` for a delivery to a project hook.
    pub service_id: Option<i64>,
    /// `github`, `gitlab` or `gitea`.
    pub forge: String,
    pub delivery_id: Option<String>,
    pub event: Option<String>,
    /// built, ping, ignored, duplicate, rejected (or claimed, see above).
    pub status: String,
    pub reason: String,
    pub build_id: Option<i64>,
    pub received_at: String,
}

/// Whose hook a delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Service(i64),
    /// A project hook: the push is fanned out to the project's services.
    Project(i64),
}

impl Owner {
    fn columns(self) -> (Option<i64>, Option<i64>) {
        match self {
            Owner::Service(id) => (Some(id), None),
            Owner::Project(id) => (None, Some(id)),
        }
    }
}

/// What is known of a delivery when it is recorded.
#[derive(Debug, Clone)]
pub struct Received {
    pub owner: Owner,
    pub forge: Forge,
    pub delivery_id: Option<String>,
    /// GitLab's `Idempotency-Key` (the same across retries of one event).
    pub idempotency_key: Option<String>,
    pub event: Option<String>,
}

/// The outcome of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This delivery is the first with its id and key (or has neither): its row.
    Won(i64),
    /// Another verified delivery holds the id or the key; recorded as a
    /// duplicate with this reason.
    Duplicate(String),
}

async fn insert(
    db: &Db,
    d: &Received,
    status: &str,
    reason: &str,
    dedupe: bool,
) -> sqlx::Result<Option<i64>> {
    let (service_id, project_id) = d.owner.columns();
    sqlx::query_scalar(
        "INSERT INTO webhook_deliveries (service_id, project_id, forge, delivery_id, idempotency_key, \
             event, status, reason, dedupe, received_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(service_id)
    .bind(project_id)
    .bind(d.forge.as_str())
    .bind(&d.delivery_id)
    .bind(&d.idempotency_key)
    .bind(&d.event)
    .bind(status)
    .bind(reason)
    .bind(dedupe)
    .bind(now_rfc3339())
    .fetch_optional(db)
    .await
}

/// Records a refused delivery. It claims nothing (`dedupe = 0`). A database
/// error is logged: the refusal stands either way.
pub async fn reject(db: &Db, d: &Received, reason: &str) {
    if let Err(e) = insert(db, d, REJECTED, reason, false).await {
        tracing::error!(error = %e, "cannot record a rejected webhook delivery");
    }
}

/// Records a verified delivery with `status`, claiming its delivery id and
/// idempotency key. When another delivery claimed either first, this one is
/// recorded as a duplicate. (`ON CONFLICT DO NOTHING` names no target, so it
/// covers both partial unique indexes.)
pub async fn claim(db: &Db, d: &Received, status: &str, reason: &str) -> sqlx::Result<Claim> {
    if d.delivery_id.is_none() && d.idempotency_key.is_none() {
        let id = insert(db, d, status, reason, false).await?;
        return id.map(Claim::Won).ok_or(sqlx::Error::RowNotFound);
    }
    if let Some(id) = insert(db, d, status, reason, true).await? {
        return Ok(Claim::Won(id));
    }
    let (service_id, project_id) = d.owner.columns();
    let first: Option<(i64, Option<String>)> = sqlx::query_as(
        "SELECT id, delivery_id FROM webhook_deliveries \
         WHERE service_id IS ?1 AND (?2 IS NULL OR project_id = ?2) AND forge = ?3 \
         AND dedupe = 1 AND (delivery_id = ?4 OR idempotency_key = ?5) ORDER BY id LIMIT 1",
    )
    .bind(service_id)
    .bind(project_id)
    .bind(d.forge.as_str())
    .bind(&d.delivery_id)
    .bind(&d.idempotency_key)
    .fetch_optional(db)
    .await?;
    let what = match &first {
        Some((_, id)) if id.is_some() && *id == d.delivery_id => "delivery id",
        Some(_) => "idempotency key",
        None if d.delivery_id.is_some() => "delivery id",
        None => "idempotency key",
    };
    let reason = match first {
        Some((first, _)) => format!("{what} already received (delivery record #{first})"),
        None => format!("{what} already received"),
    };
    insert(db, d, DUPLICATE, &reason, false).await?;
    Ok(Claim::Duplicate(reason))
}

/// Sets a claimed delivery's final status, reason and build.
pub async fn finish(
    db: &Db,
    row: i64,
    status: &str,
    reason: &str,
    build_id: Option<i64>,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE webhook_deliveries SET status = ?, reason = ?, build_id = ? WHERE id = ?")
        .bind(status)
        .bind(reason)
        .bind(build_id)
        .bind(row)
        .execute(db)
        .await?;
    Ok(())
}

/// Gives a claimed id back (queueing failed), so a retry can build.
pub async fn release(db: &Db, row: i64, reason: &str) {
    let done = sqlx::query("UPDATE webhook_deliveries SET status = ?, reason = ?, dedupe = 0 WHERE id = ?")
        .bind(REJECTED)
        .bind(reason)
        .bind(row)
        .execute(db)
        .await;
    if let Err(e) = done {
        tracing::error!(error = %e, row, "cannot release a webhook delivery claim");
    }
}

/// Service `?1`'s deliveries with `id < ?2`, newest first, at most as many
/// as the parameter `limit` names, as a JSON array of [`Delivery`]s.
pub fn list_json_sql(limit: &str) -> String {
    owner_list_json_sql("service_id", limit)
}

/// [`list_json_sql`] of the deliveries whose `column` is `?1`.
fn owner_list_json_sql(column: &str, limit: &str) -> String {
    format!(
        "SELECT json_group_array(json_object('id', id, 'service_id', service_id, 'forge', forge, \
         'delivery_id', delivery_id, 'event', event, 'status', status, 'reason', reason, \
         'build_id', build_id, 'received_at', received_at) ORDER BY id DESC) \
         FROM (SELECT id, service_id, forge, delivery_id, event, status, reason, build_id, received_at \
         FROM webhook_deliveries WHERE {column} = ?1 AND id < ?2 ORDER BY id DESC LIMIT {limit})"
    )
}

/// Reads [`list_json_sql`]'s answer.
pub fn parse_list(json: &str) -> sqlx::Result<Vec<Delivery>> {
    serde_json::from_str(json).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A service's (or a project hook's) deliveries with `id < before`, newest
/// first, at most `limit`.
pub async fn list(db: &Db, owner: Owner, before: i64, limit: i64) -> sqlx::Result<Vec<Delivery>> {
    let (column, id) = match owner {
        Owner::Service(id) => ("service_id", id),
        Owner::Project(id) => ("project_id", id),
    };
    let json: String = sqlx::query_scalar(&owner_list_json_sql(column, "?3"))
        .bind(id)
        .bind(before)
        .bind(limit)
        .fetch_one(db)
        .await?;
    parse_list(&json)
}
