//! A real engine for integration tests: a temporary data dir with its SQLite
//! file, the real Docker Engine, fast worker timings, and the test kit's
//! labels on every container and image so cleanup finds them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use app::wire::{Caller, Role, Via};

use super::{DockerKit, TestDataDir};
use crate::{
    builds::Build,
    deploys::{
        switch::{RouteSwitch, RouteTable},
        Deployment,
    },
    docker::DockerEngine,
    engine::{Engine, EngineError, EngineSettings},
    jobs::WorkerConfig,
    projects::{HealthCheck, HealthProbe, ProjectStore, Service, ServiceSpec},
    startup::Running,
};

pub struct TestEngine {
    pub engine: Engine,
    pub routes: Arc<dyn RouteSwitch>,
    pub running: Option<Running>,
    pub data: TestDataDir,
}

/// A user with `role`, as the middleware would resolve one.
pub fn user(role: Role) -> Caller {
    Caller::User { id: 1, name: format!("{role:?}").to_lowercase(), role, via: Via::Session }
}

/// Worker timings for tests: quick polls and heartbeats.
pub fn fast_workers(workers: usize) -> WorkerConfig {
    WorkerConfig {
        workers,
        heartbeat: Duration::from_millis(200),
        poll: Duration::from_millis(100),
        recovery_interval: Duration::from_secs(3600),
    }
}

impl TestEngine {
    /// Settings with the kit's labels and fast workers.
    pub fn settings(kit: &DockerKit, data: &TestDataDir) -> EngineSettings {
        let mut settings = EngineSettings::new(data.path());
        settings.worker = fast_workers(2);
        settings.extra_labels = kit.labels();
        // Every test repository is a local `file://` one.
        settings.allow_local_repos = true;
        settings.monitor_interval = Duration::from_millis(500);
        settings
    }

    /// Opens and starts an engine on a new data dir and the real engine.
    pub async fn start(kit: &DockerKit) -> anyhow::Result<TestEngine> {
        let data = TestDataDir::new()?;
        let settings = TestEngine::settings(kit, &data);
        TestEngine::start_with(data, settings, DockerEngine::with_client(kit.docker.clone())).await
    }

    pub async fn start_with(
        data: TestDataDir,
        settings: EngineSettings,
        docker: DockerEngine,
    ) -> anyhow::Result<TestEngine> {
        TestEngine::start_with_switch(data, settings, docker, Arc::new(RouteTable::new())).await
    }

    /// Like [`start_with`](Self::start_with) with the given switch point
    /// (the edge router, in edge tests).
    pub async fn start_with_switch(
        data: TestDataDir,
        settings: EngineSettings,
        docker: DockerEngine,
        routes: Arc<dyn RouteSwitch>,
    ) -> anyhow::Result<TestEngine> {
        let db = data.open_db().await?;
        let engine = Engine::open(db, docker, routes.clone(), settings, None).await?;
        let running = crate::startup::start(&engine).await?;
        Ok(TestEngine { engine, routes, running: Some(running), data })
    }

    /// A project and a service on `git_url` (port 8080, quick HTTP check).
    pub async fn service(&self, project: &str, name: &str, git_url: &str) -> anyhow::Result<Service> {
        let store = ProjectStore::new(self.engine.db.clone());
        let project = store.create_project(project).await?;
        let mut spec = ServiceSpec::new(name, git_url, 8080);
        spec.health = quick_http_check("/");
        spec.drain_secs = 0;
        Ok(store.create_service(project.id, &spec).await?)
    }

    /// Waits until `build_id` reaches a terminal status.
    pub async fn wait_build(&self, build_id: i64, limit: Duration) -> anyhow::Result<Build> {
        let start = Instant::now();
        loop {
            let build = self.engine.build(build_id).await.map_err(anyhow_of)?;
            if build.status.is_terminal() {
                return Ok(build);
            }
            if start.elapsed() > limit {
                bail!("build {build_id} still {} after {limit:?}", build.status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `deployment_id` is live or failed.
    pub async fn wait_deployment(&self, deployment_id: i64, limit: Duration) -> anyhow::Result<Deployment> {
        let start = Instant::now();
        loop {
            let dep = self.engine.deployment(deployment_id).await.map_err(anyhow_of)?;
            let settled = dep.status.was_live() || dep.status == crate::deploys::DeploymentStatus::Failed;
            // Live is set before the old container is removed: wait for the job too.
            let job_done = match dep.job_id {
                Some(job) => sqlx::query_scalar::<_, String>("SELECT status FROM jobs WHERE id = ?")
                    .bind(job)
                    .fetch_one(&self.engine.db)
                    .await
                    .map(|s| s != "queued" && s != "running")?,
                None => true,
            };
            if settled && job_done {
                return Ok(dep);
            }
            if start.elapsed() > limit {
                bail!("deployment {deployment_id} still {} after {limit:?}", dep.status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The deployment queued after a build with `deploy: true`.
    /// Waits until the build's job is done (its workspace removed, its
    /// lease freed): a build's status turns final a moment before.
    pub async fn wait_job_done(&self, build: &Build, limit: Duration) -> anyhow::Result<()> {
        let Some(job_id) = build.job_id else { return Ok(()) };
        crate::testkit::wait::wait_until(
            &format!("job {job_id} of build {} to end", build.id),
            limit,
            || async {
                let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = ?")
                    .bind(job_id)
                    .fetch_one(&self.engine.db)
                    .await?;
                Ok((status != "queued" && status != "running").then_some(()))
            },
        )
        .await
    }

    pub async fn deployment_of_build(&self, build_id: i64) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT id FROM deployments WHERE build_id = ? ORDER BY id DESC LIMIT 1")
            .bind(build_id)
            .fetch_one(&self.engine.db)
            .await?)
    }
}

/// An HTTP check that gives a container about 10 s to answer.
pub fn quick_http_check(path: &str) -> HealthCheck {
    HealthCheck {
        probe: HealthProbe::Http { path: path.into() },
        interval_ms: 200,
        timeout_ms: 1000,
        retries: 50,
        start_period_ms: 0,
    }
}

/// Engine errors as anyhow errors (tests use `?`).
pub fn anyhow_of(e: EngineError) -> anyhow::Error {
    match e {
        EngineError::Internal(e) => e,
        other => anyhow::anyhow!("{other}"),
    }
}

/// Labels as a filter map, for assertions on Docker objects.
pub fn label_map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
