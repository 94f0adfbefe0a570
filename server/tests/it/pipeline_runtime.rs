//! The pipeline container runtime (`docker::pipeline`) against the real
//! engine: run network and volume, workspace upload, services with health
//! checks, step containers (echo, `sh -e`, streaming, cancel, timeout, OOM),
//! the sandbox settings and removal by label.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::query_parameters::ListContainersOptionsBuilder;
use server::docker::labels;
use server::docker::pipeline::{RunRef, ServiceSpec, StdStream, StepOutcome, StepSpec, WORKSPACE};
use server::docker::DockerEngine;
use server::testkit::wait::unique_suffix;
use server::testkit::{DockerKit, BASE_IMAGE};
use tokio_util::sync::CancellationToken;

mod cleanup;
mod services;

const MEMORY: u64 = 64 << 20;
const CPU_MILLIS: u32 = 1000;

/// One run's network and volume, removed (with all the run made) on drop.
struct TestRun {
    engine: DockerEngine,
    run: RunRef,
    network: String,
    volume: String,
    labels: HashMap<String, String>,
    suffix: String,
    kit: DockerKit,
}

impl TestRun {
    async fn new() -> anyhow::Result<Self> {
        let kit = DockerKit::new().await?;
        let engine = DockerEngine::from_env();
        let suffix = unique_suffix();
        // A per-test instance: removal and orphan listing see this test only.
        let run = RunRef { instance: format!("it-{}", kit.run_id), build_id: 4242 };
        let labels = kit.labels();
        let network = format!("slipway-it-run-{suffix}");
        let volume = format!("slipway-it-ws-{suffix}");
        engine.create_run_network(&run, &network, &labels).await?;
        engine.create_run_volume(&run, &volume, &labels).await?;
        Ok(TestRun { engine, run, network, volume, labels, suffix, kit })
    }

    fn step(&self, name: &str, commands: &[&str]) -> StepSpec {
        StepSpec {
            container_name: format!("slipway-it-step-{name}-{}", self.suffix),
            name: name.to_string(),
            image: BASE_IMAGE.to_string(),
            commands: commands.iter().map(|c| c.to_string()).collect(),
            env: vec![("GREETING".into(), "hi there".into())],
            workdir: None,
            network: self.network.clone(),
            volume: self.volume.clone(),
            memory_bytes: MEMORY,
            cpu_millis: CPU_MILLIS,
            labels: self.labels.clone(),
        }
    }

    fn service(&self, name: &str, command: &[&str]) -> ServiceSpec {
        ServiceSpec {
            container_name: format!("slipway-it-svc-{name}-{}", self.suffix),
            name: name.to_string(),
            image: BASE_IMAGE.to_string(),
            env: vec![],
            command: Some(command.iter().map(|c| c.to_string()).collect()),
            network: self.network.clone(),
            memory_bytes: MEMORY,
            cpu_millis: CPU_MILLIS,
            labels: self.labels.clone(),
        }
    }

    /// Runs the step with a 60 s timeout; returns the outcome and its lines.
    async fn run(&self, spec: &StepSpec) -> anyhow::Result<(StepOutcome, Vec<(StdStream, String)>)> {
        let mut lines = Vec::new();
        let outcome = self
            .engine
            .run_step(
                &self.run,
                spec,
                |s, l| lines.push((s, l.to_string())),
                &CancellationToken::new(),
                Duration::from_secs(60),
            )
            .await?;
        Ok((outcome, lines))
    }

    fn run_filter(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_string(),
            vec![
                format!("{}={}", labels::INSTANCE, self.run.instance),
                format!("{}={}", labels::BUILD_ID, self.run.build_id),
            ],
        )])
    }
}

impl Drop for TestRun {
    fn drop(&mut self) {
        // The kit removes containers and networks by its label, not volumes.
        let engine = self.engine.clone();
        let run = self.run.clone();
        let done = std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(engine.remove_run(&run))?;
            Ok(())
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("pipeline_runtime: removing run {:?} failed", self.run);
        }
    }
}

fn stdout(lines: &[(StdStream, String)]) -> Vec<&str> {
    lines.iter().filter(|(s, _)| *s == StdStream::Stdout).map(|(_, l)| l.as_str()).collect()
}

