//! What every deployment container shares, whichever job starts it (deploy,
//! restart): its spec on the project network with the service's volumes,
//! and the way it comes into service: healthy (probe or settle time), then
//! reachable by the service's name, then (a routed service) an address for
//! the edge.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::{health::wait_healthy, Deployment};
use crate::{
    docker::{app_network, containers::ContainerSpec, labels},
    engine::Engine,
    projects::{Project, Service},
    service_env,
};

/// Slipway's labels on a project network.
fn network_labels(engine: &Engine, project: &Project) -> HashMap<String, String> {
    let mut out = engine.settings.extra_labels.clone();
    out.insert(labels::MANAGED.into(), "true".into());
    out.insert(labels::INSTANCE.into(), engine.instance.clone());
    out.insert(labels::PROJECT.into(), project.name.clone());
    out.insert(labels::PROJECT_ID.into(), project.id.to_string());
    out
}

/// The project's network, created when missing; returns its name.
pub(crate) async fn project_network(engine: &Engine, project: &Project) -> anyhow::Result<String> {
    let name = app_network::project_network(&engine.instance, project.id);
    engine.docker.ensure_project_network(&name, &network_labels(engine, project)).await?;
    Ok(name)
}

/// The container of `dep` (named `name`): its image, command, its config
/// snapshot's env (secrets opened), volumes (created when missing), limits,
/// the project network and Slipway's labels.
pub(crate) async fn container_spec(
    engine: &Engine,
    project: &Project,
    service: &Service,
    dep: &Deployment,
    name: String,
) -> anyhow::Result<ContainerSpec> {
    let network = project_network(engine, project).await?;
    let mut container_labels = engine.labels(&project.name, &service.spec.name, service.id);
    let mut volumes = Vec::with_capacity(dep.config.volumes.len());
    for volume in &dep.config.volumes {
        let engine_name = app_network::service_volume(&engine.instance, service.id, &volume.name);
        let mut vol_labels = container_labels.clone();
        vol_labels.insert(app_network::VOLUME_NAME.into(), volume.name.clone());
        engine.docker.ensure_volume(&engine_name, &vol_labels).await?;
        volumes.push((engine_name, volume.path.clone()));
    }
    container_labels.insert(labels::DEPLOYMENT_ID.into(), dep.id.to_string());
    Ok(ContainerSpec {
        name,
        image: dep.image_id.clone(),
        env: service_env::open_all(&engine.secrets, &dep.config.env)?,
        port: dep.config.port,
        command: dep.config.command.clone(),
        network,
        volumes,
        published: dep
            .config
            .ports
            .iter()
            .filter_map(|p| {
                Some((u16::try_from(p.container).ok()?, u16::try_from(p.host).ok()?, p.protocol.clone()))
            })
            .collect(),
        labels: container_labels,
        memory_bytes: dep.config.memory_bytes,
        cpu_millis: dep.config.cpu_millis,
    })
}

/// Waits until the started container is healthy, then gives it the
/// service's name on the project network. Returns the edge's address for a
/// routed deployment, `None` for a worker or an image service without port.
pub(crate) async fn come_into_service(
    engine: &Engine,
    project: &Project,
    service: &Service,
    dep: &Deployment,
    container_id: &str,
) -> anyhow::Result<Option<SocketAddr>> {
    let config = &dep.config;
    wait_healthy(&engine.docker, container_id, config.port, &config.health, config.settle()).await?;
    let network = app_network::project_network(&engine.instance, project.id);
    let ip = engine.docker.publish_alias(container_id, &network, &service.spec.name).await?;
    Ok(config.route_port().map(|port| SocketAddr::new(ip, port)))
}
