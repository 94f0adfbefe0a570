//! A run's pipeline report: its steps, services and matrix variants
//! (`GET /api/v1/builds/{id}/report`, the build page's "Pipeline" section).

use serde::{Deserialize, Serialize};

use super::BuildView;

/// One step (or service container) of a run, as stored in `build_steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BuildStepView {
    /// The matrix variant's index, from 0.
    pub variant: i64,
    pub variant_name: String,
    pub name: String,
    /// build, deploy, commands, from_build, service.
    pub kind: String,
    /// pending, running, success, failure, skipped, cancelled, killed.
    pub status: String,
    pub exit_code: Option<i64>,
    /// The container was killed for memory.
    pub oom: bool,
    /// A failure that `failure: ignore` keeps from failing the run.
    pub ignored: bool,
    /// The steps it waits for.
    pub depends_on: Vec<String>,
    pub error: Option<String>,
    /// Its line in the pipeline file.
    pub line: Option<i64>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Started → finished (or → now while it runs).
    pub duration_ms: Option<i64>,
    /// Services: milliseconds from start to healthy.
    pub healthy_ms: Option<i64>,
}

impl BuildStepView {
    /// Whether the step has ended (any status but pending and running).
    pub fn is_finished(&self) -> bool {
        !matches!(self.status.as_str(), "pending" | "running")
    }
}

/// A refusal of the pipeline file, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PipelineErrorView {
    pub line: i64,
    pub column: i64,
    /// e.g. `steps[2].depends_on[0]`.
    pub field: String,
    pub message: String,
}

/// One matrix variant of a run (a run without a matrix has one, `default`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VariantView {
    pub index: i64,
    pub name: String,
    /// Derived from its steps: running, failure, success, cancelled, pending.
    pub status: String,
    pub steps_total: i64,
    pub steps_passed: i64,
}

/// A run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BuildReport {
    pub build: BuildView,
    pub commit: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// push, tag, pull_request, manual; absent for runs before pipelines.
    pub event: Option<String>,
    pub trigger: String,
    /// The build's status (queued, running, succeeded, failed, …).
    pub status: String,
    /// `implicit` (no pipeline file) or the file's path; absent before the
    /// checkout.
    pub pipeline: Option<String>,
    pub pipeline_errors: Vec<PipelineErrorView>,
    pub queued_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    /// Every step of every variant, in the order they were planned.
    pub steps: Vec<BuildStepView>,
    /// Service containers, with their health.
    pub services: Vec<BuildStepView>,
    pub variants: Vec<VariantView>,
}

impl BuildReport {
    /// Steps that have ended, and all steps: the progress bar.
    pub fn progress(&self) -> (usize, usize) {
        (self.steps.iter().filter(|s| s.is_finished()).count(), self.steps.len())
    }
}

/// What the build page reads of a run's report: the build, and the
/// Pipeline section as markup written on the server
/// (`pages::build::pipeline::body`, every value escaped); `None` for a run
/// without a pipeline file. The browser then needs no report types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildPoll {
    pub build: BuildView,
    pub pipeline: Option<String>,
}

/// The build page's data in one call: the build with its service and
/// project, its stored log, and the Pipeline section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildPageData {
    pub detail: super::BuildDetail,
    pub lines: Vec<super::LogLineView>,
    pub poll: BuildPoll,
}
