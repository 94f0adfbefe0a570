//! Service containers (databases, caches) that live for the whole run on
//! its network, answering to their name, and the wait until they are
//! healthy. The probe is an exec inside the service container
//! ([`DockerEngine::exec`], the deploys' command probe), counted as
//! Docker's HEALTHCHECK counts: failures in the start period do not count,
//! then `retries` failures in a row fail.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, EndpointSettings, NetworkingConfig};
use tokio::time::Instant;

use super::{env_array, sandbox, DockerEngine, RunError, RunRef};

/// A service container of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The container's engine-wide name (unique: include the build id).
    pub container_name: String,
    /// The service's name in the pipeline file: its host name (network
    /// alias) on the run network.
    pub name: String,
    pub image: String,
    pub env: Vec<(String, String)>,
    /// Replaces the image's command (an argument vector; no shell added).
    pub command: Option<Vec<String>>,
    /// The run network's name or id.
    pub network: String,
    pub memory_bytes: u64,
    pub cpu_millis: u32,
    /// Extra labels; the run's own are always added.
    pub labels: HashMap<String, String>,
}

/// The probe run inside the service container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCmd {
    /// Run as is (no shell).
    Argv(Vec<String>),
    /// One line for the container's own `/bin/sh -c` (Docker's CMD-SHELL).
    Shell(String),
}

/// A service's health check, Docker's HEALTHCHECK fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    pub cmd: HealthCmd,
    pub interval: Duration,
    /// Failures in a row, after the start period, that fail the service.
    pub retries: u32,
    pub start_period: Duration,
    /// Longest one probe may take (a slower one is a failure).
    pub timeout: Duration,
}

/// A service that did not become healthy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the service is not healthy: {reason}")]
pub struct ServiceUnhealthy {
    pub reason: String,
    /// The container's last log lines (stdout and stderr), oldest first.
    pub last_log_lines: Vec<String>,
    /// Set when the container exited.
    pub exit_code: Option<i64>,
}

/// How many log lines [`ServiceUnhealthy`] carries.
pub const LAST_LOG_LINES: usize = 30;

/// Probe spacing during the start period and the first interval after it,
/// so a service that is up in 300 ms is seen healthy in about 300 ms (like
/// Docker's start interval, and the deploys' health check).
const FAST_PROBE: Duration = Duration::from_millis(100);

