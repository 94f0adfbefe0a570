//! Pipeline runs through the real build job, on the real engine: a
//! `.slipway.yml` in a real git repository, steps in busybox containers,
//! the run's own image, a service container, a deploy; every step recorded
//! in `build_steps`; failures, `failure: ignore`, a matrix, an invalid file,
//! a secret, and cancel leaving nothing behind.

use std::time::Duration;

use app::wire::Role;
use server::{
    builds::{Build, TriggerBuild},
    jobs::JobStatus,
    projects::Service,
    service_env::{self, EnvInput},
    testkit::{
        engine::{anyhow_of, user},
        wait::wait_until,
        DockerKit, GitRepo, TestEngine, BASE_IMAGE,
    },
};

const LIMIT: Duration = Duration::from_secs(240);

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StepRow {
    pub variant: i64,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub exit_code: Option<i64>,
    pub ignored: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub healthy_ms: Option<i64>,
}

pub(crate) async fn steps(t: &TestEngine, build_id: i64) -> anyhow::Result<Vec<StepRow>> {
    Ok(sqlx::query_as(
        "SELECT variant, name, kind, status, exit_code, ignored, started_at, finished_at, healthy_ms \
         FROM build_steps WHERE build_id = ? ORDER BY variant, id",
    )
    .bind(build_id)
    .fetch_all(&t.engine.db)
    .await?)
}

pub(crate) fn step<'a>(rows: &'a [StepRow], name: &str) -> &'a StepRow {
    rows.iter()
        .find(|r| r.name == name && r.variant == 0)
        .unwrap_or_else(|| panic!("no step {name}: {rows:?}"))
}

pub(crate) fn at(ts: &Option<String>) -> chrono::DateTime<chrono::Utc> {
    ts.as_deref().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("no time: {ts:?}"))
}

pub(crate) async fn run(t: &TestEngine, service: &Service) -> anyhow::Result<(Build, String)> {
    let queued = t
        .engine
        .trigger_build(&user(Role::Deployer), TriggerBuild::manual_build_only(service.id))
        .await
        .map_err(anyhow_of)?;
    let done = t.wait_build(queued.id, LIMIT).await?;
    let log = t.engine.build_log(&user(Role::Viewer), done.id, 0).await.map_err(anyhow_of)?;
    let text =
        log.iter().map(|l| format!("[{}] {}", l.step.as_deref().unwrap_or("-"), l.text)).collect::<Vec<_>>();
    Ok((done, text.join("\n")))
}

