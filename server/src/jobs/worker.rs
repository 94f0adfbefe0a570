//! The worker pool: claims jobs, runs their handlers under timeout, lease
//! heartbeat and cancellation, and records the outcome.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::Utc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    recover_expired, CancelOutcome, Heartbeat, Job, JobContext, JobQueue, Outcome, RecoveryReport, Registry,
    DEFAULT_WORKERS, HEARTBEAT, POLL, RECOVERY_INTERVAL,
};

/// Pool settings. The defaults are the production ones.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Concurrent workers (`SLIPWAY_WORKERS`); at least 1.
    pub workers: usize,
    pub heartbeat: Duration,
    pub poll: Duration,
    pub recovery_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            workers: DEFAULT_WORKERS,
            heartbeat: HEARTBEAT,
            poll: POLL,
            recovery_interval: RECOVERY_INTERVAL,
        }
    }
}

impl WorkerConfig {
    pub fn with_workers(workers: usize) -> Self {
        WorkerConfig { workers, ..WorkerConfig::default() }
    }
}

struct Shared {
    queue: Arc<dyn JobQueue>,
    registry: Registry,
    config: WorkerConfig,
    /// Cancellation tokens of the jobs this process is running.
    running: Mutex<HashMap<i64, CancellationToken>>,
    shutdown: CancellationToken,
}

impl Shared {
    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<i64, CancellationToken>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The in-process worker pool. Dropping it (or [`shutdown`](Self::shutdown))
/// stops the workers; jobs they were running keep their lease until it
/// expires and are then recovered as `interrupted`.
pub struct WorkerPool {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Recovers expired leases once, then starts `config.workers` workers
    /// and the periodic recovery. Await this before serving.
    pub async fn start(
        queue: Arc<dyn JobQueue>,
        registry: Registry,
        config: WorkerConfig,
    ) -> anyhow::Result<(WorkerPool, RecoveryReport)> {
        let report = recover_expired(queue.as_ref(), &registry, Utc::now()).await?;
        if !report.interrupted.is_empty() {
            tracing::warn!(
                interrupted = report.interrupted.len(),
                requeued = report.requeued.len(),
                "recovered jobs of a previous process"
            );
        }
        let workers = config.workers.max(1);
        let shared = Arc::new(Shared {
            queue,
            registry,
            config,
            running: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
        });
        let instance = instance_id();
        let mut tasks: Vec<JoinHandle<()>> = (0..workers)
            .map(|i| tokio::spawn(worker_loop(shared.clone(), format!("{instance}-w{i}"))))
            .collect();
        tasks.push(tokio::spawn(recovery_loop(shared.clone())));
        Ok((WorkerPool { shared, tasks }, report))
    }

    pub fn queue(&self) -> &Arc<dyn JobQueue> {
        &self.shared.queue
    }

    /// Cancels a job: a queued one never runs; a running one here is stopped
    /// at once (token cancelled, handler future dropped); one running in
    /// another process is stopped at its next heartbeat.
    pub async fn cancel(&self, id: i64) -> anyhow::Result<CancelOutcome> {
        let outcome = self.shared.queue.request_cancel(id, Utc::now()).await?;
        if outcome == CancelOutcome::Requested {
            if let Some(token) = self.shared.running().get(&id) {
                token.cancel();
            }
        }
        Ok(outcome)
    }

