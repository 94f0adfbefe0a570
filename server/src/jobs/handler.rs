//! What runs a job: one [`JobHandler`] per kind.

use std::{collections::HashMap, sync::Arc};

use tokio_util::sync::CancellationToken;

use super::{Job, JobQueue, Outcome, RecoveryAction};

/// Runs the jobs of one kind.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Does the work. The future is dropped on timeout or cancellation, right
    /// after `ctx.cancel` fires: work that outlives it (a spawned task, a
    /// container) must watch the token or be cleaned up in
    /// [`on_finished`](Self::on_finished).
    async fn run(&self, ctx: JobContext) -> anyhow::Result<()>;

    /// Called after every run that this process saw end (succeeded, failed,
    /// cancelled, timed out), before the job row is marked finished: set the
    /// build or deploy row's final status here and clean up. Errors are
    /// logged.
    async fn on_finished(&self, _job: &Job, _outcome: &Outcome) -> anyhow::Result<()> {
        Ok(())
    }

    /// Called once for a job found with an expired lease (its process died),
    /// after the job was marked `interrupted`: mark the build or deploy row
    /// `interrupted`, remove its containers, and say whether to run it again.
    /// A retry only happens while `attempts < max_attempts`.
    async fn on_interrupted(&self, _job: &Job) -> anyhow::Result<RecoveryAction> {
        Ok(RecoveryAction::GiveUp)
    }
}

/// What a handler gets for one run.
pub struct JobContext {
    /// The job as claimed (status running, attempts counted).
    pub job: Job,
    /// Fires on cancellation or timeout.
    pub cancel: CancellationToken,
    queue: Arc<dyn JobQueue>,
}

impl JobContext {
    pub(crate) fn new(job: Job, cancel: CancellationToken, queue: Arc<dyn JobQueue>) -> Self {
        JobContext { job, cancel, queue }
    }

    /// Persists the job's phase and percent (0..=100).
    pub async fn set_progress(&self, phase: &str, percent: u8) -> anyhow::Result<()> {
        self.queue.set_progress(self.job.id, phase, percent).await
    }
}

/// The handlers by job kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers `handler` for `kind`, replacing any earlier one.
    pub fn register(mut self, kind: impl Into<String>, handler: Arc<dyn JobHandler>) -> Self {
        self.handlers.insert(kind.into(), handler);
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn JobHandler>> {
        self.handlers.get(kind)
    }
}
