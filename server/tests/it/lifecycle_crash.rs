//! Restart and Stop against the real `slipway serve` process, killed with
//! SIGKILL in the middle of each, then started again:
//! - killed while a restart's fresh container is not healthy yet: after the
//!   restart of the server the fresh container is gone, the deployment's
//!   recorded container is the only one and serves through the edge;
//! - killed while a stop waits for the container to exit: after the restart
//!   of the server the service stays stopped (container not running, host
//!   answers 503), and Start brings it back.

use std::time::Duration;

use anyhow::{ensure, Context};
use app::wire::Role;
use server::{
    builds::TriggerBuild,
    db::Db,
    deploys::{Deployment, DeploymentStatus},
    docker::labels,
    engine::Engine,
    lifecycle::Action,
    projects::{HealthCheck, ProjectStore, ServiceSpec},
    testkit::{
        edge,
        engine::{anyhow_of, quick_http_check, user},
        wait::{unique_suffix, wait_until},
        GitRepo, Installation,
    },
};

const LIMIT: Duration = Duration::from_secs(120);

/// An httpd that answers only after 4 s (the window in which a restart is
/// killed) and ignores SIGTERM (so a stop takes the whole 10 s grace: the
/// window in which a stop is killed).
fn slow_stubborn_repo() -> anyhow::Result<GitRepo> {
    GitRepo::script_service(
        "#!/bin/sh\ntrap '' TERM\nsleep 4\nexec httpd -f -p 8080 -h /app/www\n",
        &[("www/index.html", "steady")],
    )
}

async fn job_status(db: &Db, id: i64) -> anyhow::Result<String> {
    Ok(sqlx::query_scalar("SELECT status FROM jobs WHERE id = ?").bind(id).fetch_one(db).await?)
}

async fn wait_job_ended(db: &Db, id: i64) -> anyhow::Result<String> {
    wait_until(&format!("job {id} to end"), LIMIT, || async move {
        let status = job_status(db, id).await?;
        Ok((status != "queued" && status != "running").then_some(status))
    })
    .await
}

async fn wait_job_running(db: &Db, id: i64) -> anyhow::Result<()> {
    wait_until(&format!("job {id} to run"), LIMIT, || async move {
        Ok((job_status(db, id).await? == "running").then_some(()))
    })
    .await
}

/// Waits for the service's live deployment; fails early, with the error,
/// when its build or deployment failed.
async fn wait_live(engine: &Engine, db: &Db, service: i64) -> anyhow::Result<Deployment> {
    wait_until("a live deployment", LIMIT, || async move {
        if let Some(live) = engine.live_of(service).await? {
            return Ok(Some(live));
        }
        let failed: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT 'build ' || number, error FROM builds WHERE service_id = ?1 AND status IN ('failed', 'timed_out') \
             UNION ALL SELECT 'deployment ' || id, error FROM deployments WHERE service_id = ?1 AND status = 'failed'",
        )
        .bind(service)
        .fetch_optional(db)
        .await?;
        match failed {
            Some((what, error)) => anyhow::bail!("{what} failed: {}", error.unwrap_or_default()),
            None => Ok(None),
        }
    })
    .await
}

