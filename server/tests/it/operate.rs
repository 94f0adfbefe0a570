//! Operating a deployed service against real containers behind the real
//! edge router: its container log (followed, redacted, ended with a reason),
//! state and usage from the monitor, `/metrics` gauges, restart without a
//! failed request, stop (503) and start, redeploy of changed settings, and
//! roles. Also: a restart's container that a crash left behind is removed
//! at startup while the live one keeps serving.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use app::wire::Role;
use futures::StreamExt;
use server::{
    builds::TriggerBuild,
    deploys::{DeployRequest, DeploymentStatus},
    edge::{proxy, EdgeRouter},
    engine::EngineError,
    jobs::JobStatus,
    lifecycle::Action,
    projects::ProjectStore,
    runtime::logs::{LogEvent, LogRequest},
    service_env::{self, EnvInput},
    testkit::{
        engine::{anyhow_of, user},
        wait::wait_until,
        DockerKit, GitRepo, TestDataDir, TestEngine,
    },
};
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(120);
const SECRET: &str = "op-s3cret-value-42";

/// An httpd that prints a boot line with its secret, then a tick every 100 ms.
fn ticking_repo() -> anyhow::Result<GitRepo> {
    GitRepo::script_service(
        "#!/bin/sh\necho \"boot key=$API_KEY\"\n\
         (i=0; while true; do i=$((i+1)); echo \"tick $i\"; sleep 0.1; done) &\n\
         exec httpd -f -p 8080 -h /app/www\n",
        &[("www/index.html", "v1")],
    )
}

struct Rig {
    t: TestEngine,
    edge: SocketAddr,
    host: String,
    service_id: i64,
    _stop: tokio_util::sync::DropGuard,
    _kit: DockerKit,
}

