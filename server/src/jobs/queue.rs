//! The dialect-neutral queue interface.

use chrono::{DateTime, Utc};

use super::{Job, Outcome};

/// Result of a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The lease was extended; `cancel_requested` is the job's current flag.
    Alive { cancel_requested: bool },
    /// The job is no longer running under this owner (recovered elsewhere):
    /// stop working on it and write nothing.
    Lost,
}

/// Result of [`JobQueue::request_cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was still queued and is now `cancelled`; it will never run.
    CancelledQueued,
    /// The job is running; its worker will stop it.
    Requested,
    /// The job had already finished.
    AlreadyFinished,
    NotFound,
}

/// A durable job queue. Enqueueing is dialect-specific (it runs on the
/// caller's transaction), see [`super::SqliteJobQueue::enqueue`]; everything a
/// worker needs is here.
#[async_trait::async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Atomically takes the oldest due `queued` job whose service has no
    /// running job: sets it `running`, leased to `owner` until `now + LEASE`,
    /// and counts the attempt. Never hands one job to two claimers.
    async fn claim(&self, owner: &str, now: DateTime<Utc>) -> anyhow::Result<Option<Job>>;

    /// Extends the lease of a job `owner` is running.
    async fn heartbeat(&self, id: i64, owner: &str, now: DateTime<Utc>) -> anyhow::Result<Heartbeat>;

    /// Persists the job's phase and percent (clamped to 100).
    async fn set_progress(&self, id: i64, phase: &str, percent: u8) -> anyhow::Result<()>;

    /// Ends a run `owner` holds. Returns false (and writes nothing) if the
    /// job is no longer running under `owner`.
    async fn complete(
        &self,
        id: i64,
        owner: &str,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;

    /// Cancels a queued job at once, or flags a running one for its worker.
    async fn request_cancel(&self, id: i64, now: DateTime<Utc>) -> anyhow::Result<CancelOutcome>;

    /// Atomically marks every running job whose lease ended before `now`
    /// `interrupted` and returns them (each exactly once, even with
    /// concurrent callers).
    async fn expire_leases(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<Job>>;

    /// Puts an `interrupted` job back in the queue, due at `run_after`.
    /// Returns false if it was not interrupted or has no attempts left.
    async fn requeue(&self, id: i64, run_after: DateTime<Utc>) -> anyhow::Result<bool>;

    async fn get(&self, id: i64) -> anyhow::Result<Option<Job>>;

    /// Wakes idle workers (call after committing an enqueue).
    fn notify(&self);

    /// The [`tokio::sync::Notify`] that [`notify`](Self::notify) signals
    /// (with `notify_waiters`).
    fn notifier(&self) -> &tokio::sync::Notify;

    /// Ids of running jobs whose cancellation was just requested through
    /// this queue, so workers in this process stop them without waiting for
    /// the next heartbeat.
    fn cancellations(&self) -> tokio::sync::broadcast::Receiver<i64>;
}