#[tokio::test]
async fn a_pipeline_runs_steps_as_soon_as_their_dependencies_end_and_deploys_its_image() -> anyhow::Result<()>
{
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service(&format!("piped {}", kit.run_id))?;
    let secret = format!("s3cret-{}", kit.run_id);
    repo.write("stamp", "from the checkout")?;
    repo.write(
        ".slipway.yml",
        &format!(
            "services:\n  cache:\n    image: {BASE_IMAGE}\n    command: [\"httpd\", \"-f\", \"-p\", \"8081\", \"-h\", \"/etc\"]\n    \
             healthcheck:\n      cmd: [\"wget\", \"-qO-\", \"http://127.0.0.1:8081/passwd\"]\n      interval: 1s\n\
             steps:\n\
             \x20 - name: slow\n    image: {BASE_IMAGE}\n    depends_on: []\n    commands: [\"sleep 3\", \"echo slow-done\"]\n\
             \x20 - name: other\n    image: {BASE_IMAGE}\n    depends_on: []\n    commands: [\"sleep 3\", \"cat /workspace/stamp\"]\n\
             \x20 - name: fast\n    image: {BASE_IMAGE}\n    depends_on: []\n    \
             commands: [\"wget -qO- http://cache:8081/passwd | head -n 1\", \"echo token=$TOKEN\"]\n    \
             environment:\n      TOKEN: {{from_secret: API_TOKEN}}\n\
             \x20 - name: after-fast\n    image: {BASE_IMAGE}\n    depends_on: [fast]\n    commands: [\"echo after\"]\n\
             \x20 - name: build\n    build: {{}}\n    depends_on: []\n\
             \x20 - name: test\n    from: build\n    depends_on: [build]\n    commands: [\"cat /www/index.html\"]\n\
             \x20 - name: ship\n    deploy: true\n    depends_on: [test, slow, other, after-fast]\n"
        ),
    )?;
    repo.commit("pipeline")?;
    let service = t.service("pipe", "web", &repo.url()).await?;
    let env = vec![EnvInput { name: "API_TOKEN".into(), value: Some(secret.clone()), secret: true }];
    service_env::replace(&t.engine.db, &t.engine.secrets, service.id, &env).await?;

    let (done, log) = run(&t, &service).await?;
    assert_eq!(done.status, JobStatus::Succeeded, "{:?}\n{log}", done.error);
    let rows = steps(&t, done.id).await?;
    for name in ["slow", "other", "fast", "after-fast", "build", "test", "ship"] {
        assert_eq!(step(&rows, name).status, "success", "{name}: {rows:?}\n{log}");
    }
    let cache = rows.iter().find(|r| r.kind == "service").expect("the service row");
    assert_eq!((cache.name.as_str(), cache.status.as_str()), ("cache", "success"));
    assert!(cache.healthy_ms.is_some());
    // Two independent 3 s steps: both within 5 s of wall time.
    let (slow, other) = (step(&rows, "slow"), step(&rows, "other"));
    let span =
        at(&slow.finished_at).max(at(&other.finished_at)) - at(&slow.started_at).min(at(&other.started_at));
    assert!(span < chrono::Duration::seconds(5), "slow and other took {span} together");
    // A step that depends only on a fast step starts before the slow one ends.
    assert!(at(&step(&rows, "after-fast").started_at) < at(&slow.finished_at), "{rows:?}");
    // Lines carry their step; the service answered by name; the checkout is there.
    assert!(log.contains("[other] from the checkout"), "{log}");
    assert!(log.contains("[fast] root:x:0:0"), "{log}");
    assert!(log.contains("[test] piped"), "{log}");
    assert!(log.contains("[fast] + echo token=$TOKEN"), "the command is echoed first:\n{log}");
    // The secret: masked in the log, never in the data dir.
    assert!(log.contains("[fast] token=********") && !log.contains(&secret), "{log}");
    // The deploy step deployed this run's image.
    let live = t.engine.live_of(service.id).await?.expect("a live deployment");
    assert_eq!(Some(live.image_id.clone()), done.image_id);
    assert_eq!(live.build_id, Some(done.id));
    assert_eq!(kit.run_leftovers(done.id).await?, 0, "the run left containers, networks or volumes");
    Ok(())
}

#[tokio::test]
async fn a_failure_skips_its_dependents_runs_failure_steps_and_ignore_does_not_fail() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service("failing")?;
    let entry = |name: &str, deps: &str, commands: &str, extra: &str| {
        format!("  - name: {name}\n    image: {BASE_IMAGE}\n    depends_on: [{deps}]\n    commands: [{commands}]\n{extra}")
    };
    let file = [
        "steps:\n".to_string(),
        entry("breaks", "", "\"echo one\", \"exit 3\", \"echo never\"", ""),
        entry("after", "breaks", "\"echo after\"", ""),
        entry("report", "breaks", "\"echo reporting\"", "    when:\n      status: [failure]\n"),
        entry("independent", "", "\"sleep 1\", \"echo independent\"", ""),
        entry("flaky", "", "\"exit 2\"", "    failure: ignore\n"),
    ]
    .concat();
    repo.write(".slipway.yml", &file)?;
    repo.commit("failing pipeline")?;
    let service = t.service("pipe", "fail", &repo.url()).await?;
    let (done, log) = run(&t, &service).await?;
    assert_eq!(done.status, JobStatus::Failed, "{log}");
    let error = done.error.clone().unwrap_or_default();
    assert!(error.contains("step breaks failed: exited with code 3"), "{error}");
    let rows = steps(&t, done.id).await?;
    let status = |name: &str| step(&rows, name).status.clone();
    assert_eq!(status("breaks"), "failure");
    assert_eq!(step(&rows, "breaks").exit_code, Some(3));
    assert_eq!(status("after"), "skipped", "{rows:?}");
    assert_eq!(status("report"), "success", "{rows:?}");
    assert_eq!(status("independent"), "success", "{rows:?}");
    let flaky = step(&rows, "flaky");
    assert!(flaky.status == "failure" && flaky.ignored, "{rows:?}");
    assert!(
        log.contains("[breaks] one") && !log.contains("never"),
        "sh -e stops at the failing line:\n{log}"
    );
    Ok(())
}

