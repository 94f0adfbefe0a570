//! Planning: the gate, `when`, matrix variants and the step graph.

use super::*;
use crate::pipeline::spec::{self, Condition, EnvValue, Globs, PathFilter};

pub(super) fn spec_of(text: &str) -> Spec {
    match spec::parse(text) {
        Ok(s) => s,
        Err(e) => panic!("test pipeline refused:\n{e}"),
    }
}

pub(super) fn push(branch: &str) -> Context {
    Context { branch: Some(branch.into()), tag: None, event: Event::Push, changed_paths: None }
}

fn variants(spec: &Spec, ctx: &Context) -> Vec<VariantPlan> {
    match plan(spec, ctx) {
        Ok(Plan::Run { variants }) => variants,
        other => panic!("expected a run, got {other:?}"),
    }
}

fn cond(branch: Option<&[&str]>, event: Option<&[Event]>, path: Option<PathFilter>) -> Condition {
    let globs = |p: &[&str]| Globs::new(p.iter().map(|s| s.to_string()).collect()).expect("globs");
    Condition { branch: branch.map(globs), event: event.map(|e| e.to_vec()), path, status: None }
}

fn paths(include: &[&str], exclude: &[&str]) -> PathFilter {
    let globs = |p: &[&str]| {
        (!p.is_empty()).then(|| Globs::new(p.iter().map(|s| s.to_string()).collect()).expect("globs"))
    };
    PathFilter { include: globs(include), exclude: globs(exclude) }
}

fn changed(ctx: Context, files: &[&str]) -> Context {
    Context { changed_paths: Some(files.iter().map(|s| s.to_string()).collect()), ..ctx }
}

#[test]
fn skip_ci_markers_in_any_case() {
    assert!(skip_ci("fix typo [skip ci]"));
    assert!(skip_ci("[CI SKIP] docs"));
    assert!(skip_ci("release\n\nbody [Skip CI]"));
    assert!(!skip_ci("skip ci"));
    assert!(!skip_ci("[skip-ci]"));
    assert!(!skip_ci("normal commit"));
}

#[test]
fn branch_globs_stay_inside_one_segment_unless_double_star() {
    let c = cond(Some(&["main", "release/*"]), None, None);
    assert!(condition_matches(&c, &push("main")));
    assert!(condition_matches(&c, &push("release/1.2")));
    assert!(!condition_matches(&c, &push("release/1/2")));
    assert!(!condition_matches(&c, &push("mainline")));
    let deep = cond(Some(&["feature/**"]), None, None);
    assert!(condition_matches(&deep, &push("feature/a/b")));
    let tag = Context { branch: None, tag: Some("v1".into()), event: Event::Tag, changed_paths: None };
    assert!(!condition_matches(&c, &tag), "a branch filter never matches a tag");
}

#[test]
fn event_filter() {
    let c = cond(None, Some(&[Event::Push, Event::Manual]), None);
    assert!(condition_matches(&c, &push("main")));
    let pr = Context { event: Event::PullRequest, ..push("main") };
    assert!(!condition_matches(&c, &pr));
}

#[test]
fn path_include_and_exclude() {
    let c = cond(None, None, Some(paths(&["src/**"], &["**/*.md"])));
    assert!(condition_matches(&c, &changed(push("main"), &["src/main.rs"])));
    assert!(!condition_matches(&c, &changed(push("main"), &["src/README.md"])), "excluded");
    assert!(!condition_matches(&c, &changed(push("main"), &["docs/a.txt"])), "not included");
    assert!(condition_matches(&c, &changed(push("main"), &["docs/a.txt", "src/lib.rs"])), "any one file");
    assert!(condition_matches(&c, &push("main")), "unknown changes match");
    assert!(condition_matches(&c, &changed(push("main"), &[])), "no changes match");
    let only_exclude = cond(None, None, Some(paths(&[], &["*.md"])));
    assert!(!condition_matches(&only_exclude, &changed(push("main"), &["README.md"])));
    assert!(condition_matches(&only_exclude, &changed(push("main"), &["README.md", "x.rs"])));
    assert!(!condition_matches(
        &cond(None, None, Some(paths(&["*.md"], &[]))),
        &changed(push("main"), &["docs/a.md"])
    ));
}

#[test]
fn keys_of_one_entry_are_and_entries_are_or() {
    let spec = spec_of(
        r#"steps:
  - name: a
    image: busybox
    commands: [x]
    when:
      - branch: main
        event: push
      - event: tag
"#,
    );
    let gate = |ctx: &Context| variants(&spec, ctx)[0].steps[0].gate.clone();
    let runs = Gate::Run { on_success: true, on_failure: false };
    assert_eq!(gate(&push("main")), runs);
    assert!(matches!(gate(&push("dev")), Gate::Skip { .. }), "branch fails the AND");
    assert!(
        matches!(gate(&Context { event: Event::Manual, ..push("main") }), Gate::Skip { .. }),
        "event fails the AND"
    );
    let tag = Context { branch: None, tag: Some("v1".into()), event: Event::Tag, changed_paths: None };
    assert_eq!(gate(&tag), runs, "the second entry");
}

#[test]
fn top_level_when_skips_the_run() {
    let spec = spec_of("when:\n  branch: main\nsteps:\n  - name: a\n    image: busybox\n    commands: [x]\n");
    match plan(&spec, &push("dev")) {
        Ok(Plan::Skipped { reason }) => assert!(reason.contains("push on branch dev"), "{reason}"),
        other => panic!("expected skipped, got {other:?}"),
    }
    assert_eq!(variants(&spec, &push("main")).len(), 1);
}

