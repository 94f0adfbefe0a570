//! A deployment's timeline (`deployment_events`): the deploy's steps and
//! the operator's actions on it, each with its time. Recording never fails
//! the work it describes: an error is logged.

use serde::Serialize;

use crate::db::Db;

/// Event kinds, in the order a deploy writes them.
/// A deployment with volumes stops the previous container before it starts
/// (two processes never write one volume at once).
pub const OLD_STOPPED: &str = "old_stopped";
pub const CONTAINER_STARTED: &str = "container_started";
pub const HEALTHY: &str = "healthy";
pub const SWITCHED: &str = "switched";
pub const DRAINED: &str = "drained";
pub const OLD_REMOVED: &str = "old_removed";
pub const STOPPED: &str = "stopped";
pub const STARTED: &str = "started";
pub const RESTARTED: &str = "restarted";

/// One event of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DeploymentEvent {
    pub deployment_id: i64,
    pub kind: String,
    pub actor: Option<String>,
    pub detail: Option<String>,
    pub at: String,
}

/// Appends an event now.
pub async fn record(db: &Db, deployment_id: i64, kind: &str, actor: Option<&str>, detail: Option<String>) {
    let result = sqlx::query(
        "INSERT INTO deployment_events (deployment_id, kind, actor, detail, at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(deployment_id)
    .bind(kind)
    .bind(actor)
    .bind(detail)
    .bind(crate::db::now_rfc3339())
    .execute(db)
    .await;
    if let Err(e) = result {
        tracing::warn!(deployment_id, kind, error = %e, "cannot record a deployment event");
    }
}

/// A deployment's events, oldest first.
pub async fn of_deployment(db: &Db, deployment_id: i64) -> sqlx::Result<Vec<DeploymentEvent>> {
    sqlx::query_as(
        "SELECT deployment_id, kind, actor, detail, at FROM deployment_events \
         WHERE deployment_id = ? ORDER BY id",
    )
    .bind(deployment_id)
    .fetch_all(db)
    .await
}

/// The newest operator actions (stop, start, restart) on a service's
/// deployments, newest first.
pub async fn actions_of_service(db: &Db, service_id: i64, limit: u32) -> sqlx::Result<Vec<DeploymentEvent>> {
    sqlx::query_as(
        "SELECT e.deployment_id, e.kind, e.actor, e.detail, e.at FROM deployment_events e \
         JOIN deployments d ON d.id = e.deployment_id \
         WHERE d.service_id = ? AND e.kind IN ('stopped', 'started', 'restarted') \
         ORDER BY e.id DESC LIMIT ?",
    )
    .bind(service_id)
    .bind(limit)
    .fetch_all(db)
    .await
}
