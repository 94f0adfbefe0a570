//! The edge router's families: per-service requests, errors, latency and
//! in-flight counts, and the TLS listener's handshakes and reloads.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

use sqlx::Row;

use super::{Histogram, Kind, Text};
use crate::{
    db::Db,
    edge::{EdgeRouter, LATENCY_BUCKETS_MS},
};

/// Deployments per service whose upstream may still have requests in flight
/// (the live one and the ones it recently replaced, while they drain).
const DRAINING_CANDIDATES: i64 = 3;

pub(super) async fn edge_metrics(t: &mut Text, db: &Db, edge: Option<&EdgeRouter>) -> anyhow::Result<()> {
    let stats = edge.map(EdgeRouter::stats).unwrap_or_default();
    let names = if stats.is_empty() { HashMap::new() } else { service_names(db).await? };
    let draining = if stats.is_empty() { HashMap::new() } else { recent_deployments(db).await? };
    let label = |id: i64| names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));

    t.family("slipway_edge_requests_total", Kind::Counter, "Requests the edge router routed to a service.");
    for (id, s) in &stats {
        let service = label(*id);
        t.sample(
            "slipway_edge_requests_total",
            &[("service", service.as_str())],
            s.requests.load(Relaxed) as f64,
        );
    }
    t.family(
        "slipway_edge_upstream_errors_total",
        Kind::Counter,
        "Error answers (4xx, 5xx) of a service's containers, passed on by the edge router.",
    );
    for (id, s) in &stats {
        let service = label(*id);
        t.sample(
            "slipway_edge_upstream_errors_total",
            &[("service", service.as_str()), ("class", "4xx")],
            s.client_errors.load(Relaxed) as f64,
        );
        t.sample(
            "slipway_edge_upstream_errors_total",
            &[("service", service.as_str()), ("class", "5xx")],
            s.server_errors.load(Relaxed) as f64,
        );
    }
    t.family(
        "slipway_edge_proxy_errors_total",
        Kind::Counter,
        "Requests the edge router answered itself with 502 or 504 (upstream unreachable or too slow).",
    );
    for (id, s) in &stats {
        let service = label(*id);
        t.sample(
            "slipway_edge_proxy_errors_total",
            &[("service", service.as_str())],
            s.proxy_errors.load(Relaxed) as f64,
        );
    }
    t.family(
        "slipway_edge_request_duration_seconds",
        Kind::Histogram,
        "Time until a service's container answered (response headers), per request.",
    );
    let bounds: Vec<f64> = LATENCY_BUCKETS_MS.iter().map(|ms| *ms as f64 / 1000.0).collect();
    for (id, s) in &stats {
        let per_bucket: Vec<u64> = s.latency.iter().map(|n| n.load(Relaxed)).collect();
        let sum = s.latency_sum_ms.load(Relaxed) as f64 / 1000.0;
        let h = Histogram::from_buckets(&bounds, &per_bucket, sum);
        let service = label(*id);
        t.histogram("slipway_edge_request_duration_seconds", &[("service", service.as_str())], &h);
    }
    if let Some(edge) = edge {
        tls_metrics(t, edge);
    }
    t.family(
        "slipway_edge_in_flight",
        Kind::Gauge,
        "Requests (and upgraded connections) in flight to a service's containers.",
    );
    if let Some(edge) = edge {
        for (id, _) in &stats {
            let mut deployments: Vec<i64> = draining.get(id).cloned().unwrap_or_default();
            if let Some(route) = crate::deploys::switch::RouteSwitch::route(edge, *id) {
                deployments.push(route.upstream.deployment_id);
            }
            deployments.sort_unstable();
            deployments.dedup();
            let in_flight: usize = deployments.iter().map(|d| edge.in_flight(*d)).sum();
            let service = label(*id);
            t.sample("slipway_edge_in_flight", &[("service", service.as_str())], in_flight as f64);
        }
    }
    Ok(())
}

/// `<project>/<service>` by service id.
async fn service_names(db: &Db) -> anyhow::Result<HashMap<i64, String>> {
    let rows = sqlx::query(
        "SELECT s.id, p.name AS project, s.name FROM services s JOIN projects p ON p.id = s.project_id",
    )
    .fetch_all(db)
    .await?;
    let mut names = HashMap::with_capacity(rows.len());
    for row in &rows {
        let project: String = row.try_get("project")?;
        let service: String = row.try_get("name")?;
        names.insert(row.try_get::<i64, _>("id")?, format!("{project}/{service}"));
    }
    Ok(names)
}

/// The newest deployments per service that served traffic: the only ones
/// whose upstream can still have requests in flight.
async fn recent_deployments(db: &Db) -> anyhow::Result<HashMap<i64, Vec<i64>>> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT service_id, id FROM ( \
             SELECT service_id, id, ROW_NUMBER() OVER (PARTITION BY service_id ORDER BY id DESC) AS n \
             FROM deployments WHERE status IN ('live', 'superseded', 'rolled_back')) \
         WHERE n <= ?",
    )
    .bind(DRAINING_CANDIDATES)
    .fetch_all(db)
    .await?;
    let mut by_service: HashMap<i64, Vec<i64>> = HashMap::new();
    for (service_id, id) in rows {
        by_service.entry(service_id).or_default().push(id);
    }
    Ok(by_service)
}

/// The TLS listener's counters (all zero while it is off).
fn tls_metrics(t: &mut Text, edge: &EdgeRouter) {
    let s = &edge.certs.stats;
    t.family(
        "slipway_edge_tls_handshakes_total",
        Kind::Counter,
        "TLS connections to the edge by outcome: ok, or refused/failed with the reason.",
    );
    for (result, counter) in [
        ("ok", &s.handshakes),
        ("no_sni", &s.no_sni),
        ("unknown_sni", &s.unknown_sni),
        ("failed", &s.failed),
        ("timed_out", &s.timed_out),
        ("rejected", &s.rejected),
    ] {
        t.sample("slipway_edge_tls_handshakes_total", &[("result", result)], counter.load(Relaxed) as f64);
    }
    t.family(
        "slipway_edge_tls_expired_total",
        Kind::Counter,
        "TLS hellos answered with an expired (or not yet valid) certificate.",
    );
    t.sample("slipway_edge_tls_expired_total", &[], s.expired.load(Relaxed) as f64);
    t.family(
        "slipway_edge_tls_reload_errors_total",
        Kind::Counter,
        "Certificate files that could not be loaded (the previous certificate stays served).",
    );
    t.sample("slipway_edge_tls_reload_errors_total", &[], s.reload_errors.load(Relaxed) as f64);
    t.family(
        "slipway_edge_tls_certificate_expiry_seconds",
        Kind::Gauge,
        "When each served certificate expires (Unix time), by its first name.",
    );
    for (_, cert) in edge.certs.all() {
        let name = cert.names.first().map(String::as_str).unwrap_or("");
        t.sample("slipway_edge_tls_certificate_expiry_seconds", &[("name", name)], cert.not_after as f64);
    }
}
