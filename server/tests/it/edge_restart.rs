//! Restart with a live service: `slipway serve` is killed with SIGKILL while
//! a service is live behind the edge router and started again on the same
//! data dir and the same edge port. The edge serves the live version again
//! within 1 s of its listener accepting (the server binds the edge only after
//! restoring the routes, so in practice the first request is served), and
//! the live container was never restarted: same id, `StartedAt`, restart
//! count and pid before and after.
//!
//! The server is started by hand (the test kit's `serve_command` with a
//! fixed edge address) rather than with the test kit's `ServerProcess`,
//! because that one picks a new free edge port at every start; a restart
//! must keep the port clients use.
//!
//! The test process opens the same SQLite file (WAL) only to create the
//! service, enqueue builds and read rows; the server's workers run the jobs.
//! Every Docker object the server makes carries the installation's
//! `dev.slipway.instance` label: [`Harness`] removes them by that label when
//! dropped, also when the test panics, and prints the server log of a failed
//! test (of every test with `SLIPWAY_TEST_SHOW_LOG=1`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use app::wire::Role;
use bollard::Docker;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use server::testkit::wait::{unique_suffix, wait_until};
use server::{
    builds::{Build, BuildStatus, TriggerBuild},
    db::Db,
    deploys::{switch::RouteTable, Deployment, DeploymentStatus},
    docker::{labels, DockerEngine},
    engine::{Engine, EngineSettings},
    projects::{ProjectStore, Service, ServiceSpec},
    testkit::{
        docker::ensure_base_image,
        engine::{anyhow_of, quick_http_check, user},
        free_port,
        instance::InstanceCleanup,
        process::{serve_command, server_log_len, server_log_path, server_log_since},
        GitRepo, TestDataDir,
    },
};
use tempfile::TempDir;

/// Upper bound for anything the test waits for.
const LIMIT: Duration = Duration::from_secs(60);
/// A build must finish within this.
const BUILD_LIMIT: Duration = Duration::from_secs(120);
/// After the restart, the edge must serve the live version within this of
/// its listener accepting connections.
const SERVED_AFTER_ACCEPT: Duration = Duration::from_secs(1);
/// Kill and restart cycles in the test.
const RESTARTS: usize = 2;

// ------------------------------------------------------------------ harness --

/// `slipway serve`, started by hand so that the edge address stays the same
/// across restarts. Killed (SIGKILL) when dropped.
struct Serve {
    child: Child,
    dashboard: SocketAddr,
    spawned: Instant,
}

impl Serve {
    fn spawn(bin: &Path, data: &Path, site: &Path, edge: SocketAddr) -> anyhow::Result<Serve> {
        let dashboard: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let spawned = Instant::now();
        let child = serve_command(bin, data, site, dashboard, edge)?
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(Serve { child, dashboard, spawned })
    }

