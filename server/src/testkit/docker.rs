//! Docker for tests: ensures the local base image exists (there is no
//! registry to pull from) and removes, by label, every container, image and
//! network a test made, also when the test panics.

use std::{collections::HashMap, time::Duration};

use anyhow::{bail, Context};
use bollard::{
    query_parameters::{
        BuildImageOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
        ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
        RemoveImageOptionsBuilder,
    },
    Docker,
};
use futures::StreamExt;

/// The local base image test Dockerfiles start `FROM`: busybox with a shell,
/// `httpd` and `wget`.
pub const BASE_IMAGE: &str = "slipway-test/busybox:1";
/// Label key carrying the id of the test run that made an object.
pub const TEST_LABEL: &str = "dev.slipway.test";

pub struct DockerKit {
    pub docker: Docker,
    /// Unique per kit; every object the test makes carries `TEST_LABEL=run_id`.
    pub run_id: String,
}

impl DockerKit {
    /// Connects to the real engine (failing clearly when it is unreachable)
    /// and makes sure the base image exists.
    pub async fn new() -> anyhow::Result<Self> {
        let docker = Docker::connect_with_defaults().context("cannot configure the Docker client")?;
        docker.ping().await.context("the Docker engine does not answer")?;
        ensure_base_image(&docker).await?;
        let run_id = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos()
        );
        Ok(DockerKit { docker, run_id })
    }

    /// This test's containers, networks and volumes of pipeline run
    /// `build_id` (see [`count_labelled`]).
    pub async fn run_leftovers(&self, build_id: i64) -> anyhow::Result<usize> {
        let build = format!("{}={build_id}", crate::docker::labels::BUILD_ID);
        count_labelled(&self.docker, &[build, format!("{TEST_LABEL}={}", self.run_id)]).await
    }

    /// Labels to put on everything this test creates.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([(TEST_LABEL.to_string(), self.run_id.clone())])
    }

    fn label_filter(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([("label".to_string(), vec![format!("{TEST_LABEL}={}", self.run_id)])])
    }

    /// Removes this run's containers (forced), then networks, volumes and images.
    pub async fn cleanup(&self) -> anyhow::Result<()> {
        let containers = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new().all(true).filters(&self.label_filter()).build(),
            ))
            .await?;
        for c in containers {
            if let Some(id) = c.id {
                self.docker
                    .remove_container(
                        &id,
                        Some(RemoveContainerOptionsBuilder::new().force(true).v(true).build()),
                    )
                    .await
                    .or_else(ignore_not_found)?;
            }
        }
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&self.label_filter()).build()))
            .await?;
        for n in networks {
            if let Some(id) = n.id {
                self.docker.remove_network(&id).await.or_else(ignore_not_found)?;
            }
        }
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&self.label_filter()).build()))
            .await?;
        for v in volumes.volumes.unwrap_or_default() {
            self.docker
                .remove_volume(&v.name, None::<bollard::query_parameters::RemoveVolumeOptions>)
                .await
                .or_else(ignore_not_found)?;
        }
        let images = self
            .docker
            .list_images(Some(
                ListImagesOptionsBuilder::new().all(true).filters(&self.label_filter()).build(),
            ))
            .await?;
        for i in images {
            self.docker
                .remove_image(&i.id, Some(RemoveImageOptionsBuilder::new().force(true).build()), None)
                .await
                .map(|_| ())
                .or_else(ignore_not_found)?;
        }
        Ok(())
    }
}

impl Drop for DockerKit {
    fn drop(&mut self) {
        // Drop may run inside a runtime (or while unwinding from a panic):
        // clean up on a thread of our own with its own runtime.
        let kit = DockerKit { docker: self.docker.clone(), run_id: self.run_id.clone() };
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let result =
                rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), kit.cleanup()).await });
            std::mem::forget(kit); // its own Drop must not recurse
            match result {
                Ok(r) => r,
                Err(_) => bail!("cleanup timed out"),
            }
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("testkit: Docker cleanup of run {} failed: {e:#}", self.run_id),
            Err(_) => eprintln!("testkit: Docker cleanup of run {} panicked", self.run_id),
        }
    }
}