#[tokio::test]
async fn a_matrix_runs_each_variant_with_its_axes_and_ignore_alone_succeeds() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service("matrix")?;
    repo.write(
        ".slipway.yml",
        &format!(
            "matrix:\n  N: [\"1\", \"2\", \"3\"]\nsteps:\n  - name: show\n    image: {BASE_IMAGE}\n    \
             commands: [\"echo variant-$N\"]\n  - name: flaky\n    image: {BASE_IMAGE}\n    \
             commands: [\"exit 1\"]\n    failure: ignore\n"
        ),
    )?;
    repo.commit("matrix")?;
    let service = t.service("pipe", "matrix", &repo.url()).await?;
    let (done, log) = run(&t, &service).await?;
    assert_eq!(done.status, JobStatus::Succeeded, "{:?}\n{log}", done.error);
    let rows = steps(&t, done.id).await?;
    let variants: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.variant).collect();
    assert_eq!(variants.len(), 3, "{rows:?}");
    for n in 1..=3 {
        assert!(log.contains(&format!("[show] variant-{n}")), "{log}");
    }
    assert!(done.image_id.is_none(), "no build step, no image");
    Ok(())
}

#[tokio::test]
async fn an_invalid_or_hostile_file_fails_the_run_before_anything_starts() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service("invalid")?;
    repo.write(
        ".slipway.yml",
        &format!("steps:\n  - name: a\n    image: {BASE_IMAGE}\n    commands: [\"true\"]\n    colour: red\n"),
    )?;
    repo.commit("unknown key")?;
    let service = t.service("pipe", "invalid", &repo.url()).await?;
    let (done, log) = run(&t, &service).await?;
    assert_eq!(done.status, JobStatus::Failed, "{log}");
    let error = done.error.clone().unwrap_or_default();
    assert!(error.contains(".slipway.yml is invalid: line 5, column 5: steps[0].colour"), "{error}");
    let stored: Option<String> = sqlx::query_scalar("SELECT pipeline_errors FROM builds WHERE id = ?")
        .bind(done.id)
        .fetch_one(&t.engine.db)
        .await?;
    let errors: serde_json::Value = serde_json::from_str(&stored.unwrap_or_default())?;
    assert_eq!(errors[0]["line"], 5, "{errors}");
    assert_eq!(errors[0]["field"], "steps[0].colour", "{errors}");
    assert!(steps(&t, done.id).await?.is_empty(), "nothing was planned");

    repo.write(
        ".slipway.yml",
        &format!(
            "steps:\n  - name: a\n    image: {BASE_IMAGE}\n    commands: [\"touch /tmp/escaped\"]\n    \
             volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n"
        ),
    )?;
    repo.commit("docker socket")?;
    let (done, log) = run(&t, &service).await?;
    assert_eq!(done.status, JobStatus::Failed, "{log}");
    let error = done.error.clone().unwrap_or_default();
    assert!(error.contains("steps[0].volumes") && error.contains("never allowed"), "{error}");
    assert!(steps(&t, done.id).await?.is_empty());
    assert_eq!(kit.run_leftovers(done.id).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_cancelled_run_stops_its_step_and_leaves_nothing_and_a_rollback_does_not_wait() -> anyhow::Result<()>
{
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service("v1")?;
    let service = t.service("pipe", "cancel", &repo.url()).await?;
    // Two implicit builds deploy v1 and v2: a rollback has a target.
    for body in ["one", "two"] {
        repo.write("index.html", body)?;
        repo.commit(body)?;
        let req = TriggerBuild { deploy: true, ..TriggerBuild::manual_build_only(service.id) };
        let req = TriggerBuild { build_only: false, ..req };
        let queued = t.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
        let built = t.wait_build(queued.id, LIMIT).await?;
        assert_eq!(built.status, JobStatus::Succeeded, "{:?}", built.error);
        let dep = t.deployment_of_build(built.id).await?;
        t.wait_deployment(dep, LIMIT).await?;
    }
    repo.write(
        ".slipway.yml",
        &format!("steps:\n  - name: long\n    image: {BASE_IMAGE}\n    commands: [\"echo started\", \"sleep 60\"]\n"),
    )?;
    repo.commit("long run")?;
    let queued = t
        .engine
        .trigger_build(&user(Role::Deployer), TriggerBuild::manual_build_only(service.id))
        .await
        .map_err(anyhow_of)?;
    wait_until("the long step to run", LIMIT, || async {
        let rows = steps(&t, queued.id).await?;
        Ok(rows.iter().find(|r| r.name == "long" && r.status == "running").map(|_| ()))
    })
    .await?;

    // A rollback while the run goes on: it never waits for the 60 s step.
    let earlier: i64 = sqlx::query_scalar(
        "SELECT id FROM deployments WHERE service_id = ? AND status = 'superseded' ORDER BY id DESC LIMIT 1",
    )
    .bind(service.id)
    .fetch_one(&t.engine.db)
    .await?;
    let started = std::time::Instant::now();
    let rollback =
        t.engine.rollback(&user(Role::Deployer), earlier, Some("during a run")).await.map_err(anyhow_of)?;
    let rolled = t.wait_deployment(rollback.id, Duration::from_secs(30)).await?;
    assert!(rolled.status.was_live(), "{rolled:?}");
    eprintln!("rollback during a run: live in {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(10), "the rollback waited {:?}", started.elapsed());
    let still: String = sqlx::query_scalar("SELECT status FROM builds WHERE id = ?")
        .bind(queued.id)
        .fetch_one(&t.engine.db)
        .await?;
    assert_eq!(still, "running", "the run was still going during the rollback");

    let cancel_at = std::time::Instant::now();
    t.engine.cancel_build(&user(Role::Deployer), queued.id).await.map_err(anyhow_of)?;
    let done = t.wait_build(queued.id, Duration::from_secs(30)).await?;
    assert_eq!(done.status, JobStatus::Cancelled);
    wait_until("the run's containers to go", Duration::from_secs(10), || async {
        Ok((kit.run_leftovers(queued.id).await? == 0).then_some(()))
    })
    .await?;
    assert!(cancel_at.elapsed() < Duration::from_secs(10), "cancel took {:?}", cancel_at.elapsed());
    let rows = steps(&t, queued.id).await?;
    assert_eq!(step(&rows, "long").status, "cancelled", "{rows:?}");
    Ok(())
}

#[tokio::test]
async fn a_newer_push_supersedes_the_running_run_of_its_branch() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service("supersede")?;
    repo.write(
        ".slipway.yml",
        &format!("steps:\n  - name: long\n    image: {BASE_IMAGE}\n    commands: [\"sleep 60\"]\n"),
    )?;
    let first_sha = repo.commit("first push")?;
    let service = t.service("pipe", "supersede", &repo.url()).await?;
    let push = |sha: String| TriggerBuild {
        git_ref: Some(sha),
        trigger: "webhook".into(),
        build_only: true,
        ..TriggerBuild::manual_build_only(service.id)
    };
    let first = t.engine.enqueue_build("webhook:github", push(first_sha)).await.map_err(anyhow_of)?;
    wait_until("the first run's step to run", LIMIT, || async {
        let rows = steps(&t, first.id).await?;
        Ok(rows.iter().find(|r| r.name == "long" && r.status == "running").map(|_| ()))
    })
    .await?;
    repo.write(
        ".slipway.yml",
        &format!("steps:\n  - name: quick\n    image: {BASE_IMAGE}\n    commands: [\"echo quick\"]\n"),
    )?;
    let second_sha = repo.commit("second push")?;
    let second = t.engine.enqueue_build("webhook:github", push(second_sha)).await.map_err(anyhow_of)?;
    let first = t.wait_build(first.id, Duration::from_secs(30)).await?;
    assert_eq!(first.status, JobStatus::Cancelled);
    assert_eq!(first.error.as_deref(), Some(format!("superseded by build #{}", second.number).as_str()));
    let second = t.wait_build(second.id, LIMIT).await?;
    assert_eq!(second.status, JobStatus::Succeeded, "{:?}", second.error);
    // The cancelled run's objects go right after its status is written.
    wait_until("the superseded run's containers to go", Duration::from_secs(30), || async {
        Ok((kit.run_leftovers(first.id).await? == 0).then_some(()))
    })
    .await?;
    Ok(())
}
