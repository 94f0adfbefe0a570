//! Valid pipeline files: what `parse` makes of them.

use std::time::Duration;

use super::*;

/// The issue's test pipeline: lint, build, a `from: build` test step
/// against Postgres and Redis, a scan that needs only the build, deploy.
pub(crate) const FULL: &str = r#"when:
  branch: [main, "release/*"]
services:
  db:
    image: slipway-test/debian-services:1
    environment:
      PGDATA: /tmp/pg
    command: su postgres -c "/usr/lib/postgresql/15/bin/postgres -D /tmp/pg"
    healthcheck:
      cmd: pg_isready -h 127.0.0.1
      interval: 500ms
      retries: 40
      start_period: 2s
  redis:
    image: slipway-test/debian-services:1
    command: [redis-server, --protected-mode, "no"]
    healthcheck:
      cmd: [redis-cli, ping]
steps:
  - name: lint
    image: slipway-test/busybox:1
    commands:
      - test -f Dockerfile
  - name: build
    build:
      context: .
      dockerfile: Dockerfile
      args: {VERSION: 1.10}
    depends_on: [lint]
  - name: test
    from: build
    environment:
      DATABASE_URL: postgres://postgres@db/postgres
      TOKEN: {from_secret: API_TOKEN}
      RETRIES: 3
      VERBOSE: no
    workdir: /workspace/app
    commands:
      - psql "$DATABASE_URL" -c 'create table t (x int)'
      - |
        redis-cli -h redis set k v
        redis-cli -h redis get k
    depends_on: [build]
    timeout: 10m
  - name: scan
    image: slipway-test/busybox:1
    commands: [echo scan]
    depends_on: [build]
    failure: ignore
  - name: deploy
    deploy: true
    depends_on: [test, scan]
    when:
      event: push
"#;

fn parse_ok(text: &str) -> Spec {
    match parse(text) {
        Ok(spec) => spec,
        Err(e) => panic!("expected a valid pipeline, got:\n{e}"),
    }
}

