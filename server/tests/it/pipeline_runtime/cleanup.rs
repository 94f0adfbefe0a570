//! Clean-up by label and the sandbox settings of the containers made.

use std::time::Duration;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};
use server::docker::labels;
use server::docker::pipeline::{RunRef, WORKSPACE};

use super::{TestRun, CPU_MILLIS, MEMORY};

#[tokio::test]
async fn remove_run_leaves_no_container_network_or_volume() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    // Creating again is a no-op (a retried job).
    let first = t.engine.create_run_network(&t.run, &t.network, &t.labels).await?;
    assert_eq!(t.engine.create_run_network(&t.run, &t.network, &t.labels).await?, first);
    t.engine.create_run_volume(&t.run, &t.volume, &t.labels).await?;
    // Another run cannot take them over.
    let other = RunRef { build_id: t.run.build_id + 1, ..t.run.clone() };
    assert!(t.engine.create_run_network(&other, &t.network, &t.labels).await.is_err());
    assert!(t.engine.create_run_volume(&other, &t.volume, &t.labels).await.is_err());

    let service = t.engine.start_service(&t.run, &t.service("cache", &["sleep", "60"])).await?;
    t.engine
        .wait_service_healthy(&service, None, tokio::time::Instant::now() + Duration::from_secs(10))
        .await?;
    let (outcome, _) = t.run(&t.step("touch", &["touch /workspace/x"])).await?;
    assert_eq!(outcome.exit_code, 0);
    // A retried step (same container name) replaces its leftover.
    let (again, lines) = t.run(&t.step("touch", &["test -f /workspace/x"])).await?;
    assert_eq!(again.exit_code, 0, "{lines:?}");
    assert_ne!(again.container_id, outcome.container_id);
    assert_eq!(t.engine.orphan_runs(&t.run.instance).await?, [t.run.build_id]);

    let removed = t.engine.remove_run(&t.run).await?;
    assert_eq!((removed.containers, removed.networks, removed.volumes), (2, 1, 1), "{removed:?}");

    let filters = t.run_filter();
    let docker = &t.kit.docker;
    let containers = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await?;
    let networks =
        docker.list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build())).await?;
    let volumes =
        docker.list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&filters).build())).await?;
    assert!(containers.is_empty(), "{containers:?}");
    assert!(networks.is_empty(), "{networks:?}");
    assert!(volumes.volumes.unwrap_or_default().is_empty());
    assert!(t.engine.orphan_runs(&t.run.instance).await?.is_empty());
    assert_eq!(t.engine.remove_run(&t.run).await?, Default::default(), "idempotent");
    Ok(())
}

#[tokio::test]
async fn step_and_service_containers_are_sandboxed() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    let service = t.engine.start_service(&t.run, &t.service("svc", &["sleep", "60"])).await?;
    let (step, _) = t.run(&t.step("inspect", &["true"])).await?;

    for (id, volume) in [(service.as_str(), None), (step.container_id.as_str(), Some(t.volume.as_str()))] {
        let info = t.kit.docker.inspect_container(id, None).await?;
        let host = info.host_config.unwrap_or_default();
        assert_eq!(host.privileged, Some(false), "{id}");
        assert!(host.binds.unwrap_or_default().is_empty(), "no host path: {id}");
        assert!(host.cap_add.unwrap_or_default().is_empty(), "{id}");
        assert!(host.security_opt.unwrap_or_default().iter().any(|o| o == "no-new-privileges"), "{id}");
        assert_eq!(host.network_mode.as_deref(), Some(t.network.as_str()));
        assert!(!matches!(host.pid_mode.as_deref(), Some("host")));
        assert!(!matches!(host.ipc_mode.as_deref(), Some("host")));
        assert_eq!(host.memory, Some(MEMORY as i64));
        assert_eq!(host.nano_cpus, Some(i64::from(CPU_MILLIS) * 1_000_000));
        let mounts = host.mounts.unwrap_or_default();
        let sources: Vec<_> = mounts.iter().map(|m| (m.source.as_deref(), m.target.as_deref())).collect();
        match volume {
            Some(volume) => assert_eq!(sources, [(Some(volume), Some(WORKSPACE))]),
            None => assert!(sources.is_empty(), "{sources:?}"),
        }
        let run_labels = info.config.and_then(|c| c.labels).unwrap_or_default();
        assert_eq!(run_labels.get(labels::BUILD_ID), Some(&t.run.build_id.to_string()));
        assert_eq!(run_labels.get(labels::INSTANCE), Some(&t.run.instance));
    }
    Ok(())
}
