//! The pipeline container runtime (`docker::pipeline`) against the real
//! engine: run network and volume, workspace upload, services with health
//! checks, step containers (echo, `sh -e`, streaming, cancel, timeout, OOM),
//! the sandbox settings and removal by label.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};
use server::docker::labels;
use server::docker::pipeline::{
    HealthCmd, Healthcheck, RunRef, ServiceSpec, StdStream, StepOutcome, StepSpec, WORKSPACE,
};
use server::docker::DockerEngine;
use server::testkit::wait::unique_suffix;
use server::testkit::{DockerKit, BASE_IMAGE};
use tokio_util::sync::CancellationToken;

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
    assert!(finished - started >= chrono::Duration::seconds(2), "{outcome:?}");
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

fn check(cmd: HealthCmd, interval_ms: u64, retries: u32) -> Healthcheck {
    Healthcheck {
        cmd,
        interval: Duration::from_millis(interval_ms),
        retries,
        start_period: Duration::from_secs(0),
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn a_service_answers_to_its_name_once_healthy() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    let spec = t.service(
        "web",
        &["sh", "-c", "sleep 2; echo hello-from-web > /www/index.html; exec httpd -f -p 8080 -h /www"],
    );
    let id = t.engine.start_service(&t.run, &spec).await?;
    let mut probe =
        check(HealthCmd::Argv(vec!["wget".into(), "-qO-".into(), "http://127.0.0.1:8080/".into()]), 500, 3);
    // Failures in the start period do not count; probes run fast in it.
    probe.start_period = Duration::from_secs(10);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let healthy_after = t.engine.wait_service_healthy(&id, Some(&probe), deadline).await?;

    assert!(healthy_after >= Duration::from_secs(2), "{healthy_after:?}");
    assert!(healthy_after < Duration::from_secs(4), "{healthy_after:?}");
    let (outcome, lines) = t.run(&t.step("client", &["wget -qO- http://web:8080/"])).await?;
    assert_eq!(outcome.exit_code, 0, "{lines:?}");
    assert_eq!(stdout(&lines), ["+ wget -qO- http://web:8080/", "hello-from-web"]);

    // A service without a check is healthy once it runs; a shell-line check works too.
    let plain = t.engine.start_service(&t.run, &t.service("plain", &["sleep", "60"])).await?;
    t.engine.wait_service_healthy(&plain, None, deadline).await?;
    let shell = check(HealthCmd::Shell("test -d /www && test \"$(busybox id -u)\" = 0".into()), 500, 3);
    t.engine.wait_service_healthy(&plain, Some(&shell), deadline).await?;
    Ok(())
}

#[tokio::test]
async fn a_service_that_never_gets_healthy_fails_with_its_last_log_lines() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    let spec = t.service("db", &["sh", "-c", "echo booting; echo cannot-bind-5432 >&2; sleep 60"]);
    let id = t.engine.start_service(&t.run, &spec).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let started = Instant::now();
    let Err(failure) = t
        .engine
        .wait_service_healthy(&id, Some(&check(HealthCmd::Shell("test -f /ready".into()), 200, 3)), deadline)
        .await
    else {
        anyhow::bail!("an unhealthy service passed");
    };
    assert!(failure.reason.contains("failed 3 times"), "{failure:?}");
    // stdout and stderr are logged apart: their order between them is not kept.
    let mut last = failure.last_log_lines.clone();
    last.sort();
    assert_eq!(last, ["booting", "cannot-bind-5432"], "{failure:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());

    // One that exits fails at once, with its exit code and log.
    let spec = t.service("crash", &["sh", "-c", "echo dying; exit 4"]);
    let id = t.engine.start_service(&t.run, &spec).await?;
    let started = Instant::now();
    let long = check(HealthCmd::Shell("false".into()), 1000, 100);
    let Err(failure) = t.engine.wait_service_healthy(&id, Some(&long), deadline).await else {
        anyhow::bail!("an exited service passed");
    };
    assert_eq!(failure.exit_code, Some(4), "{failure:?}");
    assert_eq!(failure.last_log_lines, ["dying"]);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
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
    let mut spec = t.step("oom", &["head -c 50m /dev/zero | tail"]);
    spec.memory_bytes = 6 << 20;
    let (outcome, lines) = t.run(&spec).await?;

    assert!(outcome.oom_killed, "{outcome:?} {lines:?}");
    assert_eq!(outcome.exit_code, 137);
    Ok(())
}

#[tokio::test]
async fn remove_run_leaves_no_container_network_or_volume() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    // Creating again is a no-op (a retried job).
    let first = t.engine.create_run_network(&t.run, &t.network, &t.labels).await?;
    assert_eq!(t.engine.create_run_network(&t.run, &t.network, &t.labels).await?, first);
    t.engine.create_run_volume(&t.run, &t.volume, &t.labels).await?;
    // Another run cannot take them over.
    let other = server::docker::pipeline::RunRef { build_id: t.run.build_id + 1, ..t.run.clone() };
    assert!(t.engine.create_run_network(&other, &t.network, &t.labels).await.is_err());
    assert!(t.engine.create_run_volume(&other, &t.volume, &t.labels).await.is_err());

    let service = t.engine.start_service(&t.run, &t.service("cache", &["sleep", "60"])).await?;
    t.engine
        .wait_service_healthy(&service, None, tokio::time::Instant::now() + Duration::from_secs(10))
        .await?;
    let (outcome, _) = t.run(&t.step("touch", &["touch /workspace/x"])).await?;
    assert_eq!(outcome.exit_code, 0);
    // A retried step (same container name) replaces its leftover.
    let (again, lines) = t.run(&t.step("touch", &["test -f /workspace/x"])).await?;
    assert_eq!(again.exit_code, 0, "{lines:?}");
    assert_ne!(again.container_id, outcome.container_id);
    assert_eq!(t.engine.orphan_runs(&t.run.instance).await?, [t.run.build_id]);

    let removed = t.engine.remove_run(&t.run).await?;
    assert_eq!((removed.containers, removed.networks, removed.volumes), (2, 1, 1), "{removed:?}");

    let filters = t.run_filter();
    let docker = &t.kit.docker;
    let containers = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await?;
    let networks =
        docker.list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build())).await?;
    let volumes =
        docker.list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&filters).build())).await?;
    assert!(containers.is_empty(), "{containers:?}");
    assert!(networks.is_empty(), "{networks:?}");
    assert!(volumes.volumes.unwrap_or_default().is_empty());
    assert!(t.engine.orphan_runs(&t.run.instance).await?.is_empty());
    assert_eq!(t.engine.remove_run(&t.run).await?, Default::default(), "idempotent");
    Ok(())
}