async fn rig(name: &str) -> anyhow::Result<(Rig, GitRepo)> {
    let kit = DockerKit::new().await?;
    let data = TestDataDir::new()?;
    let settings = TestEngine::settings(&kit, &data);
    let router = Arc::new(EdgeRouter::new());
    let docker = server::docker::DockerEngine::with_client(kit.docker.clone());
    let t = TestEngine::start_with_switch(data, settings, docker, router.clone()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let edge = listener.local_addr()?;
    let stop = CancellationToken::new();
    tokio::spawn(proxy::serve(listener, router, proxy::EdgeConfig::default(), stop.clone()));
    let repo = ticking_repo()?;
    let service = t.service("ops", name, &repo.url()).await?;
    // Requests in flight at a switch finish on the old container.
    let mut spec = service.spec.clone();
    spec.drain_secs = 5;
    let service = ProjectStore::new(t.engine.db.clone()).update_service(service.id, &spec).await?;
    let vars = [EnvInput { name: "API_KEY".into(), value: Some(SECRET.into()), secret: true }];
    service_env::replace(&t.engine.db, &t.engine.secrets, service.id, &vars).await?;
    let rig = Rig {
        t,
        edge,
        host: format!("{name}.ops.localhost"),
        service_id: service.id,
        _stop: stop.drop_guard(),
        _kit: kit,
    };
    Ok((rig, repo))
}

impl Rig {
    async fn ship(&self) -> anyhow::Result<i64> {
        let req = TriggerBuild::manual_build_only(self.service_id);
        let queued = self.t.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
        let built = self.t.wait_build(queued.id, LIMIT).await?;
        anyhow::ensure!(built.status == JobStatus::Succeeded, "build: {:?}", built.error);
        let req =
            DeployRequest { service_id: self.service_id, build_id: Some(built.id), ..Default::default() };
        let queued = self.t.engine.deploy(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
        let dep = self.t.wait_deployment(queued.id, LIMIT).await?;
        anyhow::ensure!(dep.status == DeploymentStatus::Live, "deploy: {:?} {:?}", dep.error, dep.log_tail);
        Ok(dep.id)
    }

    async fn act(&self, action: Action) -> anyhow::Result<()> {
        let queued = self
            .t
            .engine
            .service_action(&user(Role::Deployer), self.service_id, action)
            .await
            .map_err(anyhow_of)?;
        let db = self.t.engine.db.clone();
        let status = wait_until("the action's job", LIMIT, || {
            let db = db.clone();
            async move {
                let s: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = ?")
                    .bind(queued.job_id)
                    .fetch_one(&db)
                    .await?;
                Ok((s != "queued" && s != "running").then_some(s))
            }
        })
        .await?;
        anyhow::ensure!(status == "succeeded", "{action:?} ended {status}");
        Ok(())
    }

    async fn get(&self) -> anyhow::Result<(u16, String)> {
        server::testkit::edge::get(self.edge, &self.host).await
    }
}

#[tokio::test]
async fn logs_state_metrics_restart_stop_start_and_redeploy() -> anyhow::Result<()> {
    let (rig, _repo) = rig("opsweb").await?;
    let engine = &rig.t.engine;
    let viewer = user(Role::Viewer);
    let live = rig.ship().await?;
    assert_eq!(rig.get().await?, (200, "v1".into()));

    // The log: the boot line redacted, then ticks written after we asked.
    let request =
        LogRequest { service_id: rig.service_id, tail: Some(1000), follow: true, ..Default::default() };
    let mut log = Box::pin(engine.runtime_log(&viewer, request).await.map_err(anyhow_of)?);
    let mut seen = Vec::new();
    let mut first_tick = None;
    let followed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = log.next().await {
            let LogEvent::Line { text, ts, stream } = event else { anyhow::bail!("ended early: {event:?}") };
            assert!(!ts.is_empty() && stream == "stdout", "{ts:?} {stream}");
            seen.push(text.clone());
            if let Some(n) = text.strip_prefix("tick ").and_then(|n| n.parse::<u64>().ok()) {
                let first = *first_tick.get_or_insert(n);
                if n >= first + 5 {
                    return Ok(());
                }
            }
        }
        anyhow::bail!("the log ended")
    })
    .await;
    followed??;
    assert!(
        seen.iter().any(|l| l == "boot key=********"),
        "boot line redacted: {:?}",
        &seen[..3.min(seen.len())]
    );
    assert!(seen.iter().all(|l| !l.contains(SECRET)), "the secret never appears");

    // State, usage and the probe, from the monitor.
    let view = wait_until("the monitor's figures", LIMIT, || async {
        let v = engine.service_runtime(&viewer, rig.service_id).await.map_err(anyhow_of)?;
        Ok((v.points.len() >= 2 && v.probe.is_some()).then_some(v))
    })
    .await?;
    assert_eq!(view.deployment_id, Some(live));
    let state = view.state.clone().expect("state");
    assert_eq!(state.status, "running");
    assert_eq!(state.restart_count, 0);
    assert!(state.uptime_secs.is_some());
    assert!(view.probe.as_ref().is_some_and(|p| p.ok), "{:?}", view.probe);
    assert!(view.memory_bytes.is_some_and(|m| m > 0) && view.memory_limit_bytes > 0, "{view:?}");
    assert!(!view.stopped && !view.settings_changed);
    let metrics = server::http::metrics::render(engine, None).await?;
    let label = "service=\"ops/opsweb\"";
    for gauge in ["slipway_container_up", "slipway_container_cpu_percent", "slipway_container_memory_bytes"] {
        assert!(metrics.lines().any(|l| l.starts_with(gauge) && l.contains(label)), "{gauge} in {metrics}");
    }
    assert!(metrics.contains(&format!("slipway_container_up{{{label}}} 1")), "{metrics}");

    // A viewer may look, not act.
    for action in [Action::Restart, Action::Stop, Action::Start] {
        match engine.service_action(&viewer, rig.service_id, action).await {
            Err(EngineError::Access(_)) => {}
            other => panic!("viewer {action:?}: {other:?}"),
        }
    }
    assert!(matches!(engine.redeploy(&viewer, rig.service_id).await, Err(EngineError::Access(_))));

    // Restart under load: a new container of the same deployment, no failed request.
    let before = engine.deployment(live).await.map_err(anyhow_of)?.container_id;
    let load = Load::start(rig.edge, rig.host.clone());
    rig.act(Action::Restart).await?;
    let (ok, failed) = load.stop().await;
    assert_eq!(failed, 0, "{failed} failed requests of {}", ok + failed);
    assert!(ok > 10, "the load client ran ({ok} requests)");
    let after = engine.deployment(live).await.map_err(anyhow_of)?;
    assert_eq!(after.status, DeploymentStatus::Live);
    assert_ne!(after.container_id, before, "a fresh container");
    // The followed log of the old container ended and said why.
    let end = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = log.next().await {
            if let LogEvent::End { reason } = event {
                return reason;
            }
        }
        String::new()
    })
    .await?;
    assert!(end.contains("replaced by a restart"), "{end}");
    let old = before.expect("had a container");
    assert!(rig.t.engine.docker.container_state(&old).await?.is_none(), "the old container is removed");

    // Stop: 503 with a page that says so; Start: serving again.
    rig.act(Action::Stop).await?;
    let (status, body) = rig.get().await?;
    assert_eq!(status, 503);
    assert!(body.contains("stopped"), "{body}");
    let view = engine.service_runtime(&viewer, rig.service_id).await.map_err(anyhow_of)?;
    assert!(view.stopped);
    assert!(matches!(
        engine.service_action(&user(Role::Deployer), rig.service_id, Action::Restart).await,
        Err(EngineError::Conflict(_))
    ));
    rig.act(Action::Start).await?;
    assert_eq!(rig.get().await?, (200, "v1".into()));
    let view = engine.service_runtime(&viewer, rig.service_id).await.map_err(anyhow_of)?;
    assert!(!view.stopped);
    let kinds: Vec<&str> = view.actions.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, ["started", "stopped", "restarted"], "the history, newest first");
    assert!(view.actions.iter().all(|a| a.actor.as_deref() == Some("deployer")));

    // Changed settings are flagged until a redeploy applies them.
    let vars = [EnvInput { name: "API_KEY".into(), value: Some("another-value".into()), secret: true }];
    service_env::replace(&engine.db, &engine.secrets, rig.service_id, &vars).await?;
    let view = engine.service_runtime(&viewer, rig.service_id).await.map_err(anyhow_of)?;
    assert!(view.settings_changed);
    let redeployed = engine.redeploy(&user(Role::Deployer), rig.service_id).await.map_err(anyhow_of)?;
    let redeployed = rig.t.wait_deployment(redeployed.id, LIMIT).await?;
    assert_eq!(redeployed.status, DeploymentStatus::Live, "{:?}", redeployed.error);
    assert_eq!(redeployed.image_id, after.image_id, "same image");
    let view = engine.service_runtime(&viewer, rig.service_id).await.map_err(anyhow_of)?;
    assert!(!view.settings_changed);
    assert_eq!(view.deployment_id, Some(redeployed.id));

    // The deployment's timeline, in order.
    let events = server::deploys::events::of_deployment(&engine.db, redeployed.id).await?;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["container_started", "healthy", "switched", "drained", "old_removed"]);
    Ok(())
}

