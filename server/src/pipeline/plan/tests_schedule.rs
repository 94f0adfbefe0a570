//! The scheduler: which steps may start as others end.

use super::tests::{push, spec_of};
use super::*;

fn schedule(text: &str) -> (Schedule, Vec<String>) {
    let spec = spec_of(text);
    let Ok(Plan::Run { variants }) = plan(&spec, &push("main")) else { panic!("expected a run") };
    let names = variants[0].steps.iter().map(|s| s.name.clone()).collect();
    (Schedule::new(&variants[0]), names)
}

/// Names of the steps `ready` returns now.
fn ready(s: &mut Schedule, names: &[String]) -> Vec<String> {
    s.ready().into_iter().map(|i| names[i].clone()).collect()
}

fn idx(names: &[String], name: &str) -> StepIdx {
    names.iter().position(|n| n == name).unwrap_or_else(|| panic!("no step {name}"))
}

fn step(name: &str, extra: &str) -> String {
    format!("  - name: {name}\n    image: busybox\n    commands: [x]\n{extra}")
}

#[test]
fn a_step_starts_when_its_own_dependencies_end_not_a_level() {
    // A fast, B slow, C needs only A, D needs B and C.
    let text = format!(
        "steps:\n{}{}{}{}",
        step("a", "    depends_on: []\n"),
        step("b", "    depends_on: []\n"),
        step("c", "    depends_on: [a]\n"),
        step("d", "    depends_on: [b, c]\n"),
    );
    let (mut s, n) = schedule(&text);
    assert_eq!(ready(&mut s, &n), ["a", "b"], "independent steps start together");
    assert_eq!(ready(&mut s, &n), Vec::<String>::new(), "each step is handed out once");
    assert_eq!(s.finish(idx(&n, "a"), Outcome::Success), Ok(StepState::Success));
    assert_eq!(ready(&mut s, &n), ["c"], "c starts while b still runs");
    assert_eq!(s.state(idx(&n, "b")), Some(StepState::Running));
    assert_eq!(s.run_status(), RunStatus::Running);
    s.finish(idx(&n, "c"), Outcome::Success).expect("c");
    assert_eq!(ready(&mut s, &n), Vec::<String>::new(), "d waits for b (fan-in)");
    s.finish(idx(&n, "b"), Outcome::Success).expect("b");
    assert_eq!(ready(&mut s, &n), ["d"]);
    s.finish(idx(&n, "d"), Outcome::Success).expect("d");
    assert!(s.is_done());
    assert_eq!(s.finished(), 4);
    assert_eq!(s.run_status(), RunStatus::Success);
}

#[test]
fn file_order_runs_one_after_another() {
    let text = format!("steps:\n{}{}", step("a", ""), step("b", ""));
    let (mut s, n) = schedule(&text);
    assert_eq!(s.run_status(), RunStatus::Pending);
    assert_eq!(ready(&mut s, &n), ["a"]);
    s.finish(0, Outcome::Success).expect("a");
    assert_eq!(ready(&mut s, &n), ["b"]);
}

#[test]
fn failure_skips_dependents_runs_failure_steps_and_independent_branches_go_on() {
    // build ─┬─ test ── report(status: failure)
    //        └─ notify (status: [success, failure])
    // lint (independent, slow)
    let text = format!(
        "steps:\n{}{}{}{}{}{}",
        step("compile", "    depends_on: []\n"),
        step("lint", "    depends_on: []\n"),
        step("test", "    depends_on: [compile]\n"),
        step("report", "    depends_on: [test]\n    when: {status: failure}\n"),
        step("notify", "    depends_on: [compile]\n    when: {status: [success, failure]}\n"),
        step("package", "    depends_on: [test]\n"),
    );
    let (mut s, n) = schedule(&text);
    assert_eq!(ready(&mut s, &n), ["compile", "lint"]);
    assert_eq!(s.finish(idx(&n, "compile"), Outcome::Failure), Ok(StepState::Failure));
    assert_eq!(ready(&mut s, &n), ["report", "notify"], "failure steps run, through a skipped step");
    let decided: Vec<&str> = s.take_decided().into_iter().map(|i| n[i].as_str()).collect();
    assert_eq!(decided, ["test", "package"]);
    assert_eq!(s.reason(idx(&n, "test")), Some("a step it depends on failed"));
    assert_eq!(s.state(idx(&n, "lint")), Some(StepState::Running), "the independent branch runs on");
    s.finish(idx(&n, "report"), Outcome::Success).expect("report");
    s.finish(idx(&n, "notify"), Outcome::Success).expect("notify");
    assert!(!s.is_done());
    s.finish(idx(&n, "lint"), Outcome::Success).expect("lint");
    assert!(s.is_done());
    assert_eq!(s.run_status(), RunStatus::Failure);
}

