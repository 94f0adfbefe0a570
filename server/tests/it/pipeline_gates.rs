//! What decides whether a pipeline run, or a step of it, runs at all:
//! `[skip ci]` in the pushed commit, the file's top-level `when`, `path`
//! filters against the files changed since the branch's last successful
//! run, and the service's `supersede_runs` setting. Real engine, real git,
//! real containers.

use std::time::Duration;

use app::wire::Role;
use server::{
    builds::{Build, TriggerBuild},
    jobs::JobStatus,
    projects::{ProjectStore, Service},
    testkit::{
        engine::{anyhow_of, user},
        wait::wait_until,
        DockerKit, GitRepo, TestEngine, BASE_IMAGE,
    },
};

const LIMIT: Duration = Duration::from_secs(180);

fn push(service: &Service, sha: String) -> TriggerBuild {
    TriggerBuild {
        git_ref: Some(sha),
        trigger: "webhook".into(),
        build_only: true,
        ..TriggerBuild::manual_build_only(service.id)
    }
}

async fn pushed(t: &TestEngine, service: &Service, sha: String) -> anyhow::Result<Build> {
    let queued = t.engine.enqueue_build("webhook:github", push(service, sha)).await.map_err(anyhow_of)?;
    t.wait_build(queued.id, LIMIT).await
}

async fn log_of(t: &TestEngine, build_id: i64) -> anyhow::Result<String> {
    let log = t.engine.build_log(&user(Role::Viewer), build_id, 0).await.map_err(anyhow_of)?;
    Ok(log.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n"))
}

/// `(name, status)` of the run's steps, in file order.
async fn step_statuses(t: &TestEngine, build_id: i64) -> anyhow::Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT name, status FROM build_steps WHERE build_id = ? AND kind <> 'service' ORDER BY id",
    )
    .bind(build_id)
    .fetch_all(&t.engine.db)
    .await?)
}

fn echo_step(name: &str, extra: &str) -> String {
    format!("  - name: {name}\n    image: {BASE_IMAGE}\n    commands: [\"echo {name}-ran\"]\n{extra}")
}

#[tokio::test]
async fn a_skip_ci_push_is_recorded_skipped_and_runs_when_started_by_hand() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service("skip")?;
    repo.write(".slipway.yml", &format!("steps:\n{}", echo_step("only", "")))?;
    let sha = repo.commit("docs: typo\n\nNothing to test here [skip ci]")?;
    let service = t.service("gates", "skip", &repo.url()).await?;

    let skipped = pushed(&t, &service, sha.clone()).await?;
    let log = log_of(&t, skipped.id).await?;
    assert_eq!(skipped.status, JobStatus::Skipped, "{:?}\n{log}", skipped.error);
    assert_eq!(skipped.status.as_str(), "skipped");
    assert!(log.contains("Run skipped: the head commit's message says [skip ci]"), "{log}");
    assert!(!log.contains("only-ran"), "{log}");
    assert!(step_statuses(&t, skipped.id).await?.is_empty(), "a skipped run has no steps");
    assert_eq!(skipped.image_id, None);

    // The same commit, started by hand: an explicit run always runs.
    let queued = t
        .engine
        .trigger_build(
            &user(Role::Deployer),
            TriggerBuild { git_ref: Some(sha), ..TriggerBuild::manual_build_only(service.id) },
        )
        .await
        .map_err(anyhow_of)?;
    let ran = t.wait_build(queued.id, LIMIT).await?;
    assert_eq!(ran.status, JobStatus::Succeeded, "{:?}", ran.error);
    assert!(log_of(&t, ran.id).await?.contains("only-ran"));
    Ok(())
}

#[tokio::test]
async fn a_file_whose_when_does_not_match_records_a_skipped_run() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service("gated")?;
    repo.write(
        ".slipway.yml",
        &format!("when:\n  branch: [\"release/*\"]\nsteps:\n{}", echo_step("only", "")),
    )?;
    let sha = repo.commit("gated pipeline")?;
    let service = t.service("gates", "when", &repo.url()).await?;
    let run = pushed(&t, &service, sha).await?;
    let log = log_of(&t, run.id).await?;
    assert_eq!(run.status, JobStatus::Skipped, "{:?}\n{log}", run.error);
    assert!(log.contains("Run skipped: .slipway.yml:"), "{log}");
    assert!(!log.contains("only-ran"), "{log}");
    Ok(())
}

