//! Crash recovery against the real `slipway serve` process: a job is started,
//! the process is killed with SIGKILL at a chosen phase (checkout, Docker
//! build step, container start, health wait) and started again on the same
//! data dir. After the restart no job, build or deployment may be left
//! `running`/`starting` from the dead process; a build is retried once (and
//! `interrupted` for good after a second crash); a deploy is `failed` with an
//! interrupted reason and its container is gone; containers no live
//! deployment claims are removed, the live one keeps running.
//!
//! The test process opens the same SQLite file (WAL) only to create
//! services, enqueue builds and deploys and read rows; the server's workers
//! pick the jobs up by polling. Every Docker object the server makes carries
//! the installation's `dev.slipway.instance` label: [`Harness`] removes them
//! by that label when dropped, also when a test panics, and prints the
//! server log of a failed test (of every test with `SLIPWAY_TEST_SHOW_LOG=1`).

use std::collections::HashMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use app::wire::Role;
use server::testkit::docker::{process_running, process_with};
use server::testkit::wait::{unique_suffix, wait_until};
use server::{
    builds::{Build, BuildStatus, TriggerBuild},
    db::Db,
    deploys::{DeployRequest, Deployment, DeploymentStatus},
    docker::{containers::ContainerSpec, labels},
    engine::Engine,
    logs::{LogHub, LogLine},
    projects::{HealthCheck, HealthProbe, ProjectStore, Service, ServiceSpec},
    testkit::{
        engine::{anyhow_of, quick_http_check, user},
        process::{server_log_len, server_log_path, server_log_since},
        GitRepo, Installation, ServerProcess, BASE_IMAGE,
    },
};

/// Upper bound for anything the tests wait for.
const LIMIT: Duration = Duration::from_secs(60);
/// A build (or a retried one) must finish within this.
const BUILD_LIMIT: Duration = Duration::from_secs(120);

// ------------------------------------------------------------------ harness --

/// One installation under test: a data dir, a `slipway serve` process on it
/// (started, killed, restarted), and an engine in the test process on the
/// same database for enqueueing and reading rows.
///
/// Fields drop in order: the server is killed first, then the Docker objects
/// of the installation are removed, then the data dir.
struct Harness {
    server: Option<ServerProcess>,
    engine: Engine,
    db: Db,
    /// `instance.uid`, on every Docker object the server makes.
    uid: String,
    unique: String,
    project_id: i64,
    passed: bool,
    inst: Installation,
}

impl Harness {
    async fn new() -> anyhow::Result<Harness> {
        let inst = Installation::open(env!("CARGO_BIN_EXE_slipway")).await?;
        let unique = unique_suffix();
        let project = ProjectStore::new(inst.db.clone()).create_project(&format!("crash-{unique}")).await?;
        Ok(Harness {
            server: None,
            engine: inst.engine.clone(),
            db: inst.db.clone(),
            uid: inst.uid.clone(),
            unique,
            project_id: project.id,
            passed: false,
            inst,
        })
    }

    /// A service `<name>-<unique>` (container names are global to the Docker
    /// engine, so they must not collide with other tests) on port 8080.
    async fn service(&self, name: &str, git_url: &str, health: HealthCheck) -> anyhow::Result<Service> {
        let mut spec = ServiceSpec::new(format!("{name}-{}", self.unique), git_url, 8080);
        spec.health = health;
        spec.drain_secs = 0;
        Ok(ProjectStore::new(self.db.clone()).create_service(self.project_id, &spec).await?)
    }

    async fn set_health(&self, service_id: i64, health: HealthCheck) -> anyhow::Result<()> {
        let store = ProjectStore::new(self.db.clone());
        let mut spec = store.get_service(service_id).await?.spec;
        spec.health = health;
        store.update_service(service_id, &spec).await?;
        Ok(())
    }