#[test]
fn matrix_of_three_gives_three_variants_with_axes() {
    let spec = spec_of("matrix:\n  GO: ['1.21', '1.22', '1.23']\nsteps:\n  - name: a\n    image: busybox\n    commands: [x]\n");
    let v = variants(&spec, &push("main"));
    assert_eq!(v.len(), 3);
    let names: Vec<&str> = v.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["GO=1.21", "GO=1.22", "GO=1.23"]);
    assert_eq!(v[2].index, 2);
    assert_eq!(v[2].axes, vec![("GO".to_string(), "1.23".to_string())]);
    assert!(v.iter().all(|v| v.steps.len() == 1));
}

#[test]
fn a_steps_environment_is_the_axes_then_its_own() {
    let spec = spec_of(
        "matrix:\n  GO: ['1.22']\n  DB: [pg]\nsteps:\n  - name: a\n    image: busybox\n    commands: [x]\n    environment: {DB: mysql, T: {from_secret: TOKEN}}\n",
    );
    let v = variants(&spec, &push("main"));
    let env = v[0].environment(&spec.steps[0]);
    assert_eq!(
        env,
        vec![
            ("GO".to_string(), EnvValue::Literal("1.22".into())),
            ("DB".to_string(), EnvValue::Literal("mysql".into())),
            ("T".to_string(), EnvValue::Secret("TOKEN".into())),
        ]
    );
}

#[test]
fn include_matrix_variants_and_names() {
    let spec = spec_of(
        "matrix:\n  include:\n    - {GO: 1.22, DB: pg}\n    - {GO: 1.23, DB: mysql}\nsteps:\n  - name: a\n    image: busybox\n    commands: [x]\n",
    );
    let v = variants(&spec, &push("main"));
    let names: Vec<&str> = v.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["GO=1.22, DB=pg", "GO=1.23, DB=mysql"]);
    let no_matrix = spec_of("steps:\n  - name: a\n    image: busybox\n    commands: [x]\n");
    let v = variants(&no_matrix, &push("main"));
    assert_eq!((v.len(), v[0].name.as_str(), v[0].axes.len()), (1, "default", 0));
}

#[test]
fn file_order_chains_and_dag_starts_steps_without_depends_on_at_once() {
    let chain = spec_of("steps:\n  - name: a\n    image: busybox\n    commands: [x]\n  - name: b\n    image: busybox\n    commands: [x]\n  - name: c\n    image: busybox\n    commands: [x]\n");
    let needs: Vec<Vec<StepIdx>> =
        variants(&chain, &push("main"))[0].steps.iter().map(|s| s.needs.clone()).collect();
    assert_eq!(needs, vec![vec![], vec![0], vec![1]]);
    let dag = spec_of("steps:\n  - name: a\n    image: busybox\n    commands: [x]\n  - name: b\n    image: busybox\n    commands: [x]\n  - name: c\n    image: busybox\n    commands: [x]\n    depends_on: [a, b]\n");
    let needs: Vec<Vec<StepIdx>> =
        variants(&dag, &push("main"))[0].steps.iter().map(|s| s.needs.clone()).collect();
    assert_eq!(needs, vec![vec![], vec![], vec![0, 1]]);
}

#[test]
fn steps_skipped_up_front_are_not_waited_for() {
    let spec = spec_of(
        "steps:\n  - name: a\n    image: busybox\n    commands: [x]\n  - name: b\n    image: busybox\n    commands: [x]\n    when: {event: tag}\n  - name: c\n    image: busybox\n    commands: [x]\n",
    );
    let v = variants(&spec, &push("main"));
    assert!(matches!(v[0].steps[1].gate, Gate::Skip { .. }));
    assert_eq!(v[0].steps[2].depends_on, vec![1]);
    assert_eq!(v[0].steps[2].needs, vec![0]);
}

#[test]
fn skipped_build_skips_what_needs_its_image() {
    let spec = spec_of(
        "steps:\n  - name: b\n    build: true\n    when: {branch: main}\n  - name: t\n    from: build\n    commands: [x]\n  - name: d\n    deploy: true\n  - name: l\n    image: busybox\n    commands: [x]\n",
    );
    let v = variants(&spec, &push("dev"));
    let skipped: Vec<bool> = v[0].steps.iter().map(|s| matches!(s.gate, Gate::Skip { .. })).collect();
    assert_eq!(skipped, [true, true, true, false]);
    assert_eq!(v[0].steps[2].gate, Gate::Skip { reason: "the build step is skipped".into() });
}

#[test]
fn status_failure_steps_run_on_failure_only() {
    let spec = spec_of("steps:\n  - name: a\n    image: busybox\n    commands: [x]\n  - name: n\n    image: busybox\n    commands: [x]\n    when: {status: failure}\n");
    let v = variants(&spec, &push("main"));
    assert_eq!(v[0].steps[1].gate, Gate::Run { on_success: false, on_failure: true });
}

#[test]
fn hand_built_cycle_is_a_plan_error() {
    let mut spec = spec_of("steps:\n  - name: a\n    image: busybox\n    commands: [x]\n  - name: b\n    image: busybox\n    commands: [x]\n    depends_on: [a]\n");
    spec.steps[0].depends_on = Some(vec!["b".into()]);
    let err = plan(&spec, &push("main")).expect_err("cycle");
    assert_eq!(err, PlanError::Cycle { steps: vec!["a".into(), "b".into(), "a".into()], line: 2 });
    assert_eq!(err.to_string(), "line 2: depends_on makes a cycle: a → b → a");
}
