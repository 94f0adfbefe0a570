//! Step containers: the file's command lines run by the container's own
//! `/bin/sh -e`, each echoed before it runs; output streamed line by line;
//! cancel and timeout kill the container at once.
//!
//! No user text is ever quoted into a script: line `i` travels in the env
//! var `SLIPWAY_CMD_<i>`, and the script (constant apart from the indices)
//! does `printf '+ %s\n' "$SLIPWAY_CMD_i"; eval "$SLIPWAY_CMD_i"` for each.

use std::collections::HashMap;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, EndpointSettings, NetworkingConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, KillContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{env_array, sandbox, status_code, DockerEngine, RunError, RunRef, WORKSPACE};

/// The env var prefix carrying the command lines (reserved).
pub const CMD_VAR: &str = "SLIPWAY_CMD_";
/// A line longer than this is passed on in pieces (bounded memory).
const MAX_LINE: usize = 64 * 1024;
/// After a kill, how long the rest of the output may take to arrive.
const DRAIN: Duration = Duration::from_secs(1);
/// How long a step killed by SIGKILL (exit 137) that nobody here killed may
/// wait for the engine's OOM flag (3 s: the flag can land late on a loaded
/// machine); only such a step waits, and only until the flag shows.
const OOM_EVENT_GRACE: Duration = Duration::from_secs(3);

/// A step container of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSpec {
    /// The container's engine-wide name (unique: include the build id).
    pub container_name: String,
    /// The step's name in the pipeline file (the container's host name).
    pub name: String,
    pub image: String,
    /// Shell lines, run in order by the container's `/bin/sh -e`.
    pub commands: Vec<String>,
    /// Names starting with [`CMD_VAR`] are refused.
    pub env: Vec<(String, String)>,
    /// Absolute, or relative to `/workspace`; `None`: `/workspace`.
    pub workdir: Option<String>,
    /// The run network's name or id.
    pub network: String,
    /// The run's workspace volume, mounted at `/workspace`.
    pub volume: String,
    pub memory_bytes: u64,
    pub cpu_millis: u32,
    /// Extra labels; the run's own are always added.
    pub labels: HashMap<String, String>,
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StdStream {
    Stdout,
    Stderr,
}

impl StdStream {
    pub fn as_str(self) -> &'static str {
        match self {
            StdStream::Stdout => "stdout",
            StdStream::Stderr => "stderr",
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// The (exited) container; it stays until `remove_run`.
    pub container_id: String,
    /// The shell's exit code: the failing line's code under `sh -e`; 137
    /// after a kill (cancel, timeout, OOM).
    pub exit_code: i64,
    /// The kernel killed it for exceeding its memory limit.
    pub oom_killed: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Killed because `cancel` fired.
    pub cancelled: bool,
    /// Killed because the step ran past its timeout.
    pub timed_out: bool,
}

/// The script's first line: a shell ending with 137 (a SIGKILL that nobody
/// here sent: the kernel's OOM killer took one of its commands) stays 1 s
/// before it exits. The engine learns of an OOM kill from the container's
/// memory cgroup, and an event that arrives once the cgroup is gone (the
/// last process exited) is dropped (containerd's cgroup v1 monitor): a step
/// killed within milliseconds of its start would otherwise never show it.
const LINGER_AFTER_KILL: &str =
    "trap 'slipway_status=$?; if [ \"$slipway_status\" -eq 137 ]; then sleep 1 || true; fi; exit \"$slipway_status\"' EXIT\n";

/// The container's script for `n` command lines.
pub fn script(n: usize) -> String {
    let lines = (0..n).map(|i| format!("printf '+ %s\\n' \"${CMD_VAR}{i}\"\neval \"${CMD_VAR}{i}\"\n"));
    std::iter::once(LINGER_AFTER_KILL.to_string()).chain(lines).collect()
}

/// Splits the engine's frames into whole lines, per stream.
#[derive(Default)]
struct Lines {
    pending: [Vec<u8>; 2],
}

impl Lines {
    fn push(&mut self, stream: StdStream, bytes: &[u8], on_line: &mut impl FnMut(StdStream, &str)) {
        let buffer = &mut self.pending[stream as usize];
        buffer.extend_from_slice(bytes);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            emit(stream, &line[..line.len() - 1], on_line);
        }
        while buffer.len() >= MAX_LINE {
            let piece: Vec<u8> = buffer.drain(..MAX_LINE).collect();
            emit(stream, &piece, on_line);
        }
    }