impl DockerEngine {
    /// Creates and starts the service container on the run network, with
    /// its name as network alias. Returns the container id. A leftover of
    /// the same name from an earlier attempt of this run is replaced.
    pub async fn start_service(&self, run: &RunRef, spec: &ServiceSpec) -> Result<String, RunError> {
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: spec.command.clone(),
            env: Some(env_array(&spec.env)),
            hostname: Some(spec.name.clone()),
            labels: Some(run.labels(&spec.labels)),
            host_config: Some(sandbox(&spec.network, None, spec.memory_bytes, spec.cpu_millis)),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    spec.network.clone(),
                    EndpointSettings { aliases: Some(vec![spec.name.clone()]), ..Default::default() },
                )])),
            }),
            ..Default::default()
        };
        let id = self.create_replacing(run, &spec.container_name, body).await?;
        if let Err(e) = self.client()?.start_container(&id, None).await {
            let _ = self.remove_container(&id, Duration::ZERO).await;
            return Err(e.into());
        }
        Ok(id)
    }

    /// Waits until the service passes its check (`None`: once it runs), at
    /// the latest until `deadline`. Returns the time from the container's
    /// start to the first passing probe. A container that exits fails at
    /// once; every failure carries the container's last log lines.
    pub async fn wait_service_healthy(
        &self,
        container_id: &str,
        check: Option<&Healthcheck>,
        deadline: Instant,
    ) -> Result<Duration, ServiceUnhealthy> {
        let called = Instant::now();
        let argv = check.map(|c| match &c.cmd {
            HealthCmd::Argv(argv) => argv.clone(),
            HealthCmd::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
        });
        let grace_until = check.map_or(called, |c| called + c.start_period + c.interval);
        let mut failures = 0u32;
        let mut last_failure = String::from("no probe ran");
        loop {
            let state = match self.container_state(container_id).await {
                Ok(Some(state)) => state,
                Ok(None) => {
                    return Err(self.unhealthy(container_id, "the container is gone".into(), None).await)
                }
                Err(e) => return Err(self.unhealthy(container_id, e.to_string(), None).await),
            };
            if !state.running && state.status != "created" {
                let code = state.exit_code.map_or_else(|| "unknown".into(), |c| c.to_string());
                let reason = format!("the container exited (exit code {code}, status {})", state.status);
                return Err(self.unhealthy(container_id, reason, state.exit_code).await);
            }
            let since_start = since(state.started_at.as_deref()).unwrap_or_else(|| called.elapsed());
            let (Some(check), Some(argv)) = (check, argv.as_ref()) else {
                if state.running {
                    return Ok(since_start);
                }
                // Still `created`: started a moment ago.
                if Instant::now() >= deadline {
                    return Err(self
                        .unhealthy(container_id, "the container did not start".into(), None)
                        .await);
                }
                tokio::time::sleep(FAST_PROBE).await;
                continue;
            };
            let passed = match tokio::time::timeout(check.timeout, self.exec(container_id, argv)).await {
                Ok(Ok(0)) => true,
                Ok(Ok(code)) => {
                    last_failure = format!("the health command exited with code {code}");
                    false
                }
                Ok(Err(e)) => {
                    last_failure = format!("the health command could not run: {e}");
                    false
                }
                Err(_) => {
                    last_failure = format!("the health command took longer than {:?}", check.timeout);
                    false
                }
            };
            if passed {
                // The probe's own time counts: measured when it answered.
                let since_start = since(state.started_at.as_deref()).unwrap_or_else(|| called.elapsed());
                return Ok(since_start);
            }
            let now = Instant::now();
            if now >= grace_until {
                failures += 1;
                if failures >= check.retries.max(1) {
                    let reason = format!("the health check failed {failures} times; last: {last_failure}");
                    return Err(self.unhealthy(container_id, reason, None).await);
                }
            }
            if now >= deadline {
                let reason = format!(
                    "not healthy after {:?}; last probe: {last_failure}",
                    now.saturating_duration_since(called)
                );
                return Err(self.unhealthy(container_id, reason, None).await);
            }
            let pause = if now < grace_until { FAST_PROBE.min(check.interval) } else { check.interval };
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(now))).await;
        }
    }

    async fn unhealthy(
        &self,
        container_id: &str,
        reason: String,
        exit_code: Option<i64>,
    ) -> ServiceUnhealthy {
        let last_log_lines = match self.logs_tail(container_id, LAST_LOG_LINES).await {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(e) => vec![format!("(the log could not be read: {e})")],
        };
        ServiceUnhealthy { reason, last_log_lines, exit_code }
    }
}

/// Time since the engine's RFC 3339 `StartedAt` (`None` when never started
/// or unreadable). Engine and server share the host's clock.
fn since(started_at: Option<&str>) -> Option<Duration> {
    let started = chrono::DateTime::parse_from_rfc3339(started_at?).ok()?;
    if started.timestamp() <= 0 {
        return None;
    }
    (chrono::Utc::now() - started.with_timezone(&chrono::Utc)).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_since_start_reads_the_engine_timestamp() {
        let two_s_ago = (chrono::Utc::now() - chrono::Duration::seconds(2)).to_rfc3339();
        let elapsed = since(Some(&two_s_ago)).unwrap_or_default();
        assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(4), "{elapsed:?}");
        assert_eq!(since(Some("0001-01-01T00:00:00Z")), None, "never started");
        assert_eq!(since(Some("garbage")), None);
        assert_eq!(since(None), None);
    }
}
