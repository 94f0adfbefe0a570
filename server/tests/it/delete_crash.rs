//! Deleting a service against the real `slipway serve` process, killed with
//! SIGKILL in the middle of the delete (while the engine waits for the
//! service's container to stop), then started again: the delete finishes
//! after the restart, and nothing of the service is left (rows, containers,
//! images, logs), while the audit event stays and another service of the
//! same installation keeps serving.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use app::wire::Role;
use bollard::Docker;
use server::{
    builds::TriggerBuild,
    db::Db,
    deploys::{switch::RouteTable, DeploymentStatus},
    docker::{labels, DockerEngine},
    engine::{Engine, EngineSettings},
    projects::{ProjectStore, ServiceSpec},
    testkit::{
        docker::ensure_base_image,
        engine::{anyhow_of, quick_http_check, user},
        instance::InstanceCleanup,
        wait::{unique_suffix, wait_until},
        GitRepo, ServerProcess, TestDataDir,
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

/// `GET /` through the edge with `Host: host`; the raw answer.
async fn get_via_edge(edge: std::net::SocketAddr, host: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(edge)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(s, "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        anyhow::Ok(out)
    })
    .await?
}

async fn job_status(db: &Db, id: i64) -> anyhow::Result<(String, i64)> {
    Ok(sqlx::query_as("SELECT status, attempts FROM jobs WHERE id = ?").bind(id).fetch_one(db).await?)
}

#[tokio::test]
async fn a_delete_killed_midway_finishes_after_restart() -> anyhow::Result<()> {
    let docker = Docker::connect_with_defaults().context("docker client")?;
    ensure_base_image(&docker).await?;
    let data = TestDataDir::new()?;
    let db = data.open_db().await?;
    let uid = server::db::instance_uid(&db).await?;
    let _cleanup = InstanceCleanup::new(docker.clone(), uid.clone());
    let engine = Engine::open(
        db.clone(),
        DockerEngine::from_env(),
        Arc::new(RouteTable::new()),
        EngineSettings { allow_local_repos: true, ..EngineSettings::new(data.path()) },
        None,
    )
    .await?;
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

    let site = tempfile::Builder::new().prefix("slipway-site-").tempdir()?;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_slipway"));
    let start = {
        let (bin, dir, site) = (bin.clone(), data.path().to_path_buf(), site.path().to_path_buf());
        move || ServerProcess::start(&bin, &dir, &site)
    };
    let mut server = tokio::task::spawn_blocking(start.clone()).await??;

    // Both services built and live.
    let mut images = Vec::new();
    for id in [doomed, kept] {
        let req = TriggerBuild {
            service_id: id,
            git_ref: None,
            trigger: "manual".into(),
            deploy: true,
            build_only: false,
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
    assert!(get_via_edge(edge, kept_host.clone()).await?.contains("kept"));

    // Delete, and kill the server while it waits for the container to stop.
    let name = format!("doomed-{unique}");
    let job = engine.delete_service(&user(Role::Deployer), doomed, &name).await.map_err(anyhow_of)?;
    wait_until("the delete job to run", LIMIT, || {
        let db = db.clone();
        async move { Ok((job_status(&db, job).await?.0 == "running").then_some(())) }
    })
    .await?;
    // Inside the 5 s stop grace of the SIGTERM-ignoring container.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    let (status, _) = job_status(&db, job).await?;
    assert_eq!(status, "running", "killed mid-delete");
    assert!(store.get_service(doomed).await.is_ok(), "not finished before the kill");
    // Work on a service being deleted is refused.
    let refused = engine
        .trigger_build(
            &user(Role::Deployer),
            TriggerBuild {
                service_id: doomed,
                git_ref: None,
                trigger: "manual".into(),
                deploy: false,
                build_only: true,
            },
        )
        .await;
    assert!(refused.is_err(), "no build of a service being deleted");

    server = tokio::task::spawn_blocking(start).await??;
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
    .fetch_one(&db)
    .await?;
    assert_eq!(left, 0, "history went with the service");
    let containers = engine
        .docker
        .containers_labelled(&[(labels::INSTANCE, &uid), (labels::SERVICE_ID, &doomed.to_string())])
        .await?;
    assert!(containers.is_empty(), "no container left: {containers:?}");
    assert!(!engine.docker.image_exists(&images[0]).await?, "its image is removed");
    assert!(engine.docker.image_exists(&images[1]).await?, "the other service's image stays");
    let logs = std::fs::read_dir(data.path().join("logs").join("builds"))?.count();
    assert_eq!(logs, 1, "only the kept service's build log is left");
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'service.delete' AND target = ?",
    )
    .bind(format!("service:{doomed}"))
    .fetch_one(&db)
    .await?;
    assert_eq!(audited, 1, "the audit event stays");
    // The other service still serves through the restarted edge.
    let edge = server.edge_addr;
    let kept_answer = wait_until("the kept service to answer", LIMIT, || {
        let host = kept_host.clone();
        async move { Ok(get_via_edge(edge, host).await.ok().filter(|a| a.contains("kept"))) }
    })
    .await?;
    assert!(kept_answer.starts_with("HTTP/1.1 200"), "{kept_answer}");
    drop(server);
    Ok(())
}
