//! A service's named volumes as operators see them (viewer): the declared
//! ones and those the engine still holds, with their sizes; and deleting
//! one (admin, audited). Nothing automatic ever deletes a volume: not a
//! deploy, a rollback, retention or orphan removal.

use app::wire::{Caller, Role};

use crate::{
    access::require,
    audit::{self, Event},
    engine::{Engine, EngineError},
    projects::ProjectStore,
};

/// One volume of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceVolume {
    pub name: String,
    /// Where the service's settings mount it; `None`: no longer declared.
    pub path: Option<String>,
    /// The engine's name.
    pub engine_name: String,
    /// `None` until a deployment created it, or when the engine did not measure it.
    pub size_bytes: Option<i64>,
    pub exists: bool,
}

fn engine_err(e: impl Into<anyhow::Error>) -> EngineError {
    EngineError::Internal(e.into())
}

impl Engine {
    /// The service's volumes: declared first (by name), then the ones the
    /// engine holds that the settings no longer declare (viewer).
    pub async fn service_volumes(
        &self,
        caller: &Caller,
        service_id: i64,
    ) -> Result<Vec<ServiceVolume>, EngineError> {
        require(caller, Role::Viewer)?;
        let service = ProjectStore::new(self.db.clone()).get_service(service_id).await?;
        let held = self.docker.service_volumes(&self.instance, service.id).await.map_err(engine_err)?;
        let mut out: Vec<ServiceVolume> = service
            .spec
            .volumes
            .iter()
            .map(|v| {
                let engine_name =
                    crate::docker::app_network::service_volume(&self.instance, service.id, &v.name);
                let found = held.iter().find(|h| h.engine_name == engine_name);
                ServiceVolume {
                    name: v.name.clone(),
                    path: Some(v.path.clone()),
                    size_bytes: found.and_then(|h| h.size_bytes),
                    exists: found.is_some(),
                    engine_name,
                }
            })
            .collect();
        for h in held {
            if !out.iter().any(|o| o.engine_name == h.engine_name) {
                out.push(ServiceVolume {
                    name: h.name,
                    path: None,
                    engine_name: h.engine_name,
                    size_bytes: h.size_bytes,
                    exists: true,
                });
            }
        }
        Ok(out)
    }

    /// Deletes one of the service's volumes and its data (admin, audited).
    /// Refused while a container uses it: remove it from the settings and
    /// deploy first.
    pub async fn delete_volume(
        &self,
        caller: &Caller,
        service_id: i64,
        name: &str,
    ) -> Result<(), EngineError> {
        require(caller, Role::Admin)?;
        let service = ProjectStore::new(self.db.clone()).get_service(service_id).await?;
        // A name no volume can have names no volume: 404, like an unknown one.
        let name = crate::validate::slug("name", name).map_err(|_| EngineError::NotFound("volume"))?;
        let engine_name = crate::docker::app_network::service_volume(&self.instance, service.id, &name);
        let held = self.docker.service_volumes(&self.instance, service.id).await.map_err(engine_err)?;
        if !held.iter().any(|h| h.engine_name == engine_name) {
            return Err(EngineError::NotFound("volume"));
        }
        if !self.docker.remove_volume(&engine_name).await.map_err(engine_err)? {
            return Err(EngineError::Conflict(format!(
                "the volume {name} is in use by a container; remove it from the service's volumes and deploy first"
            )));
        }
        tracing::info!(service_id, volume = %name, "volume deleted");
        audit::record(
            &self.db,
            Event::by(caller, "volume.delete")
                .target(format!("service:{service_id}"))
                .detail(format!("volume {name} ({engine_name})")),
        )
        .await;
        Ok(())
    }
}
