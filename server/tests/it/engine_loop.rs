//! The engine end to end against the real Docker Engine, real git
//! repositories and a real SQLite file: build → deploy → v2 → rollback,
//! failing builds, unhealthy deploys, cancel and timeout, late log
//! subscribers, retention.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use app::wire::Role;
use futures::StreamExt;
use server::{
    builds::TriggerBuild,
    deploys::{DeployRequest, DeploymentStatus},
    engine::EngineError,
    history::PageRequest,
    jobs::JobStatus,
    projects::{ProjectStore, Service},
    service_env::{self, EnvInput},
    testkit::{
        docker::process_with,
        engine::{anyhow_of, quick_http_check, user},
        DockerKit, GitRepo, TestEngine, BASE_IMAGE,
    },
};

const LIMIT: Duration = Duration::from_secs(120);

/// A service that prints its version and `$GREETING` (from the deployment's
/// env) over HTTP, and says so in its container log.
fn greeting_repo(version: &str) -> anyhow::Result<GitRepo> {
    let repo = GitRepo::new()?;
    write_version(&repo, version)?;
    repo.write(
        "Dockerfile",
        &format!(
            "FROM {BASE_IMAGE}\nCOPY index.html /www/index.html\nEXPOSE 8080\n\
             CMD [\"sh\", \"-c\", \"echo starting $(cat /www/index.html); echo \\\"$GREETING\\\" > /www/env.txt; \
             exec httpd -f -p 8080 -h /www\"]\n"
        ),
    )?;
    repo.commit(version)?;
    Ok(repo)
}

fn write_version(repo: &GitRepo, version: &str) -> anyhow::Result<()> {
    repo.write("index.html", version)
}

async fn set_env(t: &TestEngine, service: &Service, greeting: &str, token: &str) -> anyhow::Result<()> {
    let vars = [
        EnvInput { name: "GREETING".into(), value: Some(greeting.into()), secret: false },
        EnvInput { name: "API_TOKEN".into(), value: Some(token.into()), secret: true },
    ];
    service_env::replace(&t.engine.db, &t.engine.secrets, service.id, &vars).await?;
    Ok(())
}

async fn build(t: &TestEngine, service: &Service, deploy: bool) -> anyhow::Result<server::builds::Build> {
    let req = TriggerBuild {
        service_id: service.id,
        git_ref: None,
        trigger: "manual".into(),
        deploy,
        build_only: !deploy,
        no_cache: false,
        group: None,
    };
    let queued = t.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    t.wait_build(queued.id, LIMIT).await
}

/// Builds and deploys; returns the live deployment's id.
async fn ship(t: &TestEngine, service: &Service) -> anyhow::Result<i64> {
    let built = build(t, service, true).await?;
    assert_eq!(built.status, JobStatus::Succeeded, "build: {:?}", built.error);
    let dep = t.wait_deployment(t.deployment_of_build(built.id).await?, LIMIT).await?;
    assert_eq!(dep.status, DeploymentStatus::Live, "deploy: {:?} {:?}", dep.error, dep.log_tail);
    Ok(dep.id)
}

fn addr(t: &TestEngine, service: &Service) -> anyhow::Result<SocketAddr> {
    Ok(t.routes.route(service.id).ok_or_else(|| anyhow::anyhow!("no route"))?.upstream.addr)
}

async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let url = format!("http://{addr}{path}");
    let body = tokio::task::spawn_blocking(move || server::testkit::http_get(&url)).await??;
    anyhow::ensure!(body.0 == 200, "GET {path}: HTTP {}", body.0);
    Ok(body.1.trim().to_string())
}