#[test]
fn full_pipeline_is_read_whole() {
    let spec = parse_ok(FULL);
    let names: Vec<&str> = spec.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["lint", "build", "test", "scan", "deploy"]);
    let kinds: Vec<&str> = spec.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["commands", "build", "from_build", "commands", "deploy"]);
    assert!(spec.is_dag());
    assert_eq!(spec.build_step(), Some(1));

    let lint = &spec.steps[0];
    assert_eq!(lint.position, Position { line: 20, column: 5 });
    assert_eq!(
        lint.kind,
        StepKind::Commands {
            image: "slipway-test/busybox:1".into(),
            commands: vec!["test -f Dockerfile".into()]
        }
    );
    assert_eq!(lint.depends_on, None);

    let StepKind::Build(build) = &spec.steps[1].kind else { panic!("build step") };
    assert_eq!(build.context.as_deref(), Some("."));
    assert_eq!(build.dockerfile.as_deref(), Some("Dockerfile"));
    assert_eq!(build.args, vec![("VERSION".to_string(), "1.10".to_string())], "numbers stay as written");
    assert_eq!(spec.steps[1].depends_on, Some(vec!["lint".to_string()]));

    let test = &spec.steps[2];
    assert_eq!(
        test.environment,
        vec![
            ("DATABASE_URL".to_string(), EnvValue::Literal("postgres://postgres@db/postgres".into())),
            ("TOKEN".to_string(), EnvValue::Secret("API_TOKEN".into())),
            ("RETRIES".to_string(), EnvValue::Literal("3".into())),
            ("VERBOSE".to_string(), EnvValue::Literal("no".into())),
        ]
    );
    assert_eq!(test.workdir.as_deref(), Some("/workspace/app"));
    assert_eq!(test.timeout, Some(Duration::from_secs(600)));
    let commands = test.kind.commands().expect("commands");
    assert_eq!(commands[1], "redis-cli -h redis set k v\nredis-cli -h redis get k\n");
    assert_eq!(spec.steps[3].failure, FailurePolicy::Ignore);
    assert_eq!(spec.steps[3].depends_on, Some(vec!["build".to_string()]));
    let deploy_when = spec.steps[4].when.as_ref().expect("when");
    assert_eq!(deploy_when.any_of[0].event, Some(vec![Event::Push]));

    assert_eq!(spec.services.len(), 2);
    let db = &spec.services[0];
    assert_eq!(db.name, "db");
    assert_eq!(db.position, Position { line: 4, column: 3 });
    assert_eq!(
        db.command,
        Some(Command::Shell(r#"su postgres -c "/usr/lib/postgresql/15/bin/postgres -D /tmp/pg""#.into()))
    );
    let hc = db.healthcheck.as_ref().expect("healthcheck");
    assert_eq!(hc.cmd, Command::Shell("pg_isready -h 127.0.0.1".into()));
    assert_eq!(hc.interval, Duration::from_millis(500));
    assert_eq!(hc.retries, 40);
    assert_eq!(hc.start_period, Duration::from_secs(2));
    assert_eq!(hc.timeout, DEFAULT_TIMEOUT);
    let redis = &spec.services[1];
    assert_eq!(
        redis.command,
        Some(Command::Argv(vec!["redis-server".into(), "--protected-mode".into(), "no".into()]))
    );
    let hc = redis.healthcheck.as_ref().expect("healthcheck");
    assert_eq!(hc.cmd, Command::Argv(vec!["redis-cli".into(), "ping".into()]));
    assert_eq!((hc.interval, hc.retries), (DEFAULT_INTERVAL, DEFAULT_RETRIES));

    let top = spec.when.as_ref().expect("top-level when");
    let branch = top.any_of[0].branch.as_ref().expect("branch");
    assert_eq!(branch.patterns(), ["main", "release/*"]);
    assert_eq!(spec.secret_names(), ["API_TOKEN"]);
}

#[test]
fn file_order_pipeline_without_depends_on() {
    let spec = parse_ok(
        "steps:\n  - name: build\n    build: true\n  - name: check\n    from: build\n    commands: [make check]\n  - name: deploy\n    deploy: true\n",
    );
    assert!(!spec.is_dag());
    assert_eq!(spec.steps[0].kind, StepKind::Build(BuildStep::default()));
    assert_eq!(graph::dependencies(&spec.steps), Ok(vec![vec![], vec![0], vec![1]]));
}

#[test]
fn build_with_nothing_or_empty_map_means_the_service_settings() {
    for value in ["", " {}", " true"] {
        let spec = parse_ok(&format!("steps:\n  - name: b\n    build:{value}\n"));
        assert_eq!(spec.steps[0].kind, StepKind::Build(BuildStep::default()), "build:{value}");
    }
}

#[test]
fn durations_accept_seconds_and_units() {
    for (text, want) in [("90", 90), ("90s", 90), ("10m", 600), ("1h", 3600), ("1m30s", 90), ("24h", 86_400)]
    {
        let spec = parse_ok(&format!(
            "steps:\n  - name: a\n    image: busybox\n    commands: [x]\n    timeout: {text}\n"
        ));
        assert_eq!(spec.steps[0].timeout, Some(Duration::from_secs(want)), "{text}");
    }
}

#[test]
fn matrix_of_axes_expands_to_every_combination() {
    let spec = parse_ok("matrix:\n  GO: [\"1.21\", 1.22]\n  DB: [pg, mysql]\nsteps:\n  - name: a\n    image: busybox\n    commands: [x]\n");
    let m = spec.matrix.as_ref().expect("matrix");
    assert_eq!(m.count(), 4);
    let combos = m.combinations();
    let pair = |g: &str, d: &str| vec![("GO".to_string(), g.to_string()), ("DB".to_string(), d.to_string())];
    assert_eq!(
        combos,
        vec![pair("1.21", "pg"), pair("1.21", "mysql"), pair("1.22", "pg"), pair("1.22", "mysql")]
    );
}

#[test]
fn include_matrix_lists_its_combinations() {
    let spec = parse_ok(
        "matrix:\n  include:\n    - {GO: 1.22, DB: pg}\n    - {GO: 1.23}\nsteps:\n  - name: a\n    image: busybox\n    commands: [x]\n",
    );
    let m = spec.matrix.as_ref().expect("matrix");
    assert_eq!(
        m.combinations(),
        vec![
            vec![("GO".to_string(), "1.22".to_string()), ("DB".to_string(), "pg".to_string())],
            vec![("GO".to_string(), "1.23".to_string())],
        ]
    );
}

#[test]
fn matrix_of_exactly_32_is_accepted() {
    let spec = parse_ok("matrix:\n  A: [1, 2, 3, 4]\n  B: [1, 2, 3, 4, 5, 6, 7, 8]\nsteps:\n  - name: a\n    image: busybox\n    commands: [x]\n");
    assert_eq!(spec.matrix.map(|m| m.count()), Some(32));
}

#[test]
fn when_forms_parse() {
    let spec = parse_ok(
        r#"steps:
  - name: a
    image: busybox
    commands: [x]
    when:
      - branch: main
        event: [push, manual]
      - event: tag
      - path: {include: ["src/**"], exclude: ["**/*.md"]}
        status: [success, failure]
"#,
    );
    let w = spec.steps[0].when.as_ref().expect("when");
    assert_eq!(w.any_of.len(), 3);
    assert_eq!(w.any_of[0].event, Some(vec![Event::Push, Event::Manual]));
    assert_eq!(w.any_of[1].event, Some(vec![Event::Tag]));
    let path = w.any_of[2].path.as_ref().expect("path");
    assert_eq!(path.include.as_ref().map(|g| g.patterns().to_vec()), Some(vec!["src/**".to_string()]));
    assert_eq!(w.any_of[2].status, Some(vec![StatusFilter::Success, StatusFilter::Failure]));
}

#[test]
fn anchors_and_aliases_are_copied() {
    let spec = parse_ok(
        "steps:\n  - name: a\n    image: busybox\n    environment: &env {A: '1'}\n    commands: [x]\n  - name: b\n    image: busybox\n    environment: *env\n    commands: [y]\n",
    );
    assert_eq!(spec.steps[1].environment, vec![("A".to_string(), EnvValue::Literal("1".into()))]);
}

#[test]
fn implicit_pipeline_is_build_then_deploy() {
    let with = Spec::implicit(true);
    let kinds: Vec<&str> = with.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["build", "deploy"]);
    assert_eq!(with.steps[1].name, "deploy");
    let without = Spec::implicit(false);
    assert_eq!(without.steps.len(), 1);
    assert_eq!(without.steps[0].name, "build");
    assert!(!with.is_dag());
}
