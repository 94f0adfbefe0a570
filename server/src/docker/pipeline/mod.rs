//! The container runtime of pipeline runs: a run's own bridge network and
//! workspace volume, the checkout uploaded into that volume, service
//! containers with health checks, step containers running the file's
//! commands through the container's own `/bin/sh -e`, and clean-up by label.
//!
//! Everything goes through the Engine API. Nothing from a pipeline file ever
//! reaches a shell on the host, and no step or service container is
//! privileged, gets a host path, the host's network/PID/IPC namespaces or an
//! added capability ([`sandbox`]). Every object carries the run's labels
//! ([`RunRef::labels`]), so [`DockerEngine::remove_run`] and startup
//! recovery ([`DockerEngine::orphan_runs`]) find them without knowing names.

mod service;
mod step;
mod workspace;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{HostConfig, Mount, MountType, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};

pub use service::{HealthCmd, Healthcheck, ServiceSpec, ServiceUnhealthy};
pub use step::{StdStream, StepOutcome, StepSpec};

use super::containers::{engine_error, status_code};
use super::{labels, DockerEngine, RuntimeError};

/// Where the workspace volume is mounted in step containers.
pub const WORKSPACE: &str = "/workspace";
/// Most processes one step or service container may run (a fork bomb in a
/// step must not take the host's pid space).
pub const PIDS_LIMIT: i64 = 4096;

/// The run (build) that owns pipeline objects, and the installation it
/// belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRef {
    /// `instance.uid` ([`labels::INSTANCE`]).
    pub instance: String,
    /// The build row's id ([`labels::BUILD_ID`]).
    pub build_id: i64,
}

impl RunRef {
    /// The caller's `extra` labels plus [`labels::MANAGED`],
    /// [`labels::INSTANCE`] and [`labels::BUILD_ID`] (which `extra` cannot
    /// override).
    pub fn labels(&self, extra: &HashMap<String, String>) -> HashMap<String, String> {
        let mut labels = extra.clone();
        labels.insert(labels::MANAGED.into(), "true".into());
        labels.insert(labels::INSTANCE.into(), self.instance.clone());
        labels.insert(labels::BUILD_ID.into(), self.build_id.to_string());
        labels
    }

    /// The Engine API list filter for this run's objects.
    fn filter(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_string(),
            vec![
                format!("{}={}", labels::INSTANCE, self.instance),
                format!("{}={}", labels::BUILD_ID, self.build_id),
            ],
        )])
    }

    fn owns(&self, labels: Option<&HashMap<String, String>>) -> bool {
        labels.is_some_and(|l| {
            l.get(labels::INSTANCE) == Some(&self.instance)
                && l.get(labels::BUILD_ID) == Some(&self.build_id.to_string())
        })
    }
}

/// Why a pipeline runtime call failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The image is not on the engine (nothing is pulled for steps).
    #[error("the image {0} is not present on the Docker engine")]
    ImageMissing(String),
    /// A name is taken by an object of another run or installation.
    #[error("{kind} {name} exists and belongs to something else")]
    NameTaken { kind: &'static str, name: String },
    /// The spec asks for something the runtime refuses (reserved env names).
    #[error("{0}")]
    Refused(String),
    /// The checkout could not be read or packed.
    #[error("cannot pack the checkout: {0}")]
    Checkout(String),
    /// A step's container was removed before its outcome was read.
    #[error("the step container {0} disappeared")]
    ContainerGone(String),
}

impl From<BollardError> for RunError {
    fn from(e: BollardError) -> Self {
        RunError::Runtime(engine_error(e))
    }
}

/// What [`DockerEngine::remove_run`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RemovedRun {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
}

/// The host settings of every step and service container: the run network
/// only, the workspace volume only (a named volume, never a host path), the
/// limits (swap included: an over-limit step is OOM-killed, not swapped), no
/// privilege, no added capability, no new privileges, bounded pids, an init
/// that reaps zombies. Host network/PID/IPC are left at the engine's
/// defaults, which are the container's own namespaces.
pub(crate) fn sandbox(network: &str, volume: Option<&str>, memory_bytes: u64, cpu_millis: u32) -> HostConfig {
    let memory = i64::try_from(memory_bytes).unwrap_or(i64::MAX);
    HostConfig {
        privileged: Some(false),
        network_mode: Some(network.to_string()),
        mounts: volume.map(|v| {
            vec![Mount {
                typ: Some(MountType::VOLUME),
                source: Some(v.to_string()),
                target: Some(WORKSPACE.to_string()),
                read_only: Some(false),
                ..Default::default()
            }]
        }),
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: Some(i64::from(cpu_millis) * 1_000_000),
        security_opt: Some(vec!["no-new-privileges".to_string()]),
        pids_limit: Some(PIDS_LIMIT),
        init: Some(true),
        ..Default::default()
    }
}