    fn ensure_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("slipway exited early with {status}");
        }
        Ok(())
    }

    /// Waits until the dashboard accepts connections (the last thing the
    /// server binds); returns the time since the spawn.
    async fn wait_dashboard(&mut self) -> anyhow::Result<Duration> {
        loop {
            self.ensure_alive()?;
            if tokio::net::TcpStream::connect(self.dashboard).await.is_ok() {
                return Ok(self.spawned.elapsed());
            }
            ensure!(self.spawned.elapsed() < LIMIT, "the dashboard did not listen within {LIMIT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, as a crash would (the process is reaped).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One installation under test: a data dir, a `slipway serve` process on it
/// (started, killed, restarted on the same edge address), and an engine in
/// the test process on the same database for enqueueing and reading rows.
///
/// Fields drop in order: the server is killed first, then the Docker objects
/// of the installation are removed, then the data dir.
struct Harness {
    server: Option<Serve>,
    engine: Engine,
    db: Db,
    docker: Docker,
    edge: SocketAddr,
    unique: String,
    project: String,
    project_id: i64,
    passed: bool,
    _cleanup: InstanceCleanup,
    site: TempDir,
    data: TestDataDir,
}

impl Harness {
    async fn new() -> anyhow::Result<Harness> {
        let docker = Docker::connect_with_defaults().context("cannot configure the Docker client")?;
        docker.ping().await.context("the Docker engine does not answer")?;
        ensure_base_image(&docker).await?;
        let data = TestDataDir::new()?;
        let db = data.open_db().await?;
        let uid = server::db::instance_uid(&db).await?;
        let cleanup = InstanceCleanup::new(docker.clone(), uid);
        let engine = Engine::open(
            db.clone(),
            DockerEngine::with_client(docker.clone()),
            Arc::new(RouteTable::new()),
            EngineSettings { allow_local_repos: true, ..EngineSettings::new(data.path()) },
            None,
        )
        .await?;
        let unique = unique_suffix();
        let project = format!("restart-{unique}");
        let project_id = ProjectStore::new(db.clone()).create_project(&project).await?.id;
        let edge = format!("127.0.0.1:{}", free_port()?).parse()?;
        Ok(Harness {
            server: None,
            engine,
            db,
            docker,
            edge,
            unique,
            project,
            project_id,
            passed: false,
            _cleanup: cleanup,
            site: tempfile::Builder::new().prefix("slipway-site-").tempdir()?,
            data,
        })
    }

    /// A service `<name>-<unique>` (container names are global to the Docker
    /// engine) on port 8080 with a quick HTTP check and no drain.
    async fn service(&self, name: &str, git_url: &str) -> anyhow::Result<Service> {
        let mut spec = ServiceSpec::new(format!("{name}-{}", self.unique), git_url, 8080);
        spec.health = quick_http_check("/");
        spec.drain_secs = 0;
        Ok(ProjectStore::new(self.db.clone()).create_service(self.project_id, &spec).await?)
    }

    fn host(&self, service: &Service) -> String {
        format!("{}.{}.localhost", service.spec.name, self.project)
    }

    /// Spawns `slipway serve` on the data dir and the harness's edge address.
    /// Returns where this run's part of the log begins.
    fn spawn_server(&mut self) -> anyhow::Result<usize> {
        assert!(self.server.is_none(), "a server is already running");
        let log_start = self.log_len();
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_slipway"));
        self.server = Some(Serve::spawn(&bin, self.data.path(), self.site.path(), self.edge)?);
        Ok(log_start)
    }

    fn server(&mut self) -> anyhow::Result<&mut Serve> {
        self.server.as_mut().context("no server running")
    }

    /// SIGKILL, as a crash would.
    fn kill(&mut self) {
        let mut server = self.server.take().expect("no server to kill");
        server.kill();
        eprintln!("slipway serve killed (SIGKILL)");
    }

    fn log_path(&self) -> PathBuf {
        server_log_path(self.data.path())
    }

    fn log_len(&self) -> usize {
        server_log_len(self.data.path())
    }

    fn log_since(&self, from: usize) -> String {
        server_log_since(self.data.path(), from)
    }

    async fn build(&self, id: i64) -> anyhow::Result<Build> {
        self.engine.get_build(&user(Role::Viewer), id).await.map_err(anyhow_of)
    }

    async fn deployment(&self, id: i64) -> anyhow::Result<Deployment> {
        self.engine.get_deployment(&user(Role::Viewer), id).await.map_err(anyhow_of)
    }

    async fn job_status(&self, id: Option<i64>) -> anyhow::Result<String> {
        let id = id.context("the row has no job")?;
        Ok(sqlx::query_scalar("SELECT status FROM jobs WHERE id = ?").bind(id).fetch_one(&self.db).await?)
    }

    /// Queues a build with `deploy: true` (the server's workers run the build
    /// and then the deploy) and waits until its deployment is live and its
    /// job has ended (the replaced container is removed by then).
    async fn build_and_deploy(&self, service_id: i64) -> anyhow::Result<Deployment> {
        let req = TriggerBuild {
            service_id,
            git_ref: None,
            trigger: "manual".into(),
            deploy: true,
            build_only: false,
            no_cache: false,
            group: None,
        };
        let build = self.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
        let built = wait_until(&format!("build {} to finish", build.id), BUILD_LIMIT, || async move {
            let b = self.build(build.id).await?;
            Ok(b.status.is_terminal().then_some(b))
        })
        .await?;
        ensure!(built.status == BuildStatus::Succeeded, "build failed: {built:?}");
        let dep_id: i64 =
            wait_until(&format!("the deployment of build {}", build.id), LIMIT, || async move {
                Ok(sqlx::query_scalar("SELECT id FROM deployments WHERE build_id = ?")
                    .bind(build.id)
                    .fetch_optional(&self.db)
                    .await?)
            })
            .await?;
        let dep = wait_until(&format!("deployment {dep_id} to settle"), LIMIT, || async move {
            let dep = self.deployment(dep_id).await?;
            let settled = dep.status.was_live() || dep.status == DeploymentStatus::Failed;
            let job = self.job_status(dep.job_id).await?;
            Ok((settled && job != "queued" && job != "running").then_some(dep))
        })
        .await?;
        ensure!(dep.status == DeploymentStatus::Live, "deployment not live: {dep:?}");
        Ok(dep)
    }

    async fn life(&self, container: &str) -> anyhow::Result<ContainerLife> {
        let info = self.docker.inspect_container(container, None).await?;
        let state = info.state.unwrap_or_default();
        let ip = info
            .network_settings
            .and_then(|n| n.networks)
            // A deployment container has one network (its project's).
            .and_then(|n| n.into_values().find_map(|e| e.ip_address.filter(|ip| !ip.is_empty())))
            .and_then(|ip| ip.parse().ok());
        Ok(ContainerLife {
            id: info.id.unwrap_or_default(),
            started_at: state.started_at.unwrap_or_default(),
            restart_count: info.restart_count.unwrap_or(-1),
            pid: state.pid.unwrap_or(0),
            running: state.running.unwrap_or(false),
            ip,
        })
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

/// What tells whether a container was restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ContainerLife {
    id: String,
    started_at: String,
    restart_count: i64,
    pid: i64,
    running: bool,
    /// Its address on the `slipway` network.
    ip: Option<std::net::IpAddr>,
}

// ------------------------------------------------------------------ helpers --

/// The field `name=value` of the "engine started" line of a log part.
fn startup_field(log: &str, name: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("engine started"))?;
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    Some(line[start..].split_whitespace().next().unwrap_or_default().to_string())
}

/// `GET /` with `Host: host` on an open connection (closed after): the
/// status and the trimmed body.
async fn get_on(stream: tokio::net::TcpStream, host: &str) -> anyhow::Result<(u16, String)> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let req = http::Request::get("/")
        .header(http::header::HOST, host)
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())?;
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        let res = sender.send_request(req).await?;
        let status = res.status().as_u16();
        let body = res.into_body().collect().await?.to_bytes();
        Ok::<_, anyhow::Error>((status, String::from_utf8_lossy(&body).trim().to_string()))
    })
    .await
    .context("no answer within 10 s");
    conn.abort();
    answer?
}

