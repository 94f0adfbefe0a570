//! The pipeline file (`.slipway.yml`): its types, and [`parse`], which
//! reads and validates the whole file before anything runs. Every refusal
//! names the line, the column and the field (see [`SpecError`]).
//!
//! The file is data, never code: nothing in it reaches a shell on the host,
//! and keys that would hand a step the host (privileged mode, the Docker
//! socket, host paths, host namespaces, capabilities) are refused by name.

mod checks;
mod error;
pub mod graph;
mod matrix;
mod service;
mod step;
mod values;
mod walk;
mod when;
mod yaml;

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_hostile;
#[cfg(test)]
mod tests_refusals;

use std::time::Duration;

pub use error::{Position, SpecError, SpecErrors, MAX_ERRORS};
pub use matrix::{Matrix, MAX_COMBINATIONS};
pub use service::{DEFAULT_INTERVAL, DEFAULT_RETRIES, DEFAULT_START_PERIOD, DEFAULT_TIMEOUT, MAX_SERVICES};
pub use step::{MAX_STEPS, MAX_TIMEOUT, MIN_TIMEOUT};
pub use values::show as show_duration;
pub use when::{Condition, Event, Globs, PathFilter, StatusFilter, When};

use error::Errors;
use step::StepMeta;
use walk::{index_path, Walk};

/// Largest pipeline file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// The pipeline file's default path in the checkout.
pub const DEFAULT_PATH: &str = ".slipway.yml";

const TOP_KEYS: &[&str] = &["when", "services", "steps", "matrix"];

/// A validated pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Gate for the whole run.
    pub when: Option<When>,
    pub services: Vec<Service>,
    /// In file order; never empty.
    pub steps: Vec<Step>,
    pub matrix: Option<Matrix>,
}

impl Spec {
    /// Whether some `when` (the file's or a step's) has a `path` filter:
    /// only then are the changed files worth computing.
    pub fn uses_paths(&self) -> bool {
        let has = |w: &Option<When>| w.as_ref().is_some_and(|w| w.any_of.iter().any(|c| c.path.is_some()));
        has(&self.when) || self.steps.iter().any(|s| has(&s.when))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Unique among steps and services.
    pub name: String,
    pub kind: StepKind,
    /// In file order; only on steps that run commands.
    pub environment: Vec<(String, EnvValue)>,
    /// Absolute path in the container; `None`: the workspace.
    pub workdir: Option<String>,
    /// `None`: the service's build timeout.
    pub timeout: Option<Duration>,
    pub failure: FailurePolicy,
    /// `None`: not given (see [`graph`] for what that means); `Some([])`:
    /// start at once.
    pub depends_on: Option<Vec<String>>,
    pub when: Option<When>,
    /// Where the step starts in the file (0, 0 for the implicit pipeline).
    pub position: Position,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// `image` + `commands`: each line run by `/bin/sh -e` in the container.
    Commands { image: String, commands: Vec<String> },
    /// `from: build` + `commands`: the same, in the image this run's build
    /// step made.
    FromBuild { commands: Vec<String> },
    /// `build:` the service's image build; fields left out come from the
    /// service's settings.
    Build(BuildStep),
    /// `deploy: true`: the zero-downtime deploy of this run's image.
    Deploy,
}

impl StepKind {
    /// The kind as stored (`build_steps.kind`) and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            StepKind::Commands { .. } => "commands",
            StepKind::FromBuild { .. } => "from_build",
            StepKind::Build(_) => "build",
            StepKind::Deploy => "deploy",
        }
    }

    /// The command lines, for the steps that run some.
    pub fn commands(&self) -> Option<&[String]> {
        match self {
            StepKind::Commands { commands, .. } | StepKind::FromBuild { commands } => Some(commands),
            StepKind::Build(_) | StepKind::Deploy => None,
        }
    }

    /// Whether the step needs the image of this run's build step.
    pub fn needs_build_image(&self) -> bool {
        matches!(self, StepKind::FromBuild { .. } | StepKind::Deploy)
    }
}

/// The `build:` step's overrides of the service's build settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildStep {
    /// Relative to the checkout, normalized (`crate::validate::rel_path`).
    pub context: Option<String>,
    pub dockerfile: Option<String>,
    pub args: Vec<(String, String)>,
    pub target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    Literal(String),
    /// `{from_secret: NAME}`: the service's secret env var NAME.
    Secret(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// A failure fails the run and skips the dependents.
    #[default]
    Fail,
    /// `failure: ignore`: a failure is shown but counts as done.
    Ignore,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Its host name on the run's network.
    pub name: String,
    pub image: String,
    pub environment: Vec<(String, EnvValue)>,
    /// `None`: the image's own command.
    pub command: Option<Command>,
    /// `None`: ready as soon as it runs.
    pub healthcheck: Option<Healthcheck>,
    pub position: Position,
}