    /// Starts `slipway serve` on the data dir and waits until it serves (so
    /// startup recovery is done). Returns the time just before the start, as
    /// stored in the database, and where this run's part of the log begins.
    async fn start_server(&mut self) -> anyhow::Result<(String, usize)> {
        assert!(self.server.is_none(), "a server is already running");
        let log_start = self.log_len();
        let started_at = server::db::now_rfc3339();
        let began = Instant::now();
        let server = self.inst.start_server().await?;
        eprintln!("slipway serve ready in {:.2} s", began.elapsed().as_secs_f64());
        self.server = Some(server);
        Ok((started_at, log_start))
    }

    /// SIGKILL, as a crash would (the process is reaped).
    fn kill(&mut self) {
        let mut server = self.server.take().expect("no server to kill");
        server.kill();
        eprintln!("slipway serve killed (SIGKILL)");
    }

    fn log_path(&self) -> PathBuf {
        server_log_path(self.inst.data_path())
    }

    fn log_len(&self) -> usize {
        server_log_len(self.inst.data_path())
    }

    fn log_since(&self, from: usize) -> String {
        server_log_since(self.inst.data_path(), from)
    }

    async fn build(&self, id: i64) -> anyhow::Result<Build> {
        self.engine.get_build(&user(Role::Viewer), id).await.map_err(anyhow_of)
    }

    async fn deployment(&self, id: i64) -> anyhow::Result<Deployment> {
        self.engine.get_deployment(&user(Role::Viewer), id).await.map_err(anyhow_of)
    }

    async fn job(&self, id: Option<i64>) -> anyhow::Result<JobRow> {
        let id = id.context("the row has no job")?;
        let (status, attempts, max_attempts, phase, last_error) =
            sqlx::query_as::<_, (String, i64, i64, Option<String>, Option<String>)>(
                "SELECT status, attempts, max_attempts, phase, last_error FROM jobs WHERE id = ?",
            )
            .bind(id)
            .fetch_one(&self.db)
            .await?;
        Ok(JobRow { status, attempts, max_attempts, phase, last_error })
    }

