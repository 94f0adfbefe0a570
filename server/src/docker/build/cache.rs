//! The engine's build cache: its size and pruning down to a budget.
//!
//! Pruning goes through `POST /build/prune` with the budget as
//! `keep-storage` (`reserved-space` from API 1.48), without `all`: BuildKit
//! then removes the least recently used cache records first and never one
//! shared with an image in the engine's image store, so the layers of every
//! image Slipway keeps stay. (bollard's `prune_build` sends only the newer
//! parameter names, which API 1.41 engines ignore: pruning everything.)

use bytes::Bytes;

use super::engine_http::{self, Endpoint};
use crate::docker::{DockerEngine, RuntimeError};

/// What one prune did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePrune {
    pub records_deleted: usize,
    pub bytes_reclaimed: u64,
}

fn api_at_least(api: &str, minor: u32) -> bool {
    api.split_once('.')
        .and_then(|(major, m)| Some((major.parse::<u32>().ok()?, m.parse::<u32>().ok()?)))
        .is_some_and(|(major, m)| major > 1 || (major == 1 && m >= minor))
}

/// The prune query for an engine of `api` version.
pub fn prune_query(api: &str, keep_bytes: u64) -> String {
    let name = if api_at_least(api, 48) { "reserved-space" } else { "keep-storage" };
    format!("{name}={keep_bytes}")
}

pub(crate) async fn connect(engine: &DockerEngine) -> Result<(Endpoint, String), RuntimeError> {
    let endpoint =
        engine.endpoint().map_err(|why| RuntimeError::Engine(format!("{why} is not supported")))?;
    let ping = engine_http::ping(&endpoint).await.map_err(|e| RuntimeError::Unreachable(e.0))?;
    let api = ping.api_version.unwrap_or_else(|| "1.41".into());
    Ok((endpoint, api))
}

/// The largest answer read from `/system/df` or `/build/prune`: one
/// record is about 600 bytes, so this is tens of thousands of cache records.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

pub(crate) async fn json(
    endpoint: &Endpoint,
    method: http::Method,
    path: &str,
) -> Result<serde_json::Value, RuntimeError> {
    let exchange = engine_http::send(endpoint, method, path, None, Bytes::new())
        .await
        .map_err(|e| RuntimeError::Unreachable(e.0))?;
    if !exchange.status.is_success() {
        let status = exchange.status;
        return Err(RuntimeError::Engine(format!("{path}: {status}: {}", exchange.error_message().await)));
    }
    let body =
        exchange.bytes(MAX_ANSWER).await.map_err(|e| RuntimeError::Engine(format!("{path}: {}", e.0)))?;
    serde_json::from_slice(&body).map_err(|e| RuntimeError::Engine(format!("{path}: not JSON: {e}")))
}

impl DockerEngine {
    /// Bytes of build cache on the engine (`GET /system/df`).
    pub async fn build_cache_bytes(&self) -> Result<u64, RuntimeError> {
        let (endpoint, api) = connect(self).await?;
        let df = json(&endpoint, http::Method::GET, &format!("/v{api}/system/df?type=build-cache")).await?;
        let records = df.get("BuildCache").and_then(|b| b.as_array()).cloned().unwrap_or_default();
        Ok(records.iter().filter_map(|r| r.get("Size").and_then(serde_json::Value::as_u64)).sum())
    }

    /// Prunes the build cache down to `keep_bytes`, least recently used
    /// first, never cache that images in the image store use.
    pub async fn prune_build_cache(&self, keep_bytes: u64) -> Result<CachePrune, RuntimeError> {
        let (endpoint, api) = connect(self).await?;
        let path = format!("/v{api}/build/prune?{}", prune_query(&api, keep_bytes));
        let answer = json(&endpoint, http::Method::POST, &path).await?;
        Ok(CachePrune {
            records_deleted: answer.get("CachesDeleted").and_then(|c| c.as_array()).map_or(0, Vec::len),
            bytes_reclaimed: answer.get("SpaceReclaimed").and_then(serde_json::Value::as_u64).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_parameter_follows_the_api_version() {
        assert_eq!(prune_query("1.41", 10), "keep-storage=10");
        assert_eq!(prune_query("1.47", 10), "keep-storage=10");
        assert_eq!(prune_query("1.48", 10), "reserved-space=10");
        assert_eq!(prune_query("2.0", 10), "reserved-space=10");
    }
}