#[tokio::test]
async fn full_loop_build_deploy_v2_and_rollback_restores_image_and_env() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = greeting_repo("v1")?;
    let service = t.service("shop", "web", &repo.url()).await?;
    set_env(&t, &service, "hello-one", "s3cret-token-value").await?;

    // v1: build (the log has the Dockerfile's steps) and deploy.
    let built = build(&t, &service, true).await?;
    assert_eq!(built.status, JobStatus::Succeeded, "{:?}", built.error);
    assert_eq!((built.number, built.progress), (1, 100));
    assert!(built.image_id.as_deref().is_some_and(|id| id.starts_with("sha256:")));
    let short = &repo.head()?[..7];
    assert!(built.tags.contains(&format!("slipway/shop-web:sha-{short}")), "{:?}", built.tags);
    assert!(built.tags.contains(&"slipway/shop-web:build-1".to_string()));
    assert!(built.tags.contains(&"slipway/shop-web:main-latest".to_string()));
    let log = t.engine.build_log(&user(Role::Viewer), built.id, 1).await.map_err(anyhow_of)?;
    let text: Vec<&str> = log.iter().map(|l| l.text.as_str()).collect();
    // BuildKit's steps: FROM and COPY (EXPOSE and CMD are image config).
    assert!(
        text.iter().any(|l| l.starts_with('#') && l.ends_with("2/2] COPY index.html /www/index.html")),
        "{text:?}"
    );
    assert!(log.windows(2).all(|w| w[1].seq == w[0].seq + 1), "contiguous sequence numbers");
    let v1 = t.wait_deployment(t.deployment_of_build(built.id).await?, LIMIT).await?;
    assert_eq!(v1.status, DeploymentStatus::Live, "{:?} {:?}", v1.error, v1.log_tail);
    let v1_addr = addr(&t, &service)?;
    assert_eq!(get(v1_addr, "/").await?, "v1");
    assert_eq!(get(v1_addr, "/env.txt").await?, "hello-one");

    // v2: new commit and new env.
    write_version(&repo, "v2")?;
    repo.commit("v2")?;
    set_env(&t, &service, "hello-two", "s3cret-token-value").await?;
    let v2_id = ship(&t, &service).await?;
    let v2_addr = addr(&t, &service)?;
    assert_eq!(get(v2_addr, "/").await?, "v2");
    assert_eq!(get(v2_addr, "/env.txt").await?, "hello-two");
    let v1_container = v1.container_id.clone().unwrap_or_default();
    assert!(t.engine.docker.container_state(&v1_container).await?.is_none(), "old container removed");
    assert_eq!(t.engine.deployment(v1.id).await.map_err(anyhow_of)?.status, DeploymentStatus::Superseded);

    // Rollback to v1: its image and its env come back.
    let rollback =
        t.engine.rollback(&user(Role::Deployer), v1.id, Some("v2 is broken")).await.map_err(anyhow_of)?;
    assert_eq!(rollback.rollback_of, Some(v1.id));
    let rolled = t.wait_deployment(rollback.id, LIMIT).await?;
    assert_eq!(rolled.status, DeploymentStatus::Live, "{:?}", rolled.error);
    assert_eq!(rolled.image_id, v1.image_id);
    let back = addr(&t, &service)?;
    assert_eq!(get(back, "/").await?, "v1");
    assert_eq!(get(back, "/env.txt").await?, "hello-one", "v1's env, not the current one");
    assert_eq!(t.engine.deployment(v2_id).await.map_err(anyhow_of)?.status, DeploymentStatus::RolledBack);

    // History, newest first, keyset-paginated, secrets masked.
    let viewer = user(Role::Viewer);
    let page =
        t.engine.list_deployments(&viewer, service.id, PageRequest::first(2)).await.map_err(anyhow_of)?;
    assert_eq!(page.items.iter().map(|d| d.id).collect::<Vec<_>>(), vec![rollback.id, v2_id]);
    let rest = t
        .engine
        .list_deployments(&viewer, service.id, PageRequest { before: page.next, limit: Some(2) })
        .await
        .map_err(anyhow_of)?;
    assert_eq!(rest.items.iter().map(|d| d.id).collect::<Vec<_>>(), vec![v1.id]);
    assert_eq!(rest.next, None);
    let token = page.items[0].config.env.iter().find(|v| v.name == "API_TOKEN").map(|v| v.value.clone());
    assert_eq!(token.as_deref(), Some("********"));
    let builds =
        t.engine.list_builds(&viewer, service.id, PageRequest::first(10)).await.map_err(anyhow_of)?;
    assert_eq!(builds.items.iter().map(|b| b.number).collect::<Vec<_>>(), vec![2, 1]);
    assert!(builds.items.iter().all(|b| b.duration_ms.is_some_and(|ms| ms > 0)));

    // The secret is sealed at rest: not in any env or snapshot column.
    let plain: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM service_env WHERE value LIKE '%s3cret-token-value%') + \
         (SELECT COUNT(*) FROM deployments WHERE config LIKE '%s3cret-token-value%')",
    )
    .fetch_one(&t.engine.db)
    .await?;
    assert_eq!(plain, 0);

    // Viewers cannot deploy or roll back.
    let denied = t.engine.rollback(&viewer, v2_id, None).await.expect_err("viewer");
    assert!(matches!(denied, EngineError::Access(_)), "{denied}");
    Ok(())
}