    async fn enqueue_build(&self, service_id: i64, deploy: bool) -> anyhow::Result<Build> {
        let req = TriggerBuild {
            service_id,
            git_ref: None,
            trigger: "manual".into(),
            deploy,
            build_only: !deploy,
            no_cache: false,
            group: None,
        };
        self.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)
    }

    /// Waits until the build has ended and so has its job (the job row is
    /// finished just after the build row).
    async fn wait_build_done(&self, id: i64, limit: Duration) -> anyhow::Result<Build> {
        wait_until(&format!("build {id} to finish"), limit, || async move {
            let build = self.build(id).await?;
            if !build.status.is_terminal() {
                return Ok(None);
            }
            let job = self.job(build.job_id).await?;
            Ok((job.status != "queued" && job.status != "running").then_some(build))
        })
        .await
    }

    /// Waits until the deployment is live or failed and its job has ended.
    async fn wait_deployment_done(&self, id: i64, limit: Duration) -> anyhow::Result<Deployment> {
        wait_until(&format!("deployment {id} to settle"), limit, || async move {
            let dep = self.deployment(id).await?;
            let settled = dep.status.was_live() || dep.status == DeploymentStatus::Failed;
            let job = self.job(dep.job_id).await?;
            Ok((settled && job.status != "queued" && job.status != "running").then_some(dep))
        })
        .await
    }

    async fn build_log(&self, id: i64) -> anyhow::Result<Vec<LogLine>> {
        Ok(LogHub::new(self.inst.data_path()).read_from(id, 0).await?)
    }

    /// Containers (running or not) of this installation, with extra labels.
    async fn containers(&self, extra: &[(&str, &str)]) -> anyhow::Result<Vec<String>> {
        self.inst.containers(extra).await
    }

    async fn container_running(&self, id: &str) -> anyhow::Result<Option<bool>> {
        Ok(self.engine.docker.container_state(id).await?.map(|s| s.running))
    }

    /// Waits until `container` no longer exists and no container of the
    /// installation is left; returns how long that took.
    async fn wait_containers_gone(&self, container: &str) -> anyhow::Result<Duration> {
        let start = Instant::now();
        wait_until(&format!("container {container} to be removed"), Duration::from_secs(20), || async move {
            let state = self.engine.docker.container_state(container).await?;
            Ok((state.is_none() && self.containers(&[]).await?.is_empty()).then_some(()))
        })
        .await
        .with_context(|| format!("still there: {container}"))?;
        Ok(start.elapsed())
    }

    /// Nothing the dead process was doing is still marked as in progress:
    /// every running job and build, and every starting deployment, was
    /// started by the new process (at or after `restarted_at`).
    async fn assert_no_stale_running(&self, restarted_at: &str) -> anyhow::Result<()> {
        let jobs: Vec<(i64, String, Option<String>)> = sqlx::query_as(
            "SELECT id, kind, started_at FROM jobs WHERE status = 'running' \
             AND (started_at IS NULL OR started_at < ?)",
        )
        .bind(restarted_at)
        .fetch_all(&self.db)
        .await?;
        ensure!(jobs.is_empty(), "jobs of the killed process still running after the restart: {jobs:?}");
        let builds: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT id, attempt, started_at FROM builds WHERE status = 'running' \
             AND (started_at IS NULL OR started_at < ?)",
        )
        .bind(restarted_at)
        .fetch_all(&self.db)
        .await?;
        ensure!(
            builds.is_empty(),
            "builds of the killed process still running after the restart: {builds:?}"
        );
        let deployments: Vec<(i64, String, Option<String>)> = sqlx::query_as(
            "SELECT id, status, started_at FROM deployments WHERE status IN ('pending', 'starting') \
             AND (started_at IS NULL OR started_at < ?)",
        )
        .bind(restarted_at)
        .fetch_all(&self.db)
        .await?;
        // A pending deployment whose job is still queued is fine; one that
        // was starting in the dead process is not.
        let stale: Vec<_> = deployments.iter().filter(|(_, status, _)| status == "starting").collect();
        ensure!(stale.is_empty(), "deployments of the killed process still starting: {stale:?}");
        Ok(())
    }

    /// No job, build or deployment is queued or in progress.
    async fn assert_all_settled(&self) -> anyhow::Result<()> {
        let jobs: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, kind, status FROM jobs WHERE status IN ('queued', 'running')")
                .fetch_all(&self.db)
                .await?;
        ensure!(jobs.is_empty(), "unfinished jobs: {jobs:?}");
        let builds: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, status FROM builds WHERE status IN ('queued', 'running')")
                .fetch_all(&self.db)
                .await?;
        ensure!(builds.is_empty(), "unfinished builds: {builds:?}");
        let deployments: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, status FROM deployments WHERE status IN ('pending', 'starting')")
                .fetch_all(&self.db)
                .await?;
        ensure!(deployments.is_empty(), "unfinished deployments: {deployments:?}");
        Ok(())
    }

    /// Marks the test as passed: the server log is not printed.
    fn passed(&mut self) {
        self.passed = true;
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(server) = self.server.as_mut() {
            server.kill();
        }
        let asked = std::env::var_os("SLIPWAY_TEST_SHOW_LOG").is_some();
        if !self.passed || std::thread::panicking() || asked {
            eprintln!(
                "---- slipway server log ({}) ----\n{}\n---- end of server log ----",
                self.log_path().display(),
                self.log_since(0)
            );
        }
    }
}

#[derive(Debug)]
struct JobRow {
    status: String,
    attempts: i64,
    max_attempts: i64,
    phase: Option<String>,
    last_error: Option<String>,
}

// ---------------------------------------------------- a git server that hangs --

