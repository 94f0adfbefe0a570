//! Deployment containers through the Engine API: create on the `slipway`
//! network with labels and limits, start, probe, read logs, remove.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, ExecConfig, HostConfig, Mount, MountType, NetworkingConfig,
    PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, StopContainerOptionsBuilder,
};
use futures::StreamExt;

use super::{DockerEngine, RuntimeError};

/// The bridge network deployment containers joined before project networks
/// (issue 18); a container still on it is read by its address there.
pub const NETWORK: &str = "slipway";

/// What a deployment container is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    /// An image id (`sha256:…`), never a mutable tag.
    pub image: String,
    /// `NAME=value` pairs, passed as the Engine API's env array (no shell).
    pub env: Vec<(String, String)>,
    /// The container port (exposed), if it has one.
    pub port: Option<u16>,
    /// The command instead of the image's (an argument vector, no shell).
    pub command: Option<Vec<String>>,
    /// The network it joins (without an alias: [`DockerEngine::publish_alias`]
    /// adds the service's name once it is healthy).
    pub network: String,
    /// Named volumes: (volume name, container path).
    pub volumes: Vec<(String, String)>,
    /// Published ports: (container port, host port, `tcp` or `udp`).
    pub published: Vec<(u16, u16, String)>,
    pub labels: HashMap<String, String>,
    pub memory_bytes: u64,
    pub cpu_millis: u32,
}

/// A container's state as far as a deploy cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub running: bool,
    /// `created`, `running`, `restarting`, `exited`, …
    pub status: String,
    pub exit_code: Option<i64>,
    pub restart_count: i64,
    /// The kernel killed it for using more memory than its limit.
    pub oom_killed: bool,
    /// RFC 3339, as the engine reports it (`0001-…` when never).
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Its address on its network (a deployment container has one).
    pub ip: Option<IpAddr>,
    pub labels: HashMap<String, String>,
}

/// A container found by label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledContainer {
    pub id: String,
    pub name: String,
    pub labels: HashMap<String, String>,
}

/// What removing an image did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRemoval {
    Removed,
    Missing,
    /// A container still uses it.
    InUse,
}

pub(super) fn engine_error(e: BollardError) -> RuntimeError {
    engine(e)
}

pub(super) fn engine(e: BollardError) -> RuntimeError {
    match e {
        BollardError::HyperResponseError { .. } | BollardError::IOError { .. } => {
            RuntimeError::Unreachable(e.to_string())
        }
        BollardError::RequestTimeoutError => {
            RuntimeError::Unreachable("the engine did not answer in time".into())
        }
        _ => RuntimeError::Engine(e.to_string()),
    }
}

