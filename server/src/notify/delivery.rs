//! Delivery: the [`NotifyHandler`] runs one attempt per job, and on failure
//! queues the next attempt with a backoff.

use anyhow::Context;
use chrono::Utc;
use tracing::Instrument;

use super::{
    attempt_job, backoff,
    targets::{self, StoredTarget, TargetKind},
    Delivery, MAX_ATTEMPTS, REQUEST_TIMEOUT,
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
        self.client
            .get_or_try_init(|| async {
                reqwest::Client::builder()
                    .timeout(REQUEST_TIMEOUT)
                    .connect_timeout(REQUEST_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("Slipway/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .context("cannot set up the HTTP client")
            })
            .await
    }

    async fn deliver(&self, delivery: &Delivery) -> anyhow::Result<()> {
        let Some(target) = targets::stored(&self.engine.db, delivery.target_id).await? else {
            tracing::info!("notification target deleted: notification dropped");
            return Ok(());
        };
        self.post(&target, delivery)
            .await
            .with_context(|| format!("notification attempt {} of {MAX_ATTEMPTS}", delivery.attempt))
    }

    async fn post(&self, target: &StoredTarget, delivery: &Delivery) -> anyhow::Result<()> {
        // The URL is a secret: it goes to reqwest and nowhere else.
        let url = self
            .engine
            .secrets
            .open(&target.url_sealed)
            .context("the target's URL cannot be decrypted (was the secret key changed?)")?;
        let body = match target.kind {
            TargetKind::Webhook => serde_json::to_vec(&delivery.message)?,
            TargetKind::Slack => {
                serde_json::to_vec(&serde_json::json!({ "text": delivery.message.slack_text() }))?
            }
        };
        let client = self.client().await?;
        let response = client
            .post(url.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Slipway-Event", delivery.message.event.as_str())
            .header("X-Slipway-Delivery", delivery.delivery_id.as_str())
            .body(body)
            .send()
            .await
            // reqwest errors name the URL: strip it.
            .map_err(|e| anyhow::Error::new(e.without_url()).context("the request failed"))?;
        let status = response.status();
        drop(response);
        if !status.is_success() {
            anyhow::bail!("the target answered HTTP {}", status.as_u16());
        }
        tracing::info!(status = status.as_u16(), "notification delivered");
        Ok(())
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
