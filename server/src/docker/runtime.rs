//! A running deployment's container as an operator sees it: its log
//! (followed), its resource usage, and stop/start.

use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::{LogsOptionsBuilder, StatsOptionsBuilder, StopContainerOptionsBuilder};
use futures::{Stream, StreamExt};

use super::containers::{engine_error, status_code};
use super::{DockerEngine, RuntimeError};

/// What part of a container's log to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogQuery {
    /// The last `tail` lines first (`None`: the whole log).
    pub tail: Option<u32>,
    /// Only lines written at or after this Unix time (seconds).
    pub since: Option<i64>,
    /// Keep the stream open for new lines until the container stops.
    pub follow: bool,
}

/// One line of a container's log, as the engine stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLogLine {
    /// `stdout` or `stderr`.
    pub stream: &'static str,
    /// RFC 3339 with nanoseconds, as the engine wrote it.
    pub ts: String,
    pub text: String,
}

/// One sample of a container's resource usage (cumulative CPU counters, so
/// two samples give a CPU percentage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageSample {
    /// Container CPU time, nanoseconds.
    pub cpu_total_ns: u64,
    /// The host's CPU time, nanoseconds (all CPUs).
    pub system_total_ns: u64,
    pub online_cpus: u32,
    /// Memory in use, page cache excluded (what `docker stats` shows).
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
}

impl UsageSample {
    /// CPU use between `earlier` and `self`, in percent of one CPU (200 % is
    /// two CPUs busy), as `docker stats` computes it.
    pub fn cpu_percent_since(&self, earlier: &UsageSample) -> f64 {
        let cpu = self.cpu_total_ns.saturating_sub(earlier.cpu_total_ns) as f64;
        let system = self.system_total_ns.saturating_sub(earlier.system_total_ns) as f64;
        if system <= 0.0 {
            return 0.0;
        }
        cpu / system * f64::from(self.online_cpus.max(1)) * 100.0
    }
}

/// Splits the engine's `<RFC 3339 time> <text>` line (timestamps on).
fn split_timestamp(line: &str) -> (String, String) {
    match line.split_once(' ') {
        Some((ts, text)) if ts.len() >= 20 && ts.as_bytes()[4] == b'-' => (ts.to_string(), text.to_string()),
        _ => (String::new(), line.to_string()),
    }
}

impl DockerEngine {
    /// The container's log, with timestamps, as lines. Ends when the
    /// container stops (following) or at the end of the log.
    pub fn container_log(
        &self,
        id: &str,
        query: LogQuery,
    ) -> Result<impl Stream<Item = Result<ContainerLogLine, RuntimeError>> + Send + 'static, RuntimeError>
    {
        let tail = query.tail.map_or_else(|| "all".to_string(), |t| t.to_string());
        let mut options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .follow(query.follow)
            .tail(&tail);
        if let Some(since) = query.since {
            options = options.since(i32::try_from(since).unwrap_or(i32::MAX));
        }
        let chunks = self.client()?.logs(id, Some(options.build()));
        // The engine sends one frame per write; a frame may hold several
        // lines, or part of one: split and carry the rest per stream.
        let mut pending: [String; 2] = Default::default();
        let lines = chunks
            .map(move |chunk| {
                let (index, stream, bytes) = match chunk {
                    Ok(LogOutput::StdErr { message }) => (1, "stderr", message),
                    Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                        (0, "stdout", message)
                    }
                    Ok(LogOutput::StdIn { .. }) => return Vec::new(),
                    Err(e) if status_code(&e) == Some(404) => return Vec::new(),
                    Err(e) => return vec![Err(engine_error(e))],
                };
                let buffer = &mut pending[index];
                buffer.push_str(&String::from_utf8_lossy(&bytes));
                let mut out = Vec::new();
                while let Some(end) = buffer.find('\n') {
                    let line: String = buffer.drain(..=end).collect();
                    let (ts, text) = split_timestamp(line.trim_end_matches(['\n', '\r']));
                    out.push(Ok(ContainerLogLine { stream, ts, text }));
                }
                out
            })
            .flat_map(futures::stream::iter);
        Ok(lines)
    }

    /// One usage sample (the engine's one-shot stats: no waiting for a
    /// second reading). `None` when the container is gone or not running.
    pub async fn usage(&self, id: &str) -> Result<Option<UsageSample>, RuntimeError> {
        let options = StatsOptionsBuilder::new().stream(false).one_shot(true).build();
        let mut stats = self.client()?.stats(id, Some(options));
        let first = tokio::time::timeout(Duration::from_secs(5), stats.next())
            .await
            .map_err(|_| RuntimeError::Unreachable("no stats within 5 s".into()))?;
        let stats = match first {
            Some(Ok(stats)) => stats,
            Some(Err(e)) if matches!(status_code(&e), Some(404 | 409)) => return Ok(None),
            Some(Err(e)) => return Err(engine_error(e)),
            None => return Ok(None),
        };
        let cpu = stats.cpu_stats.unwrap_or_default();
        let memory = stats.memory_stats.unwrap_or_default();
        // cgroup v2 reports inactive_file, v1 total_inactive_file: the page
        // cache the kernel can drop, which `docker stats` leaves out.
        let cache = memory
            .stats
            .as_ref()
            .and_then(|s| s.get("inactive_file").or_else(|| s.get("total_inactive_file")).copied())
            .unwrap_or(0);
        let Some(system) = cpu.system_cpu_usage else {
            // A stopped container answers with empty counters.
            return Ok(None);
        };
        Ok(Some(UsageSample {
            cpu_total_ns: cpu.cpu_usage.and_then(|u| u.total_usage).unwrap_or(0),
            system_total_ns: system,
            online_cpus: cpu.online_cpus.unwrap_or(1),
            memory_bytes: memory.usage.unwrap_or(0).saturating_sub(cache),
            memory_limit_bytes: memory.limit.unwrap_or(0),
        }))
    }

    /// Stops the container (SIGTERM, SIGKILL after `grace`) and keeps it.
    /// Already stopped is fine; a missing container is an error.
    pub async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let secs = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(secs).build();
        match self.client()?.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(304) => Ok(()),
            Err(e) => Err(engine_error(e)),
        }
    }

    /// Starts a stopped container. Already running is fine.
    pub async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        match self.client()?.start_container(id, None).await {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(304) => Ok(()),
            Err(e) => Err(engine_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_split_from_the_text() {
        let (ts, text) = split_timestamp("2026-12-05T20:00:00.123456789Z hello world");
        assert_eq!(ts, "2026-12-05T20:00:00.123456789Z");
        assert_eq!(text, "hello world");
        let (ts, text) = split_timestamp("no time here");
        assert_eq!(ts, "");
        assert_eq!(text, "no time here");
    }

    #[test]
    fn cpu_percent_is_relative_to_one_cpu() {
        let a = UsageSample { cpu_total_ns: 0, system_total_ns: 0, online_cpus: 2, ..Default::default() };
        // Half of the host's time on 2 CPUs: one CPU busy.
        let b =
            UsageSample { cpu_total_ns: 500, system_total_ns: 1000, online_cpus: 2, ..Default::default() };
        assert!((b.cpu_percent_since(&a) - 100.0).abs() < 1e-9);
        assert_eq!(a.cpu_percent_since(&a), 0.0);
    }
}
