//! The SQLite implementation of [`JobQueue`].
//!
//! Every state change is a single statement. SQLite takes the write lock at
//! the start of a writing statement, before it reads, so the sub-select and
//! the update of the claim happen under one lock: two claimers can never
//! take the same row (busy waiters are handled by the pool's busy timeout).

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{sqlite::SqliteRow, Row, SqliteConnection};
use tokio::sync::Notify;

use super::{format_time, CancelOutcome, Heartbeat, Job, JobQueue, JobStatus, NewJob, Outcome, LEASE};
use crate::db::Db;

const COLUMNS: &str = "id, kind, service_id, payload, status, attempts, max_attempts, timeout_ms, \
     run_after, lease_owner, lease_until, cancel_requested, phase, progress, last_error, created_at, \
     started_at, finished_at";

/// The queue on the server's SQLite database.
pub struct SqliteJobQueue {
    db: Db,
    lease: Duration,
    notify: Notify,
    cancels: tokio::sync::broadcast::Sender<i64>,
}

impl SqliteJobQueue {
    pub fn new(db: Db) -> Self {
        SqliteJobQueue {
            db,
            lease: LEASE,
            notify: Notify::new(),
            cancels: tokio::sync::broadcast::channel(64).0,
        }
    }

    /// Overrides the lease length (tests).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Inserts a queued job on `conn`, which is normally the caller's open
    /// transaction (`&mut *tx`), so the job commits or rolls back together
    /// with the build or deploy row. Call [`JobQueue::notify`] after the
    /// commit.
    pub async fn enqueue(&self, conn: &mut SqliteConnection, job: &NewJob) -> anyhow::Result<i64> {
        anyhow::ensure!(!job.kind.is_empty(), "job kind must not be empty");
        anyhow::ensure!(job.max_attempts >= 1, "max_attempts must be at least 1");
        let timeout_ms = i64::try_from(job.timeout.as_millis()).context("job timeout too long")?;
        anyhow::ensure!(timeout_ms > 0, "job timeout must be positive");
        let now = Utc::now();
        // A past `run_after` is due at once, like `None`.
        let run_after = format_time(job.run_after.map_or(now, |at| at.max(now)));
        let now = format_time(now);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO jobs (kind, service_id, payload, status, max_attempts, timeout_ms, run_after, \
             created_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?) RETURNING id",
        )
        .bind(&job.kind)
        .bind(job.service_id)
        .bind(job.payload.to_string())
        .bind(i64::from(job.max_attempts))
        .bind(timeout_ms)
        .bind(&run_after)
        .bind(&now)
        .fetch_one(&mut *conn)
        .await
        .context("cannot enqueue job")?;
        Ok(id)
    }

    /// Enqueues in a transaction of its own, commits, and notifies.
    pub async fn enqueue_now(&self, job: &NewJob) -> anyhow::Result<i64> {
        let mut tx = self.db.begin().await?;
        let id = self.enqueue(&mut tx, job).await?;
        tx.commit().await?;
        self.notify();
        Ok(id)
    }
}

fn row_to_job(row: &SqliteRow) -> anyhow::Result<Job> {
    let status: String = row.try_get("status")?;
    let payload: String = row.try_get("payload")?;
    let timeout_ms: i64 = row.try_get("timeout_ms")?;
    let progress: i64 = row.try_get("progress")?;
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        service_id: row.try_get("service_id")?,
        payload: serde_json::from_str(&payload).context("job payload is not JSON")?,
        status: JobStatus::parse(&status).with_context(|| format!("unknown job status {status:?}"))?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).context("attempts out of range")?,
        max_attempts: u32::try_from(row.try_get::<i64, _>("max_attempts")?)
            .context("max_attempts out of range")?,
        timeout: Duration::from_millis(u64::try_from(timeout_ms).context("timeout out of range")?),
        run_after: row.try_get("run_after")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_until: row.try_get("lease_until")?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        phase: row.try_get("phase")?,
        progress: u8::try_from(progress.clamp(0, 100)).unwrap_or(100),
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn lease_until(now: DateTime<Utc>, lease: Duration) -> anyhow::Result<String> {
    let lease = chrono::Duration::from_std(lease).context("lease too long")?;
    Ok(format_time(now + lease))
}

#[async_trait::async_trait]
impl JobQueue for SqliteJobQueue {
    async fn claim(&self, owner: &str, now: DateTime<Utc>) -> anyhow::Result<Option<Job>> {
        let now_s = format_time(now);
        // The status literals stay inline so the partial indexes apply.
        // Two lanes per service: builds (pipeline runs) one at a time, and
        // everything else (deploys, rollbacks, lifecycle actions) one at a
        // time, so a long run never makes a rollback wait; a service delete
        // waits for, and holds, both.
        let sql = format!(
            "UPDATE jobs SET status = 'running', lease_owner = ?1, lease_until = ?2, \
                 attempts = attempts + 1, started_at = ?3, finished_at = NULL, cancel_requested = 0 \
             WHERE id = ( \
                 SELECT q.id FROM jobs q \
                 WHERE q.status = 'queued' AND q.run_after <= ?3 \
                   AND (q.service_id IS NULL OR NOT EXISTS ( \
                       SELECT 1 FROM jobs r WHERE r.status = 'running' AND r.service_id = q.service_id \
                         AND ((r.kind = '{BUILD}') = (q.kind = '{BUILD}') \
                              OR r.kind = '{DELETE}' OR q.kind = '{DELETE}'))) \
                 ORDER BY q.id LIMIT 1) \
             AND status = 'queued' \
             RETURNING {COLUMNS}",
            BUILD = crate::engine::BUILD_JOB,
            DELETE = crate::lifecycle::delete::DELETE_JOB,
        );
        let row = sqlx::query(&sql)
            .bind(owner)
            .bind(lease_until(now, self.lease)?)
            .bind(&now_s)
            .fetch_optional(&self.db)
            .await
            .context("cannot claim a job")?;
        row.as_ref().map(row_to_job).transpose()
    }

