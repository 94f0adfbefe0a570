//! Cleanup of what a `slipway serve` process made: its containers and
//! images carry only the installation's `dev.slipway.instance` label (not
//! the test kit's), so they are removed by that label, also when a test
//! panics.

use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use bollard::{
    query_parameters::{
        ListContainersOptionsBuilder, ListImagesOptionsBuilder, RemoveContainerOptionsBuilder,
        RemoveImageOptionsBuilder,
    },
    Docker,
};

use crate::docker::labels;

/// Removes the installation's containers, then its images, when dropped.
pub struct InstanceCleanup {
    docker: Docker,
    uid: String,
}

impl InstanceCleanup {
    /// `uid` is the installation's `instance.uid` ([`crate::db::instance_uid`]).
    pub fn new(docker: Docker, uid: impl Into<String>) -> Self {
        InstanceCleanup { docker, uid: uid.into() }
    }

    pub async fn run(&self) -> anyhow::Result<()> {
        remove(&self.docker, &self.uid).await
    }
}

async fn remove(docker: &Docker, uid: &str) -> anyhow::Result<()> {
    let filters = HashMap::from([("label".to_string(), vec![format!("{}={uid}", labels::INSTANCE)])]);
    let containers = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await?;
    for id in containers.into_iter().filter_map(|c| c.id) {
        let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        if let Err(e) = docker.remove_container(&id, Some(options)).await {
            eprintln!("cleanup: cannot remove container {id}: {e}");
        }
    }
    // Pipeline runs' networks and volumes.
    let networks = docker
        .list_networks(Some(
            bollard::query_parameters::ListNetworksOptionsBuilder::new().filters(&filters).build(),
        ))
        .await?;
    for id in networks.into_iter().filter_map(|n| n.id) {
        if let Err(e) = docker.remove_network(&id).await {
            eprintln!("cleanup: cannot remove network {id}: {e}");
        }
    }
    let volumes = docker
        .list_volumes(Some(
            bollard::query_parameters::ListVolumesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await?;
    for volume in volumes.volumes.unwrap_or_default() {
        let options = bollard::query_parameters::RemoveVolumeOptionsBuilder::new().force(true).build();
        if let Err(e) = docker.remove_volume(&volume.name, Some(options)).await {
            eprintln!("cleanup: cannot remove volume {}: {e}", volume.name);
        }
    }
    let images =
        docker.list_images(Some(ListImagesOptionsBuilder::new().all(true).filters(&filters).build())).await?;
    for image in images {
        let options = RemoveImageOptionsBuilder::new().force(true).build();
        if let Err(e) = docker.remove_image(&image.id, Some(options), None).await {
            eprintln!("cleanup: cannot remove image {}: {e}", image.id);
        }
    }
    Ok(())
}

impl Drop for InstanceCleanup {
    fn drop(&mut self) {
        let (docker, uid) = (self.docker.clone(), self.uid.clone());
        // A runtime of its own: drop may run inside (or outside) another one.
        let done = std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(60), remove(&docker, &uid))
                    .await
                    .context("cleanup timed out")?
            })
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cleanup of instance {} failed: {e:#}", self.uid),
            Err(_) => eprintln!("cleanup of instance {} panicked", self.uid),
        }
    }
}
