//! Jobs whose worker died: expired leases become `interrupted`, and their
//! handler decides whether they run again.

use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::{JobQueue, RecoveryAction, Registry};

/// What one recovery pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Jobs marked `interrupted` (ids, ascending).
    pub interrupted: Vec<i64>,
    /// Of those, the ones queued again.
    pub requeued: Vec<i64>,
}

/// Marks every running job whose lease ended before `now` `interrupted`,
/// calls its handler's [`on_interrupted`](super::JobHandler::on_interrupted),
/// and requeues it (due at once) if the handler says
/// [`RecoveryAction::Retry`] and attempts are left. Run at startup before
/// serving, then periodically ([`super::WorkerPool`] does).
///
/// A job without a handler, or whose hook fails, stays `interrupted`.
pub async fn recover_expired(
    queue: &dyn JobQueue,
    registry: &Registry,
    now: DateTime<Utc>,
) -> anyhow::Result<RecoveryReport> {
    recover_leased_before(queue, registry, now, now).await
}

/// Like [`recover_expired`] for every job whose lease ends before
/// `lease_cutoff`, requeueing due at `now`. At startup of the only process
/// using the database (the data dir lock guarantees it), every running job
/// is orphaned: pass a cutoff past any lease to recover them all at once.
pub async fn recover_leased_before(
    queue: &dyn JobQueue,
    registry: &Registry,
    lease_cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<RecoveryReport> {
    let mut report = RecoveryReport::default();
    for job in queue.expire_leases(lease_cutoff).await? {
        let span = tracing::info_span!("job", job_id = job.id, kind = %job.kind, service_id = job.service_id);
        let requeued = async {
            tracing::warn!(attempts = job.attempts, "job lease expired: interrupted");
            let action = match registry.get(&job.kind) {
                Some(handler) => match handler.on_interrupted(&job).await {
                    Ok(action) => action,
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "interrupted-job hook failed");
                        RecoveryAction::GiveUp
                    }
                },
                None => {
                    tracing::error!("no handler for this job kind");
                    RecoveryAction::GiveUp
                }
            };
            if action != RecoveryAction::Retry {
                return Ok::<_, anyhow::Error>(false);
            }
            let requeued = queue.requeue(job.id, now).await?;
            if requeued {
                tracing::info!("interrupted job queued again");
            } else {
                tracing::info!(
                    max_attempts = job.max_attempts,
                    "interrupted job not retried: no attempts left"
                );
            }
            Ok(requeued)
        }
        .instrument(span)
        .await?;
        report.interrupted.push(job.id);
        if requeued {
            report.requeued.push(job.id);
        }
    }
    if !report.requeued.is_empty() {
        queue.notify();
    }
    Ok(report)
}
