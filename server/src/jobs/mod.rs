//! The durable job queue and the worker pool that runs builds and deploys.
//!
//! * **Enqueue** ([`SqliteJobQueue::enqueue`]) writes the job row on the
//!   caller's connection, so a build or deploy row and its job are committed
//!   in one transaction. After the commit the caller calls
//!   [`JobQueue::notify`] to wake an idle worker at once; workers also poll
//!   every second.
//! * **Claim** ([`JobQueue::claim`]) is one atomic `UPDATE … RETURNING` that
//!   takes the oldest due job whose service has no running job, sets it
//!   running and gives it a lease ([`LEASE`]). One job at a time per service,
//!   different services in parallel.
//! * **Run** ([`WorkerPool`]): the job's [`JobHandler`] runs under the job's
//!   timeout while a heartbeat extends the lease every [`HEARTBEAT`] and polls
//!   `cancel_requested`. Timeout and cancellation cancel the job's
//!   [`CancellationToken`](tokio_util::sync::CancellationToken) *and* drop the
//!   handler future.
//! * **Recovery** ([`recover_expired`]): a running job whose lease expired
//!   (its process died) becomes `interrupted`; its handler's
//!   [`JobHandler::on_interrupted`] cleans up and says whether to retry
//!   (within `max_attempts`).
//!
//! [`JobQueue`] is the dialect-neutral interface: a Postgres implementation
//! would claim with `FOR UPDATE SKIP LOCKED` and keep the same semantics.

mod handler;
mod queue;
mod recovery;
mod sqlite;
mod worker;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use handler::{JobContext, JobHandler, Registry};
pub use queue::{CancelOutcome, Heartbeat, JobQueue};
pub use recovery::{recover_expired, recover_leased_before, RecoveryReport};
pub use sqlite::SqliteJobQueue;
pub use worker::{WorkerConfig, WorkerPool};

/// How long a claim or heartbeat holds a job.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often a running job's lease is extended (and cancellation polled).
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// Idle workers look for due jobs at least this often, even without a notify.
pub const POLL: Duration = Duration::from_secs(1);
/// How often the pool looks for expired leases.
pub const RECOVERY_INTERVAL: Duration = Duration::from_secs(15);
/// Default number of workers (`SLIPWAY_WORKERS`).
pub const DEFAULT_WORKERS: usize = 2;

/// A job's status. Terminal: everything but `Queued` and `Running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
    Interrupted,
    /// Builds only: a run its commit (`[skip ci]`) or its pipeline's `when`
    /// skipped. A job never has it (the jobs table refuses it).
    Skipped,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::TimedOut => "timed_out",
            JobStatus::Interrupted => "interrupted",
            JobStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            "timed_out" => JobStatus::TimedOut,
            "interrupted" => JobStatus::Interrupted,
            "skipped" => JobStatus::Skipped,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Selects the [`JobHandler`] (`"build"`, `"deploy"`, …).
    pub kind: String,
    /// Jobs of one service run one at a time; `None` is not serialized.
    pub service_id: Option<i64>,
    pub payload: serde_json::Value,
    /// Runs allowed in total, counting retries after an interruption (≥ 1).
    pub max_attempts: u32,
    /// Each run is stopped after this long.
    pub timeout: Duration,
    /// Not claimed before this time; `None` is due at once.
    pub run_after: Option<chrono::DateTime<chrono::Utc>>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, service_id: Option<i64>, timeout: Duration) -> Self {
        NewJob {
            kind: kind.into(),
            service_id,
            payload: serde_json::Value::Object(Default::default()),
            max_attempts: 1,
            timeout,
            run_after: None,
        }
    }

    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }

    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Delays the first run until `at` (a retry with backoff).
    pub fn run_after(mut self, at: chrono::DateTime<chrono::Utc>) -> Self {
        self.run_after = Some(at);
        self
    }
}

/// A job row. Times are RFC 3339 UTC text, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub service_id: Option<i64>,
    pub payload: serde_json::Value,
    pub status: JobStatus,
    /// Runs started so far, including the current one.
    pub attempts: u32,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub run_after: String,
    pub lease_owner: Option<String>,
    pub lease_until: Option<String>,
    pub cancel_requested: bool,
    pub phase: Option<String>,
    pub progress: u8,
    pub last_error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// How a run ended, as written by [`JobQueue::complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed(String),
    Cancelled,
    TimedOut,
}

impl Outcome {
    pub fn status(&self) -> JobStatus {
        match self {
            Outcome::Succeeded => JobStatus::Succeeded,
            Outcome::Failed(_) => JobStatus::Failed,
            Outcome::Cancelled => JobStatus::Cancelled,
            Outcome::TimedOut => JobStatus::TimedOut,
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Succeeded => None,
            Outcome::Failed(e) => Some(e),
            Outcome::Cancelled => Some("cancelled"),
            Outcome::TimedOut => Some("timed out"),
        }
    }
}

/// What to do with a job whose lease expired, decided by its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryAction {
    /// Queue it again (only if it has attempts left).
    Retry,
    /// Leave it `interrupted`.
    GiveUp,
}

/// Formats a time the way every table stores it.
pub use crate::db::format_time;
