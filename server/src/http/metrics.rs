//! Prometheus metrics at `GET /metrics` (text format 0.0.4).
//!
//! Every scrape reads the database (a few aggregate queries) and the edge
//! router's in-memory counters:
//!
//! | family | type | labels |
//! |---|---|---|
//! | `slipway_builds` | gauge | `status` (every build status, 0 included) |
//! | `slipway_build_duration_seconds` | histogram | started → finished of finished builds |
//! | `slipway_jobs_queued` | gauge | queued jobs (due or waiting for a retry) |
//! | `slipway_job_pickup_latency_seconds` | histogram | started − max(created, run_after) of started jobs |
//! | `slipway_deployments` | gauge | `status` |
//! | `slipway_edge_requests_total` | counter | `service` |
//! | `slipway_edge_upstream_errors_total` | counter | `service`, `class` (`4xx`, `5xx`) |
//! | `slipway_edge_proxy_errors_total` | counter | `service` (the edge's own 502/504) |
//! | `slipway_edge_request_duration_seconds` | histogram | `service` (upstream latency) |
//! | `slipway_edge_in_flight` | gauge | `service` |
//! | `process_resident_memory_bytes` | gauge | (Linux) |
//!
//! `service` is `<project>/<service>` (`#<id>` once the service is deleted).
//! The database-derived histograms count rows, so they drop when builds or
//! jobs go with a deleted service: Prometheus reads that as a counter reset.
//!
//! **Token.** When `SLIPWAY_METRICS_TOKEN` is set, a scrape needs
//! `Authorization: Bearer <token>` (compared in constant time) or gets 401.
//! The identity middleware leaves the `Authorization` header of [`PATH`]
//! alone, so this token is never mistaken for an API token.

mod containers;
mod edge;
mod text;

use std::collections::HashMap;
use std::sync::Arc;

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;

pub use text::{Histogram, Kind, Text, CONTENT_TYPE};

use crate::{db::Db, deploys::DeploymentStatus, edge::EdgeRouter, engine::Engine, jobs::JobStatus};

/// Where the metrics are served.
pub const PATH: &str = "/metrics";

/// Upper bounds (s) of the build duration buckets.
pub const BUILD_DURATION_BUCKETS: [f64; 11] =
    [5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0];
/// Upper bounds (s) of the job pickup latency buckets.
pub const PICKUP_LATENCY_BUCKETS: [f64; 13] =
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

const BUILD_STATUSES: [JobStatus; 8] = [
    JobStatus::Queued,
    JobStatus::Running,
    JobStatus::Succeeded,
    JobStatus::Failed,
    JobStatus::Cancelled,
    JobStatus::TimedOut,
    JobStatus::Interrupted,
    JobStatus::Skipped,
];
const DEPLOYMENT_STATUSES: [DeploymentStatus; 6] = [
    DeploymentStatus::Pending,
    DeploymentStatus::Starting,
    DeploymentStatus::Live,
    DeploymentStatus::Superseded,
    DeploymentStatus::RolledBack,
    DeploymentStatus::Failed,
];

struct MetricsState {
    engine: Engine,
    edge: Option<Arc<EdgeRouter>>,
    /// SHA-256 of the token: equal lengths for the constant-time compare.
    token: Option<[u8; 32]>,
}

/// `GET /metrics`, behind `Authorization: Bearer <token>` when a token is set.
pub fn routes<S: Clone + Send + Sync + 'static>(
    engine: Engine,
    edge: Option<Arc<EdgeRouter>>,
    token: Option<String>,
) -> Router<S> {
    let token = token.as_deref().map(digest);
    Router::new().route(PATH, get(scrape)).with_state(Arc::new(MetricsState { engine, edge, token }))
}

async fn scrape(State(state): State<Arc<MetricsState>>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.token {
        if !authorized(&headers, expected) {
            let mut response = crate::http::api::json_error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "the metrics need `Authorization: Bearer <SLIPWAY_METRICS_TOKEN>`",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            return response;
        }
    }
    match render(&state.engine, state.edge.as_deref()).await {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot collect metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable\n").into_response()
        }
    }
}

fn authorized(headers: &HeaderMap, expected: &[u8; 32]) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return false;
    };
    digest(given)[..].ct_eq(&expected[..]).into()
}

fn digest(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(text.as_bytes()));
    out
}