#[test]
fn failure_steps_are_skipped_when_nothing_failed() {
    let text = format!("steps:\n{}{}", step("a", ""), step("report", "    when: {status: failure}\n"));
    let (mut s, n) = schedule(&text);
    assert_eq!(ready(&mut s, &n), ["a"]);
    s.finish(0, Outcome::Success).expect("a");
    assert_eq!(ready(&mut s, &n), Vec::<String>::new());
    assert_eq!(s.state(1), Some(StepState::Skipped));
    assert_eq!(s.run_status(), RunStatus::Success);
}

#[test]
fn ignored_failure_does_not_fail_the_run() {
    let text = format!("steps:\n{}{}", step("scan", "    failure: ignore\n"), step("after", ""));
    let (mut s, n) = schedule(&text);
    assert_eq!(ready(&mut s, &n), ["scan"]);
    assert_eq!(s.finish(0, Outcome::Failure), Ok(StepState::IgnoredFailure));
    assert_eq!(ready(&mut s, &n), ["after"], "dependents run after an ignored failure");
    s.finish(1, Outcome::Success).expect("after");
    assert_eq!(s.run_status(), RunStatus::Success);
}

#[test]
fn steps_skipped_up_front_are_skipped_from_the_start() {
    let text =
        format!("steps:\n{}{}{}", step("a", ""), step("tagonly", "    when: {event: tag}\n"), step("c", ""));
    let (mut s, n) = schedule(&text);
    assert_eq!(s.state(1), Some(StepState::Skipped));
    assert_eq!(ready(&mut s, &n), ["a"]);
    s.finish(0, Outcome::Success).expect("a");
    assert_eq!(ready(&mut s, &n), ["c"], "c waits for a, not for the skipped step");
    assert!(s.take_decided().is_empty(), "up-front skips are the plan's, not decided later");
}

#[test]
fn cancel_stops_pending_steps_and_names_the_running_ones() {
    let text = format!(
        "steps:\n{}{}{}",
        step("a", "    depends_on: []\n"),
        step("b", "    depends_on: []\n"),
        step("c", "    depends_on: [a]\n")
    );
    let (mut s, n) = schedule(&text);
    assert_eq!(ready(&mut s, &n), ["a", "b"]);
    assert_eq!(s.cancel(), vec![0, 1]);
    assert_eq!(s.state(2), Some(StepState::Cancelled));
    s.finish(0, Outcome::Cancelled).expect("a");
    s.finish(1, Outcome::Success).expect("b");
    assert!(s.ready().is_empty());
    assert_eq!(s.run_status(), RunStatus::Cancelled);
}

#[test]
fn a_cancelled_dependency_cancels_its_dependents() {
    let text = format!("steps:\n{}{}", step("a", ""), step("b", "    when: {status: [success, failure]}\n"));
    let (mut s, n) = schedule(&text);
    assert_eq!(ready(&mut s, &n), ["a"]);
    s.finish(0, Outcome::Cancelled).expect("a");
    assert!(ready(&mut s, &n).is_empty());
    assert_eq!(s.state(1), Some(StepState::Cancelled));
}

