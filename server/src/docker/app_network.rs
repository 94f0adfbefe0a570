//! Project networks and service volumes (issue 18).
//!
//! Each project has its own bridge network; a deployment container joins
//! it at creation **without** an alias, and [`DockerEngine::publish_alias`]
//! gives it the service's name once it is healthy, so the name never
//! resolves to a container that is still starting. The engine cannot add
//! an alias to an endpoint, so the endpoint is re-made with the same
//! address: the network has a configured subnet (a static address needs
//! one), which keeps the container's open connections and the edge's
//! upstream address valid across the swap.
//!
//! Separate bridge networks cannot reach each other (the engine's
//! isolation rules), so one project's containers cannot reach another's.
//!
//! Volumes are named per service id (a rename keeps the data) and carry
//! Slipway's labels; nothing automatic removes one.

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{ListVolumesOptionsBuilder, RemoveVolumeOptionsBuilder};

use super::containers::{engine_error, status_code};
use super::{labels, DockerEngine, RuntimeError};

/// The network of project `project_id` of installation `instance`.
pub fn project_network(instance: &str, project_id: i64) -> String {
    format!("slipway-{}-p{project_id}", short(instance))
}

/// The engine's name of a service's volume `name`.
pub fn service_volume(instance: &str, service_id: i64, name: &str) -> String {
    format!("slipway-{}-s{service_id}-{name}", short(instance))
}

fn short(instance: &str) -> &str {
    instance.get(..12).unwrap_or(instance)
}

/// Label on a service volume: the volume's name as the service declares it.
pub const VOLUME_NAME: &str = "dev.slipway.volume";

/// One service volume as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeUsage {
    /// The engine's name.
    pub engine_name: String,
    /// The name the service declares.
    pub name: String,
    /// Bytes used, when the engine measured it.
    pub size_bytes: Option<i64>,
}

