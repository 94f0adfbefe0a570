//! Docker for e2e tests: the local base image test repositories build on,
//! and removal of everything the server under test made. The server labels
//! its containers and images with its installation id
//! (`dev.slipway.instance`); [`InstanceCleanup`] removes them by that label
//! when dropped, also when the test panicked.

use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use bollard::query_parameters::ListImagesOptionsBuilder;
use server::docker::{labels, DockerEngine};

/// Makes sure `slipway-test/busybox:1` exists (there is no registry).
pub async fn ensure_base_image() -> anyhow::Result<()> {
    let docker = DockerEngine::from_env();
    let client = docker.client().context("no Docker client")?;
    client.ping().await.context("the Docker engine does not answer")?;
    server::testkit::docker::ensure_base_image(client).await
}

/// Removes the installation's containers, then its images, on drop.
pub struct InstanceCleanup {
    pub uid: String,
}

impl InstanceCleanup {
    async fn run(uid: &str) -> anyhow::Result<(usize, usize)> {
        let docker = DockerEngine::from_env();
        let containers = docker.containers_labelled(&[(labels::INSTANCE, uid)]).await?;
        for c in &containers {
            docker.remove_container(&c.id, Duration::ZERO).await?;
        }
        let filters = HashMap::from([("label".to_string(), vec![format!("{}={uid}", labels::INSTANCE)])]);
        let options = ListImagesOptionsBuilder::new().filters(&filters).build();
        let mine = docker.client()?.list_images(Some(options)).await?;
        for image in &mine {
            docker.remove_image(&image.id).await?;
        }
        Ok((containers.len(), mine.len()))
    }
}

impl Drop for InstanceCleanup {
    fn drop(&mut self) {
        let uid = self.uid.clone();
        // Drop may run inside a runtime or while unwinding: use a thread
        // with a runtime of its own.
        let done = std::thread::spawn(move || -> anyhow::Result<(usize, usize)> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(60), InstanceCleanup::run(&uid))
                    .await
                    .context("cleanup timed out")?
            })
        })
        .join();
        match done {
            Ok(Ok((0, 0))) => {}
            Ok(Ok((c, i))) => eprintln!("e2e cleanup: removed {c} container(s), {i} image(s)"),
            Ok(Err(e)) => eprintln!("e2e cleanup of instance {} failed: {e:#}", self.uid),
            Err(_) => eprintln!("e2e cleanup of instance {} panicked", self.uid),
        }
    }
}