#[test]
fn fail_skips_what_is_left_and_fails_the_variant() {
    let text = format!("steps:\n{}{}", step("a", ""), step("b", ""));
    let (mut s, n) = schedule(&text);
    assert!(s.fail("service db never became healthy").is_empty());
    assert_eq!(s.states(), [StepState::Skipped, StepState::Skipped]);
    assert!(ready(&mut s, &n).is_empty());
    assert_eq!(s.run_status(), RunStatus::Failure);
    assert_eq!(s.failed_reason(), Some("service db never became healthy"));
}

#[test]
fn fail_while_a_step_runs_is_a_failure_even_if_it_is_stopped() {
    let text = format!("steps:\n{}{}", step("a", ""), step("b", ""));
    let (mut s, n) = schedule(&text);
    assert_eq!(ready(&mut s, &n), ["a"]);
    assert_eq!(s.fail("service redis exited"), vec![0]);
    assert_eq!(s.state(1), Some(StepState::Skipped));
    assert_eq!(s.run_status(), RunStatus::Running, "a still runs");
    s.finish(0, Outcome::Cancelled).expect("a");
    assert_eq!(s.run_status(), RunStatus::Failure);
}

#[test]
fn finish_of_a_step_that_is_not_running_is_refused() {
    let text = format!("steps:\n{}{}", step("a", ""), step("b", ""));
    let (mut s, _) = schedule(&text);
    assert_eq!(
        s.finish(1, Outcome::Success),
        Err(ScheduleError::NotRunning { step: 1, state: StepState::Pending })
    );
    assert_eq!(s.finish(9, Outcome::Success), Err(ScheduleError::NoSuchStep(9)));
}

#[test]
fn run_status_of_variants() {
    use RunStatus::*;
    assert_eq!(combine(&[Success, Success]), Success);
    assert_eq!(combine(&[Success, Failure]), Failure);
    assert_eq!(combine(&[Failure, Cancelled]), Cancelled);
    assert_eq!(combine(&[Success, Running]), Running);
    assert_eq!(combine(&[Pending, Success]), Running);
    assert_eq!(combine(&[Pending, Pending]), Pending);
}

#[test]
fn the_issues_pipeline_runs_scan_beside_test_and_deploys_after_both() {
    let spec = spec_of(crate::pipeline::spec::tests::FULL);
    let Ok(Plan::Run { variants }) = plan(&spec, &push("main")) else { panic!("expected a run") };
    assert_eq!(variants.len(), 1);
    let n: Vec<String> = variants[0].steps.iter().map(|s| s.name.clone()).collect();
    assert_eq!(variants[0].steps[idx(&n, "deploy")].needs, vec![idx(&n, "test"), idx(&n, "scan")]);
    let mut s = Schedule::new(&variants[0]);
    assert_eq!(ready(&mut s, &n), ["lint"]);
    s.finish(idx(&n, "lint"), Outcome::Success).expect("lint");
    assert_eq!(ready(&mut s, &n), ["build"]);
    s.finish(idx(&n, "build"), Outcome::Success).expect("build");
    assert_eq!(ready(&mut s, &n), ["test", "scan"]);
    s.finish(idx(&n, "scan"), Outcome::Failure).expect("scan");
    assert_eq!(s.state(idx(&n, "scan")), Some(StepState::IgnoredFailure));
    assert!(ready(&mut s, &n).is_empty(), "deploy waits for test");
    s.finish(idx(&n, "test"), Outcome::Success).expect("test");
    assert_eq!(ready(&mut s, &n), ["deploy"]);
    s.finish(idx(&n, "deploy"), Outcome::Success).expect("deploy");
    assert_eq!(s.run_status(), RunStatus::Success);
    match plan(&spec, &push("feature/x")) {
        Ok(Plan::Skipped { .. }) => {}
        other => panic!("the top-level when gates other branches: {other:?}"),
    }
    let manual = Context { event: Event::Manual, ..push("main") };
    let Ok(Plan::Run { variants }) = plan(&spec, &manual) else { panic!("expected a run") };
    assert!(matches!(variants[0].steps[idx(&n, "deploy")].gate, Gate::Skip { .. }), "deploy only on push");
}
