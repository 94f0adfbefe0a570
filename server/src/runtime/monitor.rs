//! The runtime monitor: every few seconds it reads the state and resource
//! usage of each live deployment's container (one inspect and one one-shot
//! stats call each), and every third round probes its health as the deploy
//! did. It keeps the last 15 minutes per service in memory, never in the
//! database; pages and `/metrics` read these snapshots and never call the
//! engine themselves, so an open page costs one in-memory read per refresh.

use std::collections::{HashMap, VecDeque};
use std::sync::RwLock;
use std::time::Duration;

use crate::{
    deploys::{health, DeployConfig},
    docker::{containers::ContainerState, runtime::UsageSample},
    engine::Engine,
};

/// How much history a service keeps.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Probes run every this many rounds.
const PROBE_EVERY: u64 = 3;

/// One point of the usage chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Unix seconds.
    pub at: i64,
    /// CPU in tenths of a percent of one CPU.
    pub cpu_tenths: u32,
    pub memory_bytes: u64,
}

/// The last health probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub ok: bool,
    pub detail: String,
    /// RFC 3339.
    pub at: String,
}

/// What is known of one service's live container.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub deployment_id: i64,
    pub container_id: String,
    pub service: String,
    pub project: String,
    pub state: Option<ContainerState>,
    pub memory_limit_bytes: u64,
    pub points: VecDeque<Point>,
    pub probe: Option<Probe>,
    last_sample: Option<UsageSample>,
}

/// Snapshots by service id. Cheap to share.
#[derive(Default)]
pub struct Monitor {
    services: RwLock<HashMap<i64, Snapshot>>,
}

impl Monitor {
    pub fn new() -> Self {
        Monitor::default()
    }

    /// A copy of one service's snapshot.
    pub fn snapshot(&self, service_id: i64) -> Option<Snapshot> {
        self.services.read().unwrap_or_else(|e| e.into_inner()).get(&service_id).cloned()
    }