/// The whole exposition.
pub async fn render(engine: &Engine, edge: Option<&EdgeRouter>) -> anyhow::Result<String> {
    let db = &engine.db;
    let mut t = Text::new();

    let builds = counts_by_status(db, "builds").await?;
    t.family("slipway_builds", Kind::Gauge, "Builds by status.");
    for status in BUILD_STATUSES {
        let n = builds.get(status.as_str()).copied().unwrap_or(0);
        t.sample("slipway_builds", &[("status", status.as_str())], n as f64);
    }

    let durations = histogram_of(
        db,
        "SELECT MAX(0.0, (julianday(finished_at) - julianday(started_at)) * 86400.0) AS s FROM builds \
         WHERE started_at IS NOT NULL AND finished_at IS NOT NULL \
           AND status NOT IN ('queued', 'running')",
        &BUILD_DURATION_BUCKETS,
    )
    .await?;
    t.family(
        "slipway_build_duration_seconds",
        Kind::Histogram,
        "Run time of finished builds (started to finished).",
    );
    t.histogram("slipway_build_duration_seconds", &[], &durations);

    let queued: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetch_one(db).await?;
    t.family("slipway_jobs_queued", Kind::Gauge, "Jobs waiting in the queue (due now or later).");
    t.sample("slipway_jobs_queued", &[], queued as f64);

    let pickup = histogram_of(
        db,
        "SELECT MAX(0.0, (julianday(started_at) - MAX(julianday(created_at), julianday(run_after))) * 86400.0) \
             AS s FROM jobs WHERE started_at IS NOT NULL",
        &PICKUP_LATENCY_BUCKETS,
    )
    .await?;
    t.family(
        "slipway_job_pickup_latency_seconds",
        Kind::Histogram,
        "Time from a job being due (created, or its run_after) to a worker starting it.",
    );
    t.histogram("slipway_job_pickup_latency_seconds", &[], &pickup);

    let deployments = counts_by_status(db, "deployments").await?;
    t.family("slipway_deployments", Kind::Gauge, "Deployments by status.");
    for status in DEPLOYMENT_STATUSES {
        let n = deployments.get(status.as_str()).copied().unwrap_or(0);
        t.sample("slipway_deployments", &[("status", status.as_str())], n as f64);
    }

    edge::edge_metrics(&mut t, db, edge).await?;
    containers::write(&mut t, &engine.monitor);

    t.family("process_resident_memory_bytes", Kind::Gauge, "Resident memory size in bytes.");
    if let Some(rss) = resident_memory_bytes() {
        t.sample("process_resident_memory_bytes", &[], rss as f64);
    }
    Ok(t.finish())
}

/// Rows per status of `table` (a fixed table name, never input).
async fn counts_by_status(db: &Db, table: &'static str) -> anyhow::Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as(&format!("SELECT status, COUNT(*) FROM {table} GROUP BY status"))
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().collect())
}

/// A histogram of the `s` column of `source` (fixed SQL, never input),
/// aggregated by the database.
async fn histogram_of(db: &Db, source: &str, bounds: &[f64]) -> anyhow::Result<Histogram> {
    let buckets: Vec<String> = bounds
        .iter()
        .enumerate()
        .map(|(i, b)| format!("COALESCE(SUM(CASE WHEN s <= {b:?} THEN 1 ELSE 0 END), 0) AS b{i}"))
        .collect();
    let sql = format!(
        "WITH d AS ({source}) SELECT COUNT(*) AS n, TOTAL(s) AS total, {} FROM d WHERE s IS NOT NULL",
        buckets.join(", ")
    );
    let row = sqlx::query(&sql).fetch_one(db).await?;
    let count: i64 = row.try_get("n")?;
    let sum: f64 = row.try_get("total")?;
    let mut cumulative = Vec::with_capacity(bounds.len());
    for i in 0..bounds.len() {
        let n: i64 = row.try_get(format!("b{i}").as_str())?;
        cumulative.push(u64::try_from(n).unwrap_or(0));
    }
    Ok(Histogram { bounds: bounds.to_vec(), cumulative, count: u64::try_from(count).unwrap_or(0), sum })
}

/// Resident set size: `/proc/self/statm`'s second field times the page size.
#[cfg(target_os = "linux")]
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf reads a system constant; no memory is passed.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = u64::try_from(page).ok().filter(|p| *p > 0)?;
    pages.checked_mul(page)
}

#[cfg(not(target_os = "linux"))]
fn resident_memory_bytes() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_must_match() {
        let expected = digest("0123456789abcdef");
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, header::HeaderValue::from_str(value).expect("header"));
            authorized(&h, &expected)
        };
        assert!(with("Bearer 0123456789abcdef"));
        assert!(!with("Bearer 0123456789abcdeF"));
        assert!(!with("Basic 0123456789abcdef"));
        assert!(!with("Bearer "));
        assert!(!authorized(&HeaderMap::new(), &expected));
    }

    #[test]
    fn rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(resident_memory_bytes().is_some_and(|b| b > 1_000_000));
        }
    }
}
