//! The edge router: an HTTP/1.1 reverse proxy in the binary that routes by
//! `Host` to each service's live container, with an atomically swapped route
//! table and per-upstream in-flight counts so a deploy can drain the old
//! container before stopping it. [`EdgeRouter`] is the deploys'
//! [`RouteSwitch`]; [`proxy`] serves the traffic.

pub mod acme;
mod body;
mod headers;
pub mod proxy;
pub mod reach;
pub mod runtime;
pub mod tls;
pub mod upstream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::HeaderValue;
use tokio::sync::Notify;

use crate::deploys::switch::{Drained, Route, RouteSwitch, Upstream};
use upstream::UpstreamPool;

/// Upper bounds (ms) of the upstream latency histogram buckets.
pub const LATENCY_BUCKETS_MS: [u64; 10] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000];

/// Counters of one service's route (the metrics module reads these).
#[derive(Debug, Default)]
pub struct RouteStats {
    pub requests: AtomicU64,
    /// Upstream answered 4xx / 5xx; the proxy itself answered 502/504.
    pub client_errors: AtomicU64,
    pub server_errors: AtomicU64,
    pub proxy_errors: AtomicU64,
    /// Cumulative counts per [`LATENCY_BUCKETS_MS`] bucket, then +Inf.
    pub latency: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    pub latency_sum_ms: AtomicU64,
}

