//! A pipeline run against the real `slipway serve`, killed with SIGKILL
//! mid-step (a service container and a long step running), then started
//! again: the run is `interrupted` (not run again), no step or service
//! container, run network or run volume is left, and the live deployment
//! keeps serving through the edge.

use std::time::Duration;

use anyhow::{ensure, Context};
use app::wire::Role;
use server::{
    builds::TriggerBuild,
    db::Db,
    docker::labels,
    projects::{ProjectStore, ServiceSpec},
    testkit::{
        docker::count_labelled,
        edge,
        engine::{anyhow_of, quick_http_check, user},
        wait::{unique_suffix, wait_until},
        GitRepo, Installation, BASE_IMAGE,
    },
};

const LIMIT: Duration = Duration::from_secs(120);

async fn build_status(db: &Db, id: i64) -> anyhow::Result<String> {
    Ok(sqlx::query_scalar("SELECT status FROM builds WHERE id = ?").bind(id).fetch_one(db).await?)
}

/// Containers, networks and volumes of the run (by its build id label).
async fn run_objects(inst: &Installation, build_id: i64) -> anyhow::Result<usize> {
    let labels = [format!("{}={}", labels::INSTANCE, inst.uid), format!("{}={build_id}", labels::BUILD_ID)];
    count_labelled(inst.engine.docker.client()?, &labels).await
}

#[tokio::test]
async fn a_run_killed_mid_step_is_interrupted_leaves_nothing_and_the_live_version_serves(
) -> anyhow::Result<()> {
    let inst = &Installation::open(env!("CARGO_BIN_EXE_slipway")).await?;
    let (engine, db) = (&inst.engine, &inst.db);
    let unique = unique_suffix();
    let store = ProjectStore::new(db.clone());
    let project = store.create_project(&format!("pc-{unique}")).await?;
    let repo = GitRepo::http_service("live before the run")?;
    let mut spec = ServiceSpec::new(format!("web-{unique}"), repo.url(), 8080);
    spec.health = quick_http_check("/");
    spec.drain_secs = 0;
    let service = store.create_service(project.id, &spec).await?.id;
    let host = format!("web-{unique}.pc-{unique}.localhost");
    let deployer = user(Role::Deployer);

    let mut server = inst.start_server().await?;
    let req = TriggerBuild { deploy: true, build_only: false, ..TriggerBuild::manual_build_only(service) };
    let first = engine.trigger_build(&deployer, req).await.map_err(anyhow_of)?;
    wait_until("the first deployment to be live", LIMIT, || async move {
        Ok(engine.live_of(service).await?.map(|_| ()))
    })
    .await
    .map_err(|e| e.context(server.log()))?;
    ensure!(build_status(db, first.id).await? == "succeeded");

    repo.write(
        ".slipway.yml",
        &format!(
            "services:\n  side:\n    image: {BASE_IMAGE}\n    command: [\"sleep\", \"600\"]\n\
             steps:\n  - name: long\n    image: {BASE_IMAGE}\n    commands: [\"echo started\", \"sleep 600\"]\n"
        ),
    )?;
    repo.commit("a long run")?;
    let run =
        engine.trigger_build(&deployer, TriggerBuild::manual_build_only(service)).await.map_err(anyhow_of)?;
    wait_until("the long step to run", LIMIT, || async move {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM build_steps WHERE build_id = ? AND name = 'long'")
                .bind(run.id)
                .fetch_optional(db)
                .await?;
        Ok((status.as_deref() == Some("running")).then_some(()))
    })
    .await
    .map_err(|e| e.context(server.log()))?;
    // The service container, the step container, the network and the volume
    // (the step's row says running just before its container is made).
    wait_until("the step's container", LIMIT, || async move {
        Ok((run_objects(inst, run.id).await? >= 4).then_some(()))
    })
    .await?;

    server.kill();
    ensure!(build_status(db, run.id).await? == "running", "killed mid-step");
    server = inst.start_server().await?;
    let status = wait_until("the run to end", LIMIT, || async move {
        let status = build_status(db, run.id).await?;
        Ok((status != "queued" && status != "running").then_some(status))
    })
    .await
    .context("after the restart")?;
    ensure!(status == "interrupted", "the run is interrupted, not run again: {status}");
    wait_until("the run's objects to be removed", LIMIT, || async move {
        Ok((run_objects(inst, run.id).await? == 0).then_some(()))
    })
    .await?;
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM build_steps WHERE build_id = ? AND status IN ('pending', 'running')",
    )
    .bind(run.id)
    .fetch_one(db)
    .await?;
    ensure!(open == 0, "{open} steps still open");
    let (code, body) = wait_until("the live version to answer", LIMIT, || async {
        Ok(edge::get(server.edge_addr, &host).await.ok().filter(|(code, _)| *code == 200))
    })
    .await?;
    ensure!(code == 200 && body.contains("live before the run"), "{code} {body}");
    drop(server);
    Ok(())
}