    /// `(service id, snapshot)` of every monitored service, by id; the
    /// points are left out (for `/metrics` and the overview).
    pub fn all_latest(&self) -> Vec<(i64, Snapshot)> {
        let services = self.services.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = services
            .iter()
            .map(|(id, s)| {
                let mut copy = Snapshot { points: VecDeque::new(), ..s.clone() };
                if let Some(last) = s.points.back() {
                    copy.points.push_back(*last);
                }
                (*id, copy)
            })
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    fn retain(&self, live: &[i64]) {
        self.services.write().unwrap_or_else(|e| e.into_inner()).retain(|id, _| live.contains(id));
    }

    fn update(&self, service_id: i64, round: Round) {
        let mut services = self.services.write().unwrap_or_else(|e| e.into_inner());
        let entry = services.entry(service_id).or_default();
        if entry.container_id != round.container_id {
            // A new deployment or a restart: its own history.
            *entry = Snapshot::default();
        }
        entry.deployment_id = round.deployment_id;
        entry.container_id = round.container_id;
        entry.service = round.service;
        entry.project = round.project;
        entry.state = round.state;
        if let Some(probe) = round.probe {
            entry.probe = Some(probe);
        }
        match round.usage {
            Some(sample) => {
                entry.memory_limit_bytes = sample.memory_limit_bytes;
                if let Some(earlier) = entry.last_sample {
                    let cpu = sample.cpu_percent_since(&earlier);
                    entry.points.push_back(Point {
                        at: round.at,
                        cpu_tenths: (cpu * 10.0).round().clamp(0.0, f64::from(u32::MAX)) as u32,
                        memory_bytes: sample.memory_bytes,
                    });
                }
                entry.last_sample = Some(sample);
            }
            None => entry.last_sample = None,
        }
        let horizon = round.at - i64::try_from(WINDOW.as_secs()).unwrap_or(i64::MAX);
        while entry.points.front().is_some_and(|p| p.at < horizon) {
            entry.points.pop_front();
        }
    }
}

/// What one round learned of one container.
struct Round {
    at: i64,
    deployment_id: i64,
    container_id: String,
    service: String,
    project: String,
    state: Option<ContainerState>,
    usage: Option<UsageSample>,
    probe: Option<Probe>,
}

/// A live deployment to watch.
#[derive(sqlx::FromRow)]
struct Watched {
    deployment_id: i64,
    service_id: i64,
    container_id: String,
    config: String,
    service: String,
    project: String,
}

/// Samples every live container every `interval`, until the task is aborted.
pub async fn run(engine: Engine, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round = 0u64;
    loop {
        tick.tick().await;
        if let Err(e) = sample_all(&engine, round.is_multiple_of(PROBE_EVERY)).await {
            tracing::debug!(error = %format!("{e:#}"), "runtime monitor round failed");
        }
        round += 1;
    }
}

async fn sample_all(engine: &Engine, probe: bool) -> anyhow::Result<()> {
    let watched: Vec<Watched> = sqlx::query_as(
        "SELECT d.id AS deployment_id, d.service_id, d.container_id, d.config, s.name AS service, \
         p.name AS project FROM deployments d JOIN services s ON s.id = d.service_id \
         JOIN projects p ON p.id = s.project_id WHERE d.status = 'live' AND d.container_id IS NOT NULL",
    )
    .fetch_all(&engine.db)
    .await?;
    let live: Vec<i64> = watched.iter().map(|w| w.service_id).collect();
    let rounds = futures::future::join_all(watched.into_iter().map(|w| sample_one(engine, w, probe))).await;
    engine.monitor.retain(&live);
    for (service_id, round) in rounds {
        engine.monitor.update(service_id, round);
    }
    Ok(())
}

async fn sample_one(engine: &Engine, w: Watched, probe: bool) -> (i64, Round) {
    let (state, usage) =
        futures::join!(engine.docker.container_state(&w.container_id), engine.docker.usage(&w.container_id));
    let state = state.ok().flatten();
    let usage = usage.ok().flatten();
    let mut result = None;
    if probe {
        if let (Some(ip), Ok(config)) = (
            state.as_ref().filter(|s| s.running).and_then(|s| s.ip),
            serde_json::from_str::<DeployConfig>(&w.config),
        ) {
            let timeout = Duration::from_millis(u64::from(config.health.timeout_ms));
            let outcome = tokio::time::timeout(
                timeout,
                health::probe(&engine.docker, &w.container_id, ip, config.port, &config.health.probe),
            )
            .await;
            let (ok, detail) = match outcome {
                Ok(Ok(())) => (true, "passed".to_string()),
                Ok(Err(e)) => (false, format!("{e:#}")),
                Err(_) => (false, format!("no answer within {} ms", config.health.timeout_ms)),
            };
            result = Some(Probe { ok, detail, at: crate::db::now_rfc3339() });
        }
    }
    let round = Round {
        at: chrono::Utc::now().timestamp(),
        deployment_id: w.deployment_id,
        container_id: w.container_id,
        service: w.service,
        project: w.project,
        state,
        usage,
        probe: result,
    };
    (w.service_id, round)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(at: i64, container: &str, cpu: u64, system: u64) -> Round {
        Round {
            at,
            deployment_id: 1,
            container_id: container.into(),
            service: "web".into(),
            project: "shop".into(),
            state: None,
            usage: Some(UsageSample {
                cpu_total_ns: cpu,
                system_total_ns: system,
                online_cpus: 1,
                memory_bytes: 100,
                memory_limit_bytes: 1000,
            }),
            probe: None,
        }
    }

    #[test]
    fn points_need_two_samples_and_expire_after_the_window() {
        let monitor = Monitor::new();
        monitor.update(7, round(0, "c1", 0, 0));
        assert!(monitor.snapshot(7).expect("kept").points.is_empty(), "one sample gives no CPU figure");
        monitor.update(7, round(5, "c1", 250, 1000));
        let points = monitor.snapshot(7).expect("kept").points;
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].cpu_tenths, 250, "25.0 % of one CPU");
        let late = i64::try_from(WINDOW.as_secs()).expect("fits") + 10;
        monitor.update(7, round(late, "c1", 500, 2000));
        let points = monitor.snapshot(7).expect("kept").points;
        assert_eq!(points.len(), 1, "the point older than the window is dropped");
        assert_eq!(points[0].at, late);
        monitor.update(7, round(late + 5, "c2", 0, 0));
        assert!(monitor.snapshot(7).expect("kept").points.is_empty(), "a new container starts a new history");
        monitor.retain(&[]);
        assert!(monitor.snapshot(7).is_none());
    }
}
