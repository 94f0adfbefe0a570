//! The deploy's switch point: the one interface between deploys and the
//! edge router. A deploy calls [`RouteSwitch::switch`] once the new
//! container is healthy, then [`RouteSwitch::drain`] before stopping the old
//! one. The edge router implements it with its atomic route table and
//! in-flight counters; [`RouteTable`] is the plain implementation used until
//! then (and by tests): it records the routes, and draining waits only for
//! the grace period the service asks for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::RwLock;
use std::time::Duration;

/// Where a service's traffic goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub deployment_id: i64,
    pub container_id: String,
    /// The container's address on the `slipway` network and its port.
    pub addr: SocketAddr,
}

/// A service's route: the hostname it answers and its live upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub service_id: i64,
    /// `<service>.<project>.localhost` unless configured.
    pub host: String,
    pub upstream: Upstream,
    /// The service's HTTPS settings, as of this switch.
    pub policy: RoutePolicy,
}

/// How the edge treats a route's plain and HTTPS requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoutePolicy {
    /// The plain listener answers 308 to the same URL over https.
    pub https_redirect: bool,
    /// HTTPS answers carry `Strict-Transport-Security`.
    pub hsts: bool,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// No request was left in flight.
    Idle,
    /// The drain timeout passed with requests still in flight.
    TimedOut { in_flight: usize },
}

#[async_trait::async_trait]
pub trait RouteSwitch: Send + Sync + 'static {
    /// Atomically points the service's host at `route.upstream`: requests
    /// that start after this returns go there; those in flight finish where
    /// they are. Returns the upstream it replaced.
    async fn switch(&self, route: Route) -> anyhow::Result<Option<Upstream>>;

    /// Waits until `upstream` has no request in flight, at most `timeout`.
    async fn drain(&self, upstream: &Upstream, timeout: Duration) -> Drained;

    /// Drops the service's route (service deleted, or a switch undone).
    async fn remove(&self, service_id: i64);

    /// The service was stopped: drop its route and answer its `host` with
    /// "stopped" (503) until its next switch. Returns the upstream it had.
    async fn park(&self, service_id: i64, host: String) -> Option<Upstream>;

    /// The current route of a service.
    fn route(&self, service_id: i64) -> Option<Route>;
}

/// Routes kept in memory, no proxy in front: nothing is ever in flight
/// through it, so a drain ends at once.
#[derive(Default)]
pub struct RouteTable {
    routes: RwLock<HashMap<i64, Route>>,
}

impl RouteTable {
    pub fn new() -> Self {
        RouteTable::default()
    }

    fn routes(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<i64, Route>> {
        // Every update is one insert or remove: a poisoned map is still whole.
        self.routes.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl RouteSwitch for RouteTable {
    async fn switch(&self, route: Route) -> anyhow::Result<Option<Upstream>> {
        Ok(self.routes().insert(route.service_id, route).map(|old| old.upstream))
    }

    async fn drain(&self, _upstream: &Upstream, _timeout: Duration) -> Drained {
        Drained::Idle
    }

    async fn remove(&self, service_id: i64) {
        self.routes().remove(&service_id);
    }

    async fn park(&self, service_id: i64, _host: String) -> Option<Upstream> {
        self.routes().remove(&service_id).map(|r| r.upstream)
    }

    fn route(&self, service_id: i64) -> Option<Route> {
        self.routes().get(&service_id).cloned()
    }
}