#[tokio::test]
async fn a_step_echoes_each_line_and_streams_its_output() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    let spec = t.step(
        "echo",
        &[
            "echo one",
            "echo two >&2",
            "printf 'a\\nb\\n'",
            "echo \"$GREETING\"",
            "echo first; sleep 2; echo second",
        ],
    );
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let called = Instant::now();
    let outcome = t
        .engine
        .run_step(
            &t.run,
            &spec,
            move |s, l| seen.lock().map(|mut v| v.push((s, l.to_string(), Instant::now()))).unwrap_or(()),
            &CancellationToken::new(),
            Duration::from_secs(60),
        )
        .await?;
    let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let lines: Vec<_> = arrivals.iter().map(|(s, l, _)| (*s, l.clone())).collect();

    assert_eq!(outcome.exit_code, 0, "{lines:?}");
    assert!(!outcome.cancelled && !outcome.timed_out && !outcome.oom_killed);
    assert_eq!(
        stdout(&lines),
        [
            "+ echo one",
            "one",
            "+ echo two >&2",
            "+ printf 'a\\nb\\n'",
            "a",
            "b",
            "+ echo \"$GREETING\"",
            "hi there",
            "+ echo first; sleep 2; echo second",
            "first",
            "second"
        ]
    );
    assert!(lines.contains(&(StdStream::Stderr, "two".to_string())), "{lines:?}");
    if let Some((_, _, first_line)) = arrivals.first() {
        eprintln!(
            "pipeline_runtime: run_step call to the first output line: {:?}",
            first_line.duration_since(called)
        );
    }
    // Streamed as it comes: `first` arrived well before `second`.
    let at = |text: &str| arrivals.iter().find(|(_, l, _)| l == text).map(|(_, _, at)| *at);
    let (Some(first), Some(second)) = (at("first"), at("second")) else { anyhow::bail!("lines missing") };
    assert!(second.duration_since(first) >= Duration::from_millis(1500), "{:?}", second - first);
    let (Some(started), Some(finished)) = (outcome.started_at, outcome.finished_at) else {
        anyhow::bail!("times missing: {outcome:?}")
    };
    // The engine's start and finish times cover the 2 s sleep (its two
    // clocks may disagree by a few milliseconds).
    assert!(finished - started >= chrono::Duration::milliseconds(1900), "{outcome:?}");
    Ok(())
}

#[tokio::test]
async fn sh_e_stops_at_the_first_failing_line_with_its_code() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    let (outcome, lines) = t.run(&t.step("fail", &["echo before", "sh -c 'exit 3'", "echo after"])).await?;

    assert_eq!(outcome.exit_code, 3);
    assert_eq!(stdout(&lines), ["+ echo before", "before", "+ sh -c 'exit 3'"]);
    Ok(())
}

#[tokio::test]
async fn hostile_command_text_runs_only_inside_the_container() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    let marker = format!("/tmp/slipway-hostile-{}", t.suffix);
    let hostile = format!("echo $(busybox id -u) ; touch {marker}");
    let quoted = "printf '%s\\n' \"it's \\\"quoted\\\" \\$HOME\"";
    let (outcome, lines) =
        t.run(&t.step("hostile", &[&hostile, &format!("test -f {marker}"), quoted])).await?;

    assert_eq!(outcome.exit_code, 0, "the file exists inside the container: {lines:?}");
    assert!(!std::path::Path::new(&marker).exists(), "nothing ran on the host");
    assert_eq!(
        stdout(&lines),
        [
            format!("+ {hostile}").as_str(),
            "0",
            &format!("+ test -f {marker}"),
            &format!("+ {quoted}"),
            "it's \"quoted\" $HOME"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn steps_share_the_workspace_holding_the_checkout() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    let checkout = tempfile::tempdir()?;
    std::fs::write(checkout.path().join("README"), "checked out\n")?;
    std::fs::create_dir_all(checkout.path().join("src/deep"))?;
    std::fs::write(checkout.path().join("src/deep/lib.txt"), "library\n")?;
    std::fs::create_dir_all(checkout.path().join(".git"))?;
    std::fs::write(checkout.path().join(".git/HEAD"), "ref: refs/heads/main\n")?;
    t.engine.upload_workspace(&t.run, &t.volume, checkout.path(), BASE_IMAGE, &t.labels).await?;

    let (first, lines) = t
        .run(&t.step(
            "write",
            &["pwd", "cat README src/deep/lib.txt", "test ! -e .git", "echo made-by-step-1 > /workspace/out"],
        ))
        .await?;
    assert_eq!(first.exit_code, 0, "{lines:?}");
    assert!(stdout(&lines).starts_with(&[
        "+ pwd",
        WORKSPACE,
        "+ cat README src/deep/lib.txt",
        "checked out",
        "library"
    ]));

    let mut second = t.step("read", &["cat out", "pwd"]);
    second.workdir = Some("src".into());
    second.commands = vec!["cat ../out".into(), "pwd".into()];
    let (outcome, lines) = t.run(&second).await?;
    assert_eq!(outcome.exit_code, 0, "{lines:?}");
    assert_eq!(stdout(&lines), ["+ cat ../out", "made-by-step-1", "+ pwd", "/workspace/src"]);

    // No helper container is left behind by the upload.
    let helpers = t
        .kit
        .docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&t.run_filter()).build()))
        .await?;
    assert_eq!(helpers.len(), 2, "only the two step containers: {helpers:?}");
    Ok(())
}