/// `GET /` to `addr` with `Host: host` on a new connection.
async fn get(addr: SocketAddr, host: &str) -> anyhow::Result<(u16, String)> {
    let stream =
        tokio::net::TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    get_on(stream, host).await
}

/// How a restart went, measured from the spawn of the process.
#[derive(Debug)]
struct Comeback {
    /// The edge port accepted its first connection.
    accepting: Duration,
    /// The first `200` with the live version through the edge.
    served: Duration,
    /// Connection attempts refused before the edge listened.
    refused: u32,
    /// Answers through the edge that were not the live version.
    wrong: Vec<String>,
}

/// Tries the edge every 2 ms from the spawn on: connection refused until the
/// listener is bound, then `GET /` until the live version comes back.
async fn watch_comeback(
    server: &mut Serve,
    edge: SocketAddr,
    host: &str,
    version: &str,
) -> anyhow::Result<Comeback> {
    let mut accepting = None;
    let mut refused = 0;
    let mut wrong = Vec::new();
    loop {
        server.ensure_alive()?;
        ensure!(server.spawned.elapsed() < LIMIT, "the edge did not serve {version:?} within {LIMIT:?}");
        let stream = match tokio::net::TcpStream::connect(edge).await {
            Ok(stream) => stream,
            Err(_) => {
                refused += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
        };
        let accepting = *accepting.get_or_insert_with(|| server.spawned.elapsed());
        match get_on(stream, host).await {
            Ok((200, body)) if body == version => {
                return Ok(Comeback { accepting, served: server.spawned.elapsed(), refused, wrong });
            }
            Ok((status, body)) => wrong.push(format!("HTTP {status}: {body}")),
            Err(e) => wrong.push(format!("{e:#}")),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// -------------------------------------------------------------------- tests --

/// Kill -9 with a live service, restart on the same data dir and edge port:
/// the edge serves the live version again within 1 s of accepting, and the
/// live container was never restarted. Done twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_the_edge_serves_the_live_version_at_once_and_the_container_was_never_restarted(
) -> anyhow::Result<()> {
    let test_start = Instant::now();
    let mut h = Harness::new().await?;
    let v1 = format!("edge restart v1 {}", h.unique);
    let v2 = format!("edge restart v2 {}", h.unique);
    let repo = GitRepo::http_service(&v1)?;
    let service = h.service("edge", &repo.url()).await?;
    let host = h.host(&service);

    h.spawn_server()?;
    let ready = h.server()?.wait_dashboard().await?;
    eprintln!("slipway serve ready in {:.0} ms (first start)", ms(ready));

    // v1 live, then v2 live: the live version is the newer of two.
    let first = h.build_and_deploy(service.id).await?;
    repo.write("index.html", &v2)?;
    repo.commit("v2")?;
    let live = h.build_and_deploy(service.id).await?;
    let first = h.deployment(first.id).await?;
    assert_eq!(first.status, DeploymentStatus::Superseded, "{first:?}");
    let container = live.container_id.clone().context("the live deployment has no container")?;
    assert_eq!(get(h.edge, &host).await?, (200, v2.clone()), "through the edge before the kill");
    assert_eq!(get(h.edge, "nobody.localhost").await?.0, 404, "an unknown host");
    let before = h.life(&container).await?;
    assert!(before.running && before.restart_count == 0, "{before:?}");
    let container_addr = SocketAddr::new(before.ip.context("the live container has no address")?, 8080);
    eprintln!(
        "live: deployment {} container {} started at {} (restarts {}, pid {})",
        live.id,
        &before.id[..12],
        before.started_at,
        before.restart_count,
        before.pid
    );

    for round in 1..=RESTARTS {
        h.kill();
        // Slipway is down: the edge refuses, the container keeps serving.
        assert!(
            tokio::net::TcpStream::connect(h.edge).await.is_err(),
            "the edge still listens after the kill"
        );
        assert_eq!(
            get(container_addr, &host).await?,
            (200, v2.clone()),
            "the container while Slipway is down"
        );

        let log_start = h.spawn_server()?;
        let edge = h.edge;
        let comeback = watch_comeback(h.server()?, edge, &host, &v2).await?;
        let dashboard = h.server()?.wait_dashboard().await?;
        let after_accept = comeback.served - comeback.accepting;
        eprintln!(
            "restart {round}: edge accepting {:.0} ms after spawn, live version served {:.0} ms after spawn \
             ({:.1} ms after accepting); dashboard ready {:.0} ms after spawn; {} refused connection(s) \
             before, {} wrong answer(s) after accepting",
            ms(comeback.accepting),
            ms(comeback.served),
            ms(after_accept),
            ms(dashboard),
            comeback.refused,
            comeback.wrong.len()
        );
        assert!(
            after_accept <= SERVED_AFTER_ACCEPT,
            "restart {round}: the live version came {after_accept:?} after the edge accepted"
        );
        assert!(
            comeback.wrong.is_empty(),
            "restart {round}: answers before the live version: {:?}",
            comeback.wrong
        );

        // The container was never touched.
        let after = h.life(&container).await?;
        assert_eq!(after, before, "restart {round}: the live container changed");
        let still = h.deployment(live.id).await?;
        assert_eq!(still.status, DeploymentStatus::Live, "{still:?}");
        assert_eq!(still.container_id.as_deref(), Some(container.as_str()));
        let startup = h.log_since(log_start);
        assert_eq!(startup_field(&startup, "routes").as_deref(), Some("1"), "{startup}");
        assert_eq!(startup_field(&startup, "orphans_removed").as_deref(), Some("0"), "{startup}");
        assert_eq!(startup_field(&startup, "interrupted").as_deref(), Some("0"), "{startup}");
        for _ in 0..5 {
            assert_eq!(get(h.edge, &host).await?, (200, v2.clone()), "restart {round}: through the edge");
        }
    }

    // Still the same container, and the only one of the installation.
    assert_eq!(h.life(&container).await?, before);
    let containers = h.engine.docker.containers_labelled(&[(labels::INSTANCE, &h.engine.instance)]).await?;
    assert_eq!(containers.into_iter().map(|c| c.id).collect::<Vec<_>>(), vec![container.clone()]);
    eprintln!("edge restart test took {:.1} s", test_start.elapsed().as_secs_f64());
    h.passed();
    Ok(())
}