#[tokio::test]
async fn failing_build_names_the_step_and_starts_no_container() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::new()?;
    repo.write("Dockerfile", &format!("FROM {BASE_IMAGE}\nRUN echo about to fail && exit 3\n"))?;
    repo.commit("broken")?;
    let service = t.service("shop", "broken", &repo.url()).await?;

    let built = build(&t, &service, true).await?;
    assert_eq!(built.status, JobStatus::Failed);
    let error = built.error.unwrap_or_default();
    // `[stage-0 2/2] RUN …` on this engine, `[2/2] RUN …` on newer ones.
    assert!(
        error.starts_with('[') && error.contains("2/2] RUN echo about to fail && exit 3 failed: "),
        "{error}"
    );
    assert!(error.contains("exit code: 3"), "{error}");
    let deployments: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM deployments").fetch_one(&t.engine.db).await?;
    assert_eq!(deployments, 0, "no deployment for a failed build");
    let containers = t
        .engine
        .docker
        .containers_labelled(&[(server::docker::labels::INSTANCE, &t.engine.instance)])
        .await?;
    assert!(containers.is_empty(), "{containers:?}");
    let deploy = t
        .engine
        .deploy(
            &user(Role::Deployer),
            DeployRequest { service_id: service.id, build_id: Some(built.id), ..Default::default() },
        )
        .await
        .expect_err("a failed build cannot be deployed");
    assert!(matches!(deploy, EngineError::Conflict(_)), "{deploy}");
    Ok(())
}

#[tokio::test]
async fn unhealthy_deploy_keeps_the_old_version_serving() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = greeting_repo("v1")?;
    let service = t.service("shop", "api", &repo.url()).await?;
    let v1 = ship(&t, &service).await?;
    let v1_addr = addr(&t, &service)?;

    // v2 never answers its health check.
    let store = ProjectStore::new(t.engine.db.clone());
    let mut spec = service.spec.clone();
    spec.health = server::projects::HealthCheck { retries: 3, ..quick_http_check("/healthz") };
    store.update_service(service.id, &spec).await?;
    write_version(&repo, "v2")?;
    repo.commit("v2")?;
    let built = build(&t, &service, true).await?;
    let failed = t.wait_deployment(t.deployment_of_build(built.id).await?, LIMIT).await?;

    assert_eq!(failed.status, DeploymentStatus::Failed);
    let error = failed.error.clone().unwrap_or_default();
    assert!(error.contains("health check failed 3 times") && error.contains("HTTP 404"), "{error}");
    assert!(failed.log_tail.as_deref().unwrap_or_default().contains("starting v2"), "{:?}", failed.log_tail);
    let failed_container = failed.container_id.clone().unwrap_or_default();
    assert!(
        t.engine.docker.container_state(&failed_container).await?.is_none(),
        "unhealthy container removed"
    );
    assert_eq!(t.engine.live_of(service.id).await?.map(|d| d.id), Some(v1), "v1 still live");
    assert_eq!(addr(&t, &service)?, v1_addr, "route unchanged");
    assert_eq!(get(v1_addr, "/").await?, "v1");
    Ok(())
}

/// A repo whose build runs `sleep` in its second step, marked with `mark`.
fn slow_repo(secs: u32, mark: &str) -> anyhow::Result<GitRepo> {
    let repo = GitRepo::new()?;
    // `sleep` first: the shell stays (and its command line holds `mark`) while
    // it sleeps; busybox `sh -c` would exec a last command in its place.
    repo.write("Dockerfile", &format!("FROM {BASE_IMAGE}\nRUN sleep {secs} && echo {mark}\n"))?;
    repo.commit("slow")?;
    Ok(repo)
}

