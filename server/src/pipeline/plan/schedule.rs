//! The scheduler of one variant, pure: the executor asks [`Schedule::ready`]
//! which steps to start, reports each end with [`Schedule::finish`], and
//! asks again. A step is ready the moment its own dependencies have
//! finished, never when a whole "level" has.
//!
//! Rules (GitLab's and Woodpecker's):
//! - a step runs when every step it needs ended in success or an ignored
//!   failure (`failure: ignore`), if its `when.status` includes `success`
//!   (the default);
//! - if one of them failed, it runs only if its `when.status` includes
//!   `failure`; otherwise it is skipped, and a skipped step passes the
//!   failure on: its dependents count as after a failure too (so a
//!   `status: failure` step after a chain still runs);
//! - if one of them was cancelled, it is cancelled (never run);
//! - steps skipped up front by their `when` are not waited for (the plan's
//!   `needs` bypasses them).

use super::{Gate, StepIdx, VariantPlan};
use crate::pipeline::spec::FailurePolicy;

/// A step's state in the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    Success,
    Failure,
    /// Failed with `failure: ignore`: shown, but counts as done.
    IgnoredFailure,
    Skipped,
    Cancelled,
}

impl StepState {
    pub fn is_final(self) -> bool {
        !matches!(self, StepState::Pending | StepState::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Success => "success",
            StepState::Failure => "failure",
            StepState::IgnoredFailure => "ignored_failure",
            StepState::Skipped => "skipped",
            StepState::Cancelled => "cancelled",
        }
    }
}

/// How a started step ended, as the executor saw it. A timeout or an OOM
/// kill is a `Failure` here; whether it is ignored is the step's
/// `failure` policy, applied by [`Schedule::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Cancelled,
}

/// A variant's (or a run's) status, derived from its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Nothing started yet.
    Pending,
    Running,
    Success,
    Failure,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("step {0} does not exist")]
    NoSuchStep(StepIdx),
    #[error("step {step} is {state:?}, not running")]
    NotRunning { step: StepIdx, state: StepState },
}

#[derive(Debug, Clone)]
pub struct Schedule {
    needs: Vec<Vec<StepIdx>>,
    gates: Vec<Gate>,
    policy: Vec<FailurePolicy>,
    state: Vec<StepState>,
    /// For final steps: whether dependents see a failure before them.
    failed_before: Vec<bool>,
    reason: Vec<Option<String>>,
    /// Steps the schedule skipped or cancelled since the last
    /// [`Schedule::take_decided`].
    decided: Vec<StepIdx>,
    /// Set by [`Schedule::fail`].
    failed: Option<String>,
}

impl Schedule {
    /// Steps skipped up front start as `Skipped`; all others `Pending`.
    pub fn new(variant: &VariantPlan) -> Schedule {
        let n = variant.steps.len();
        let mut s = Schedule {
            needs: variant.steps.iter().map(|p| p.needs.clone()).collect(),
            gates: variant.steps.iter().map(|p| p.gate.clone()).collect(),
            policy: variant.steps.iter().map(|p| p.failure).collect(),
            state: vec![StepState::Pending; n],
            failed_before: vec![false; n],
            reason: vec![None; n],
            decided: Vec::new(),
            failed: None,
        };
        for (i, gate) in s.gates.iter().enumerate() {
            if let Gate::Skip { reason } = gate {
                s.state[i] = StepState::Skipped;
                s.reason[i] = Some(reason.clone());
            }
        }
        s
    }

    /// The steps to start now, each returned once (they become `Running`).
    /// Steps that will never run because of how their dependencies ended
    /// become `Skipped` or `Cancelled` here (see [`Schedule::take_decided`]).
    pub fn ready(&mut self) -> Vec<StepIdx> {
        let mut start = Vec::new();
        loop {
            let mut changed = false;
            for i in 0..self.state.len() {
                if self.state[i] != StepState::Pending
                    || !self.needs[i].iter().all(|&d| self.state[d].is_final())
                {
                    continue;
                }
                let needs = &self.needs[i];
                if needs.iter().any(|&d| self.state[d] == StepState::Cancelled) {
                    self.decide(i, StepState::Cancelled, "a step it depends on was cancelled");
                    changed = true;
                    continue;
                }
                let after_failure = needs.iter().any(|&d| self.failed_before[d]);
                let (on_success, on_failure) = match self.gates[i] {
                    Gate::Run { on_success, on_failure } => (on_success, on_failure),
                    Gate::Skip { .. } => (false, false),
                };
                if (after_failure && on_failure) || (!after_failure && on_success) {
                    self.state[i] = StepState::Running;
                    start.push(i);
                } else {
                    let why = if after_failure {
                        "a step it depends on failed"
                    } else {
                        "it runs only after a failure (when.status)"
                    };
                    self.failed_before[i] = after_failure;
                    self.decide(i, StepState::Skipped, why);
                    changed = true;
                }
            }
            if !changed {
                return start;
            }
        }
    }