    /// Ids of the jobs this pool is running now.
    pub fn running_jobs(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.shared.running().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Stops claiming and stops the workers (see the type's docs).
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Identifies this process in `lease_owner`.
fn instance_id() -> String {
    let started = Utc::now().timestamp_millis();
    format!("pid{}-{started}", std::process::id())
}

async fn worker_loop(shared: Arc<Shared>, owner: String) {
    loop {
        if shared.shutdown.is_cancelled() {
            return;
        }
        // Register interest before looking, so a notify between an empty
        // claim and the wait is not lost.
        let notified = shared.queue.notifier().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match shared.queue.claim(&owner, Utc::now()).await {
            Ok(Some(job)) => {
                run_job(&shared, &owner, job).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), worker = %owner, "claiming a job failed"),
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(shared.config.poll) => {}
            _ = shared.shutdown.cancelled() => return,
        }
    }
}

async fn run_job(shared: &Shared, owner: &str, job: Job) {
    let span = tracing::info_span!("job", job_id = job.id, kind = %job.kind, service_id = job.service_id);
    run_job_inner(shared, owner, job).instrument(span).await;
    // The service of this job may have more work waiting.
    shared.queue.notify();
}

async fn run_job_inner(shared: &Shared, owner: &str, job: Job) {
    let token = CancellationToken::new();
    shared.running().insert(job.id, token.clone());
    tracing::info!(attempt = job.attempts, "job started");
    let handler = shared.registry.get(&job.kind).cloned();
    let outcome = match &handler {
        None => Some(Outcome::Failed(format!("no handler for job kind {:?}", job.kind))),
        Some(handler) => {
            let ctx = JobContext::new(job.clone(), token.clone(), shared.queue.clone());
            let run = tokio::time::timeout(job.timeout, handler.run(ctx));
            let heartbeat = heartbeat_loop(shared, job.id, owner, &token);
            let cancel_requested = cancel_signal(shared.queue.cancellations(), job.id);
            // Leaving the select drops the handler future: whatever it was
            // awaiting (Docker calls, streams) is dropped with it.
            tokio::select! {
                biased;
                _ = token.cancelled() => Some(Outcome::Cancelled),
                () = cancel_requested => Some(Outcome::Cancelled),
                () = heartbeat => None,
                result = run => Some(match result {
                    Ok(Ok(())) => Outcome::Succeeded,
                    Ok(Err(_)) if token.is_cancelled() => Outcome::Cancelled,
                    Ok(Err(e)) => Outcome::Failed(format!("{e:#}")),
                    Err(_elapsed) => Outcome::TimedOut,
                }),
            }
        }
    };
    // Stop anything the handler left running that watches the token.
    token.cancel();
    shared.running().remove(&job.id);
    let Some(outcome) = outcome else {
        tracing::warn!("job lease lost: stopped; recovery takes it from here");
        return;
    };
    if let Some(handler) = &handler {
        // Cleanup may take a while (stopping containers): keep the lease.
        let keep_lease = CancellationToken::new();
        tokio::select! {
            result = handler.on_finished(&job, &outcome) => {
                if let Err(e) = result {
                    tracing::error!(error = %format!("{e:#}"), "job completion hook failed");
                }
            }
            () = heartbeat_loop(shared, job.id, owner, &keep_lease) => {
                tracing::warn!("job lease lost during the completion hook; recovery takes it from here");
                return;
            }
        }
    }
    match shared.queue.complete(job.id, owner, &outcome, Utc::now()).await {
        Ok(true) => match &outcome {
            Outcome::Failed(error) => tracing::warn!(status = %outcome.status(), %error, "job finished"),
            _ => tracing::info!(status = %outcome.status(), "job finished"),
        },
        Ok(false) => tracing::warn!(status = %outcome.status(), "job outcome not recorded: lease lost"),
        Err(e) => tracing::error!(error = %format!("{e:#}"), "recording the job outcome failed"),
    }
}

/// Resolves when a cancellation of job `id` is announced in this process.
async fn cancel_signal(mut rx: tokio::sync::broadcast::Receiver<i64>, id: i64) {
    loop {
        match rx.recv().await {
            Ok(cancelled) if cancelled == id => return,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            // The queue is gone: the heartbeat still polls the flag.
            Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// Extends the lease every `heartbeat` and cancels the token when a cancel
/// was requested. Returns only when the lease is lost.
async fn heartbeat_loop(shared: &Shared, id: i64, owner: &str, token: &CancellationToken) {
    let every = shared.config.heartbeat;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match shared.queue.heartbeat(id, owner, Utc::now()).await {
            Ok(Heartbeat::Alive { cancel_requested: true }) => token.cancel(),
            Ok(Heartbeat::Alive { cancel_requested: false }) => {}
            Ok(Heartbeat::Lost) => return,
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "job heartbeat failed"),
        }
    }
}

async fn recovery_loop(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(shared.config.recovery_interval) => {}
            _ = shared.shutdown.cancelled() => return,
        }
        if let Err(e) = recover_expired(shared.queue.as_ref(), &shared.registry, Utc::now()).await {
            tracing::warn!(error = %format!("{e:#}"), "job recovery failed");
        }
    }
}
