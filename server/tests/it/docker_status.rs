//! The status use-case and the test kit against the real Docker Engine.

use std::sync::Arc;

use app::wire::DockerStatus;
use bollard::{
    models::ContainerCreateBody,
    query_parameters::{CreateContainerOptionsBuilder, InspectContainerOptions},
};
use server::{
    docker::DockerEngine,
    status::StatusService,
    testkit::{DockerKit, GitRepo, TestDataDir, BASE_IMAGE},
};

#[tokio::test]
async fn status_reports_the_real_engine_and_database() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let expected = kit.docker.version().await?.version.unwrap_or_default();
    let dir = TestDataDir::new()?;
    let service = StatusService::new(dir.open_db().await?, Arc::new(DockerEngine::from_env()));

    let status = service.system_status().await?;

    assert_eq!(status.version, server::VERSION);
    assert!(status.database.engine.starts_with("SQLite 3."), "{:?}", status.database);
    assert_eq!(status.database.migrations_applied, server::db::MIGRATOR.iter().count() as i64);
    match status.docker {
        DockerStatus::Reachable { version, .. } => assert_eq!(version, expected),
        other => panic!("engine should be reachable: {other:?}"),
    }
    Ok(())
}

/// A status service whose engine lives at a unix socket in `dir`.
async fn service_on_socket(dir: &TestDataDir, socket: &std::path::Path) -> anyhow::Result<StatusService> {
    let client =
        bollard::Docker::connect_with_unix(&socket.to_string_lossy(), 30, bollard::API_DEFAULT_VERSION)?;
    Ok(StatusService::new(dir.open_db().await?, Arc::new(DockerEngine::with_client(client))))
}

fn assert_unreachable(docker: DockerStatus) {
    match docker {
        DockerStatus::Unreachable { reason } => assert!(reason.contains("unreachable"), "{reason}"),
        other => panic!("the engine must read as unreachable: {other:?}"),
    }
}

#[tokio::test]
async fn status_says_docker_unreachable_when_the_socket_refuses() -> anyhow::Result<()> {
    let dir = TestDataDir::new()?;
    let socket = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket)?); // the file stays, nobody listens
    let service = service_on_socket(&dir, &socket).await?;

    let status = service.system_status().await?;

    assert_unreachable(status.docker);
    assert!(status.database.migrations_applied > 0, "the database part still answers");
    Ok(())
}

#[tokio::test]
async fn status_does_not_hang_when_the_engine_never_answers() -> anyhow::Result<()> {
    let dir = TestDataDir::new()?;
    let socket = dir.path().join("silent.sock");
    let listener = tokio::net::UnixListener::bind(&socket)?;
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn); // accept and never reply
        }
    });
    let service = service_on_socket(&dir, &socket).await?;

    let started = std::time::Instant::now();
    let status = service.system_status().await?;

    assert_unreachable(status.docker);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test]
async fn kit_removes_labelled_containers_and_builds_from_a_real_repo() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let repo = GitRepo::http_service("hello v1")?;
    let sha = repo.head()?;
    assert_eq!(sha.len(), 40);
    assert_eq!(repo.git(&["show", &format!("{sha}:index.html")])?, "hello v1");
    assert!(repo.git(&["show", &format!("{sha}:Dockerfile")])?.contains(BASE_IMAGE));

    let body = ContainerCreateBody {
        image: Some(BASE_IMAGE.to_string()),
        cmd: Some(vec!["sleep".into(), "300".into()]),
        labels: Some(kit.labels()),
        ..Default::default()
    };
    let name = format!("slipway-testkit-{}", kit.run_id);
    let created = kit
        .docker
        .create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body)
        .await?;
    kit.docker.start_container(&created.id, None::<bollard::query_parameters::StartContainerOptions>).await?;
    let running = kit.docker.inspect_container(&created.id, None::<InspectContainerOptions>).await?;
    assert_eq!(running.state.and_then(|s| s.running), Some(true), "base image runs busybox");

    kit.cleanup().await?;

    let gone = kit.docker.inspect_container(&created.id, None::<InspectContainerOptions>).await;
    assert!(gone.is_err(), "cleanup removes the labelled container");
    Ok(())
}