/// A command run inside a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// An argument vector (Docker `CMD`).
    Argv(Vec<String>),
    /// One shell line, run by `/bin/sh -c` inside the container (Docker
    /// `CMD-SHELL`).
    Shell(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Healthcheck {
    pub cmd: Command,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

impl Spec {
    /// The pipeline of a service without a file: build, then deploy when
    /// `auto_deploy` is on.
    pub fn implicit(auto_deploy: bool) -> Spec {
        let step = |name: &str, kind| Step {
            name: name.to_string(),
            kind,
            environment: Vec::new(),
            workdir: None,
            timeout: None,
            failure: FailurePolicy::Fail,
            depends_on: None,
            when: None,
            position: Position::default(),
        };
        let mut steps = vec![step("build", StepKind::Build(BuildStep::default()))];
        if auto_deploy {
            steps.push(step("deploy", StepKind::Deploy));
        }
        Spec { when: None, services: Vec::new(), steps, matrix: None }
    }

    pub fn step_index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// The index of the `build` step, if there is one.
    pub fn build_step(&self) -> Option<usize> {
        self.steps.iter().position(|s| matches!(s.kind, StepKind::Build(_)))
    }

    /// Whether the steps form a DAG rather than a sequence.
    pub fn is_dag(&self) -> bool {
        graph::is_dag(&self.steps)
    }

    /// Every secret env var name the pipeline reads (for redaction).
    pub fn secret_names(&self) -> Vec<&str> {
        let envs =
            self.steps.iter().map(|s| &s.environment).chain(self.services.iter().map(|s| &s.environment));
        let mut names: Vec<&str> = envs
            .flatten()
            .filter_map(|(_, v)| match v {
                EnvValue::Secret(name) => Some(name.as_str()),
                EnvValue::Literal(_) => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// Reads and validates a pipeline file. Nothing is returned unless all of
/// it is valid; otherwise every refusal found (up to [`MAX_ERRORS`]).
pub fn parse(text: &str) -> Result<Spec, SpecErrors> {
    let file_error = |at: Position, message: String| SpecErrors(vec![SpecError::new(at, "(file)", message)]);
    let start = Position { line: 1, column: 1 };
    if text.len() > MAX_FILE_BYTES {
        return Err(file_error(
            start,
            format!("the file is {} bytes; the limit is {MAX_FILE_BYTES} (256 KiB)", text.len()),
        ));
    }
    let root = yaml::load(text).map_err(|e| file_error(e.at, e.message))?;
    if root.is_null() {
        return Err(file_error(root.at, "the file is empty: it needs a steps list".into()));
    }
    if !matches!(root.value, yaml::Value::Map(_)) {
        let found = root.describe();
        return Err(file_error(root.at, format!("must be a map of {}, not {found}", TOP_KEYS.join(", "))));
    }
    let mut w = Walk::default();
    let spec = top(&mut w, &root);
    match spec {
        Some(spec) if w.errors.is_empty() => Ok(spec),
        _ => Err(finish(w.errors)),
    }
}

fn finish(errors: Errors) -> SpecErrors {
    let list = errors.finish();
    if list.0.is_empty() {
        // Every refusing path notes why; this is a backstop, never silent.
        return SpecErrors(vec![SpecError::new(
            Position { line: 1, column: 1 },
            "(file)",
            "invalid pipeline",
        )]);
    }
    list
}

fn top(w: &mut Walk, root: &yaml::Node) -> Option<Spec> {
    let fields = w.fields(root, "", TOP_KEYS, "the pipeline file")?;
    let spec_when = fields.get("when").map(|n| when::parse(w, n, "when", false));
    let services = fields.get("services").map(|n| service::parse_all(w, n, "services"));
    let matrix = fields.get("matrix").map(|n| matrix::parse(w, n, "matrix"));
    let Some(steps_node) = fields.get("steps") else {
        w.err(root.at, "steps", "the pipeline needs a steps list");
        return None;
    };
    let services = services.unwrap_or(Some(Vec::new()));
    let (steps, metas) = steps(w, steps_node);
    checks::names(w, &metas, services.as_deref().unwrap_or_default());
    let (steps, services) = (steps?, services?);
    checks::graph(w, &steps, &metas);
    Some(Spec { when: spec_when.flatten(), services, steps, matrix: matrix.flatten() })
}

/// The steps when all are valid, and what is known of each.
fn steps(w: &mut Walk, node: &yaml::Node) -> (Option<Vec<Step>>, Vec<StepMeta>) {
    let Some(items) = w.list(node, "steps") else {
        return (None, Vec::new());
    };
    if items.is_empty() {
        w.err(node.at, "steps", "must list at least one step");
        return (None, Vec::new());
    }
    if items.len() > MAX_STEPS {
        w.err(node.at, "steps", format!("at most {MAX_STEPS} steps are allowed"));
        return (None, Vec::new());
    }
    let mut steps = Vec::with_capacity(items.len());
    let mut metas: Vec<StepMeta> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let (step, meta) = step::parse(w, item, &index_path("steps", i));
        if let Some(name) = &meta.name {
            if let Some(first) = metas.iter().position(|m| m.name.as_ref() == Some(name)) {
                w.err(
                    meta.name_at,
                    &format!("steps[{i}].name"),
                    format!("'{name}' is already the name of steps[{first}]"),
                );
                ok = false;
            }
        }
        match step {
            Some(s) => steps.push(s),
            None => ok = false,
        }
        metas.push(meta);
    }
    (ok.then_some(steps), metas)
}
