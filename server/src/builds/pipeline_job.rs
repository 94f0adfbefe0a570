//! A build whose checkout has a pipeline file: the file is read and
//! validated whole (a refusal names line, column and field, and nothing
//! runs), planned for this run's branch and event, then executed by
//! `crate::pipeline::run` with this job's build and deploy as its native
//! steps.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::changes;
use super::job::{BuildHandler, Finished, Produced, Running};
use crate::{
    git::Checkout,
    jobs::JobQueue,
    logs::{LogStream, LogWriter},
    pipeline::{
        plan::{self, Plan, RunStatus},
        run::{self, record, NativeSteps},
        spec::{self, BuildStep, Event, MAX_FILE_BYTES},
    },
    service_env::StoredEnv,
    validate,
};

/// A run that ended without success; the log already says why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunFailed(pub String);

/// The pipeline file's text, if the checkout has one (at most one byte over
/// the limit is read: the parser refuses it).
pub async fn read_file(workspace: &Path, rel: &str) -> anyhow::Result<Option<(String, String)>> {
    let rel = validate::rel_path("pipeline_path", rel)?;
    let path = workspace.join(&rel);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {rel}")),
    };
    if !file.metadata().await?.is_file() {
        return Ok(None);
    }
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    file.take(u64::try_from(MAX_FILE_BYTES + 1)?).read_to_end(&mut bytes).await?;
    let text = String::from_utf8(bytes).map_err(|_| RunFailed(format!("{rel} is not UTF-8 text")))?;
    Ok(Some((rel, text)))
}

/// The event of a build from its trigger and ref.
fn event(trigger: &str, git_ref: &str) -> Event {
    match trigger {
        "webhook" if git_ref.starts_with("refs/tags/") => Event::Tag,
        "webhook" => Event::Push,
        _ => Event::Manual,
    }
}