    /// A last line without its newline.
    fn finish(&mut self, on_line: &mut impl FnMut(StdStream, &str)) {
        for stream in [StdStream::Stdout, StdStream::Stderr] {
            let rest = std::mem::take(&mut self.pending[stream as usize]);
            if !rest.is_empty() {
                emit(stream, &rest, on_line);
            }
        }
    }
}

fn emit(stream: StdStream, line: &[u8], on_line: &mut impl FnMut(StdStream, &str)) {
    let line = String::from_utf8_lossy(line);
    on_line(stream, line.strip_suffix('\r').unwrap_or(&line));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancelled,
    TimedOut,
}

impl DockerEngine {
    /// Runs the step to its end and returns how it ended. `on_line` gets
    /// every output line, whole and in order per stream, as it comes. When
    /// `cancel` fires or `timeout` passes, the container is killed (SIGKILL,
    /// no grace) and the outcome says which. Engine failures (image missing,
    /// engine gone) are errors; a failing command is an outcome.
    pub async fn run_step(
        &self,
        run: &RunRef,
        spec: &StepSpec,
        mut on_line: impl FnMut(StdStream, &str) + Send,
        cancel: &CancellationToken,
        timeout: Duration,
    ) -> Result<StepOutcome, RunError> {
        if let Some((name, _)) = spec.env.iter().find(|(k, _)| k.starts_with(CMD_VAR)) {
            return Err(RunError::Refused(format!("the env var name {name} is reserved ({CMD_VAR}*)")));
        }
        let docker = self.client()?;
        let mut env = env_array(&spec.env);
        env.extend(spec.commands.iter().enumerate().map(|(i, line)| format!("{CMD_VAR}{i}={line}")));
        let workdir = match spec.workdir.as_deref() {
            None | Some("") => WORKSPACE.to_string(),
            Some(dir) if dir.starts_with('/') => dir.to_string(),
            Some(dir) => format!("{WORKSPACE}/{dir}"),
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: Some(vec!["/bin/sh".into()]),
            cmd: Some(vec!["-e".into(), "-c".into(), script(spec.commands.len())]),
            env: Some(env),
            working_dir: Some(workdir),
            hostname: Some(spec.name.clone()),
            labels: Some(run.labels(&spec.labels)),
            host_config: Some(sandbox(&spec.network, Some(&spec.volume), spec.memory_bytes, spec.cpu_millis)),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(spec.network.clone(), EndpointSettings::default())])),
            }),
            ..Default::default()
        };
        let called = Instant::now();
        let id = self.create_replacing(run, &spec.container_name, body).await?;
        // Attached before the start: not a byte of output is missed.
        let options = AttachContainerOptionsBuilder::new().stream(true).stdout(true).stderr(true).build();
        let mut output = docker.attach_container(&id, Some(options)).await?.output;
        if cancel.is_cancelled() {
            return self.outcome(&id, Some(Stop::Cancelled)).await;
        }
        let created = called.elapsed();
        docker.start_container(&id, None).await?;
        // Where a step's start latency goes (the engine's start dominates).
        tracing::debug!(
            container = %id,
            create_attach_ms = created.as_millis() as u64,
            start_ms = (called.elapsed() - created).as_millis() as u64,
            "step container started"
        );

        let mut lines = Lines::default();
        let mut stop: Option<Stop> = None;
        let mut output_open = true;
        let timer = tokio::time::sleep(timeout);
        tokio::pin!(timer);
        let drain = tokio::time::sleep(DRAIN);
        tokio::pin!(drain);
        while output_open {
            tokio::select! {
                biased;
                _ = cancel.cancelled(), if stop.is_none() => {
                    stop = Some(Stop::Cancelled);
                    self.kill(&id).await?;
                    drain.as_mut().reset(Instant::now() + DRAIN);
                }
                _ = &mut timer, if stop.is_none() => {
                    stop = Some(Stop::TimedOut);
                    self.kill(&id).await?;
                    drain.as_mut().reset(Instant::now() + DRAIN);
                }
                item = output.next() => match item {
                    Some(Ok(LogOutput::StdErr { message })) => lines.push(StdStream::Stderr, &message, &mut on_line),
                    Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                        lines.push(StdStream::Stdout, &message, &mut on_line)
                    }
                    Some(Ok(LogOutput::StdIn { .. })) => {}
                    Some(Err(e)) => {
                        tracing::warn!(container = %id, error = %e, "the step's output stream broke");
                        output_open = false;
                    }
                    None => output_open = false,
                },
                _ = &mut drain, if stop.is_some() => output_open = false,
            }
        }
        lines.finish(&mut on_line);
        // The output ends with the process; the container's state follows a
        // moment later. Cancel and timeout still apply while waiting.
        let options = WaitContainerOptionsBuilder::new().condition("not-running").build();
        let mut wait = docker.wait_container(&id, Some(options));
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled(), if stop.is_none() => {
                    stop = Some(Stop::Cancelled);
                    self.kill(&id).await?;
                }
                _ = &mut timer, if stop.is_none() => {
                    stop = Some(Stop::TimedOut);
                    self.kill(&id).await?;
                }
                // A non-zero exit comes as an error item: either way it ended.
                item = wait.next() => match item {
                    Some(Err(e)) if status_code(&e).is_some() => return Err(e.into()),
                    _ => break,
                },
            }
        }
        self.outcome(&id, stop).await
    }

    /// SIGKILL; a container that already stopped or is gone is fine.
    async fn kill(&self, id: &str) -> Result<(), RunError> {
        let options = KillContainerOptionsBuilder::new().signal("KILL").build();
        match self.client()?.kill_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if matches!(status_code(&e), Some(404 | 409)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn outcome(&self, id: &str, stop: Option<Stop>) -> Result<StepOutcome, RunError> {
        let gone = || RunError::ContainerGone(id.to_string());
        let mut state = self.container_state(id).await?.ok_or_else(gone)?;
        // The engine records the kernel's OOM event apart from the exit, and
        // it may land a moment after it: a SIGKILL nobody here sent gets
        // that moment before the flag is read as final.
        let until = Instant::now() + OOM_EVENT_GRACE;
        while stop.is_none() && state.exit_code == Some(137) && !state.oom_killed && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
            state = self.container_state(id).await?.ok_or_else(gone)?;
        }
        Ok(StepOutcome {
            container_id: id.to_string(),
            exit_code: state.exit_code.unwrap_or(-1),
            oom_killed: state.oom_killed,
            started_at: timestamp(state.started_at.as_deref()),
            finished_at: timestamp(state.finished_at.as_deref()),
            cancelled: stop == Some(Stop::Cancelled),
            timed_out: stop == Some(Stop::TimedOut),
        })
    }
}