/// One creation at a time in this process (two services of one project
/// deploying at once would otherwise both create the network).
static NETWORK_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl DockerEngine {
    /// Creates the project network `name` unless it exists; returns nothing
    /// but fails when a network of that name is not this installation's.
    ///
    /// A static address needs a subnet given at creation, so the subnet the
    /// engine picks from its pools is read off a first network, which is
    /// then made again with that subnet given.
    pub async fn ensure_project_network(
        &self,
        name: &str,
        net_labels: &HashMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let _one = NETWORK_LOCK.lock().await;
        let docker = self.client()?;
        match docker.inspect_network(name, None).await {
            Ok(found) => {
                let ours = found.labels.as_ref().and_then(|l| l.get(labels::INSTANCE))
                    == net_labels.get(labels::INSTANCE);
                if !ours {
                    return Err(RuntimeError::Engine(format!(
                        "a network named {name} exists that this Slipway installation did not create"
                    )));
                }
                return Ok(());
            }
            Err(e) if status_code(&e) == Some(404) => {}
            Err(e) => return Err(engine_error(e)),
        }
        let mut last = String::new();
        for _ in 0..5 {
            let probe = NetworkCreateRequest {
                name: name.to_string(),
                driver: Some("bridge".into()),
                labels: Some(net_labels.clone()),
                ..Default::default()
            };
            let id = docker.create_network(probe).await.map_err(engine_error)?.id;
            let found = docker.inspect_network(&id, None).await.map_err(engine_error)?;
            let subnet = found
                .ipam
                .and_then(|i| i.config)
                .and_then(|c| c.into_iter().find_map(|c| c.subnet))
                .ok_or_else(|| RuntimeError::Engine(format!("the engine gave {name} no subnet")))?;
            docker.remove_network(&id).await.map_err(engine_error)?;
            let request = NetworkCreateRequest {
                name: name.to_string(),
                driver: Some("bridge".into()),
                labels: Some(net_labels.clone()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig { subnet: Some(subnet), ..Default::default() }]),
                    ..Default::default()
                }),
                ..Default::default()
            };
            match docker.create_network(request).await {
                Ok(_) => return Ok(()),
                // Another network took the subnet in between: pick again.
                Err(e) => last = e.to_string(),
            }
        }
        Err(RuntimeError::Engine(format!("cannot create the network {name}: {last}")))
    }

    /// Gives container `id` the alias `alias` on `network`, keeping its
    /// address; returns that address.
    pub async fn publish_alias(&self, id: &str, network: &str, alias: &str) -> Result<IpAddr, RuntimeError> {
        let docker = self.client()?;
        let info = docker.inspect_container(id, None).await.map_err(engine_error)?;
        let endpoint = info.network_settings.and_then(|n| n.networks).and_then(|mut n| n.remove(network));
        // A container made before project networks joins with its alias.
        let ip = match endpoint {
            Some(e) if e.aliases.as_ref().is_some_and(|a| a.iter().any(|a| a == alias)) => {
                return parse_ip(e.ip_address.as_deref());
            }
            Some(e) => {
                let disconnect = NetworkDisconnectRequest { container: id.to_string(), force: Some(true) };
                docker.disconnect_network(network, disconnect).await.map_err(engine_error)?;
                e.ip_address.filter(|ip| !ip.is_empty())
            }
            None => None,
        };
        let connect = |fixed: Option<String>| NetworkConnectRequest {
            container: id.to_string(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(vec![alias.to_string()]),
                ipam_config: fixed
                    .map(|ip| EndpointIpamConfig { ipv4_address: Some(ip), ..Default::default() }),
                ..Default::default()
            }),
        };
        if let Err(e) = docker.connect_network(network, connect(ip.clone())).await {
            // The address was taken in the instant between: any address.
            tracing::warn!(error = %e, "cannot keep the container's address; reconnecting with a new one");
            docker.connect_network(network, connect(None)).await.map_err(engine_error)?;
        }
        let info = docker.inspect_container(id, None).await.map_err(engine_error)?;
        let now = info.network_settings.and_then(|n| n.networks).and_then(|mut n| n.remove(network));
        parse_ip(now.and_then(|e| e.ip_address).as_deref())
    }

    /// This installation's project networks: (name, project id).
    pub async fn project_networks(&self, instance: &str) -> Result<Vec<(String, String)>, RuntimeError> {
        let filters = HashMap::from([("label", vec![format!("{}={instance}", labels::INSTANCE)])]);
        let options = bollard::query_parameters::ListNetworksOptionsBuilder::new().filters(&filters).build();
        let networks = self.client()?.list_networks(Some(options)).await.map_err(engine_error)?;
        Ok(networks
            .into_iter()
            .filter_map(|n| {
                let project = n.labels.as_ref()?.get(labels::PROJECT_ID)?.clone();
                Some((n.name?, project))
            })
            .collect())
    }

    /// Removes a project network (when its project is deleted). Missing is fine.
    pub async fn remove_project_network(&self, name: &str) -> Result<(), RuntimeError> {
        match self.client()?.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(engine_error(e)),
        }
    }

    /// Creates a service volume unless it exists (labels: installation,
    /// service id, declared name).
    pub async fn ensure_volume(
        &self,
        name: &str,
        vol_labels: &HashMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let docker = self.client()?;
        match docker.inspect_volume(name).await {
            Ok(found) => {
                if found.labels.get(labels::INSTANCE) != vol_labels.get(labels::INSTANCE) {
                    return Err(RuntimeError::Engine(format!(
                        "a volume named {name} exists that this Slipway installation did not create"
                    )));
                }
                return Ok(());
            }
            Err(e) if status_code(&e) == Some(404) => {}
            Err(e) => return Err(engine_error(e)),
        }
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: Some("local".into()),
            labels: Some(vol_labels.clone()),
            ..Default::default()
        };
        docker.create_volume(request).await.map_err(engine_error)?;
        Ok(())
    }

    /// The volumes of one service, with their sizes (the engine's disk
    /// usage report measures them).
    pub async fn service_volumes(
        &self,
        instance: &str,
        service_id: i64,
    ) -> Result<Vec<VolumeUsage>, RuntimeError> {
        let docker = self.client()?;
        let service = service_id.to_string();
        let filters = HashMap::from([(
            "label",
            vec![format!("{}={instance}", labels::INSTANCE), format!("{}={service}", labels::SERVICE_ID)],
        )]);
        let listed = docker
            .list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&filters).build()))
            .await
            .map_err(engine_error)?;
        let names: Vec<(String, String)> = listed
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.name, v.labels.get(VOLUME_NAME).cloned().unwrap_or_default()))
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let sizes = self.volume_sizes().await?;
        let mut out: Vec<VolumeUsage> = names
            .into_iter()
            .map(|(engine_name, name)| VolumeUsage {
                size_bytes: sizes.get(&engine_name).copied(),
                engine_name,
                name,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a volume. `Ok(false)` when a container still uses it.
    pub async fn remove_volume(&self, name: &str) -> Result<bool, RuntimeError> {
        let options = RemoveVolumeOptionsBuilder::new().force(false).build();
        match self.client()?.remove_volume(name, Some(options)).await {
            Ok(()) => Ok(true),
            Err(e) if status_code(&e) == Some(404) => Ok(true),
            Err(e) if status_code(&e) == Some(409) => Ok(false),
            Err(e) => Err(engine_error(e)),
        }
    }
}

impl DockerEngine {
    /// Every volume's size as the engine measures it (`GET /system/df`:
    /// `Volumes` before API 1.52, `VolumeUsage.Items` since; bollard's
    /// types carry only the latter). A size of -1 (not measured) is left out.
    async fn volume_sizes(&self) -> Result<HashMap<String, i64>, RuntimeError> {
        use super::build::cache::{connect, json};
        let (endpoint, api) = connect(self).await?;
        let df = json(&endpoint, http::Method::GET, &format!("/v{api}/system/df?type=volume")).await?;
        let items = df
            .get("Volumes")
            .or_else(|| df.get("VolumeUsage").and_then(|u| u.get("Items")))
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        Ok(items
            .iter()
            .filter_map(|v| {
                let name = v.get("Name")?.as_str()?.to_string();
                let size = v.get("UsageData")?.get("Size")?.as_i64()?;
                (size >= 0).then_some((name, size))
            })
            .collect())
    }
}

fn parse_ip(ip: Option<&str>) -> Result<IpAddr, RuntimeError> {
    ip.and_then(|ip| ip.parse().ok())
        .ok_or_else(|| RuntimeError::Engine("the container has no address on its network".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_installation_and_ids() {
        let instance = "0123456789abcdef0123";
        assert_eq!(project_network(instance, 7), "slipway-0123456789ab-p7");
        assert_eq!(service_volume(instance, 3, "data"), "slipway-0123456789ab-s3-data");
        assert_eq!(project_network("abc", 1), "slipway-abc-p1");
    }
}
