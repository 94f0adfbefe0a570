//! What a run will do, decided before anything starts: the top-level
//! `when` gate, the matrix variants, and per variant the step graph with the
//! steps whose `when` cannot match marked skipped. [`Schedule`] then drives
//! one variant: it says which steps may start as others finish.

mod schedule;
mod when;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_schedule;

pub use schedule::{combine, Outcome, RunStatus, Schedule, ScheduleError, StepState};
pub use when::condition_matches;

pub use crate::pipeline::spec::Event;
use crate::pipeline::spec::{graph, EnvValue, FailurePolicy, Spec, StatusFilter, Step};

/// A step's index: the same in `Spec::steps` and `VariantPlan::steps`.
pub type StepIdx = usize;

/// What the run is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The branch pushed (for a pull request: the branch the caller
    /// chooses, usually its target); `None` for a tag.
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub event: Event,
    /// Files changed since the previous run of this branch; `None` when
    /// unknown (path filters then match).
    pub changed_paths: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// The top-level `when` does not match: nothing runs.
    Skipped {
        reason: String,
    },
    Run {
        variants: Vec<VariantPlan>,
    },
}

/// One matrix variant (a run without a matrix has one, with no axes).
#[derive(Debug, Clone, PartialEq)]
pub struct VariantPlan {
    /// 0-based, in matrix order.
    pub index: usize,
    /// The axes, set as environment variables of every step (before the
    /// step's own `environment`, which may override them).
    pub axes: Vec<(String, String)>,
    /// `GO=1.22, DB=pg`, or `default` without a matrix.
    pub name: String,
    /// In file order: `steps[i]` is `spec.steps[i]`.
    pub steps: Vec<PlannedStep>,
}

impl VariantPlan {
    /// The environment of `step` in this variant: the matrix axes, then the
    /// step's own `environment` (a name set by both takes the step's value).
    pub fn environment(&self, step: &Step) -> Vec<(String, EnvValue)> {
        let mut env: Vec<(String, EnvValue)> = self
            .axes
            .iter()
            .filter(|(name, _)| !step.environment.iter().any(|(n, _)| n == name))
            .map(|(name, value)| (name.clone(), EnvValue::Literal(value.clone())))
            .collect();
        env.extend(step.environment.iter().cloned());
        env
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    pub name: String,
    /// Dependencies by the graph rules (file order, or `depends_on`), for
    /// the report.
    pub depends_on: Vec<StepIdx>,
    /// What the step really waits for: `depends_on`, with each step that is
    /// skipped up front replaced by what that one waits for.
    pub needs: Vec<StepIdx>,
    pub gate: Gate,
    pub failure: FailurePolicy,
}

/// Whether a step can run, as far as is known before the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Skipped whatever happens (its `when` does not match).
    Skip { reason: String },
    /// Runs when its dependencies succeeded (`on_success`) or when one of
    /// them failed (`on_failure`), per `when.status` (default: success).
    Run { on_success: bool, on_failure: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("step '{step}': depends_on names no step '{name}'")]
    UnknownStep { step: String, name: String },
    #[error("line {line}: depends_on makes a cycle: {}", steps.join(" → "))]
    Cycle { steps: Vec<String>, line: u32 },
}

/// Whether the head commit asks to skip CI (`[skip ci]`, `[ci skip]`, any
/// case).
pub fn skip_ci(commit_message: &str) -> bool {
    let lower = commit_message.to_lowercase();
    lower.contains("[skip ci]") || lower.contains("[ci skip]")
}

/// Plans a run of `spec` for `ctx`.
pub fn plan(spec: &Spec, ctx: &Context) -> Result<Plan, PlanError> {
    let deps = graph::dependencies(&spec.steps).map_err(|unknown| {
        let u = &unknown[0];
        PlanError::UnknownStep { step: spec.steps[u.step].name.clone(), name: u.name.clone() }
    })?;
    if let Some(cycle) = graph::find_cycle(&deps) {
        let mut steps: Vec<String> = cycle.iter().map(|&i| spec.steps[i].name.clone()).collect();
        steps.push(steps[0].clone());
        return Err(PlanError::Cycle { steps, line: spec.steps[cycle[0]].position.line });
    }
    if let Some(w) = &spec.when {
        if !w.any_of.iter().any(|c| condition_matches(c, ctx)) {
            return Ok(Plan::Skipped {
                reason: format!("the pipeline's when does not match {}", describe(ctx)),
            });
        }
    }
    let gates = gates(spec, ctx);
    let steps: Vec<PlannedStep> = spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| PlannedStep {
            name: step.name.clone(),
            depends_on: deps[i].clone(),
            needs: needs(&deps, &gates, i),
            gate: gates[i].clone(),
            failure: step.failure,
        })
        .collect();
    let combos = spec.matrix.as_ref().map_or_else(|| vec![Vec::new()], |m| m.combinations());
    let variants = combos
        .into_iter()
        .enumerate()
        .map(|(index, axes)| {
            let name = if axes.is_empty() {
                "default".to_string()
            } else {
                axes.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
            };
            VariantPlan { index, axes, name, steps: steps.clone() }
        })
        .collect();
    Ok(Plan::Run { variants })
}

/// `push to branch main`, `tag v1.2`, for skip reasons.
fn describe(ctx: &Context) -> String {
    match (&ctx.branch, &ctx.tag) {
        (Some(b), _) => format!("({} on branch {b})", ctx.event),
        (None, Some(t)) => format!("({} of tag {t})", ctx.event),
        (None, None) => format!("({})", ctx.event),
    }
}

fn gates(spec: &Spec, ctx: &Context) -> Vec<Gate> {
    let mut gates: Vec<Gate> = spec
        .steps
        .iter()
        .map(|step| {
            let Some(w) = &step.when else {
                return Gate::Run { on_success: true, on_failure: false };
            };
            let (mut on_success, mut on_failure, mut any) = (false, false, false);
            for c in w.any_of.iter().filter(|c| condition_matches(c, ctx)) {
                any = true;
                let status = c.status.as_deref().unwrap_or(&[StatusFilter::Success]);
                on_success |= status.contains(&StatusFilter::Success);
                on_failure |= status.contains(&StatusFilter::Failure);
            }
            if any {
                Gate::Run { on_success, on_failure }
            } else {
                Gate::Skip { reason: format!("its when does not match {}", describe(ctx)) }
            }
        })
        .collect();
    // No build, no image to test or deploy.
    if let Some(b) = spec.build_step() {
        if matches!(gates[b], Gate::Skip { .. }) {
            for (i, step) in spec.steps.iter().enumerate() {
                if step.kind.needs_build_image() && matches!(gates[i], Gate::Run { .. }) {
                    gates[i] = Gate::Skip { reason: "the build step is skipped".into() };
                }
            }
        }
    }
    gates
}

/// Step `i`'s dependencies with the steps skipped up front bypassed (their
/// own dependencies take their place), sorted and each once.
fn needs(deps: &[Vec<StepIdx>], gates: &[Gate], i: StepIdx) -> Vec<StepIdx> {
    let mut out = Vec::new();
    let mut seen = vec![false; deps.len()];
    let mut todo: Vec<StepIdx> = deps[i].clone();
    while let Some(d) = todo.pop() {
        if std::mem::replace(&mut seen[d], true) {
            continue;
        }
        match gates[d] {
            Gate::Skip { .. } => todo.extend(deps[d].iter().copied()),
            Gate::Run { .. } => out.push(d),
        }
    }
    out.sort_unstable();
    out
}
