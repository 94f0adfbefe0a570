//! The build job: checkout → context → Docker build → tags → image id, with
//! phase and percent persisted and every line in the build log.

use anyhow::Context;
use tracing::Instrument;

use super::{from_row, images::Images, pipeline_job, usecases::BuildPayload, Build, COLUMNS};
use crate::{
    docker::build::BuildError,
    engine::Engine,
    git,
    jobs::{Job, JobContext, JobHandler, Outcome, RecoveryAction},
    logs::{LogStream, LogWriter},
    projects::{Project, ProjectStore, Service},
    registry::{self, publish},
    service_env, validate,
};

pub struct BuildHandler {
    pub(super) engine: Engine,
}

/// One build being run: what every part of the job needs.
pub(super) struct Running<'a> {
    pub ctx: &'a JobContext,
    pub build: &'a Build,
    pub project: &'a Project,
    pub service: &'a Service,
    /// This build ignores the build cache.
    pub no_cache: bool,
    pub registry: Option<(&'a registry::Registry, &'a crate::docker::registry::Credentials)>,
}

/// How a build that did not fail ended.
pub(super) enum Finished {
    /// What it made (nothing for a pipeline without a build step).
    Built(Option<Produced>),
    /// Its pipeline did not run; why.
    Skipped(String),
}

/// What a successful build made.
pub(super) struct Produced {
    pub images: Images,
    /// `<repository>@<digest>` when pushed.
    pub pushed: Option<String>,
    /// Queue the deploy with the success (the implicit pipeline's deploy).
    pub deploy: bool,
}

impl BuildHandler {
    pub fn new(engine: Engine) -> Self {
        BuildHandler { engine }
    }