#[tokio::test]
async fn hostile_log_queries_are_refused_by_field() -> anyhow::Result<()> {
    let (rig, _repo) = rig("opsbad").await?;
    let viewer = user(Role::Viewer);
    let bad = [
        (LogRequest { tail: Some(10_001), ..Default::default() }, "tail"),
        (LogRequest { since: Some("5y".into()), ..Default::default() }, "since"),
        (LogRequest { since: Some("$(reboot)".into()), ..Default::default() }, "since"),
    ];
    for (mut req, field) in bad {
        req.service_id = rig.service_id;
        match rig.t.engine.runtime_log(&viewer, req).await {
            Err(EngineError::Invalid { field: f, .. }) => assert_eq!(f, field),
            Err(other) => panic!("{field}: {other:?}"),
            Ok(_) => panic!("{field}: accepted"),
        }
    }
    let missing = LogRequest { service_id: 999_999, ..Default::default() };
    assert!(rig.t.engine.runtime_log(&viewer, missing).await.is_err());
    let nothing_live = LogRequest { service_id: rig.service_id, ..Default::default() };
    assert!(matches!(rig.t.engine.runtime_log(&viewer, nothing_live).await, Err(EngineError::Conflict(_))));
    let anonymous = LogRequest { service_id: rig.service_id, ..Default::default() };
    let refused = rig.t.engine.runtime_log(&app::wire::Caller::Anonymous, anonymous).await;
    assert!(matches!(refused, Err(EngineError::Access(_))));
    Ok(())
}

/// A GET loop on fresh connections, counting answers other than 200 "v1".
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(edge: SocketAddr, host: String) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                match server::testkit::edge::get(edge, &host).await {
                    Ok((200, body)) if body == "v1" => o.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("load: {other:?}");
                        f.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        });
        Load { stop, ok, failed, task }
    }

    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        (self.ok.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}