impl DockerEngine {
    /// Creates the run's bridge network `name` with the run's labels, or
    /// returns the one a previous attempt of this run made. Returns its id.
    pub async fn create_run_network(
        &self,
        run: &RunRef,
        name: &str,
        extra_labels: &HashMap<String, String>,
    ) -> Result<String, RunError> {
        let docker = self.client()?;
        match docker.inspect_network(name, None).await {
            Ok(found) if run.owns(found.labels.as_ref()) => {
                return found.id.ok_or_else(|| RunError::NameTaken { kind: "network", name: name.into() })
            }
            Ok(_) => return Err(RunError::NameTaken { kind: "network", name: name.into() }),
            Err(e) if status_code(&e) == Some(404) => {}
            // Two networks of that name (the engine allows it): ours is the
            // oldest one carrying the run's labels.
            Err(e) if status_code(&e) == Some(400) => return self.oldest_run_network(run, name).await,
            Err(e) => return Err(e.into()),
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(run.labels(extra_labels)),
            ..Default::default()
        };
        Ok(docker.create_network(request).await?.id)
    }

    async fn oldest_run_network(&self, run: &RunRef, name: &str) -> Result<String, RunError> {
        let options = ListNetworksOptionsBuilder::new().filters(&run.filter()).build();
        let mut same: Vec<_> = self
            .client()?
            .list_networks(Some(options))
            .await?
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .filter_map(|n| Some((n.created, n.id?)))
            .collect();
        same.sort();
        same.into_iter()
            .next()
            .map(|(_, id)| id)
            .ok_or_else(|| RunError::NameTaken { kind: "network", name: name.into() })
    }