    fn decide(&mut self, i: StepIdx, state: StepState, why: &str) {
        self.state[i] = state;
        self.reason[i] = Some(why.to_string());
        self.decided.push(i);
    }

    /// Records how a running step ended; returns the state recorded (a
    /// failure of a `failure: ignore` step is `IgnoredFailure`).
    pub fn finish(&mut self, step: StepIdx, outcome: Outcome) -> Result<StepState, ScheduleError> {
        let state = *self.state.get(step).ok_or(ScheduleError::NoSuchStep(step))?;
        if state != StepState::Running {
            return Err(ScheduleError::NotRunning { step, state });
        }
        let recorded = match (outcome, self.policy[step]) {
            (Outcome::Success, _) => StepState::Success,
            (Outcome::Failure, FailurePolicy::Ignore) => StepState::IgnoredFailure,
            (Outcome::Failure, FailurePolicy::Fail) => StepState::Failure,
            (Outcome::Cancelled, _) => StepState::Cancelled,
        };
        self.state[step] = recorded;
        self.failed_before[step] = recorded == StepState::Failure;
        Ok(recorded)
    }

    /// Cancels the variant: every pending step becomes `Cancelled`. Returns
    /// the running steps, for the executor to stop and then `finish` as
    /// `Cancelled`.
    pub fn cancel(&mut self) -> Vec<StepIdx> {
        self.stop(StepState::Cancelled, "the run was cancelled")
    }

    /// Fails the variant for a reason outside the steps (a service that
    /// never became healthy): pending steps are skipped, and the status is
    /// `Failure` whatever the steps still running end with. Returns the
    /// running steps, for the executor to stop and `finish` (as
    /// `Cancelled`).
    pub fn fail(&mut self, reason: &str) -> Vec<StepIdx> {
        self.failed = Some(reason.to_string());
        self.stop(StepState::Skipped, reason)
    }

    fn stop(&mut self, state: StepState, why: &str) -> Vec<StepIdx> {
        let mut running = Vec::new();
        for i in 0..self.state.len() {
            match self.state[i] {
                StepState::Pending => self.decide(i, state, why),
                StepState::Running => running.push(i),
                _ => {}
            }
        }
        running
    }

    /// Steps skipped or cancelled by the schedule since the last call (not
    /// those skipped up front), for the executor to record.
    pub fn take_decided(&mut self) -> Vec<StepIdx> {
        std::mem::take(&mut self.decided)
    }

    pub fn state(&self, step: StepIdx) -> Option<StepState> {
        self.state.get(step).copied()
    }

    pub fn states(&self) -> &[StepState] {
        &self.state
    }

    /// Why a step was skipped or cancelled.
    pub fn reason(&self, step: StepIdx) -> Option<&str> {
        self.reason.get(step).and_then(|r| r.as_deref())
    }

    /// Why the variant was failed by [`Schedule::fail`].
    pub fn failed_reason(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Steps in a final state (for a progress bar).
    pub fn finished(&self) -> usize {
        self.state.iter().filter(|s| s.is_final()).count()
    }

    /// No step pending or running.
    pub fn is_done(&self) -> bool {
        self.state.iter().all(|s| s.is_final())
    }

    /// Failure if [`Schedule::fail`] was called; else cancelled if a step
    /// was; else failure if a step failed (not ignored); else success. Before that:
    /// pending until a step starts, then running.
    pub fn run_status(&self) -> RunStatus {
        if !self.is_done() {
            let moved = self.state.iter().enumerate().any(|(i, s)| {
                *s == StepState::Running || (s.is_final() && !matches!(self.gates[i], Gate::Skip { .. }))
            });
            return if moved { RunStatus::Running } else { RunStatus::Pending };
        }
        if self.failed.is_some() {
            RunStatus::Failure
        } else if self.state.contains(&StepState::Cancelled) {
            RunStatus::Cancelled
        } else if self.state.contains(&StepState::Failure) {
            RunStatus::Failure
        } else {
            RunStatus::Success
        }
    }
}

/// The status of a run from its variants' statuses: running while one is;
/// then cancelled, failure, success in that order of precedence.
pub fn combine(statuses: &[RunStatus]) -> RunStatus {
    let has = |s: RunStatus| statuses.contains(&s);
    if has(RunStatus::Running)
        || (has(RunStatus::Pending) && statuses.iter().any(|s| *s != RunStatus::Pending))
    {
        RunStatus::Running
    } else if has(RunStatus::Pending) {
        RunStatus::Pending
    } else if has(RunStatus::Cancelled) {
        RunStatus::Cancelled
    } else if has(RunStatus::Failure) {
        RunStatus::Failure
    } else {
        RunStatus::Success
    }
}