    async fn build_of(&self, job: &Job) -> anyhow::Result<Build> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM builds WHERE job_id = ?"))
            .bind(job.id)
            .fetch_optional(&self.engine.db)
            .await?
            .with_context(|| format!("job {} has no build", job.id))?;
        from_row(&row)
    }

    /// Persists the phase and percent on the build and its job.
    pub(super) async fn progress(
        &self,
        ctx: &JobContext,
        build_id: i64,
        phase: &str,
        percent: u8,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE builds SET phase = ?, progress = ? WHERE id = ?")
            .bind(phase)
            .bind(i64::from(percent.min(100)))
            .bind(build_id)
            .execute(&self.engine.db)
            .await?;
        ctx.set_progress(phase, percent).await
    }

    /// Appends a closing line to a build's log after its run ended.
    async fn append(&self, build_id: i64, text: &str) {
        let result = async {
            let mut log = self.engine.logs.writer(build_id, Vec::new()).await?;
            log.line(LogStream::System, text).await?;
            log.finish().await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(build_id, error = %e, "cannot append to the build log");
        }
    }

    /// Removes a pipeline run's containers, network and volume, and ends
    /// its steps still open as `status`.
    async fn remove_run(&self, build_id: i64, status: &str) {
        let owner = crate::docker::pipeline::RunRef { instance: self.engine.instance.clone(), build_id };
        if let Err(e) = self.engine.docker.remove_run(&owner).await {
            tracing::warn!(build_id, error = %e, "cannot remove a run's containers");
        }
        // A cancel drops the run mid-call: a container the engine was still
        // creating appears after the removal above. Sweep once more.
        let docker = self.engine.docker.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            if let Err(e) = docker.remove_run(&owner).await {
                tracing::warn!(build_id, error = %e, "cannot remove a run's containers");
            }
        });
        if let Err(e) = crate::pipeline::run::record::close_open(&self.engine.db, build_id, status).await {
            tracing::warn!(build_id, error = %e, "cannot close a run's steps");
        }
    }

    async fn remove_workspace(&self, build_id: i64) {
        let dir = self.engine.workspace(build_id);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(build_id, error = %e, path = %dir.display(), "cannot remove a workspace")
            }
        }
    }

    async fn run_build(&self, ctx: &JobContext, build: &Build) -> anyhow::Result<()> {
        let store = ProjectStore::new(self.engine.db.clone());
        let service = store.get_service(build.service_id).await?;
        let project = store.get_project(service.project_id).await?;
        let env = service_env::stored(&self.engine.db, service.id).await?;
        let payload: BuildPayload = serde_json::from_value(ctx.job.payload.clone()).unwrap_or_default();

        sqlx::query(
            "UPDATE builds SET status = 'running', started_at = ?, finished_at = NULL, attempt = ?, \
             error = NULL, phase = 'checkout', progress = 0 WHERE id = ?",
        )
        .bind(crate::db::now_rfc3339())
        .bind(i64::from(ctx.job.attempts))
        .bind(build.id)
        .execute(&self.engine.db)
        .await?;

        let registry = registry::settings::of_project(&self.engine.db, project.id).await?;
        let credentials = registry.as_ref().map(|r| r.credentials(&self.engine.secrets)).transpose()?;
        let mut redactions = service_env::secret_values(&self.engine.secrets, &env);
        redactions.extend(credentials.as_ref().and_then(|c| c.password.clone()));
        let mut log = self.engine.logs.writer(build.id, redactions).await?;
        let attempt =
            if ctx.job.attempts > 1 { format!(" (attempt {})", ctx.job.attempts) } else { String::new() };
        log.line(
            LogStream::System,
            &format!("Build #{} of {}/{}{attempt}", build.number, project.name, service.spec.name),
        )
        .await?;
        let run = Running {
            ctx,
            build,
            project: &project,
            service: &service,
            no_cache: payload.no_cache,
            registry: registry.as_ref().zip(credentials.as_ref()),
        };
        let built = async {
            let checkout = self.checkout(ctx, build, &service, &mut log).await?;
            if let Some(reason) = super::changes::unwatched(&self.engine, &run, &mut log).await {
                return Ok(Finished::Skipped(reason));
            }
            let workspace = self.engine.workspace(build.id);
            if let Some(file) = pipeline_job::read_file(&workspace, &service.spec.pipeline_path).await? {
                return pipeline_job::run(self, &run, &checkout, &env, &file, &mut log).await;
            }
            sqlx::query("UPDATE builds SET pipeline = 'implicit' WHERE id = ?")
                .bind(build.id)
                .execute(&self.engine.db)
                .await?;
            let (images, pushed) = self.images(&run, &checkout, None, &mut log).await?;
            anyhow::Ok(Finished::Built(Some(Produced { images, pushed, deploy: payload.deploy })))
        };
        match built.await {
            Ok(Finished::Skipped(reason)) => {
                sqlx::query(
                    "UPDATE builds SET status = 'skipped', phase = 'skipped', progress = 100, finished_at = ? \
                     WHERE id = ? AND status = 'running'",
                )
                .bind(crate::db::now_rfc3339())
                .bind(build.id)
                .execute(&self.engine.db)
                .await?;
                log.line(LogStream::System, &format!("Run skipped: {reason}")).await?;
                log.finish().await?;
                tracing::info!(build_id = build.id, %reason, "run skipped");
                Ok(())
            }
            Ok(Finished::Built(produced)) => {
                self.succeeded(build, &service, produced.as_ref()).await?;
                let image = produced.as_ref().map_or("no image", |p| p.images.image_id.as_str());
                log.line(LogStream::System, &format!("Build succeeded: {image}")).await?;
                log.finish().await?;
                Ok(())
            }
            Err(e) => {
                // Step failures are already in the log, with their output.
                let said = matches!(
                    e.downcast_ref::<BuildError>(),
                    Some(BuildError::StepFailed { .. } | BuildError::Failed(_))
                ) || e.downcast_ref::<publish::PushRefused>().is_some()
                    || e.downcast_ref::<pipeline_job::RunFailed>().is_some();
                if !said {
                    // git's own message is the line above: not repeated.
                    let text = match e.downcast_ref::<crate::git::GitFailed>() {
                        Some(git) => format!("Build failed at checkout: {}", git.summary()),
                        None => format!("Build failed: {e:#}"),
                    };
                    let _ = log.line(LogStream::System, &text).await;
                }
                // The error becomes the build's and the job's `error`, a
                // worker log line and a notification: a failing step's
                // output may hold a secret the Dockerfile printed.
                let redacted = anyhow::anyhow!(log.redact(&format!("{e:#}")));
                let _ = log.finish().await;
                Err(redacted)
            }
        }
    }

    /// Checks out exactly the build's ref into its workspace.
    async fn checkout(
        &self,
        ctx: &JobContext,
        build: &Build,
        service: &Service,
        log: &mut LogWriter,
    ) -> anyhow::Result<git::Checkout> {
        self.progress(ctx, build.id, "checkout", 5).await?;
        let workspace = self.engine.workspace(build.id);
        self.remove_workspace(build.id).await;
        let url = service.real_git_url(&self.engine.secrets)?;
        // Checked again here: the service may have been saved while local
        // repositories were allowed.
        validate::local_repo_allowed(&url, self.engine.settings.allow_local_repos)?;
        let checkout = match &build.push_group {
            Some(group) => self.group_checkout(group, &url, build, &workspace, log).await?,
            None => git::checkout(&url, &build.git_ref, &workspace, log).await?,
        };
        sqlx::query("UPDATE builds SET commit_sha = ? WHERE id = ?")
            .bind(&checkout.commit)
            .bind(build.id)
            .execute(&self.engine.db)
            .await?;
        Ok(checkout)
    }
}