impl RouteStats {
    pub fn observe_latency(&self, elapsed: Duration) {
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_MS.iter().position(|b| ms <= *b).unwrap_or(LATENCY_BUCKETS_MS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// In-flight requests (and upgraded connections) on one upstream.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    pub fn current(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

/// Held for as long as a request to an upstream is in flight (until its
/// response body is fully sent, or its upgraded connection closes).
pub struct InFlightGuard(Arc<InFlight>);

impl InFlightGuard {
    fn new(inflight: Arc<InFlight>) -> Self {
        inflight.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(inflight)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// A live route as the proxy sees it, made once per switch.
#[derive(Debug)]
pub struct Target {
    pub route: Route,
    pub inflight: Arc<InFlight>,
    pub stats: Arc<RouteStats>,
    /// Keep-alive connections to this route's upstream.
    pub pool: Arc<UpstreamPool>,
    /// The route's host as a header value (`X-Forwarded-Host`).
    pub host_header: HeaderValue,
}

#[derive(Default)]
struct Table {
    by_host: HashMap<String, Arc<Target>>,
    by_service: HashMap<i64, String>,
}

/// The route table plus counters. Cheap to share (`Arc`).
#[derive(Default)]
pub struct EdgeRouter {
    table: RwLock<Table>,
    /// In-flight counts by deployment id and container (a restart gives a
    /// deployment a new container); kept after a switch so the old upstream
    /// can be drained.
    inflight: RwLock<HashMap<(i64, String), Arc<InFlight>>>,
    /// Hosts of stopped services: answered with 503, not 404.
    parked: RwLock<HashMap<String, i64>>,
    stats: RwLock<HashMap<i64, Arc<RouteStats>>>,
    /// The TLS listener's certificates and counters.
    pub certs: Arc<tls::store::CertStore>,
}

impl EdgeRouter {
    pub fn new() -> Self {
        EdgeRouter::default()
    }

    /// A router serving the certificates of `certs` (shared with the engine,
    /// which loads the uploaded ones into it).
    pub fn with_certs(certs: Arc<tls::store::CertStore>) -> Self {
        EdgeRouter { certs, ..EdgeRouter::default() }
    }

    /// Looks up `host` and counts the request in flight on its upstream, in
    /// one step under the table lock: a switch either happens before (the
    /// request goes to the new upstream) or after (the drain waits for it).
    pub fn acquire(&self, host: &str) -> Option<(Arc<Target>, InFlightGuard)> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        let target = table.by_host.get(host)?.clone();
        let guard = InFlightGuard::new(target.inflight.clone());
        Some((target, guard))
    }

    /// Counters per service id.
    pub fn stats(&self) -> Vec<(i64, Arc<RouteStats>)> {
        let stats = self.stats.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = stats.iter().map(|(id, s)| (*id, s.clone())).collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    /// In-flight requests on a deployment's upstreams.
    pub fn in_flight(&self, deployment_id: i64) -> usize {
        let map = self.inflight.read().unwrap_or_else(|e| e.into_inner());
        map.iter().filter(|((id, _), _)| *id == deployment_id).map(|(_, i)| i.current()).sum()
    }

    /// Whether `host` belongs to a stopped service.
    pub fn is_parked(&self, host: &str) -> bool {
        self.parked.read().unwrap_or_else(|e| e.into_inner()).contains_key(host)
    }

    fn unpark(&self, service_id: i64) {
        self.parked.write().unwrap_or_else(|e| e.into_inner()).retain(|_, id| *id != service_id);
    }

    fn inflight_of(&self, upstream: &Upstream) -> Arc<InFlight> {
        let mut map = self.inflight.write().unwrap_or_else(|e| e.into_inner());
        map.entry((upstream.deployment_id, upstream.container_id.clone())).or_default().clone()
    }

    fn stats_of(&self, service_id: i64) -> Arc<RouteStats> {
        let mut map = self.stats.write().unwrap_or_else(|e| e.into_inner());
        map.entry(service_id).or_default().clone()
    }
}

#[async_trait::async_trait]
impl RouteSwitch for EdgeRouter {
    async fn switch(&self, route: Route) -> anyhow::Result<Option<Upstream>> {
        self.unpark(route.service_id);
        let host_header = HeaderValue::from_str(&route.host)
            .map_err(|_| anyhow::anyhow!("the host {:?} is not a valid header value", route.host))?;
        let target = Arc::new(Target {
            inflight: self.inflight_of(&route.upstream),
            stats: self.stats_of(route.service_id),
            pool: Arc::new(UpstreamPool::new(route.upstream.addr)),
            host_header,
            route: route.clone(),
        });
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        // The service may have changed hostname since its last route.
        let old_host = table.by_service.insert(route.service_id, route.host.clone());
        let replaced = match old_host {
            Some(host) if host != route.host => table.by_host.remove(&host),
            _ => None,
        };
        let previous = table.by_host.insert(route.host.clone(), target).or(replaced);
        Ok(previous.map(|t| t.route.upstream.clone()))
    }

    async fn drain(&self, upstream: &Upstream, timeout: Duration) -> Drained {
        let key = (upstream.deployment_id, upstream.container_id.clone());
        let existing = self.inflight.read().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
        let Some(inflight) = existing else {
            return Drained::Idle;
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let drained = loop {
            let idle = inflight.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            let current = inflight.current();
            if current == 0 {
                break Drained::Idle;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                break Drained::TimedOut { in_flight: inflight.current() };
            }
        };
        if drained == Drained::Idle {
            self.inflight.write().unwrap_or_else(|e| e.into_inner()).remove(&key);
        }
        drained
    }

    async fn remove(&self, service_id: i64) {
        self.unpark(service_id);
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if let Some(host) = table.by_service.remove(&service_id) {
            table.by_host.remove(&host);
        }
    }

    async fn park(&self, service_id: i64, host: String) -> Option<Upstream> {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        let removed = table.by_service.remove(&service_id).and_then(|h| table.by_host.remove(&h));
        self.parked.write().unwrap_or_else(|e| e.into_inner()).insert(host, service_id);
        removed.map(|t| t.route.upstream.clone())
    }

    fn route(&self, service_id: i64) -> Option<Route> {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        let host = table.by_service.get(&service_id)?;
        table.by_host.get(host).map(|t| t.route.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(service_id: i64, deployment_id: i64, port: u16) -> Route {
        Route {
            service_id,
            host: "web.shop.localhost".into(),
            upstream: Upstream {
                deployment_id,
                container_id: format!("c{deployment_id}"),
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            },
            policy: Default::default(),
        }
    }

    #[tokio::test]
    async fn switch_is_atomic_and_drain_waits_for_in_flight_requests() -> anyhow::Result<()> {
        let edge = Arc::new(EdgeRouter::new());
        assert_eq!(edge.switch(route(1, 10, 1000)).await?, None);
        let (old, guard) = edge.acquire("web.shop.localhost").expect("routed");
        assert_eq!(old.route.upstream.deployment_id, 10);

        let replaced = edge.switch(route(1, 11, 1001)).await?.expect("replaced");
        assert_eq!(replaced.deployment_id, 10);
        let (new, _g) = edge.acquire("web.shop.localhost").expect("routed");
        assert_eq!(new.route.upstream.deployment_id, 11, "new requests go to the new upstream");
        assert_eq!(edge.in_flight(10), 1);

        let timed_out = edge.drain(&replaced, Duration::from_millis(50)).await;
        assert_eq!(timed_out, Drained::TimedOut { in_flight: 1 });
        let waiter = {
            let edge = edge.clone();
            let replaced = replaced.clone();
            tokio::spawn(async move { edge.drain(&replaced, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(guard);
        assert_eq!(waiter.await?, Drained::Idle, "drain ends when the last request finishes");
        assert!(edge.acquire("other.localhost").is_none());
        edge.remove(1).await;
        assert!(edge.acquire("web.shop.localhost").is_none());

        // A stopped service's host is parked until its next switch.
        edge.switch(route(1, 12, 1002)).await?;
        let parked = edge.park(1, "web.shop.localhost".into()).await.expect("had a route");
        assert_eq!(parked.deployment_id, 12);
        assert!(edge.acquire("web.shop.localhost").is_none());
        assert!(edge.is_parked("web.shop.localhost"));
        edge.switch(route(1, 12, 1003)).await?;
        assert!(!edge.is_parked("web.shop.localhost"));
        assert!(edge.acquire("web.shop.localhost").is_some());
        Ok(())
    }
}