    async fn heartbeat(&self, id: i64, owner: &str, now: DateTime<Utc>) -> anyhow::Result<Heartbeat> {
        let flag: Option<i64> = sqlx::query_scalar(
            "UPDATE jobs SET lease_until = ? WHERE id = ? AND status = 'running' AND lease_owner = ? \
             RETURNING cancel_requested",
        )
        .bind(lease_until(now, self.lease)?)
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.db)
        .await
        .context("cannot extend a job lease")?;
        Ok(match flag {
            Some(flag) => Heartbeat::Alive { cancel_requested: flag != 0 },
            None => Heartbeat::Lost,
        })
    }

    async fn set_progress(&self, id: i64, phase: &str, percent: u8) -> anyhow::Result<()> {
        sqlx::query("UPDATE jobs SET phase = ?, progress = ? WHERE id = ? AND status = 'running'")
            .bind(phase)
            .bind(i64::from(percent.min(100)))
            .bind(id)
            .execute(&self.db)
            .await
            .context("cannot record job progress")?;
        Ok(())
    }

    async fn complete(
        &self,
        id: i64,
        owner: &str,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET status = ?, last_error = ?, finished_at = ?, lease_owner = NULL, \
                 lease_until = NULL, progress = CASE WHEN ? = 'succeeded' THEN 100 ELSE progress END \
             WHERE id = ? AND status = 'running' AND lease_owner = ?",
        )
        .bind(outcome.status().as_str())
        .bind(outcome.error())
        .bind(format_time(now))
        .bind(outcome.status().as_str())
        .bind(id)
        .bind(owner)
        .execute(&self.db)
        .await
        .context("cannot record a job outcome")?;
        Ok(done.rows_affected() == 1)
    }

    async fn request_cancel(&self, id: i64, now: DateTime<Utc>) -> anyhow::Result<CancelOutcome> {
        // Queued → cancelled at once. If a claim wins the race, the job is
        // running by the second statement, which flags it instead.
        let cancelled = sqlx::query(
            "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished_at = ?, \
                 last_error = 'cancelled' \
             WHERE id = ? AND status = 'queued'",
        )
        .bind(format_time(now))
        .bind(id)
        .execute(&self.db)
        .await
        .context("cannot cancel a job")?;
        if cancelled.rows_affected() == 1 {
            return Ok(CancelOutcome::CancelledQueued);
        }
        let flagged = sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = 'running'")
            .bind(id)
            .execute(&self.db)
            .await
            .context("cannot cancel a job")?;
        if flagged.rows_affected() == 1 {
            // Workers of this process stop it at once; others at their next
            // heartbeat. No receiver is fine.
            let _ = self.cancels.send(id);
            return Ok(CancelOutcome::Requested);
        }
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.db)
            .await
            .context("cannot read a job")?;
        Ok(if exists.is_some() { CancelOutcome::AlreadyFinished } else { CancelOutcome::NotFound })
    }

    async fn expire_leases(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<Job>> {
        let sql = format!(
            "UPDATE jobs SET status = 'interrupted', finished_at = ?1, lease_owner = NULL, \
                 lease_until = NULL, last_error = 'interrupted: lease expired (worker gone)' \
             WHERE status = 'running' AND lease_until < ?1 \
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(format_time(now))
            .fetch_all(&self.db)
            .await
            .context("cannot expire job leases")?;
        let mut jobs = rows.iter().map(row_to_job).collect::<anyhow::Result<Vec<_>>>()?;
        jobs.sort_by_key(|j| j.id);
        Ok(jobs)
    }

    async fn requeue(&self, id: i64, run_after: DateTime<Utc>) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', run_after = ?, finished_at = NULL, started_at = NULL, \
                 phase = NULL, progress = 0 \
             WHERE id = ? AND status = 'interrupted' AND attempts < max_attempts \
               AND cancel_requested = 0",
        )
        .bind(format_time(run_after))
        .bind(id)
        .execute(&self.db)
        .await
        .context("cannot requeue a job")?;
        Ok(done.rows_affected() == 1)
    }

    async fn get(&self, id: i64) -> anyhow::Result<Option<Job>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.db)
            .await
            .context("cannot read a job")?;
        row.as_ref().map(row_to_job).transpose()
    }

    fn notify(&self) {
        self.notify.notify_waiters();
    }

    fn notifier(&self) -> &Notify {
        &self.notify
    }

    fn cancellations(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.cancels.subscribe()
    }
}