pub async fn run(
    handler: &BuildHandler,
    job: &Running<'_>,
    checkout: &Checkout,
    env: &[StoredEnv],
    (path, text): &(String, String),
    log: &mut LogWriter,
) -> anyhow::Result<Finished> {
    let engine = &handler.engine;
    let build = job.build;
    let ev = event(&build.trigger, &build.git_ref);
    // An explicit run (dashboard, API, CLI) always runs; a push, tag or
    // pull request whose head commit says `[skip ci]` does not.
    if ev != Event::Manual && plan::skip_ci(&checkout.message) {
        sqlx::query("UPDATE builds SET pipeline = ?, event = ? WHERE id = ?")
            .bind(path)
            .bind(ev.as_str())
            .bind(build.id)
            .execute(&engine.db)
            .await?;
        return Ok(Finished::Skipped("the head commit's message says [skip ci]".into()));
    }
    sqlx::query("UPDATE builds SET pipeline = ?, event = ?, phase = 'pipeline', progress = 15 WHERE id = ?")
        .bind(path)
        .bind(ev.as_str())
        .bind(build.id)
        .execute(&engine.db)
        .await?;
    let spec = match spec::parse(text) {
        Ok(spec) => spec,
        Err(errors) => {
            sqlx::query("UPDATE builds SET pipeline_errors = ? WHERE id = ?")
                .bind(serde_json::to_string(&errors)?)
                .bind(build.id)
                .execute(&engine.db)
                .await?;
            for e in errors.errors() {
                log.line(LogStream::Stderr, &format!("{path}: {e}")).await?;
            }
            let first = errors.errors().first().map(ToString::to_string).unwrap_or_default();
            let more = errors.errors().len().saturating_sub(1);
            let more = if more > 0 { format!(" (and {more} more)") } else { String::new() };
            return Err(RunFailed(format!("{path} is invalid: {first}{more}")).into());
        }
    };
    let tag = build.git_ref.strip_prefix("refs/tags/").map(str::to_string);
    let branch = changes::branch_of(&build.git_ref, &job.service.spec.branch).map(str::to_string);
    let changed_paths = match spec.uses_paths() {
        true => changes::since_last_success(engine, job, branch.as_deref(), log).await,
        false => None,
    };
    let context = plan::Context { branch, tag, event: ev, changed_paths };
    let variants = match plan::plan(&spec, &context).map_err(|e| anyhow::anyhow!("{e:?}"))? {
        Plan::Skipped { reason } => return Ok(Finished::Skipped(format!("{path}: {reason}"))),
        Plan::Run { variants } => variants,
    };
    record::plan(&engine.db, build.id, &spec, &variants).await?;
    let steps: usize = variants.iter().map(|v| v.steps.len()).sum();
    log.line(
        LogStream::System,
        &format!(
            "Pipeline {path}: {steps} steps, {} services, {} variants",
            spec.services.len(),
            variants.len()
        ),
    )
    .await?;
    let secrets: HashMap<String, String> = env
        .iter()
        .filter(|v| v.secret)
        .filter_map(|v| engine.secrets.open(&v.value).ok().map(|value| (v.name.clone(), value)))
        .collect();
    let native = Native { handler, job, checkout, built: tokio::sync::Mutex::new(None) };
    let mut labels = engine.labels(&job.project.name, &job.service.spec.name, job.service.id);
    labels.remove(crate::docker::labels::SERVICE_ID);
    let runner = run::Run {
        engine,
        build_id: build.id,
        spec: &spec,
        variants,
        checkout: engine.workspace(build.id),
        secrets,
        labels,
        memory_bytes: job.service.spec.memory_bytes,
        cpu_millis: job.service.spec.cpu_millis,
        default_timeout: Duration::from_secs(u64::from(job.service.spec.build_timeout_secs)),
        native: &native,
        cancel: job.ctx.cancel.clone(),
    };
    let finished = run::execute(&runner, log).await?;
    match finished.status {
        RunStatus::Success => Ok(Finished::Built(native.built.into_inner())),
        RunStatus::Cancelled => Err(RunFailed("the run was cancelled".into()).into()),
        _ => Err(RunFailed(finished.error.unwrap_or_else(|| "the run failed".into())).into()),
    }
}

struct Native<'a> {
    handler: &'a BuildHandler,
    job: &'a Running<'a>,
    checkout: &'a Checkout,
    built: tokio::sync::Mutex<Option<Produced>>,
}

#[async_trait::async_trait]
impl NativeSteps for Native<'_> {
    async fn build(&self, step: &BuildStep, log: &mut LogWriter) -> anyhow::Result<String> {
        let (images, pushed) = self.handler.images(self.job, self.checkout, Some(step), log).await?;
        let id = images.image_id.clone();
        let mut built = self.built.lock().await;
        if built.is_none() {
            *built = Some(Produced { images, pushed, deploy: false });
        }
        Ok(id)
    }

    async fn deploy(&self, image_id: &str, log: &mut LogWriter) -> anyhow::Result<()> {
        let engine = &self.handler.engine;
        let build = self.job.build;
        let actor = build.actor.clone().unwrap_or_else(|| "slipway".into());
        let reason = format!("pipeline #{} ({})", build.number, build.trigger);
        let mut tx = engine.db.begin_with("BEGIN IMMEDIATE").await?;
        let id = engine
            .queue_deployment(&mut tx, self.job.service, image_id, Some(build.id), Some(reason), &actor, None)
            .await?;
        tx.commit().await?;
        engine.queue.notify();
        log.line(LogStream::System, &format!("Deployment {id} queued")).await?;
        loop {
            let dep = engine.deployment(id).await?;
            if dep.status.was_live() {
                log.line(LogStream::System, &format!("Deployment {id} is live")).await?;
                return Ok(());
            }
            if matches!(dep.status, crate::deploys::DeploymentStatus::Failed) {
                let why = dep.error.unwrap_or_else(|| "failed".into());
                anyhow::bail!("deployment {id} failed: {why}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