/// A `git://` server that accepts connections and never answers, so a
/// checkout hangs in `git fetch` for as long as it is open.
struct HangingGitServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HangingGitServer {
    fn start() -> anyhow::Result<HangingGitServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (accepted, streams, stop) = (accepted.clone(), streams.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = stream.set_nonblocking(true);
                            streams.lock().unwrap_or_else(|e| e.into_inner()).push(stream);
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }
        });
        Ok(HangingGitServer { port, accepted, streams, stop, thread: Some(thread) })
    }

    fn url(&self) -> String {
        format!("git://127.0.0.1:{}/repo.git", self.port)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections whose client has not hung up (what it sent is drained).
    fn open_connections(&self) -> usize {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let mut open = 0;
        for stream in streams.iter_mut() {
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        open += 1;
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        open
    }
}

impl Drop for HangingGitServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Closing the connections ends every git process still waiting.
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

// ------------------------------------------------------------------ helpers --

fn log_text(lines: &[LogLine]) -> String {
    lines.iter().map(|l| format!("{:>4} {}", l.seq, l.text)).collect::<Vec<_>>().join("\n")
}

/// A health check that keeps failing (404) for minutes: the deploy stays in
/// its health wait.
fn never_healthy() -> HealthCheck {
    HealthCheck {
        probe: HealthProbe::Http { path: "/never-there.html".into() },
        interval_ms: 200,
        timeout_ms: 1000,
        retries: 1000,
        start_period_ms: 0,
    }
}

fn is_interrupted_reason(text: Option<&str>) -> bool {
    text.is_some_and(|t| t.contains("interrupted"))
}

/// The field `name=value` of the "engine started" line of a log part.
fn startup_field(log: &str, name: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("engine started"))?;
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    Some(line[start..].split_whitespace().next().unwrap_or_default().to_string())
}

// -------------------------------------------------------------------- tests --

/// Killed while the Docker builder runs a `RUN` step: the build is re-queued
/// (attempt 2) at restart, never left running, and the retry succeeds; the
/// step container of the dead attempt does not survive.
#[tokio::test]
async fn kill_during_a_build_step_requeues_the_build_and_the_retry_succeeds() -> anyhow::Result<()> {
    let test_start = Instant::now();
    let mut h = Harness::new().await?;
    let marker = format!("slow-step-done-{}", h.unique);
    let repo = GitRepo::new()?;
    repo.write("Dockerfile", &format!("FROM {BASE_IMAGE}\nRUN sleep 8 && echo {marker}\n"))?;
    repo.commit("a slow build step")?;
    let service = h.service("build", &repo.url(), quick_http_check("/")).await?;
    h.start_server().await?;

    let build = h.enqueue_build(service.id, false).await?;
    // Wait until the RUN step runs: BuildKit runs it as a process of the
    // daemon (no container); its command line holds the marker.
    let step_process = wait_until("the RUN step of attempt 1", LIMIT, || {
        let h = &h;
        let marker = &marker;
        async move {
            let b = h.build(build.id).await?;
            if b.status.is_terminal() {
                bail!("build ended before the kill: {} {:?}", b.status, b.error);
            }
            if b.status != BuildStatus::Running || b.phase.as_deref() != Some("build") {
                return Ok(None);
            }
            let lines = h.build_log(build.id).await?;
            if !lines.iter().any(|l| l.text.starts_with('#') && l.text.contains("2/2] RUN sleep 8")) {
                return Ok(None);
            }
            Ok(process_with(marker))
        }
    })
    .await?;
    let job_id = build.job_id;
    h.kill();

    // What the dead process left behind.
    let left = h.build(build.id).await?;
    assert_eq!(left.status, BuildStatus::Running, "{left:?}");
    assert_eq!(left.attempt, 1);
    assert_eq!(left.phase.as_deref(), Some("build"));
    assert_eq!(h.job(job_id).await?.status, "running");

    let (restarted_at, log_start) = h.start_server().await?;
    h.assert_no_stale_running(&restarted_at).await?;
    let after = h.build(build.id).await?;
    match after.status {
        // Not picked up yet: re-queued by the recovery hook.
        BuildStatus::Queued => {
            assert!(is_interrupted_reason(after.error.as_deref()), "{after:?}");
        }
        // Already picked up again by the new process.
        BuildStatus::Running => assert_eq!(after.attempt, 2, "{after:?}"),
        other => {
            panic!("after the restart the build is {other}, expected queued or running again: {after:?}")
        }
    }
    let job = h.job(job_id).await?;
    assert!(job.status == "queued" || job.status == "running", "{job:?}");
    assert!(job.last_error.as_deref().is_some_and(|e| e.contains("interrupted")), "{job:?}");
    let startup = h.log_since(log_start);
    assert_eq!(startup_field(&startup, "interrupted").as_deref(), Some("1"), "{startup}");
    assert_eq!(startup_field(&startup, "requeued").as_deref(), Some("1"), "{startup}");

    let done = h.wait_build_done(build.id, BUILD_LIMIT).await?;
    let lines = h.build_log(build.id).await?;
    let text = log_text(&lines);
    assert_eq!(done.status, BuildStatus::Succeeded, "{done:?}\n{text}");
    assert_eq!(done.attempt, 2, "{done:?}");
    assert!(done.error.is_none(), "{done:?}");
    assert!(done.image_id.as_deref().is_some_and(|i| i.starts_with("sha256:")), "{done:?}");
    let job = h.job(job_id).await?;
    assert_eq!((job.status.as_str(), job.attempts, job.max_attempts), ("succeeded", 2, 2), "{job:?}");
    assert!(text.contains("Slipway stopped while this build was running; it will run again"), "{text}");
    assert!(text.contains("(attempt 2)"), "{text}");
    // The step ran to its end once: in attempt 2, not in the killed attempt.
    // (`#N <seconds> <marker>`; the step's own line `#N [2/2] RUN …` holds it too.)
    let outputs =
        lines.iter().filter(|l| l.text.ends_with(&format!(" {marker}")) && !l.text.contains(" RUN ")).count();
    assert_eq!(outputs, 1, "{text}");
    // A retried build continues the numbering.
    assert!(lines.windows(2).all(|w| w[1].seq == w[0].seq + 1), "{text}");

    // The killed attempt's step was stopped by the daemon when the build
    // request died with the process.
    wait_until("the killed attempt's step to stop", Duration::from_secs(30), || async move {
        Ok((!process_running(step_process)).then_some(()))
    })
    .await?;
    assert!(h.containers(&[]).await?.is_empty(), "a build made containers");
    assert!(!h.engine.workspace(build.id).exists(), "the workspace was kept");
    h.assert_all_settled().await?;
    eprintln!("build-phase crash test took {:.1} s", test_start.elapsed().as_secs_f64());
    h.passed();
    Ok(())
}