#[tokio::test]
async fn restart_and_stop_killed_midway_leave_one_consistent_container() -> anyhow::Result<()> {
    let inst = &Installation::open(env!("CARGO_BIN_EXE_slipway")).await?;
    let (engine, db) = (&inst.engine, &inst.db);
    let unique = unique_suffix();
    let store = ProjectStore::new(db.clone());
    let project = store.create_project(&format!("lc-{unique}")).await?;
    let repo = slow_stubborn_repo()?;
    let mut spec = ServiceSpec::new(format!("steady-{unique}"), repo.url(), 8080);
    // 30 s to answer: the 4 s sleep must fit on a loaded machine too.
    spec.health = HealthCheck { retries: 150, ..quick_http_check("/") };
    spec.drain_secs = 0;
    let service = store.create_service(project.id, &spec).await?.id;
    let host = format!("steady-{unique}.lc-{unique}.localhost");
    let deployer = user(Role::Deployer);

    let mut server = inst.start_server().await?;
    let req = TriggerBuild {
        service_id: service,
        git_ref: None,
        trigger: "manual".into(),
        deploy: true,
        build_only: false,
        no_cache: false,
        group: None,
    };
    engine.trigger_build(&deployer, req).await.map_err(anyhow_of)?;
    let live = wait_live(engine, db, service).await.map_err(|e| e.context(server.log()))?;
    ensure!(live.status == DeploymentStatus::Live);
    let original = live.container_id.clone().context("the live deployment has a container")?;
    let dep_id = live.id;
    let dep_label = &live.id.to_string();
    let serves = |edge_addr| {
        let host = host.clone();
        async move {
            wait_until("the service to answer through the edge", LIMIT, || {
                let host = host.clone();
                async move { Ok(edge::get(edge_addr, &host).await.ok().filter(|(code, _)| *code == 200)) }
            })
            .await
        }
    };
    ensure!(serves(server.edge_addr).await?.1 == "steady");

    // ---- Restart, killed while the fresh container sleeps before serving.
    let restart = engine.service_action(&deployer, service, Action::Restart).await.map_err(anyhow_of)?;
    wait_until("the restart's fresh container", LIMIT, || async move {
        Ok((inst.containers(&[(labels::DEPLOYMENT_ID, dep_label)]).await?.len() == 2).then_some(()))
    })
    .await?;
    server.kill();
    ensure!(job_status(db, restart.job_id).await? == "running", "killed mid-restart");
    let recorded = engine.deployment(dep_id).await.map_err(anyhow_of)?.container_id;
    ensure!(recorded.as_deref() == Some(original.as_str()), "not switched before the kill");

    server = inst.start_server().await?;
    let status = wait_job_ended(db, restart.job_id).await?;
    ensure!(status != "succeeded", "an interrupted restart is given up, not half-done: {status}");
    let left = wait_until("only the recorded container to be left", LIMIT, || async move {
        let left = inst.containers(&[(labels::DEPLOYMENT_ID, dep_label)]).await?;
        Ok((left.len() == 1).then_some(left))
    })
    .await?;
    ensure!(left == [original.clone()], "the original container stays: {left:?}");
    let dep = engine.deployment(dep_id).await.map_err(anyhow_of)?;
    ensure!(dep.status == DeploymentStatus::Live && dep.container_id.as_deref() == Some(original.as_str()));
    ensure!(serves(server.edge_addr).await?.1 == "steady", "the live version serves after the crash");

    // ---- Stop, killed while the SIGTERM-ignoring container is stopping.
    let stop = engine.service_action(&deployer, service, Action::Stop).await.map_err(anyhow_of)?;
    wait_job_running(db, stop.job_id).await?;
    wait_until("the stop to be recorded", LIMIT, || async move {
        Ok(engine.deployment(dep_id).await.map_err(anyhow_of)?.stopped_at.map(|_| ()))
    })
    .await?;
    server.kill();
    ensure!(job_status(db, stop.job_id).await? == "running", "killed mid-stop");

    server = inst.start_server().await?;
    wait_job_ended(db, stop.job_id).await?;
    let original_ref = &original;
    wait_until("the stopped service's container to be stopped", LIMIT, || async move {
        let state = engine.docker.container_state(original_ref).await?;
        Ok(state.filter(|s| !s.running).map(|_| ()))
    })
    .await?;
    let (code, _) = edge::get(server.edge_addr, &host).await?;
    ensure!(code == 503, "a stopped service answers 503 after the crash, got {code}");
    let stopped = engine.deployment(dep_id).await.map_err(anyhow_of)?.stopped_at;
    ensure!(stopped.is_some(), "it stays stopped");

    let start = engine.service_action(&deployer, service, Action::Start).await.map_err(anyhow_of)?;
    ensure!(wait_job_ended(db, start.job_id).await? == "succeeded");
    ensure!(serves(server.edge_addr).await?.1 == "steady", "Start brings it back");
    let left = inst.containers(&[(labels::SERVICE_ID, &service.to_string())]).await?;
    ensure!(left == [original], "one container for the service: {left:?}");
    drop(server);
    Ok(())
}