/// Whether a build step whose command mentions `mark` runs (BuildKit runs
/// steps as processes of the daemon, not as containers).
fn step_running(mark: &str) -> bool {
    process_with(mark).is_some()
}

async fn wait_for_step(t: &TestEngine, build_id: i64, mark: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    while !step_running(mark) {
        anyhow::ensure!(start.elapsed() < LIMIT, "the sleep step never started");
        let b = t.engine.build(build_id).await.map_err(anyhow_of)?;
        anyhow::ensure!(!b.status.is_terminal(), "build ended early: {:?} {:?}", b.status, b.error);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test]
async fn cancelling_a_running_build_stops_the_docker_step() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let mark = format!("cancel-{}", kit.run_id);
    let repo = slow_repo(300, &mark)?;
    let service = t.service("shop", "slow", &repo.url()).await?;
    let req = TriggerBuild {
        service_id: service.id,
        git_ref: None,
        trigger: "api".into(),
        deploy: false,
        build_only: true,
        no_cache: false,
        group: None,
    };
    let queued = t.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    wait_for_step(&t, queued.id, &mark).await?;

    let cancelled_at = Instant::now();
    t.engine.cancel_build(&user(Role::Deployer), queued.id).await.map_err(anyhow_of)?;
    let done = t.wait_build(queued.id, Duration::from_secs(30)).await?;
    assert_eq!(done.status, JobStatus::Cancelled);
    assert!(cancelled_at.elapsed() < Duration::from_secs(10), "took {:?}", cancelled_at.elapsed());
    let start = Instant::now();
    while step_running(&mark) {
        anyhow::ensure!(start.elapsed() < Duration::from_secs(20), "the build step kept running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The closing line is appended just after the status is written.
    server::testkit::wait::wait_until("the closing log line", Duration::from_secs(10), || async {
        let log = t.engine.build_log(&user(Role::Viewer), queued.id, 1).await.map_err(anyhow_of)?;
        Ok((log.last().map(|l| l.text.as_str()) == Some("Build cancelled")).then_some(()))
    })
    .await?;
    let again = t.engine.cancel_build(&user(Role::Deployer), queued.id).await.expect_err("finished");
    assert!(matches!(again, EngineError::Conflict(_)), "{again}");
    Ok(())
}

#[tokio::test]
async fn a_build_over_its_timeout_is_stopped_as_timed_out() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let mark = format!("timeout-{}", kit.run_id);
    let repo = slow_repo(300, &mark)?;
    let service = t.service("shop", "hang", &repo.url()).await?;
    let mut spec = service.spec.clone();
    spec.build_timeout_secs = 30; // the smallest allowed
    ProjectStore::new(t.engine.db.clone()).update_service(service.id, &spec).await?;

    let started = Instant::now();
    let done = build(&t, &service, false).await?;
    assert_eq!(done.status, JobStatus::TimedOut, "{:?}", done.error);
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    let start = Instant::now();
    while step_running(&mark) {
        anyhow::ensure!(start.elapsed() < Duration::from_secs(20), "the build step kept running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// The text of a BuildKit step's output line (`#N <seconds> <text>`), or the
/// whole line.
fn output_of(line: &str) -> &str {
    let mut parts = line.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(n), Some(secs), Some(text)) if n.starts_with('#') && secs.parse::<f64>().is_ok() => text,
        _ => line,
    }
}

#[tokio::test]
async fn a_late_log_subscriber_gets_every_line_once_in_order() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::new()?;
    repo.write(
        "Dockerfile",
        // The run id keeps BuildKit from answering a rerun from its cache.
        &format!(
            "FROM {BASE_IMAGE}\nRUN echo {} && for i in $(seq 1 300); do echo line-$i; sleep 0.01; done\n",
            kit.run_id
        ),
    )?;
    repo.commit("chatty")?;
    let service = t.service("shop", "chatty", &repo.url()).await?;
    let req = TriggerBuild::manual_build_only(service.id);
    let queued = t.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;

    // Join once the step is well under way.
    let start = Instant::now();
    loop {
        let lines = t.engine.logs.read_from(queued.id, 1).await?;
        if lines.iter().any(|l| output_of(&l.text) == "line-50") {
            break;
        }
        anyhow::ensure!(start.elapsed() < LIMIT, "the build never printed line-50");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(t.engine.logs.is_live(queued.id), "joined while the build runs");
    let lines: Vec<_> = t.engine.logs.subscribe(queued.id, 1).collect().await;
    let done = t.wait_build(queued.id, LIMIT).await?;
    assert_eq!(done.status, JobStatus::Succeeded, "{:?}", done.error);

    let seqs: Vec<u64> = lines.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every line once, in order");
    let numbered: Vec<String> = lines
        .iter()
        .map(|l| output_of(&l.text))
        .filter(|t| t.starts_with("line-"))
        .map(str::to_string)
        .collect();
    assert_eq!(numbered, (1..=300).map(|i| format!("line-{i}")).collect::<Vec<_>>());
    assert_eq!(lines, t.engine.logs.read_from(queued.id, 1).await?, "the stream equals the stored log");
    Ok(())
}

#[tokio::test]
async fn retention_keeps_rollback_targets_and_refuses_pruned_ones() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let data = server::testkit::TestDataDir::new()?;
    let mut settings = TestEngine::settings(&kit, &data);
    settings.retention.keep_images = 1;
    settings.retention.keep_deployments = 1;
    let docker = server::docker::DockerEngine::with_client(kit.docker.clone());
    let t = TestEngine::start_with(data, settings, docker).await?;
    let repo = greeting_repo("v1")?;
    let service = t.service("shop", "kept", &repo.url()).await?;

    let mut deployments = Vec::new();
    for v in 1..=4 {
        if v > 1 {
            write_version(&repo, &format!("v{v}"))?;
            repo.commit(&format!("v{v}"))?;
        }
        deployments.push(ship(&t, &service).await?);
    }
    // Delivery records: one older than the age limit, one fresh, one old but
    // stuck `claimed` (kept for an admin to see).
    for (at, status) in [("2001-01-01T00:00:00.000Z", "built"), ("2001-01-01T00:00:00.000Z", "claimed")] {
        sqlx::query(
            "INSERT INTO webhook_deliveries (service_id, forge, status, reason, received_at) VALUES (?, 'github', ?, 'old', ?)",
        )
        .bind(service.id)
        .bind(status)
        .bind(at)
        .execute(&t.engine.db)
        .await?;
    }
    sqlx::query(
        "INSERT INTO webhook_deliveries (service_id, forge, status, reason, received_at) VALUES (?, 'github', 'built', 'new', ?)",
    )
    .bind(service.id)
    .bind(server::db::now_rfc3339())
    .execute(&t.engine.db)
    .await?;
    let report = server::retention::run(&t.engine).await?;
    assert_eq!(report.deliveries_removed, 1, "only the old finished delivery goes: {report:?}");
    let left: Vec<(String, String)> =
        sqlx::query_as("SELECT status, reason FROM webhook_deliveries ORDER BY id")
            .fetch_all(&t.engine.db)
            .await?;
    assert_eq!(
        left,
        vec![("claimed".to_string(), "old".to_string()), ("built".to_string(), "new".to_string())]
    );
    // Kept: v4 (newest build, live) and v3 (previous deployment); v1, v2 go.
    assert_eq!(report.images_removed.len(), 2, "{report:?}");
    let images: Vec<String> = {
        let mut out = Vec::new();
        for id in &deployments {
            out.push(t.engine.deployment(*id).await.map_err(anyhow_of)?.image_id);
        }
        out
    };
    assert!(
        !t.engine.docker.image_exists(&images[0]).await? && !t.engine.docker.image_exists(&images[1]).await?
    );
    assert!(
        t.engine.docker.image_exists(&images[2]).await? && t.engine.docker.image_exists(&images[3]).await?
    );

    let refused = t.engine.rollback(&user(Role::Deployer), deployments[0], None).await.expect_err("pruned");
    assert!(refused.to_string().contains("no longer exists"), "{refused}");
    let rollback = t.engine.rollback(&user(Role::Deployer), deployments[2], None).await.map_err(anyhow_of)?;
    assert_eq!(t.wait_deployment(rollback.id, LIMIT).await?.status, DeploymentStatus::Live);
    assert_eq!(get(addr(&t, &service)?, "/").await?, "v3");
    Ok(())
}

/// A Unix socket in front of the Docker socket that the test can cut, as if
/// the engine went away mid-job.
struct CuttableDocker {
    path: std::path::PathBuf,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl CuttableDocker {
    fn start(path: std::path::PathBuf) -> anyhow::Result<Self> {
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path)?;
        let tasks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let conns = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::UnixStream::connect("/var/run/docker.sock").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().expect("lock").push(conn.abort_handle());
            }
        });
        tasks.lock().expect("lock").push(accept.abort_handle());
        Ok(CuttableDocker { path, tasks })
    }

    /// Drops every connection and stops listening.
    fn cut(&self) {
        for task in self.tasks.lock().expect("lock").drain(..) {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for CuttableDocker {
    fn drop(&mut self) {
        self.cut();
    }
}

#[tokio::test]
async fn docker_going_away_mid_build_fails_the_job_clearly_and_the_pool_keeps_working() -> anyhow::Result<()>
{
    let kit = DockerKit::new().await?;
    let data = server::testkit::TestDataDir::new()?;
    let socket = data.path().join("docker-proxy.sock");
    let proxy = CuttableDocker::start(socket.clone())?;
    let client =
        bollard::Docker::connect_with_unix(&socket.to_string_lossy(), 120, bollard::API_DEFAULT_VERSION)?;
    let settings = TestEngine::settings(&kit, &data);
    let docker = server::docker::DockerEngine::with_client(client)
        .with_endpoint(server::docker::build::engine_http::Endpoint::Unix(socket.clone()));
    let t = TestEngine::start_with(data, settings, docker).await?;
    let mark = format!("unreachable-{}", kit.run_id);
    let repo = slow_repo(300, &mark)?;
    let service = t.service("shop", "lost", &repo.url()).await?;
    let req = TriggerBuild::manual_build_only(service.id);
    let queued = t.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    wait_for_step(&t, queued.id, &mark).await?;

    proxy.cut();
    let failed = t.wait_build(queued.id, Duration::from_secs(30)).await?;
    assert_eq!(failed.status, JobStatus::Failed);
    let error = failed.error.unwrap_or_default();
    assert!(error.contains("Docker engine error"), "{error}");
    // The daemon saw the connection close and stopped the step.
    let start = Instant::now();
    while step_running(&mark) {
        anyhow::ensure!(start.elapsed() < Duration::from_secs(20), "the build step kept running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The engine comes back: the same workers build the next job.
    let _proxy = CuttableDocker::start(socket)?;
    let quick = greeting_repo("v1")?;
    let next = t.service("other", "web", &quick.url()).await?;
    let built = build(&t, &next, false).await?;
    assert_eq!(built.status, JobStatus::Succeeded, "{:?}", built.error);
    Ok(())
}

#[tokio::test]
async fn hostile_refs_are_refused_before_anything_is_queued() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let service = t.service("shop", "web", "https://example.com/shop.git").await?;
    for bad in ["--upload-pack=touch /tmp/x", "main;id", "$(id)", "a..b", "main\nid", "-x"] {
        let req = TriggerBuild {
            service_id: service.id,
            git_ref: Some(bad.into()),
            trigger: "api".into(),
            deploy: true,
            build_only: false,
            no_cache: false,
            group: None,
        };
        let e = t.engine.trigger_build(&user(Role::Deployer), req).await.expect_err(bad);
        assert!(matches!(e, EngineError::Invalid { field: "git_ref", .. }), "{bad:?}: {e}");
    }
    let rows: (i64, i64) =
        sqlx::query_as("SELECT (SELECT COUNT(*) FROM builds), (SELECT COUNT(*) FROM jobs)")
            .fetch_one(&t.engine.db)
            .await?;
    assert_eq!(rows, (0, 0), "nothing half-written");
    let req = TriggerBuild {
        service_id: service.id,
        git_ref: None,
        trigger: "api".into(),
        deploy: false,
        build_only: true,
        no_cache: false,
        group: None,
    };
    let e = t.engine.trigger_build(&user(Role::Viewer), req).await.expect_err("viewer");
    assert!(matches!(e, EngineError::Access(_)), "{e}");
    Ok(())
}