#[async_trait::async_trait]
impl JobHandler for BuildHandler {
    async fn run(&self, ctx: JobContext) -> anyhow::Result<()> {
        let build = self.build_of(&ctx.job).await?;
        let span = tracing::info_span!("build", build_id = build.id, number = build.number);
        self.run_build(&ctx, &build).instrument(span).await
    }

    async fn on_finished(&self, job: &Job, outcome: &Outcome) -> anyhow::Result<()> {
        let build = self.build_of(job).await?;
        let (status, error) = match outcome {
            Outcome::Succeeded => ("succeeded", None),
            Outcome::Failed(e) => ("failed", Some(e.clone())),
            Outcome::Cancelled => ("cancelled", Some("cancelled".to_string())),
            Outcome::TimedOut => ("timed_out", Some(format!("timed out after {} s", job.timeout.as_secs()))),
        };
        // A superseded run keeps saying so.
        sqlx::query(
            "UPDATE builds SET status = ?1, \
                 error = CASE WHEN ?1 = 'cancelled' AND error LIKE 'superseded by %' THEN error ELSE ?2 END, \
                 finished_at = ?3 WHERE id = ?4 AND status IN ('queued', 'running')",
        )
        .bind(status)
        .bind(&error)
        .bind(crate::db::now_rfc3339())
        .bind(build.id)
        .execute(&self.engine.db)
        .await?;
        match outcome {
            Outcome::Cancelled => self.append(build.id, "Build cancelled").await,
            Outcome::TimedOut => {
                self.append(build.id, &format!("Build timed out after {} s", job.timeout.as_secs())).await
            }
            Outcome::Succeeded | Outcome::Failed(_) => {}
        }
        self.remove_run(build.id, if matches!(outcome, Outcome::TimedOut) { "killed" } else { "cancelled" })
            .await;
        self.remove_workspace(build.id).await;
        self.end_group(&build).await;
        tracing::info!(build_id = build.id, status, "build finished");
        crate::notify::emit(&self.engine, crate::notify::Subject::Build(build.id)).await;
        Ok(())
    }

    async fn on_interrupted(&self, job: &Job) -> anyhow::Result<RecoveryAction> {
        let build = self.build_of(job).await?;
        // A pipeline run is not run again: its steps may have had effects
        // (a deploy, a push); it ends `interrupted`, as the design asks.
        let pipeline: Option<String> = sqlx::query_scalar("SELECT pipeline FROM builds WHERE id = ?")
            .bind(build.id)
            .fetch_one(&self.engine.db)
            .await?;
        let piped = pipeline.as_deref().is_some_and(|p| p != "implicit");
        let retry = job.attempts < job.max_attempts && !piped;
        let message = format!("interrupted: Slipway stopped during attempt {}", job.attempts);
        sqlx::query(
            "UPDATE builds SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status IN ('queued', 'running')",
        )
        .bind(if retry { "queued" } else { "interrupted" })
        .bind(&message)
        .bind(if retry { None } else { Some(crate::db::now_rfc3339()) })
        .bind(build.id)
        .execute(&self.engine.db)
        .await?;
        let next = if retry { "it will run again" } else { "it will not be retried" };
        self.append(build.id, &format!("Slipway stopped while this build was running; {next}")).await;
        self.remove_run(build.id, "cancelled").await;
        self.remove_workspace(build.id).await;
        self.end_group(&build).await;
        tracing::warn!(build_id = build.id, retry, "build interrupted");
        Ok(if retry { RecoveryAction::Retry } else { RecoveryAction::GiveUp })
    }
}
