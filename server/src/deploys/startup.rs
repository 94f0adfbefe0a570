//! Startup clean-up: containers no live deployment claims are removed, and
//! the route of every live deployment is restored.

use std::time::Duration;

use super::{
    service_host,
    switch::{Route, Upstream},
};
use crate::{docker::labels, engine::Engine, projects::ProjectStore};

/// Removes this installation's containers that no live deployment claims
/// (left by a crash mid-deploy or mid-switch). Run before any deploy job can
/// start. Returns the removed container ids.
pub async fn remove_orphans(engine: &Engine) -> anyhow::Result<Vec<String>> {
    let live: Vec<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, container_id FROM deployments WHERE status = 'live'")
            .fetch_all(&engine.db)
            .await?;
    let live: std::collections::HashMap<String, Option<String>> =
        live.into_iter().map(|(id, container)| (id.to_string(), container)).collect();
    let mut removed = Vec::new();
    for container in engine.docker.containers_labelled(&[(labels::INSTANCE, &engine.instance)]).await? {
        // A live deployment claims its recorded container only: a restart
        // that died before its switch leaves a second one with the label.
        let claimed = container
            .labels
            .get(labels::DEPLOYMENT_ID)
            .and_then(|id| live.get(id))
            .is_some_and(|recorded| recorded.as_ref().is_none_or(|c| *c == container.id));
        if claimed {
            continue;
        }
        tracing::warn!(container = %container.name, id = %container.id, "removing an orphan container");
        engine.docker.remove_container(&container.id, Duration::from_secs(5)).await?;
        removed.push(container.id);
    }
    Ok(removed)
}

/// Points every service with a live deployment at its container. Returns
/// how many routes were restored.
pub async fn restore_routes(engine: &Engine) -> anyhow::Result<usize> {
    let services: Vec<(i64,)> = sqlx::query_as("SELECT service_id FROM deployments WHERE status = 'live'")
        .fetch_all(&engine.db)
        .await?;
    let mut restored = 0;
    for (service_id,) in services {
        if engine.route_live(service_id).await? {
            restored += 1;
        }
    }
    Ok(restored)
}

impl Engine {
    /// Points the service's route at its live deployment, or drops the route
    /// when it has none. Errors are logged: this runs on failure paths.
    pub async fn restore_route(&self, service_id: i64) {
        match self.route_live(service_id).await {
            Ok(true) => {}
            Ok(false) => self.switch.remove(service_id).await,
            Err(e) => tracing::error!(service_id, error = %format!("{e:#}"), "cannot restore a route"),
        }
    }

    /// Routes the service to its live deployment's container; false when
    /// there is none or its container is not running.
    async fn route_live(&self, service_id: i64) -> anyhow::Result<bool> {
        let Some(live) = self.live_of(service_id).await? else {
            return Ok(false);
        };
        let Some(container_id) = live.container_id.clone() else {
            return Ok(false);
        };
        let store = ProjectStore::new(self.db.clone());
        let service = store.get_service(service_id).await?;
        let project = store.get_project(service.project_id).await?;
        if live.stopped_at.is_some() {
            // Stopped by an operator: it stays stopped (a crash mid-stop
            // may have left it running) and its host answers 503.
            self.switch.park(service_id, service_host(&project, &service)).await;
            if let Err(e) = self.docker.stop_container(&container_id, Duration::from_secs(10)).await {
                tracing::debug!(service_id, error = %e, "stopping the stopped service's container");
            }
            return Ok(true);
        }
        let Some(state) = self.docker.container_state(&container_id).await? else {
            tracing::warn!(service_id, deployment_id = live.id, "the live deployment's container is gone");
            return Ok(false);
        };
        let Some(ip) = state.ip else {
            tracing::warn!(service_id, deployment_id = live.id, "the live container has no address");
            return Ok(false);
        };
        let route = Route {
            service_id,
            host: service_host(&project, &service),
            upstream: Upstream {
                deployment_id: live.id,
                container_id,
                addr: std::net::SocketAddr::new(ip, live.config.port),
            },
        };
        self.switch.switch(route).await?;
        Ok(true)
    }
}