pub(super) fn status_code(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

impl DockerEngine {
    pub async fn image_exists(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.client()?.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if status_code(&e) == Some(404) => Ok(false),
            Err(e) => Err(engine(e)),
        }
    }

    /// Creates and starts the container; returns its id.
    pub async fn run_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let docker = self.client()?;
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            exposed_ports: Some(
                spec.port
                    .map(|port| format!("{port}/tcp"))
                    .into_iter()
                    .chain(spec.published.iter().map(|(c, _, proto)| format!("{c}/{proto}")))
                    .collect(),
            ),
            cmd: spec.command.clone(),
            labels: Some(spec.labels.clone()),
            host_config: Some(HostConfig {
                memory: Some(i64::try_from(spec.memory_bytes).unwrap_or(i64::MAX)),
                nano_cpus: Some(i64::from(spec.cpu_millis) * 1_000_000),
                network_mode: Some(spec.network.clone()),
                port_bindings: (!spec.published.is_empty()).then(|| {
                    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
                    for (container, host, proto) in &spec.published {
                        bindings
                            .entry(format!("{container}/{proto}"))
                            .or_insert_with(|| Some(Vec::new()))
                            .get_or_insert_with(Vec::new)
                            .push(PortBinding {
                                host_ip: Some("0.0.0.0".into()),
                                host_port: Some(host.to_string()),
                            });
                    }
                    bindings
                }),
                mounts: Some(
                    spec.volumes
                        .iter()
                        .map(|(volume, path)| Mount {
                            typ: Some(MountType::VOLUME),
                            source: Some(volume.clone()),
                            target: Some(path.clone()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                // Survives a Docker restart; a deploy still fails on a crash
                // loop (see `restart_count`).
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                init: Some(true),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(spec.network.clone(), EndpointSettings::default())])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(&spec.name).build();
        let created = docker.create_container(Some(options), body).await.map_err(engine)?;
        if let Err(e) = docker.start_container(&created.id, None).await {
            let _ = self.remove_container(&created.id, Duration::ZERO).await;
            return Err(engine(e));
        }
        Ok(created.id)
    }

    /// `None` when the container does not exist.
    pub async fn container_state(&self, id: &str) -> Result<Option<ContainerState>, RuntimeError> {
        let info = match self.client()?.inspect_container(id, None).await {
            Ok(info) => info,
            Err(e) if status_code(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(engine(e)),
        };
        let state = info.state.unwrap_or_default();
        let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
        let ip = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|n| {
                // The project network, or `slipway` for a container made
                // before project networks; the first address otherwise.
                let mut nets: Vec<_> = n.into_iter().collect();
                nets.sort_by_key(|(name, _)| name != NETWORK);
                nets.into_iter().find_map(|(_, n)| n.ip_address.filter(|ip| !ip.is_empty()))
            })
            .and_then(|ip| ip.parse().ok());
        Ok(Some(ContainerState {
            running: state.running.unwrap_or(false),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            exit_code: state.exit_code,
            restart_count: info.restart_count.unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
            started_at: state.started_at,
            finished_at: state.finished_at,
            ip,
            labels,
        }))
    }

    /// Runs `argv` in the container (no shell) and returns its exit code.
    pub async fn exec(&self, id: &str, argv: &[String]) -> Result<i64, RuntimeError> {
        let docker = self.client()?;
        let config = ExecConfig {
            cmd: Some(argv.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = docker.create_exec(id, config).await.map_err(engine)?;
        let started = docker
            .start_exec(&exec.id, Some(StartExecOptions { detach: false, ..Default::default() }))
            .await
            .map_err(engine)?;
        if let StartExecResults::Attached { mut output, .. } = started {
            // Drain until the process ends; its output is not needed.
            while output.next().await.is_some() {}
        }
        let inspected = docker.inspect_exec(&exec.id).await.map_err(engine)?;
        Ok(inspected.exit_code.unwrap_or(-1))
    }

    /// The container's last `lines` lines of stdout and stderr.
    pub async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, RuntimeError> {
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).tail(&lines.to_string()).build();
        let mut stream = self.client()?.logs(id, Some(options));
        let mut out = String::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => out.push_str(&String::from_utf8_lossy(&chunk.into_bytes())),
                Err(e) if status_code(&e) == Some(404) => break,
                Err(e) => return Err(engine(e)),
            }
        }
        Ok(out)
    }

    /// Stops (SIGTERM, then SIGKILL after `grace`) and removes the container.
    /// A missing container is not an error.
    pub async fn remove_container(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let docker = self.client()?;
        if !grace.is_zero() {
            let secs = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
            let options = StopContainerOptionsBuilder::new().t(secs).build();
            match docker.stop_container(id, Some(options)).await {
                Ok(()) => {}
                // 304: already stopped; 404: gone.
                Err(e) if matches!(status_code(&e), Some(304 | 404)) => {}
                Err(e) => return Err(engine(e)),
            }
        }
        let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        match docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            // 409: removal already in progress.
            Err(e) if status_code(&e) == Some(409) => Ok(()),
            Err(e) => Err(engine(e)),
        }
    }

    /// Containers (running or not) carrying every `label=value` given.
    pub async fn containers_labelled(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<LabelledContainer>, RuntimeError> {
        let filters =
            HashMap::from([("label".to_string(), labels.iter().map(|(k, v)| format!("{k}={v}")).collect())]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let found = self.client()?.list_containers(Some(options)).await.map_err(engine)?;
        Ok(found
            .into_iter()
            .filter_map(|c| {
                Some(LabelledContainer {
                    id: c.id?,
                    name: c.names.and_then(|n| n.into_iter().next()).unwrap_or_default(),
                    labels: c.labels.unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Removes an image by id unless a container uses it.
    pub async fn remove_image(&self, id: &str) -> Result<ImageRemoval, RuntimeError> {
        let options = RemoveImageOptionsBuilder::new().force(false).build();
        match self.client()?.remove_image(id, Some(options), None).await {
            Ok(_) => Ok(ImageRemoval::Removed),
            Err(e) if status_code(&e) == Some(404) => Ok(ImageRemoval::Missing),
            Err(e) if status_code(&e) == Some(409) => {
                // Several tags on one id: force only untags, but a container
                // using it still makes the engine refuse.
                let options = RemoveImageOptionsBuilder::new().force(true).build();
                let in_use = self.image_in_use(id).await?;
                if in_use {
                    return Ok(ImageRemoval::InUse);
                }
                match self.client()?.remove_image(id, Some(options), None).await {
                    Ok(_) => Ok(ImageRemoval::Removed),
                    Err(e) if status_code(&e) == Some(404) => Ok(ImageRemoval::Missing),
                    Err(e) if status_code(&e) == Some(409) => Ok(ImageRemoval::InUse),
                    Err(e) => Err(engine(e)),
                }
            }
            Err(e) => Err(engine(e)),
        }
    }

    async fn image_in_use(&self, id: &str) -> Result<bool, RuntimeError> {
        let filters = HashMap::from([("ancestor".to_string(), vec![id.to_string()])]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        Ok(!self.client()?.list_containers(Some(options)).await.map_err(engine)?.is_empty())
    }
}
