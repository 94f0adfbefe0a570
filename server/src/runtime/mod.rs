//! Runtime visibility of deployed services (viewer): the container's state,
//! resource usage and last health probe ([`monitor`], in memory), and its
//! log, followed live and redacted ([`logs`]).

pub mod logs;
pub mod monitor;

use app::wire::{ActionEventView, Caller, ContainerStateView, ProbeView, Role, RuntimeView, UsagePoint};

pub use monitor::Monitor;

use crate::{
    access::require,
    deploys::{events, Deployment},
    docker::containers::ContainerState,
    engine::{Engine, EngineError},
    projects::ProjectStore,
    service_env,
};

/// Operator actions shown with the runtime panel.
const ACTIONS_SHOWN: u32 = 10;

/// The state as people read it: `oom_killed` wins over `exited`.
pub fn state_view(state: &ContainerState, now: chrono::DateTime<chrono::Utc>) -> ContainerStateView {
    let status =
        if state.oom_killed && !state.running { "oom_killed".to_string() } else { state.status.clone() };
    let started = state
        .started_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .filter(|t| t.timestamp() > 0);
    ContainerStateView {
        status,
        exit_code: state.exit_code.filter(|_| !state.running),
        oom_killed: state.oom_killed,
        restart_count: state.restart_count,
        started_at: started.map(|t| t.with_timezone(&chrono::Utc).to_rfc3339()),
        uptime_secs: started.filter(|_| state.running).map(|t| (now.timestamp() - t.timestamp()).max(0)),
    }
}

/// One line for a container's state, as the overview shows it.
pub fn state_word(state: &ContainerStateView) -> String {
    match state.status.as_str() {
        "exited" => format!("exited (code {})", state.exit_code.unwrap_or(-1)),
        "oom_killed" => "killed: out of memory".into(),
        other => other.into(),
    }
}

impl Engine {
    /// The live deployment's state in a word, from the monitor (no engine
    /// call): `stopped` when an operator stopped it, `unknown` before the
    /// first sample. For lists the caller already may read.
    pub fn runtime_state(&self, live: &Deployment) -> String {
        if live.stopped_at.is_some() {
            return "stopped".into();
        }
        let snapshot = self.monitor.snapshot(live.service_id);
        let state = snapshot
            .filter(|s| Some(&s.container_id) == live.container_id.as_ref())
            .and_then(|s| s.state.map(|st| state_word(&state_view(&st, chrono::Utc::now()))));
        state.unwrap_or_else(|| "unknown".into())
    }

    /// A deployment's timeline, oldest first (viewer).
    pub async fn deployment_events(
        &self,
        caller: &Caller,
        deployment_id: i64,
    ) -> Result<Vec<events::DeploymentEvent>, EngineError> {
        require(caller, Role::Viewer)?;
        self.deployment(deployment_id).await?;
        Ok(events::of_deployment(&self.db, deployment_id).await?)
    }

    /// The runtime panel of a service (viewer).
    pub async fn service_runtime(
        &self,
        caller: &Caller,
        service_id: i64,
    ) -> Result<RuntimeView, EngineError> {
        require(caller, Role::Viewer)?;
        let service = ProjectStore::new(self.db.clone()).get_service(service_id).await?;
        let actions = events::actions_of_service(&self.db, service.id, ACTIONS_SHOWN)
            .await?
            .into_iter()
            .map(|e| ActionEventView {
                deployment_id: e.deployment_id,
                kind: e.kind,
                actor: e.actor,
                at: e.at,
            })
            .collect();
        let mut view = RuntimeView { service_id: service.id, actions, ..RuntimeView::default() };
        let Some(live) = self.live_of(service.id).await? else {
            return Ok(view);
        };
        view.deployment_id = Some(live.id);
        view.stopped = live.stopped_at.is_some();
        view.settings_changed = self.settings_changed(&service, &live).await?;
        let snapshot =
            self.monitor.snapshot(service.id).filter(|s| Some(&s.container_id) == live.container_id.as_ref());
        let now = chrono::Utc::now();
        match snapshot {
            Some(snapshot) => {
                view.state = snapshot.state.as_ref().map(|s| state_view(s, now));
                view.memory_limit_bytes = snapshot.memory_limit_bytes;
                view.cpu_tenths = snapshot.points.back().map(|p| p.cpu_tenths);
                view.memory_bytes = snapshot.points.back().map(|p| p.memory_bytes);
                view.points = snapshot
                    .points
                    .iter()
                    .map(|p| UsagePoint { at: p.at, cpu_tenths: p.cpu_tenths, memory_bytes: p.memory_bytes })
                    .collect();
                view.probe = snapshot.probe.map(|p| ProbeView { ok: p.ok, detail: p.detail, at: p.at });
            }
            None => {
                // Not sampled yet (just deployed): one inspect now.
                if let Some(container) = &live.container_id {
                    let state = self.docker.container_state(container).await.map_err(anyhow::Error::from)?;
                    view.state = state.as_ref().map(|s| state_view(s, now));
                }
                view.memory_limit_bytes = live.config.memory_bytes;
            }
        }
        Ok(view)
    }

    /// Whether the service's saved settings differ from what `live` runs
    /// with (secret values compared opened: sealing is randomised).
    async fn settings_changed(
        &self,
        service: &crate::projects::Service,
        live: &Deployment,
    ) -> Result<bool, EngineError> {
        let spec = &service.spec;
        let config = &live.config;
        if config.port.map(u32::from) != spec.port
            || config.kind != spec.kind
            || config.command != spec.command
            || config.volumes != spec.volumes
            || config.ports != spec.ports
            || config.settle_secs != spec.settle_secs
            || config.health != spec.health
            || config.memory_bytes != spec.memory_bytes
            || config.cpu_millis != spec.cpu_millis
            || config.drain_secs != spec.drain_secs
        {
            return Ok(true);
        }
        let current = service_env::stored(&self.db, service.id).await?;
        let open = |vars: &[service_env::StoredEnv]| {
            service_env::open_all(&self.secrets, vars).map_err(EngineError::Internal)
        };
        Ok(open(&current)? != open(&config.env)?)
    }
}
