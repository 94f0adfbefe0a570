//! Waiting for a new container to become healthy: an HTTP GET on the
//! service port or a command run in the container (argument vector, no
//! shell), with interval, timeout, retries and start period as Docker's own
//! HEALTHCHECK counts them. A container without a probe (a worker or an
//! image service) is healthy once it has stayed running, without a restart,
//! for its settle time. A container that exits or restarts fails at once.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::docker::DockerEngine;
use crate::projects::{HealthCheck, HealthProbe};

/// Waits until the container passes its check; returns its address.
/// `port` is the container port an HTTP probe uses.
/// During the start period and the first interval after it, probes run every
/// [`FAST_PROBE`] and failures do not count (like Docker's start interval),
/// so a container that is up in 300 ms goes live in about 300 ms, not one
/// interval later; then probes follow `interval` and count up to `retries`.
pub async fn wait_healthy(
    docker: &DockerEngine,
    container_id: &str,
    port: Option<u16>,
    check: &HealthCheck,
    settle: Duration,
) -> anyhow::Result<IpAddr> {
    if check.probe == HealthProbe::None {
        return wait_settled(docker, container_id, settle).await;
    }
    let interval = Duration::from_millis(u64::from(check.interval_ms));
    let timeout = Duration::from_millis(u64::from(check.timeout_ms));
    let grace_until = Instant::now() + Duration::from_millis(u64::from(check.start_period_ms)) + interval;
    let mut failures = 0u32;
    loop {
        let state = running(docker, container_id, "during the health check").await?;
        let ip = state.ip.context("the container has no address on its network")?;
        let result =
            match tokio::time::timeout(timeout, probe(docker, container_id, ip, port, &check.probe)).await {
                Ok(result) => result,
                Err(_) => Err(anyhow::anyhow!("no answer within {} ms", check.timeout_ms)),
            };
        match result {
            Ok(()) => return Ok(ip),
            Err(e) if Instant::now() < grace_until => {
                tracing::debug!(error = %format!("{e:#}"), "health probe failed in the start period");
            }
            Err(e) => {
                failures += 1;
                tracing::info!(failures, retries = check.retries, error = %format!("{e:#}"), "health probe failed");
                if failures >= check.retries {
                    bail!("health check failed {failures} times; last: {e:#}");
                }
            }
        }
        let pause = if Instant::now() < grace_until { FAST_PROBE.min(interval) } else { interval };
        tokio::time::sleep(pause).await;
    }
}

/// The container's state; an error when it is gone, stopped or restarted
/// (`when` says during what).
async fn running(
    docker: &DockerEngine,
    container_id: &str,
    when: &str,
) -> anyhow::Result<crate::docker::containers::ContainerState> {
    let state =
        docker.container_state(container_id).await?.context("the container disappeared while starting")?;
    if !state.running || state.restart_count > 0 {
        let code = state.exit_code.map_or_else(|| "unknown".to_string(), |c| c.to_string());
        bail!("the container stopped {when} (exit code {code}, status {})", state.status);
    }
    Ok(state)
}

/// Waits until the container has been running for `settle` without a
/// restart (its first start counts from the engine's `StartedAt`).
async fn wait_settled(docker: &DockerEngine, container_id: &str, settle: Duration) -> anyhow::Result<IpAddr> {
    let since = Instant::now();
    let when = format!("within its settle time of {} s", settle.as_secs());
    loop {
        let state = running(docker, container_id, &when).await?;
        if since.elapsed() >= settle {
            return state.ip.context("the container has no address on its network");
        }
        tokio::time::sleep(SETTLE_POLL.min(settle)).await;
    }
}

/// How often a settling container is looked at.
const SETTLE_POLL: Duration = Duration::from_millis(250);

/// Probe spacing until the first interval has passed.
const FAST_PROBE: Duration = Duration::from_millis(25);

pub(crate) async fn probe(
    docker: &DockerEngine,
    container_id: &str,
    ip: IpAddr,
    port: Option<u16>,
    probe: &HealthProbe,
) -> anyhow::Result<()> {
    match probe {
        HealthProbe::Http { path } => {
            let port = port.context("an HTTP probe needs a port")?;
            let addr = SocketAddr::new(ip, port);
            let status = http_get_status(addr, path).await?;
            if !(200..400).contains(&status) {
                bail!("GET {path} answered HTTP {status}");
            }
            Ok(())
        }
        HealthProbe::Command { argv } => {
            let code = docker.exec(container_id, argv).await?;
            if code != 0 {
                bail!("the health command exited with code {code}");
            }
            Ok(())
        }
        // Running is all that is asked (the caller saw it running).
        HealthProbe::None => Ok(()),
    }
}

/// The status code of `GET path` on `addr` (HTTP/1.1, connection closed after).
pub async fn http_get_status(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let stream =
        tokio::net::TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::USER_AGENT, "slipway-health")
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await;
    conn.abort();
    Ok(response?.status().as_u16())
}