/// Killed while `git fetch` waits on the remote, twice: the first crash
/// re-queues the build (attempt 2), the second leaves it `interrupted` for
/// good (no attempts left), never `running`.
#[tokio::test]
async fn kill_during_checkout_retries_once_then_leaves_the_build_interrupted() -> anyhow::Result<()> {
    let test_start = Instant::now();
    let git = HangingGitServer::start()?;
    let mut h = Harness::new().await?;
    let service = h.service("checkout", &git.url(), quick_http_check("/")).await?;
    h.start_server().await?;

    let build = h.enqueue_build(service.id, false).await?;
    let job_id = build.job_id;
    for attempt in 1..=2i64 {
        let git = &git;
        wait_until(&format!("attempt {attempt} to hang in checkout"), LIMIT, || {
            let h = &h;
            async move {
                let b = h.build(build.id).await?;
                if b.status.is_terminal() {
                    bail!("build ended before the kill: {} {:?}", b.status, b.error);
                }
                let hanging = b.status == BuildStatus::Running
                    && b.attempt == attempt
                    && b.phase.as_deref() == Some("checkout")
                    && git.accepted() >= attempt as usize;
                Ok(hanging.then_some(()))
            }
        })
        .await?;
        // Let git sit in the fetch for a moment.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let job = h.job(job_id).await?;
        assert_eq!(
            (job.status.as_str(), job.attempts, job.phase.as_deref()),
            ("running", attempt, Some("checkout"))
        );
        h.kill();
        eprintln!(
            "after the kill in attempt {attempt}: {} git connection(s) still open (git children of the \
             killed server outlive it)",
            git.open_connections()
        );

        let (restarted_at, log_start) = h.start_server().await?;
        h.assert_no_stale_running(&restarted_at).await?;
        let startup = h.log_since(log_start);
        assert_eq!(startup_field(&startup, "interrupted").as_deref(), Some("1"), "{startup}");
        let b = h.build(build.id).await?;
        let job = h.job(job_id).await?;
        if attempt == 1 {
            assert_eq!(startup_field(&startup, "requeued").as_deref(), Some("1"), "{startup}");
            assert!(
                (b.status == BuildStatus::Queued && b.attempt == 1)
                    || (b.status == BuildStatus::Running && b.attempt == 2),
                "{b:?}"
            );
            assert!(job.status == "queued" || (job.status == "running" && job.attempts == 2), "{job:?}");
        } else {
            assert_eq!(startup_field(&startup, "requeued").as_deref(), Some("0"), "{startup}");
            assert_eq!(b.status, BuildStatus::Interrupted, "{b:?}");
            assert_eq!(b.attempt, 2, "{b:?}");
            assert!(is_interrupted_reason(b.error.as_deref()), "{b:?}");
            assert!(b.finished_at.is_some(), "{b:?}");
            assert_eq!(
                (job.status.as_str(), job.attempts, job.max_attempts),
                ("interrupted", 2, 2),
                "{job:?}"
            );
        }
    }

    // It is not picked up again: workers poll every second.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b = h.build(build.id).await?;
    assert_eq!(b.status, BuildStatus::Interrupted, "{b:?}");
    assert_eq!(h.job(job_id).await?.status, "interrupted");
    assert_eq!(git.accepted(), 2, "the build was fetched again after it was given up");
    let text = log_text(&h.build_log(build.id).await?);
    assert!(text.contains("it will run again"), "{text}");
    assert!(text.contains("it will not be retried"), "{text}");
    assert!(!h.engine.workspace(build.id).exists(), "the workspace was kept");
    assert!(h.containers(&[]).await?.is_empty());
    h.assert_all_settled().await?;
    drop(git);
    eprintln!("checkout-phase crash test took {:.1} s", test_start.elapsed().as_secs_f64());
    h.passed();
    Ok(())
}

