//! The `build_steps` rows of a run: written once when the run is planned,
//! then updated as each step (and service container) changes.

use crate::db::Db;
use crate::pipeline::{
    plan::VariantPlan,
    spec::{Spec, StepKind},
};

/// How a step ended, as stored.
#[derive(Debug, Clone, Default)]
pub struct Ended {
    /// success, failure, skipped, cancelled or killed.
    pub status: &'static str,
    pub exit_code: Option<i64>,
    pub oom: bool,
    /// A failure that `failure: ignore` kept from failing the run.
    pub ignored: bool,
    pub error: Option<String>,
    /// When its container really ran (the engine's times), if it had one:
    /// the row's times then say how long the step's process ran, not how
    /// long the engine took to create and remove its container.
    pub ran: Option<(String, String)>,
}

/// Rows for every step and service of every variant, `pending`; rows of an
/// earlier attempt of the same run go first.
pub async fn plan(db: &Db, build_id: i64, spec: &Spec, variants: &[VariantPlan]) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM build_steps WHERE build_id = ?").bind(build_id).execute(&mut *tx).await?;
    for variant in variants {
        let index = i64::try_from(variant.index)?;
        for service in &spec.services {
            sqlx::query(
                "INSERT INTO build_steps (build_id, variant, variant_name, name, kind, line) \
                 VALUES (?, ?, ?, ?, 'service', ?)",
            )
            .bind(build_id)
            .bind(index)
            .bind(&variant.name)
            .bind(&service.name)
            .bind(i64::from(service.position.line))
            .execute(&mut *tx)
            .await?;
        }
        for (step, planned) in spec.steps.iter().zip(&variant.steps) {
            let depends: Vec<&str> =
                planned.depends_on.iter().map(|i| spec.steps[*i].name.as_str()).collect();
            sqlx::query(
                "INSERT INTO build_steps (build_id, variant, variant_name, name, kind, depends_on, line) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(build_id)
            .bind(index)
            .bind(&variant.name)
            .bind(&step.name)
            .bind(step.kind.as_str())
            .bind(serde_json::to_string(&depends)?)
            .bind(i64::from(step.position.line))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The kind a row of `kind` is stored under.
pub fn kind(kind: &StepKind) -> &'static str {
    kind.as_str()
}

pub async fn started(db: &Db, build_id: i64, variant: usize, kind: &str, name: &str) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE build_steps SET status = 'running', started_at = ? \
         WHERE build_id = ? AND variant = ? AND kind = ? AND name = ?",
    )
    .bind(crate::db::now_rfc3339())
    .bind(build_id)
    .bind(i64::try_from(variant)?)
    .bind(kind)
    .bind(name)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn ended(
    db: &Db,
    build_id: i64,
    variant: usize,
    kind: &str,
    name: &str,
    end: &Ended,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE build_steps SET status = ?1, exit_code = ?2, oom = ?3, ignored = ?4, error = ?5, \
             started_at = COALESCE(?6, started_at), \
             finished_at = CASE WHEN started_at IS NULL THEN NULL ELSE COALESCE(?7, ?8) END \
         WHERE build_id = ?9 AND variant = ?10 AND kind = ?11 AND name = ?12",
    )
    .bind(end.status)
    .bind(end.exit_code)
    .bind(end.oom)
    .bind(end.ignored)
    .bind(&end.error)
    .bind(end.ran.as_ref().map(|(started, _)| started))
    .bind(end.ran.as_ref().map(|(_, finished)| finished))
    .bind(crate::db::now_rfc3339())
    .bind(build_id)
    .bind(i64::try_from(variant)?)
    .bind(kind)
    .bind(name)
    .execute(db)
    .await?;
    Ok(())
}

/// A service container became healthy after `healthy_ms`.
pub async fn healthy(
    db: &Db,
    build_id: i64,
    variant: usize,
    name: &str,
    healthy_ms: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE build_steps SET status = 'success', healthy_ms = ? \
         WHERE build_id = ? AND variant = ? AND kind = 'service' AND name = ?",
    )
    .bind(healthy_ms)
    .bind(build_id)
    .bind(i64::try_from(variant)?)
    .bind(name)
    .execute(db)
    .await?;
    Ok(())
}

/// Every step still pending or running becomes `status` (a cancelled,
/// timed-out or interrupted run); services still running end too.
pub async fn close_open(db: &Db, build_id: i64, status: &str) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE build_steps SET status = ?, \
             finished_at = CASE WHEN started_at IS NULL THEN NULL ELSE ? END \
         WHERE build_id = ? AND status IN ('pending', 'running')",
    )
    .bind(status)
    .bind(crate::db::now_rfc3339())
    .bind(build_id)
    .execute(db)
    .await?;
    Ok(())
}
