//! Startup clean-up: containers no live deployment claims are removed, and
//! the route of every live deployment is restored.

use std::time::Duration;

use super::{service_host, switch::Upstream};
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
        // A stop-first deploy interrupted by a crash left it stopped.
        engine.ensure_live_running(service_id).await;
        if engine.route_live(service_id).await? {
            restored += 1;
        }
    }
    Ok(restored)
}

/// Gives every live container its service's name on its project network
/// (a container from before project networks joins it), and removes the
/// networks of projects that no longer exist. Returns how many names were
/// published.
pub async fn publish_names(engine: &Engine) -> anyhow::Result<usize> {
    let live: Vec<(i64, String)> = sqlx::query_as(
        "SELECT service_id, container_id FROM deployments \
         WHERE status = 'live' AND container_id IS NOT NULL AND stopped_at IS NULL",
    )
    .fetch_all(&engine.db)
    .await?;
    let store = ProjectStore::new(engine.db.clone());
    let mut published = 0;
    for (service_id, container_id) in live {
        let (project, service) = store.get_service_and_project(service_id).await?;
        if engine.docker.container_state(&container_id).await?.is_none() {
            continue;
        }
        // A stop-first deploy interrupted by a crash left it stopped.
        engine.ensure_live_running(service_id).await;
        let network = super::ready::project_network(engine, &project).await?;
        match engine.docker.publish_alias(&container_id, &network, &service.spec.name).await {
            Ok(_) => published += 1,
            Err(e) => tracing::warn!(service_id, error = %e, "cannot give the live container its name"),
        }
    }
    let projects: std::collections::HashSet<String> =
        store.list_projects().await?.into_iter().map(|p| p.id.to_string()).collect();
    for (name, project_id) in engine.docker.project_networks(&engine.instance).await? {
        if !projects.contains(&project_id) {
            tracing::info!(network = %name, "removing the network of a deleted project");
            engine.docker.remove_project_network(&name).await?;
        }
    }
    Ok(published)
}

impl Engine {
    /// Points the service's route at its live deployment, or drops the route
    /// when it has none. Errors are logged: this runs on failure paths.
    /// Starts the live deployment's container when it is not running and no
    /// operator stopped it (a stop-first deploy that failed, or a crash in
    /// one). Errors are logged: this runs on failure paths.
    pub async fn ensure_live_running(&self, service_id: i64) {
        let live = match self.live_of(service_id).await {
            Ok(Some(live)) if live.stopped_at.is_none() => live,
            Ok(_) => return,
            Err(e) => {
                tracing::error!(service_id, error = %format!("{e:#}"), "cannot read the live deployment");
                return;
            }
        };
        let Some(container) = live.container_id else { return };
        match self.docker.container_state(&container).await {
            Ok(Some(state)) if !state.running => match self.docker.start_container(&container).await {
                Ok(()) => {
                    tracing::info!(service_id, deployment_id = live.id, "the live container started again")
                }
                Err(e) => tracing::error!(service_id, error = %e, "cannot start the live container again"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(service_id, error = %e, "cannot inspect the live container"),
        }
    }

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
        let Some(port) = live.config.route_port() else {
            // A worker (or an image service without a port): no route.
            self.switch.remove(service_id).await;
            return Ok(true);
        };
        let Some(ip) = state.ip else {
            tracing::warn!(service_id, deployment_id = live.id, "the live container has no address");
            return Ok(false);
        };
        let upstream =
            Upstream { deployment_id: live.id, container_id, addr: std::net::SocketAddr::new(ip, port) };
        let route = super::service_route(&project, &service, upstream);
        self.switch.switch(route).await?;
        Ok(true)
    }
}