#[tokio::test]
async fn cancel_and_timeout_kill_a_step_within_2_s() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    let cancel = CancellationToken::new();
    let cancelled_at = Arc::new(Mutex::new(None));
    let (token, at) = (cancel.clone(), cancelled_at.clone());
    let outcome = t
        .engine
        .run_step(
            &t.run,
            &t.step("cancel", &["sleep 60"]),
            move |_, line| {
                if line == "+ sleep 60" {
                    if let Ok(mut at) = at.lock() {
                        *at = Some(Instant::now());
                    }
                    token.cancel();
                }
            },
            &cancel,
            Duration::from_secs(120),
        )
        .await?;
    let Some(cancelled_at) = *cancelled_at.lock().map_err(|_| anyhow::anyhow!("poisoned"))? else {
        anyhow::bail!("the step never echoed its line")
    };
    let stop_time = cancelled_at.elapsed();
    assert!(stop_time < Duration::from_secs(2), "cancel took {stop_time:?}");
    assert!(outcome.cancelled && !outcome.timed_out, "{outcome:?}");
    assert_eq!(outcome.exit_code, 137);
    eprintln!("pipeline_runtime: cancel stopped the step in {stop_time:?}");

    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let outcome = t
        .engine
        .run_step(&t.run, &t.step("timeout", &["sleep 60"]), |_, _| {}, &CancellationToken::new(), timeout)
        .await?;
    let past_timeout = started.elapsed().saturating_sub(timeout);
    assert!(past_timeout < Duration::from_secs(2), "stopped {past_timeout:?} after the timeout");
    assert!(outcome.timed_out && !outcome.cancelled, "{outcome:?}");
    eprintln!("pipeline_runtime: timeout stopped the step {past_timeout:?} after it passed");
    Ok(())
}

#[tokio::test]
async fn a_step_over_its_memory_limit_reports_oom_killed() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    // One 50 MiB read buffer, filled at once: over 6 MiB on the first read.
    let mut spec = t.step("oom", &["dd if=/dev/zero of=/dev/null bs=50M count=1"]);
    spec.memory_bytes = 6 << 20;
    let (outcome, lines) = t.run(&spec).await?;

    assert!(outcome.oom_killed, "{outcome:?} {lines:?}");
    assert_eq!(outcome.exit_code, 137);
    Ok(())
}

#[tokio::test]
async fn a_step_cancelled_before_its_start_never_runs() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    let cancel = CancellationToken::new();
    cancel.cancel();
    let mut lines = Vec::new();
    let spec = t.step("early", &["echo should-not-run"]);
    let outcome = t
        .engine
        .run_step(&t.run, &spec, |_, l| lines.push(l.to_string()), &cancel, Duration::from_secs(60))
        .await?;

    assert!(outcome.cancelled && !outcome.timed_out, "{outcome:?}");
    assert_eq!(outcome.started_at, None, "never started: {outcome:?}");
    assert!(lines.is_empty(), "{lines:?}");
    Ok(())
}