/// Killed the moment the deployment's container exists (created or just
/// started, its id perhaps not yet recorded): at restart the deployment is
/// `failed` with an interrupted reason, its job `interrupted`, and the
/// container is removed.
#[tokio::test]
async fn kill_at_container_start_fails_the_deployment_and_removes_its_container() -> anyhow::Result<()> {
    let test_start = Instant::now();
    let mut h = Harness::new().await?;
    let repo = GitRepo::http_service(&format!("container start {}", h.unique))?;
    let service = h.service("start", &repo.url(), never_healthy()).await?;
    h.start_server().await?;
    let build = h.enqueue_build(service.id, false).await?;
    let built = h.wait_build_done(build.id, BUILD_LIMIT).await?;
    assert_eq!(built.status, BuildStatus::Succeeded, "{built:?}");

    let req = DeployRequest { service_id: service.id, build_id: Some(build.id), ..DeployRequest::default() };
    let dep = h.engine.deploy(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    let dep_label = dep.id.to_string();
    let started = Instant::now();
    // Killed once the Engine API's create call is done (the container can
    // be inspected): created or just started, its id perhaps not recorded.
    let container = loop {
        if let Some(id) = h.containers(&[(labels::DEPLOYMENT_ID, &dep_label)]).await?.into_iter().next() {
            if h.engine.docker.container_state(&id).await?.is_some() {
                break id;
            }
        }
        let now = h.deployment(dep.id).await?;
        ensure!(!now.status.was_live() && now.status != DeploymentStatus::Failed, "deploy ended: {now:?}");
        ensure!(started.elapsed() < LIMIT, "no container for deployment {} after {LIMIT:?}", dep.id);
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    h.kill();

    let left = h.deployment(dep.id).await?;
    assert_eq!(left.status, DeploymentStatus::Starting, "{left:?}");
    let job = h.job(left.job_id).await?;
    assert_eq!(job.status, "running", "{job:?}");
    eprintln!(
        "killed in job phase {:?}; container id recorded: {}; container state: {:?}",
        job.phase,
        left.container_id.is_some(),
        h.engine.docker.container_state(&container).await?.map(|s| s.status)
    );

    let (restarted_at, log_start) = h.start_server().await?;
    h.assert_no_stale_running(&restarted_at).await?;
    let dep_after = h.deployment(dep.id).await?;
    assert_eq!(dep_after.status, DeploymentStatus::Failed, "{dep_after:?}");
    assert!(is_interrupted_reason(dep_after.error.as_deref()), "{dep_after:?}");
    assert!(dep_after.finished_at.is_some(), "{dep_after:?}");
    let job = h.job(dep_after.job_id).await?;
    assert_eq!((job.status.as_str(), job.attempts), ("interrupted", 1), "{job:?}");
    // A kill in the middle of the Engine API's create call leaves the daemon
    // removing the half-made container itself: it may still be listed as
    // `removing`/`dead` for a moment after the restart.
    let first_seen = h.engine.docker.container_state(&container).await?.map(|s| s.status);
    let gone_after = h.wait_containers_gone(&container).await?;
    eprintln!("after the restart the container was {first_seen:?}; gone after {gone_after:?}");
    assert!(h.engine.live_deployment(&user(Role::Viewer), service.id).await.map_err(anyhow_of)?.is_none());
    let startup = h.log_since(log_start);
    assert_eq!(startup_field(&startup, "interrupted").as_deref(), Some("1"), "{startup}");
    assert_eq!(startup_field(&startup, "requeued").as_deref(), Some("0"), "{startup}");
    assert!(startup.contains("deployment failed"), "{startup}");

    // Not retried: still failed a few polls later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.deployment(dep.id).await?.status, DeploymentStatus::Failed);
    assert!(h.containers(&[]).await?.is_empty());
    h.assert_all_settled().await?;
    eprintln!("container-start crash test took {:.1} s", test_start.elapsed().as_secs_f64());
    h.passed();
    Ok(())
}

/// A service has a live deployment; a second deploy is killed while it waits
/// for its container to become healthy, and a leftover container carrying
/// the installation's label (no live deployment claims it) is planted. At
/// restart the new deployment is `failed` (interrupted) and its container
/// removed, the orphan is removed, and the live deployment keeps its running
/// container and its route.
#[tokio::test]
async fn kill_during_health_wait_keeps_the_live_deployment_and_removes_orphans() -> anyhow::Result<()> {
    let test_start = Instant::now();
    let mut h = Harness::new().await?;
    let body = format!("live deployment {}", h.unique);
    let repo = GitRepo::http_service(&body)?;
    let service = h.service("health", &repo.url(), quick_http_check("/")).await?;
    h.start_server().await?;

    // Deployment 1: built and deployed, live.
    let build = h.enqueue_build(service.id, true).await?;
    let built = h.wait_build_done(build.id, BUILD_LIMIT).await?;
    assert_eq!(built.status, BuildStatus::Succeeded, "{built:?}");
    let live_id: i64 = wait_until("the deployment of build 1", LIMIT, || {
        let h = &h;
        async move {
            Ok(sqlx::query_scalar("SELECT id FROM deployments WHERE build_id = ?")
                .bind(build.id)
                .fetch_optional(&h.db)
                .await?)
        }
    })
    .await?;
    let live = h.wait_deployment_done(live_id, LIMIT).await?;
    assert_eq!(live.status, DeploymentStatus::Live, "{live:?}");
    let live_container = live.container_id.clone().context("the live deployment has no container")?;
    assert_eq!(h.container_running(&live_container).await?, Some(true));

    // Deployment 2: same image, a health check that never passes.
    h.set_health(service.id, never_healthy()).await?;
    let req = DeployRequest { service_id: service.id, build_id: Some(build.id), ..DeployRequest::default() };
    let dep = h.engine.deploy(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    let new_container = wait_until("deployment 2 to wait for health", LIMIT, || {
        let h = &h;
        async move {
            let d = h.deployment(dep.id).await?;
            if d.status.was_live() || d.status == DeploymentStatus::Failed {
                bail!("deployment 2 ended before the kill: {d:?}");
            }
            let job = h.job(d.job_id).await?;
            Ok(d.container_id.filter(|_| job.phase.as_deref() == Some("health")))
        }
    })
    .await?;
    // A few failed probes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.kill();

    let left = h.deployment(dep.id).await?;
    assert_eq!(left.status, DeploymentStatus::Starting, "{left:?}");
    assert_eq!(h.container_running(&new_container).await?, Some(true));

    // A leftover of a crash (say mid-switch): labelled for this installation,
    // claimed by no live deployment.
    let orphan = h
        .engine
        .docker
        .run_container(&ContainerSpec {
            name: format!("slipway-orphan-{}", h.unique),
            image: built.image_id.clone().context("build 1 has no image")?,
            env: vec![],
            port: Some(8080),
            command: None,
            // The engine's default bridge: an orphan's network does not matter.
            network: "bridge".into(),
            volumes: vec![],
            published: vec![],
            labels: HashMap::from([
                (labels::MANAGED.to_string(), "true".to_string()),
                (labels::INSTANCE.to_string(), h.uid.clone()),
                (labels::SERVICE_ID.to_string(), service.id.to_string()),
                (labels::DEPLOYMENT_ID.to_string(), "999999".to_string()),
            ]),
            memory_bytes: 64 * 1024 * 1024,
            cpu_millis: 100,
        })
        .await?;
    assert_eq!(h.container_running(&orphan).await?, Some(true));

    let (restarted_at, log_start) = h.start_server().await?;
    h.assert_no_stale_running(&restarted_at).await?;
    let failed = h.deployment(dep.id).await?;
    assert_eq!(failed.status, DeploymentStatus::Failed, "{failed:?}");
    assert!(is_interrupted_reason(failed.error.as_deref()), "{failed:?}");
    let job = h.job(failed.job_id).await?;
    assert_eq!((job.status.as_str(), job.attempts), ("interrupted", 1), "{job:?}");
    assert_eq!(
        h.container_running(&new_container).await?,
        None,
        "the interrupted deploy's container survived"
    );
    assert_eq!(h.container_running(&orphan).await?, None, "the orphan container survived");

    // The live deployment is untouched.
    let still_live = h.deployment(live_id).await?;
    assert_eq!(still_live.status, DeploymentStatus::Live, "{still_live:?}");
    assert_eq!(still_live.container_id.as_deref(), Some(live_container.as_str()));
    assert_eq!(h.container_running(&live_container).await?, Some(true), "the live container was removed");
    assert_eq!(h.containers(&[]).await?, vec![live_container.clone()]);
    let live_now = h.engine.live_deployment(&user(Role::Viewer), service.id).await.map_err(anyhow_of)?;
    assert_eq!(live_now.map(|d| d.id), Some(live_id));

    let startup = h.log_since(log_start);
    assert_eq!(startup_field(&startup, "interrupted").as_deref(), Some("1"), "{startup}");
    assert_eq!(startup_field(&startup, "requeued").as_deref(), Some("0"), "{startup}");
    assert_eq!(startup_field(&startup, "orphans_removed").as_deref(), Some("1"), "{startup}");
    assert_eq!(startup_field(&startup, "routes").as_deref(), Some("1"), "{startup}");
    assert!(startup.contains("removing an orphan container"), "{startup}");
    assert!(startup.contains("deployment failed"), "{startup}");

    // It stays that way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.deployment(dep.id).await?.status, DeploymentStatus::Failed);
    assert_eq!(h.containers(&[]).await?, vec![live_container.clone()]);
    h.assert_all_settled().await?;
    eprintln!("health-wait crash test took {:.1} s", test_start.elapsed().as_secs_f64());
    h.passed();
    Ok(())
}