#[tokio::test]
async fn path_filters_see_the_files_changed_since_the_last_successful_run() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service("paths")?;
    let file = [
        "steps:\n".to_string(),
        echo_step("docs", "    when:\n      path: [\"docs/**\"]\n"),
        echo_step(
            "code",
            "    when:\n      path:\n        include: [\"src/**\"]\n        exclude: [\"src/**/*.md\"]\n",
        ),
        echo_step("always", ""),
    ]
    .concat();
    repo.write(".slipway.yml", &file)?;
    repo.write("src/main.c", "int main() { return 0; }\n")?;
    let first = repo.commit("first")?;
    let service = t.service("gates", "paths", &repo.url()).await?;

    // No earlier successful run: every path filter matches.
    let run = pushed(&t, &service, first).await?;
    assert_eq!(run.status, JobStatus::Succeeded, "{:?}", run.error);
    let log = log_of(&t, run.id).await?;
    assert!(log.contains("Changed files unknown (no earlier successful run of this branch)"), "{log}");
    let all_ran = ["docs", "code", "always"].map(|n| (n.to_string(), "success".to_string())).to_vec();
    assert_eq!(step_statuses(&t, run.id).await?, all_ran);

    // Only docs changed (and a markdown file the code filter excludes).
    repo.write("docs/guide.md", "# Guide\n")?;
    repo.write("src/notes.md", "notes\n")?;
    let second = repo.commit("docs only")?;
    let run = pushed(&t, &service, second).await?;
    assert_eq!(run.status, JobStatus::Succeeded, "{:?}", run.error);
    let log = log_of(&t, run.id).await?;
    assert!(log.contains("2 files changed since"), "{log}");
    let statuses = step_statuses(&t, run.id).await?;
    let status = |name: &str| statuses.iter().find(|(n, _)| n == name).map(|(_, s)| s.clone());
    assert_eq!(status("docs").as_deref(), Some("success"), "{statuses:?}");
    assert_eq!(status("always").as_deref(), Some("success"), "{statuses:?}");
    assert!(!log.contains("code-ran"), "the code step ran on a docs-only change:\n{log}");
    assert_ne!(status("code").as_deref(), Some("success"), "{statuses:?}");

    // Code changed: compared with the docs run (the last success).
    repo.write("src/main.c", "int main() { return 1; }\n")?;
    let third = repo.commit("code")?;
    let run = pushed(&t, &service, third).await?;
    let log = log_of(&t, run.id).await?;
    assert!(log.contains("1 files changed since"), "{log}");
    assert!(log.contains("code-ran") && !log.contains("docs-ran"), "{log}");
    Ok(())
}

#[tokio::test]
async fn with_supersede_off_an_older_pushed_run_finishes() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service("keep")?;
    repo.write(
        ".slipway.yml",
        &format!("steps:\n  - name: slow\n    image: {BASE_IMAGE}\n    commands: [\"sleep 4\", \"echo slow-ran\"]\n"),
    )?;
    let first_sha = repo.commit("first push")?;
    let service = t.service("gates", "keep", &repo.url()).await?;
    let store = ProjectStore::new(t.engine.db.clone());
    let mut spec = service.spec.clone();
    spec.supersede_runs = false;
    let service = store.update_service(service.id, &spec).await?;
    assert!(!service.spec.supersede_runs);

    let first =
        t.engine.enqueue_build("webhook:github", push(&service, first_sha)).await.map_err(anyhow_of)?;
    wait_until("the first run's step to run", LIMIT, || async {
        let rows = step_statuses(&t, first.id).await?;
        Ok(rows.iter().any(|(n, s)| n == "slow" && s == "running").then_some(()))
    })
    .await?;
    repo.write("more", "x")?;
    let second_sha = repo.commit("second push")?;
    let second =
        t.engine.enqueue_build("webhook:github", push(&service, second_sha)).await.map_err(anyhow_of)?;
    let first = t.wait_build(first.id, LIMIT).await?;
    assert_eq!(first.status, JobStatus::Succeeded, "{:?}", first.error);
    assert_eq!(first.error, None);
    let second = t.wait_build(second.id, LIMIT).await?;
    assert_eq!(second.status, JobStatus::Succeeded, "{:?}", second.error);
    Ok(())
}

#[tokio::test]
async fn a_step_over_its_timeout_is_killed_and_the_run_fails_leaving_nothing() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service("timeout")?;
    let file = format!(
        "steps:\n  - name: stuck\n    image: {BASE_IMAGE}\n    timeout: 2s\n    commands: [\"sleep 60\"]\n\
         \x20 - name: after\n    image: {BASE_IMAGE}\n    commands: [\"echo after-ran\"]\n"
    );
    repo.write(".slipway.yml", &file)?;
    let sha = repo.commit("a stuck step")?;
    let service = t.service("gates", "timeout", &repo.url()).await?;
    let started = std::time::Instant::now();
    let run = pushed(&t, &service, sha).await?;
    let took = started.elapsed();
    assert_eq!(run.status, JobStatus::Failed, "{:?}", run.error);
    assert!(took < Duration::from_secs(40), "a 2 s step timeout ended the run after {took:?}");
    let statuses = step_statuses(&t, run.id).await?;
    assert_eq!(
        statuses,
        vec![("stuck".to_string(), "killed".to_string()), ("after".to_string(), "skipped".to_string())],
        "{:?}\n{}",
        run.error,
        log_of(&t, run.id).await?
    );
    assert!(!log_of(&t, run.id).await?.contains("after-ran"));
    wait_until("the run's objects to go", Duration::from_secs(20), || async {
        Ok((kit.run_leftovers(run.id).await? == 0).then_some(()))
    })
    .await?;
    Ok(())
}
