//! Notifications to chat and webhooks on build and deploy events.
//!
//! * **Targets** ([`targets`]): per project, a generic JSON webhook or a
//!   Slack-compatible incoming webhook, each subscribed to some of
//!   [`EventKind::ALL`]. The URL is stored sealed ([`crate::secrets`]):
//!   Slack URLs carry their token in the path. Views show it masked
//!   (`https://hooks.slack.com/…`). Managing targets needs the admin role;
//!   listing them the viewer role.
//! * **Emission** ([`emit`]): the build and deploy jobs call it from their
//!   `on_finished`, after the final status is written. It reads that status,
//!   snapshots the [`Message`], and queues one [`NOTIFY_JOB`] per subscribed
//!   target. Those jobs have no service, so they never wait behind (or hold
//!   up) the service's builds and deploys; `emit` itself never fails the
//!   build or deploy, it only logs.
//! * **Delivery** ([`delivery::NotifyHandler`]): one POST per job attempt
//!   (10 s timeout, redirects not followed). A non-2xx answer or a
//!   transport error fails the job and queues the next attempt as a new job
//!   due after an exponential backoff ([`backoff`]: 1 s, 2 s, 4 s, …), up to
//!   [`MAX_ATTEMPTS`] in all. A target's URL never appears in a log or in a
//!   job's error; logs name the target id and name.
//! * **Record** ([`deliveries`]): every attempt, and every "Send test"
//!   ([`page`]), is a row with its event, result (HTTP status or redacted
//!   error) and time; the newest 50 per target are kept and the page shows
//!   the newest 10.

pub mod deliveries;
pub mod delivery;
mod message;
pub mod page;
pub mod targets;

use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

pub use deliveries::DeliveryRecord;
pub use delivery::NotifyHandler;
pub use message::{BuildInfo, DeploymentInfo, Message, TEST_EVENT};
pub use page::NotificationsOverview;
pub use targets::{NewTarget, NotificationTarget};

use crate::{
    engine::Engine,
    jobs::{JobQueue, NewJob},
};

/// The job kind of one delivery attempt.
pub const NOTIFY_JOB: &str = "notify";
/// Delivery attempts per notification and target, the first included.
pub const MAX_ATTEMPTS: u32 = 6;
/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long one POST may take, connecting included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The job timeout of one attempt (the request's, plus reading the target).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);
/// Most time [`emit`] spends before giving up (it runs in a job's hook).
const EMIT_BUDGET: Duration = Duration::from_secs(5);

/// The events a target can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "build.succeeded")]
    BuildSucceeded,
    #[serde(rename = "build.failed")]
    BuildFailed,
    #[serde(rename = "deploy.succeeded")]
    DeploySucceeded,
    #[serde(rename = "deploy.failed")]
    DeployFailed,
    #[serde(rename = "deploy.rolled_back")]
    DeployRolledBack,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::BuildSucceeded,
        EventKind::BuildFailed,
        EventKind::DeploySucceeded,
        EventKind::DeployFailed,
        EventKind::DeployRolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::BuildSucceeded => "build.succeeded",
            EventKind::BuildFailed => "build.failed",
            EventKind::DeploySucceeded => "deploy.succeeded",
            EventKind::DeployFailed => "deploy.failed",
            EventKind::DeployRolledBack => "deploy.rolled_back",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What just finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Build(i64),
    Deployment(i64),
}

/// The payload of one delivery attempt ([`NOTIFY_JOB`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub target_id: i64,
    /// For logs (the URL never is).
    pub target_name: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Same for every attempt of one notification to one target, sent as
    /// `X-Slipway-Delivery` so a receiver can drop a duplicate.
    pub delivery_id: String,
    /// Why the previous attempt failed.
    pub last_error: Option<String>,
    pub message: Message,
}

/// The wait before attempt `failed + 1`, after attempt `failed` (from 1)
/// failed: 1 s, 2 s, 4 s, … capped at [`MAX_BACKOFF`].
pub fn backoff(failed: u32) -> Duration {
    let exp = failed.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// Queues the notifications of a finished build or deployment: one job per
/// target of its project subscribed to the event its final status means
/// (none for a cancelled build, say). Never fails and never takes long:
/// errors are logged, and after [`EMIT_BUDGET`] it gives up.
pub async fn emit(engine: &Engine, subject: Subject) {
    let span = match subject {
        Subject::Build(id) => tracing::info_span!("notify", build_id = id),
        Subject::Deployment(id) => tracing::info_span!("notify", deployment_id = id),
    };
    async {
        match tokio::time::timeout(EMIT_BUDGET, queue_notifications(engine, subject)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(queued)) => tracing::info!(queued, "notifications queued"),
            Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "cannot queue notifications"),
            Err(_) => tracing::warn!("queueing notifications took too long; none sent"),
        }
    }
    .instrument(span)
    .await
}

/// Returns how many jobs were queued.
async fn queue_notifications(engine: &Engine, subject: Subject) -> anyhow::Result<usize> {
    let found = match subject {
        Subject::Build(id) => message::for_build(&engine.db, id).await?,
        Subject::Deployment(id) => message::for_deployment(&engine.db, id).await?,
    };
    let Some((project_id, event, message)) = found else {
        return Ok(0);
    };
    let targets = targets::subscribed(&engine.db, project_id, event).await?;
    if targets.is_empty() {
        return Ok(0);
    }
    let mut tx = engine.db.begin().await?;
    for (target_id, target_name) in &targets {
        let delivery = Delivery {
            target_id: *target_id,
            target_name: target_name.clone(),
            attempt: 1,
            delivery_id: delivery_id(),
            last_error: None,
            message: message.clone(),
        };
        let job_id = engine.queue.enqueue(&mut tx, &attempt_job(&delivery)?).await?;
        tracing::debug!(target_id, %target_name, job_id, %event, "notification queued");
    }
    tx.commit().await.context("cannot queue notifications")?;
    engine.queue.notify();
    Ok(targets.len())
}

/// The job of one delivery attempt. No service: never serialized with
/// the service's builds and deploys.
fn attempt_job(delivery: &Delivery) -> anyhow::Result<NewJob> {
    Ok(NewJob::new(NOTIFY_JOB, None, JOB_TIMEOUT).payload(serde_json::to_value(delivery)?))
}

/// 128 random bits, hex.
fn delivery_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let waits: Vec<u64> = (1..MAX_ATTEMPTS).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16]);
        assert_eq!(backoff(7), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn event_names_round_trip() {
        for e in EventKind::ALL {
            assert_eq!(EventKind::parse(e.as_str()), Some(e));
            assert_eq!(serde_json::to_value(e).ok(), Some(serde_json::json!(e.as_str())));
        }
        assert_eq!(EventKind::parse("build.started"), None);
    }
}
