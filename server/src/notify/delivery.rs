//! Delivery: the [`NotifyHandler`] runs one attempt per job, and on failure
//! queues the next attempt with a backoff.

use anyhow::Context;
use chrono::Utc;
use tracing::Instrument;

use super::{
    attempt_job, backoff,
    deliveries::{self, Sent},
    targets::{self, StoredTarget, TargetKind},
    Delivery, Message, MAX_ATTEMPTS, REQUEST_TIMEOUT,
};
use crate::{
    engine::Engine,
    jobs::{Job, JobContext, JobHandler, Outcome, RecoveryAction},
};

/// Longest error kept in the next attempt's payload.
const MAX_ERROR: usize = 500;

/// Runs [`super::NOTIFY_JOB`] jobs.
pub struct NotifyHandler {
    engine: Engine,
    client: tokio::sync::OnceCell<reqwest::Client>,
}

impl NotifyHandler {
    pub fn new(engine: Engine) -> Self {
        NotifyHandler { engine, client: tokio::sync::OnceCell::new() }
    }

    /// One client for every delivery (connection pool, TLS roots loaded once).
    async fn client(&self) -> anyhow::Result<&reqwest::Client> {
        self.client.get_or_try_init(|| async { client() }).await
    }

    async fn deliver(&self, delivery: &Delivery) -> anyhow::Result<()> {
        let Some(target) = targets::stored(&self.engine.db, delivery.target_id).await? else {
            tracing::info!("notification target deleted: notification dropped");
            return Ok(());
        };
        let client = self.client().await?;
        let sent =
            send(client, &self.engine.secrets, &target, &delivery.delivery_id, &delivery.message).await?;
        if let Err(e) = deliveries::record(
            &self.engine.db,
            delivery.target_id,
            &delivery.message.event,
            delivery.attempt,
            &sent,
        )
        .await
        {
            tracing::warn!(error = %format!("{e:#}"), "cannot record the notification delivery");
        }
        match sent.failure() {
            None => Ok(()),
            Some(why) => {
                Err(anyhow::anyhow!("notification attempt {} of {MAX_ATTEMPTS}: {why}", delivery.attempt))
            }
        }
    }

    /// Queues the attempt after `job`'s (due after the backoff), unless it
    /// was the last.
    async fn retry(&self, job: &Job, error: &str) -> anyhow::Result<()> {
        let delivery: Delivery =
            serde_json::from_value(job.payload.clone()).context("malformed notification job")?;
        let span = span_of(job, &delivery);
        async {
            if delivery.attempt >= MAX_ATTEMPTS {
                tracing::warn!(attempts = delivery.attempt, error, "notification given up");
                return Ok(());
            }
            let wait = backoff(delivery.attempt);
            let next = Delivery {
                attempt: delivery.attempt + 1,
                last_error: Some(clip(error, MAX_ERROR)),
                ..delivery.clone()
            };
            let due = Utc::now() + chrono::Duration::from_std(wait)?;
            let next_job = self.engine.queue.enqueue_now(&attempt_job(&next)?.run_after(due)).await?;
            tracing::info!(
                next_job,
                next_attempt = next.attempt,
                wait_s = wait.as_secs(),
                "notification retry queued"
            );
            Ok::<(), anyhow::Error>(())
        }
        .instrument(span)
        .await
    }
}

/// The HTTP client of deliveries: 10 s, no redirects.
pub(super) fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Slipway/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client")
}

/// One POST of `message` to `target`, and how it ended. The URL is a
/// secret: it goes to reqwest and nowhere else (errors are redacted).
pub(super) async fn send(
    client: &reqwest::Client,
    secrets: &crate::secrets::Secrets,
    target: &StoredTarget,
    delivery_id: &str,
    message: &Message,
) -> anyhow::Result<Sent> {
    let Ok(url) = secrets.open(&target.url_sealed) else {
        return Ok(Sent::Failed {
            error: "the target's URL cannot be decrypted (was the secret key changed?)".into(),
        });
    };
    let body = match target.kind {
        TargetKind::Webhook => serde_json::to_vec(message)?,
        TargetKind::Slack => serde_json::to_vec(&serde_json::json!({ "text": message.slack_text() }))?,
    };
    let answer = client
        .post(url.as_str())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Slipway-Event", message.event.as_str())
        .header("X-Slipway-Delivery", delivery_id)
        .body(body)
        .send()
        .await;
    let sent = match answer {
        Ok(response) if response.status().is_success() => Sent::Ok { status: response.status().as_u16() },
        Ok(response) => Sent::Refused { status: response.status().as_u16() },
        Err(e) => {
            // reqwest errors name the URL: strip it, then redact the rest.
            let e = anyhow::Error::new(e.without_url()).context("the request failed");
            Sent::Failed { error: deliveries::redact(&format!("{e:#}"), &url) }
        }
    };
    match &sent {
        Sent::Ok { status } => tracing::info!(status, "notification delivered"),
        other => tracing::info!(failure = other.failure().unwrap_or_default(), "notification not delivered"),
    }
    Ok(sent)
}

fn span_of(job: &Job, delivery: &Delivery) -> tracing::Span {
    tracing::info_span!(
        "notify",
        job_id = job.id,
        target_id = delivery.target_id,
        target_name = %delivery.target_name,
        attempt = delivery.attempt,
        event = %delivery.message.event,
    )
}

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[async_trait::async_trait]
impl JobHandler for NotifyHandler {
    async fn run(&self, ctx: JobContext) -> anyhow::Result<()> {
        let delivery: Delivery =
            serde_json::from_value(ctx.job.payload.clone()).context("malformed notification job")?;
        let span = span_of(&ctx.job, &delivery);
        self.deliver(&delivery).instrument(span).await
    }

    async fn on_finished(&self, job: &Job, outcome: &Outcome) -> anyhow::Result<()> {
        match outcome {
            Outcome::Succeeded | Outcome::Cancelled => Ok(()),
            Outcome::Failed(error) => self.retry(job, error).await,
            Outcome::TimedOut => self.retry(job, "the attempt timed out").await,
        }
    }

    async fn on_interrupted(&self, job: &Job) -> anyhow::Result<RecoveryAction> {
        // The process died mid-attempt: the next attempt is a new job.
        self.retry(job, "interrupted: Slipway stopped during the attempt").await?;
        Ok(RecoveryAction::GiveUp)
    }
}