/// The engine's RFC 3339 time; `None` for its "never" (`0001-01-01…`).
fn timestamp(value: Option<&str>) -> Option<DateTime<Utc>> {
    let parsed = DateTime::parse_from_rfc3339(value?).ok()?;
    (parsed.timestamp() > 0).then(|| parsed.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_constant_but_for_the_indices() {
        assert_eq!(
            script(2),
            format!(
                "{LINGER_AFTER_KILL}printf '+ %s\\n' \"$SLIPWAY_CMD_0\"\neval \"$SLIPWAY_CMD_0\"\n\
                 printf '+ %s\\n' \"$SLIPWAY_CMD_1\"\neval \"$SLIPWAY_CMD_1\"\n"
            )
        );
        assert_eq!(script(0), LINGER_AFTER_KILL);
        assert!(!LINGER_AFTER_KILL.contains(CMD_VAR), "no user text reaches the trap");
    }

    #[test]
    fn frames_become_whole_lines_per_stream() {
        let mut got = Vec::new();
        let mut on_line = |s: StdStream, l: &str| got.push((s, l.to_string()));
        let mut lines = Lines::default();
        lines.push(StdStream::Stdout, b"he", &mut on_line);
        lines.push(StdStream::Stderr, b"err 1\r\nerr", &mut on_line);
        lines.push(StdStream::Stdout, b"llo\nworld\n\npart", &mut on_line);
        lines.finish(&mut on_line);
        assert_eq!(
            got,
            [
                (StdStream::Stderr, "err 1".to_string()),
                (StdStream::Stdout, "hello".to_string()),
                (StdStream::Stdout, "world".to_string()),
                (StdStream::Stdout, String::new()),
                (StdStream::Stdout, "part".to_string()),
                (StdStream::Stderr, "err".to_string()),
            ]
        );
    }

    #[test]
    fn an_endless_line_comes_in_bounded_pieces() {
        let mut sizes = Vec::new();
        let mut lines = Lines::default();
        lines.push(StdStream::Stdout, &vec![b'x'; MAX_LINE * 2 + 5], &mut |_, l: &str| sizes.push(l.len()));
        lines.finish(&mut |_, l: &str| sizes.push(l.len()));
        assert_eq!(sizes, [MAX_LINE, MAX_LINE, 5]);
    }
}
