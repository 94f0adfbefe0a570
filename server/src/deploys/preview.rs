//! What a rollback would change: the target's image and config against the
//! live deployment's, for the confirmation dialog.

use std::collections::{BTreeMap, BTreeSet};

use app::wire::{Caller, Role};

use super::{health_text, DeployConfig, Deployment};
use crate::{
    access::require,
    engine::{Engine, EngineError},
    secrets::Secrets,
    service_env::StoredEnv,
    validate::REDACTED,
};

/// One config field that differs (secret values shown masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDiff {
    pub field: String,
    pub live: String,
    pub target: String,
}

/// A rollback target with the live deployment it would replace (both
/// masked) and the differences.
#[derive(Debug, Clone)]
pub struct RollbackPlan {
    pub target: Deployment,
    pub live: Option<Deployment>,
    pub changes: Vec<ConfigDiff>,
}

impl Engine {
    /// What rolling back to `deployment_id` would change (viewer).
    pub async fn rollback_plan(
        &self,
        caller: &Caller,
        deployment_id: i64,
    ) -> Result<RollbackPlan, EngineError> {
        require(caller, Role::Viewer)?;
        let target = self.deployment(deployment_id).await?;
        let live = self.live_of(target.service_id).await?;
        let changes = match &live {
            Some(live) => config_diff(&self.secrets, &live.config, &target.config)?,
            None => Vec::new(),
        };
        Ok(RollbackPlan { target: target.masked(), live: live.map(Deployment::masked), changes })
    }
}

/// The differing fields. Sealed secrets differ byte-wise even when equal
/// (random nonces), so they are compared opened and shown masked.
pub fn config_diff(
    secrets: &Secrets,
    live: &DeployConfig,
    target: &DeployConfig,
) -> anyhow::Result<Vec<ConfigDiff>> {
    let mut out = Vec::new();
    let mut push = |field: &str, live: String, target: String| {
        if live != target {
            out.push(ConfigDiff { field: field.to_string(), live, target });
        }
    };
    let port = |p: Option<u16>| p.map_or_else(|| "(none)".to_string(), |p| p.to_string());
    push("kind", live.kind.as_str().to_string(), target.kind.as_str().to_string());
    push("port", port(live.port), port(target.port));
    let command = |c: &Option<Vec<String>>| {
        c.as_ref().map_or_else(|| "(the image's)".to_string(), |c| format!("{c:?}"))
    };
    push("command", command(&live.command), command(&target.command));
    let volumes = |v: &[crate::projects::VolumeSpec]| {
        v.iter().map(|v| format!("{}:{}", v.name, v.path)).collect::<Vec<_>>().join(", ")
    };
    push("volumes", volumes(&live.volumes), volumes(&target.volumes));
    let ports = |v: &[crate::projects::PortSpec]| {
        v.iter().map(|p| format!("{}->{}/{}", p.host, p.container, p.protocol)).collect::<Vec<_>>().join(", ")
    };
    push("ports", ports(&live.ports), ports(&target.ports));
    push("health", health_text(&live.health), health_text(&target.health));
    push("memory_bytes", live.memory_bytes.to_string(), target.memory_bytes.to_string());
    push("cpu_millis", live.cpu_millis.to_string(), target.cpu_millis.to_string());
    push("drain_secs", live.drain_secs.to_string(), target.drain_secs.to_string());
    let (a, b) = (opened(secrets, &live.env)?, opened(secrets, &target.env)?);
    let shown = |v: Option<&StoredEnv>| match v {
        None => "(unset)".to_string(),
        Some(v) if v.secret => REDACTED.to_string(),
        Some(v) => v.value.clone(),
    };
    for name in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
        let (x, y) = (a.get(name), b.get(name));
        if x != y {
            push(&format!("env {name}"), shown(x), shown(y));
        }
    }
    Ok(out)
}

fn opened(secrets: &Secrets, env: &[StoredEnv]) -> anyhow::Result<BTreeMap<String, StoredEnv>> {
    env.iter()
        .map(|v| {
            let value = if v.secret { secrets.open(&v.value)? } else { v.value.clone() };
            Ok((v.name.clone(), StoredEnv { value, ..v.clone() }))
        })
        .collect()
}
