//! Execution of a planned run on the container runtime
//! (`crate::docker::pipeline`): every matrix variant at once, each with its
//! own network and workspace volume; in a variant, services first (steps
//! start only once all are healthy), then the step graph driven by
//! [`Schedule`](crate::pipeline::plan::Schedule): a step starts the moment
//! its own dependencies have finished. The native steps (`build`,
//! `deploy`) are the build job's, behind [`NativeSteps`].
//!
//! Lines of command steps go through one channel to the log (tagged with
//! their step); a native build step holds the log while it writes, so lines
//! of a step running beside it are written after it, in order.
//! Whatever the run made is removed at the end (and by the job's
//! `on_finished` / recovery when the run is cancelled, times out or the
//! process dies).

pub mod record;
mod variant;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::docker::pipeline::RunRef;
use crate::engine::Engine;
use crate::logs::{LogStream, LogWriter};
use crate::pipeline::plan::{combine, RunStatus, VariantPlan};
use crate::pipeline::spec::{BuildStep, Spec};

/// The build job's own steps.
#[async_trait::async_trait]
pub trait NativeSteps: Send + Sync {
    /// Builds (and pushes) this run's image; its id. Writes to `log`.
    async fn build(&self, step: &BuildStep, log: &mut LogWriter) -> anyhow::Result<String>;
    /// Deploys `image_id` (health, switch, drain) and waits until it is live.
    async fn deploy(&self, image_id: &str, log: &mut LogWriter) -> anyhow::Result<()>;
}

/// A run to execute.
pub struct Run<'a> {
    pub engine: &'a Engine,
    pub build_id: i64,
    pub spec: &'a Spec,
    pub variants: Vec<VariantPlan>,
    /// The checkout (the workspace's first content).
    pub checkout: PathBuf,
    /// The service's secret env vars, opened, for `from_secret`.
    pub secrets: HashMap<String, String>,
    /// Labels for everything the run makes (the service's and the instance's).
    pub labels: HashMap<String, String>,
    pub memory_bytes: u64,
    pub cpu_millis: u32,
    /// A step's timeout when the file gives none.
    pub default_timeout: Duration,
    pub native: &'a dyn NativeSteps,
    pub cancel: CancellationToken,
}

/// What a run ended with.
#[derive(Debug)]
pub struct Finished {
    pub status: RunStatus,
    /// The image of the first variant's build step, if it ran.
    pub image_id: Option<String>,
    /// Why the run failed, naming the step.
    pub error: Option<String>,
}

/// One line for the log writer task.
pub(crate) struct Line {
    pub step: String,
    pub stream: LogStream,
    pub text: String,
}

/// Runs every variant, then removes every container, network and volume of
/// the run.
pub async fn execute(run: &Run<'_>, log: &mut LogWriter) -> anyhow::Result<Finished> {
    let log = Mutex::new(log);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Line>();
    let pump = async {
        while let Some(first) = rx.recv().await {
            let mut writer = log.lock().await;
            let mut next = Some(first);
            while let Some(line) = next {
                writer.set_step(Some(&line.step));
                if let Err(e) = writer.line(line.stream, &line.text).await {
                    tracing::warn!(error = %e, "cannot write a step's line");
                }
                next = rx.try_recv().ok();
            }
            writer.set_step(None);
        }
    };
    let variants = async {
        let runs = run.variants.iter().map(|v| variant::run(run, v, &log, tx.clone()));
        let results = futures::future::join_all(runs).await;
        drop(tx);
        results
    };
    let (results, ()) = tokio::join!(variants, pump);
    let owner = RunRef { instance: run.engine.instance.clone(), build_id: run.build_id };
    if let Err(e) = run.engine.docker.remove_run(&owner).await {
        tracing::warn!(build_id = run.build_id, error = %e, "cannot remove the run's containers");
    }
    let mut statuses = Vec::new();
    let (mut image_id, mut error) = (None, None);
    for result in results {
        let ended = result?;
        statuses.push(ended.status);
        image_id = image_id.or(ended.image_id);
        error = error.or(ended.error);
    }
    Ok(Finished { status: combine(&statuses), image_id, error })
}