/// The pid of a running process whose command line holds `marker`: a
/// BuildKit step runs as a process of the daemon (not as a container), so
/// tests find it by a unique marker in its `RUN` command.
pub fn process_with(marker: &str) -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        (pid != me && String::from_utf8_lossy(&cmdline).contains(marker)).then_some(pid)
    })
}

/// Whether `pid` still runs (a zombie has no command line left).
pub fn process_running(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

fn ignore_not_found(e: bollard::errors::Error) -> Result<(), bollard::errors::Error> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code: 404 | 409, .. } => Ok(()),
        other => Err(other),
    }
}

/// Builds `BASE_IMAGE` from the host's static busybox when it is missing,
/// through the Engine's build endpoint (`FROM scratch`, no registry needed).
pub async fn ensure_base_image(docker: &Docker) -> anyhow::Result<()> {
    if docker.inspect_image(BASE_IMAGE).await.is_ok() {
        return Ok(());
    }
    let busybox = std::fs::read("/bin/busybox")
        .context("/bin/busybox is missing: install Debian's busybox-static (scripts/setup.sh does)")?;
    let dockerfile = "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\n";
    let mut tar = tar::Builder::new(Vec::new());
    append_file(&mut tar, "Dockerfile", dockerfile.as_bytes(), 0o644)?;
    append_file(&mut tar, "rootfs/bin/busybox", &busybox, 0o755)?;
    for dir in ["rootfs/www", "rootfs/tmp", "rootfs/etc"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o1777);
        h.set_size(0);
        tar.append_data(&mut h, dir, std::io::empty())?;
    }
    append_file(&mut tar, "rootfs/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)?;
    for applet in [
        "sh", "cat", "echo", "env", "httpd", "wget", "sleep", "ls", "mkdir", "rm", "cp", "printf", "test",
        "true", "false", "grep", "head", "tail", "seq", "date", "kill", "touch", "yes",
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        tar.append_link(&mut h, format!("rootfs/bin/{applet}"), "busybox")?;
    }
    let context = tar.into_inner()?;
    let labels = HashMap::from([("dev.slipway.testkit".to_string(), "base".to_string())]);
    let options = BuildImageOptionsBuilder::new().t(BASE_IMAGE).rm(true).labels(&labels).build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.context("building the test base image failed")?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            bail!("building the test base image failed: {err}");
        }
    }
    Ok(())
}

fn append_file(tar: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_cksum();
    tar.append_data(&mut h, path, data)
}

/// How many containers (running or not), networks and volumes carry every
/// one of `labels` (`key=value`): what a run must not leave behind.
pub async fn count_labelled(docker: &Docker, labels: &[String]) -> anyhow::Result<usize> {
    let filters = HashMap::from([("label".to_string(), labels.to_vec())]);
    let containers = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await?
        .len();
    let networks =
        docker.list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build())).await?.len();
    let volumes = docker
        .list_volumes(Some(
            bollard::query_parameters::ListVolumesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await?
        .volumes
        .unwrap_or_default()
        .len();
    Ok(containers + networks + volumes)
}

/// Runs `argv` in a container (no shell); its exit code and its output
/// (stdout and stderr as they came).
pub async fn exec_output(docker: &Docker, container: &str, argv: &[&str]) -> anyhow::Result<(i64, String)> {
    use bollard::exec::{StartExecOptions, StartExecResults};
    let config = bollard::models::ExecConfig {
        cmd: Some(argv.iter().map(|a| a.to_string()).collect()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = docker.create_exec(container, config).await?;
    let mut text = String::new();
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&created.id, Some(StartExecOptions { detach: false, ..Default::default() })).await?
    {
        while let Some(chunk) = output.next().await {
            text.push_str(&chunk?.to_string());
        }
    }
    Ok((docker.inspect_exec(&created.id).await?.exit_code.unwrap_or(-1), text))
}