    /// Creates the run's workspace volume `name` (local driver) with the
    /// run's labels; creating it again is a no-op. A volume of that name
    /// belonging to something else is refused.
    pub async fn create_run_volume(
        &self,
        run: &RunRef,
        name: &str,
        extra_labels: &HashMap<String, String>,
    ) -> Result<(), RunError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: Some("local".into()),
            labels: Some(run.labels(extra_labels)),
            ..Default::default()
        };
        // The engine answers an existing name with that volume, as it is.
        let volume = self.client()?.create_volume(request).await?;
        if !run.owns(Some(&volume.labels)) {
            return Err(RunError::NameTaken { kind: "volume", name: name.into() });
        }
        Ok(())
    }

    /// Removes every container (forced), then network, then volume of the
    /// run. Removing what is already gone is fine; calling it again is a
    /// no-op.
    pub async fn remove_run(&self, run: &RunRef) -> Result<RemovedRun, RunError> {
        let docker = self.client()?;
        let filters = run.filter();
        let mut removed = RemovedRun::default();
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        for container in docker.list_containers(Some(options)).await? {
            let Some(id) = container.id else { continue };
            let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
            match docker.remove_container(&id, Some(options)).await {
                Ok(()) => removed.containers += 1,
                Err(e) if matches!(status_code(&e), Some(404 | 409)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        for network in docker.list_networks(Some(options)).await? {
            let Some(id) = network.id else { continue };
            if self.retry_removal(|| docker.remove_network(&id)).await? {
                removed.networks += 1;
            }
        }
        let options = ListVolumesOptionsBuilder::new().filters(&filters).build();
        for volume in docker.list_volumes(Some(options)).await?.volumes.unwrap_or_default() {
            let name = volume.name;
            let options = RemoveVolumeOptionsBuilder::new().force(true).build();
            if self.retry_removal(|| docker.remove_volume(&name, Some(options.clone()))).await? {
                removed.volumes += 1;
            }
        }
        Ok(removed)
    }

    /// Runs a removal until it succeeds (true) or finds the object gone
    /// (false). A container removed a moment ago may still hold the network
    /// or volume (403/409 "in use") for a short while: retried for 5 s.
    async fn retry_removal<F, Fut>(&self, mut remove: F) -> Result<bool, RunError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), BollardError>>,
    {
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match remove().await {
                Ok(()) => return Ok(true),
                Err(e) if status_code(&e) == Some(404) => return Ok(false),
                Err(e)
                    if matches!(status_code(&e), Some(403 | 409)) && tokio::time::Instant::now() < until =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The build ids of runs of `instance` that left a container, network or
    /// volume behind, ascending. Startup removes those whose build is not
    /// running ([`remove_run`](Self::remove_run)).
    pub async fn orphan_runs(&self, instance: &str) -> Result<Vec<i64>, RunError> {
        let docker = self.client()?;
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{}={instance}", labels::INSTANCE), labels::BUILD_ID.to_string()],
        )]);
        let mut ids = BTreeSet::new();
        let mut note = |labels: Option<&HashMap<String, String>>| {
            if let Some(id) = labels.and_then(|l| l.get(labels::BUILD_ID)).and_then(|v| v.parse::<i64>().ok())
            {
                ids.insert(id);
            }
        };
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        for c in docker.list_containers(Some(options)).await? {
            note(c.labels.as_ref());
        }
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        for n in docker.list_networks(Some(options)).await? {
            note(n.labels.as_ref());
        }
        let options = ListVolumesOptionsBuilder::new().filters(&filters).build();
        for v in docker.list_volumes(Some(options)).await?.volumes.unwrap_or_default() {
            note(Some(&v.labels));
        }
        Ok(ids.into_iter().collect())
    }

    /// Creates a container, replacing a leftover of the same name that a
    /// previous attempt of this run made (a retried job). Returns its id.
    async fn create_replacing(
        &self,
        run: &RunRef,
        name: &str,
        body: bollard::models::ContainerCreateBody,
    ) -> Result<String, RunError> {
        let docker = self.client()?;
        let image = body.image.clone().unwrap_or_default();
        let options = bollard::query_parameters::CreateContainerOptionsBuilder::new().name(name).build();
        match docker.create_container(Some(options.clone()), body.clone()).await {
            Ok(created) => return Ok(created.id),
            Err(e) if status_code(&e) == Some(404) => return Err(RunError::ImageMissing(image)),
            Err(e) if status_code(&e) == Some(409) => {}
            Err(e) => return Err(e.into()),
        }
        let existing = match docker.inspect_container(name, None).await {
            Ok(existing) => existing,
            Err(e) => return Err(e.into()),
        };
        if !run.owns(existing.config.as_ref().and_then(|c| c.labels.as_ref())) {
            return Err(RunError::NameTaken { kind: "container", name: name.into() });
        }
        let remove = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        match docker.remove_container(name, Some(remove)).await {
            Ok(()) => {}
            Err(e) if status_code(&e) == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
        match docker.create_container(Some(options), body).await {
            Ok(created) => Ok(created.id),
            Err(e) if status_code(&e) == Some(404) => Err(RunError::ImageMissing(image)),
            Err(e) => Err(e.into()),
        }
    }
}

/// `NAME=value` entries of the Engine API's env array (no shell involved).
fn env_array(env: &[(String, String)]) -> Vec<String> {
    env.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_labels_cannot_be_overridden_by_extras() {
        let run = RunRef { instance: "inst".into(), build_id: 42 };
        let extra = HashMap::from([
            (labels::BUILD_ID.to_string(), "7".to_string()),
            ("team".to_string(), "a".to_string()),
        ]);
        let labels = run.labels(&extra);
        assert_eq!(labels.get(labels::BUILD_ID).map(String::as_str), Some("42"));
        assert_eq!(labels.get(labels::INSTANCE).map(String::as_str), Some("inst"));
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        assert!(run.owns(Some(&labels)));
        assert!(!RunRef { instance: "inst".into(), build_id: 7 }.owns(Some(&labels)));
    }

    #[test]
    fn the_sandbox_adds_no_privilege() {
        let host = sandbox("net", Some("vol"), 64 << 20, 500);
        assert_eq!(host.privileged, Some(false));
        assert_eq!(host.binds, None);
        assert_eq!(host.cap_add, None);
        assert_eq!(host.network_mode.as_deref(), Some("net"));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.pid_mode, None);
        assert_eq!(host.ipc_mode, None);
        let mounts = host.mounts.unwrap_or_default();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].typ, Some(MountType::VOLUME));
    }
}