#[tokio::test]
async fn step_and_service_containers_are_sandboxed() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    let service = t.engine.start_service(&t.run, &t.service("svc", &["sleep", "60"])).await?;
    let (step, _) = t.run(&t.step("inspect", &["true"])).await?;

    for (id, volume) in [(service.as_str(), None), (step.container_id.as_str(), Some(t.volume.as_str()))] {
        let info = t.kit.docker.inspect_container(id, None).await?;
        let host = info.host_config.unwrap_or_default();
        assert_eq!(host.privileged, Some(false), "{id}");
        assert!(host.binds.unwrap_or_default().is_empty(), "no host path: {id}");
        assert!(host.cap_add.unwrap_or_default().is_empty(), "{id}");
        assert!(host.security_opt.unwrap_or_default().iter().any(|o| o == "no-new-privileges"), "{id}");
        assert_eq!(host.network_mode.as_deref(), Some(t.network.as_str()));
        assert!(!matches!(host.pid_mode.as_deref(), Some("host")));
        assert!(!matches!(host.ipc_mode.as_deref(), Some("host")));
        assert_eq!(host.memory, Some(MEMORY as i64));
        assert_eq!(host.nano_cpus, Some(i64::from(CPU_MILLIS) * 1_000_000));
        let mounts = host.mounts.unwrap_or_default();
        let sources: Vec<_> = mounts.iter().map(|m| (m.source.as_deref(), m.target.as_deref())).collect();
        match volume {
            Some(volume) => assert_eq!(sources, [(Some(volume), Some(WORKSPACE))]),
            None => assert!(sources.is_empty(), "{sources:?}"),
        }
        let run_labels = info.config.and_then(|c| c.labels).unwrap_or_default();
        assert_eq!(run_labels.get(labels::BUILD_ID), Some(&t.run.build_id.to_string()));
        assert_eq!(run_labels.get(labels::INSTANCE), Some(&t.run.instance));
    }
    Ok(())
}
