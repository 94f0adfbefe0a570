//! Deleting a service against the real `slipway serve` process, killed with
//! SIGKILL in the middle of the delete (while the engine waits for the
//! service's container to stop), then started again: the delete finishes
//! after the restart, and nothing of the service is left (rows, containers,
//! images, logs), while the audit event stays and another service of the
//! same installation keeps serving.

use std::time::Duration;

use app::wire::Role;
use server::{
    builds::TriggerBuild,
    db::Db,
    deploys::DeploymentStatus,
    docker::labels,
    projects::{ProjectStore, ServiceSpec},
    testkit::{
        edge,
        engine::{anyhow_of, quick_http_check, user},
        wait::{unique_suffix, wait_until},
        GitRepo, Installation,
    },
};

const LIMIT: Duration = Duration::from_secs(120);

/// An httpd that ignores SIGTERM, so stopping it takes the whole grace
/// period: the window in which the server is killed.
fn stubborn_repo(body: &str) -> anyhow::Result<GitRepo> {
    GitRepo::script_service(
        "#!/bin/sh\ntrap '' TERM\nexec httpd -f -p 8080 -h /app/www\n",
        &[("www/index.html", body)],
    )
}

async fn job_status(db: &Db, id: i64) -> anyhow::Result<(String, i64)> {
    Ok(sqlx::query_as("SELECT status, attempts FROM jobs WHERE id = ?").bind(id).fetch_one(db).await?)
}

#[tokio::test]
async fn a_delete_killed_midway_finishes_after_restart() -> anyhow::Result<()> {
    let inst = Installation::open(env!("CARGO_BIN_EXE_slipway")).await?;
    let (engine, db) = (&inst.engine, &inst.db);
    let unique = unique_suffix();
    let store = ProjectStore::new(db.clone());
    let project = store.create_project(&format!("del-{unique}")).await?;
    let (doomed_repo, kept_repo) = (stubborn_repo("doomed")?, stubborn_repo("kept")?);
    let mut ids = Vec::new();
    for (name, repo) in [("doomed", &doomed_repo), ("kept", &kept_repo)] {
        let mut spec = ServiceSpec::new(format!("{name}-{unique}"), repo.url(), 8080);
        spec.health = quick_http_check("/");
        spec.drain_secs = 0;
        ids.push(store.create_service(project.id, &spec).await?.id);
    }
    let (doomed, kept) = (ids[0], ids[1]);

    let mut server = inst.start_server().await?;

    // Both services built and live.
    let mut images = Vec::new();
    for id in [doomed, kept] {
        let req = TriggerBuild {
            service_id: id,
            git_ref: None,
            trigger: "manual".into(),
            deploy: true,
            build_only: false,
            no_cache: false,
            group: None,
        };
        let build = engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
        let live = wait_until("a live deployment", LIMIT, || {
            let engine = engine.clone();
            async move { engine.live_of(id).await }
        })
        .await?;
        assert_eq!(live.status, DeploymentStatus::Live);
        images.push(live.image_id.clone());
        let built = engine.build(build.id).await.map_err(anyhow_of)?;
        assert!(engine.logs.log_path(built.id).exists(), "the build has a log file");
    }
    let edge = server.edge_addr;
    let kept_host = format!("kept-{unique}.del-{unique}.localhost");
    assert_eq!(edge::get(edge, &kept_host).await?, (200, "kept".into()));

    // Delete, and kill the server while it waits for the container to stop.
    let name = format!("doomed-{unique}");
    let job = engine.delete_service(&user(Role::Deployer), doomed, &name, false).await.map_err(anyhow_of)?;
    wait_until("the delete job to run", LIMIT, || {
        let db = db.clone();
        async move { Ok((job_status(&db, job).await?.0 == "running").then_some(())) }
    })
    .await?;
    // Inside the 5 s stop grace of the SIGTERM-ignoring container.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    let (status, _) = job_status(db, job).await?;
    assert_eq!(status, "running", "killed mid-delete");
    assert!(store.get_service(doomed).await.is_ok(), "not finished before the kill");
    // Work on a service being deleted is refused.
    let refused = engine.trigger_build(&user(Role::Deployer), TriggerBuild::manual_build_only(doomed)).await;
    assert!(refused.is_err(), "no build of a service being deleted");

    server = inst.start_server().await?;
    let (status, attempts) = wait_until("the delete to finish", LIMIT, || {
        let db = db.clone();
        async move {
            let (s, a) = job_status(&db, job).await?;
            Ok((s != "queued" && s != "running").then_some((s, a)))
        }
    })
    .await?;
    assert_eq!((status.as_str(), attempts), ("succeeded", 2), "retried once after the crash");
    assert!(store.get_service(doomed).await.is_err(), "the row is gone");
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM builds WHERE service_id = ?1) + \
         (SELECT COUNT(*) FROM deployments WHERE service_id = ?1)",
    )
    .bind(doomed)
    .fetch_one(db)
    .await?;
    assert_eq!(left, 0, "history went with the service");
    let containers = inst.containers(&[(labels::SERVICE_ID, &doomed.to_string())]).await?;
    assert!(containers.is_empty(), "no container left: {containers:?}");
    assert!(!engine.docker.image_exists(&images[0]).await?, "its image is removed");
    assert!(engine.docker.image_exists(&images[1]).await?, "the other service's image stays");
    let logs = std::fs::read_dir(inst.data_path().join("logs").join("builds"))?.count();
    assert_eq!(logs, 1, "only the kept service's build log is left");
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'service.delete' AND target = ?",
    )
    .bind(format!("service:{doomed}"))
    .fetch_one(db)
    .await?;
    assert_eq!(audited, 1, "the audit event stays");
    // The other service still serves through the restarted edge.
    let edge = server.edge_addr;
    let kept_answer = wait_until("the kept service to answer", LIMIT, || {
        let host = kept_host.clone();
        async move { Ok(edge::get(edge, &host).await.ok().filter(|(_, body)| body == "kept")) }
    })
    .await?;
    assert_eq!(kept_answer.0, 200, "{kept_answer:?}");
    drop(server);
    Ok(())
}
