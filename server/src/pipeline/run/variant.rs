//! One variant of a run: its network and volume, its services, its steps.

use std::time::Duration;

use anyhow::Context;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc::UnboundedSender, Mutex};

use super::{
    record::{self, Ended},
    Finished, Line, Run,
};
use crate::docker::pipeline::{self as rt, HealthCmd, RunRef, StdStream};
use crate::logs::{LogStream, LogWriter};
use crate::pipeline::plan::{Outcome, Schedule, StepIdx, StepState, VariantPlan};
use crate::pipeline::spec::{Command, EnvValue, Service, StepKind};

struct Variant<'a, 'l> {
    run: &'a Run<'a>,
    plan: &'a VariantPlan,
    owner: RunRef,
    /// `slipway-run-<installation>-<build>-<variant>`: network, volume and
    /// container name prefix.
    prefix: String,
    log: &'a Mutex<&'l mut LogWriter>,
    lines: UnboundedSender<Line>,
    workspace: Mutex<bool>,
    image: Mutex<Option<String>>,
}

impl Variant<'_, '_> {
    /// Uploads the checkout into the variant's volume once, with a helper
    /// container of `image` (never started).
    async fn ensure_workspace(&self, image: &str) -> anyhow::Result<()> {
        let mut ready = self.workspace.lock().await;
        if !*ready {
            let run = self.run;
            let docker = &run.engine.docker;
            docker.upload_workspace(&self.owner, &self.prefix, &run.checkout, image, &run.labels).await?;
            *ready = true;
        }
        Ok(())
    }

    fn say(&self, step: &str, text: String) {
        let _ = self.lines.send(Line { step: step.to_string(), stream: LogStream::System, text });
    }

    /// Environment values, `from_secret` ones opened.
    fn environment(&self, list: Vec<(String, EnvValue)>) -> anyhow::Result<Vec<(String, String)>> {
        list.into_iter()
            .map(|(name, value)| match value {
                EnvValue::Literal(v) => Ok((name, v)),
                EnvValue::Secret(secret) => match self.run.secrets.get(&secret) {
                    Some(v) => Ok((name, v.clone())),
                    None => anyhow::bail!("{name}: the service has no secret env var {secret}"),
                },
            })
            .collect()
    }
}

pub(super) async fn run<'a>(
    run: &'a Run<'a>,
    plan: &'a VariantPlan,
    log: &'a Mutex<&mut LogWriter>,
    lines: UnboundedSender<Line>,
) -> anyhow::Result<Finished> {
    let v = Variant {
        run,
        plan,
        owner: RunRef { instance: run.engine.instance.clone(), build_id: run.build_id },
        // The installation's id keeps two installations on one engine apart.
        prefix: format!(
            "slipway-run-{}-{}-{}",
            run.engine.instance.chars().take(12).collect::<String>(),
            run.build_id,
            plan.index
        ),
        log,
        lines,
        workspace: Mutex::new(false),
        image: Mutex::new(None),
    };
    let spec = run.spec;
    let containers = !spec.services.is_empty() || spec.steps.iter().any(|s| s.kind.commands().is_some());
    if containers {
        let docker = &run.engine.docker;
        docker.create_run_network(&v.owner, &v.prefix, &run.labels).await?;
        docker.create_run_volume(&v.owner, &v.prefix, &run.labels).await?;
    }
    let mut schedule = Schedule::new(plan);
    // The checkout goes into the volume while the services start, so the
    // first steps do not wait for it (a `from: build`-only pipeline uploads
    // it with the built image, when its first step starts).
    let helper = spec.steps.iter().find_map(|s| match &s.kind {
        StepKind::Commands { image, .. } => Some(image.clone()),
        _ => None,
    });
    let (healthy, uploaded) = tokio::join!(services(&v), async {
        match &helper {
            Some(image) => v.ensure_workspace(image).await,
            None => Ok(()),
        }
    });
    if let Err(e) = uploaded {
        // The first step that needs it tries again and fails with the reason.
        tracing::warn!(build_id = run.build_id, error = %format!("{e:#}"), "cannot upload the checkout yet");
    }
    if let Err(reason) = healthy {
        let stopped = schedule.fail(&reason);
        anyhow::ensure!(stopped.is_empty(), "steps ran before the services were healthy");
    }
    let mut error = schedule.failed_reason().map(str::to_string);
    let mut running = FuturesUnordered::new();
    loop {
        for idx in schedule.ready() {
            let step = &spec.steps[idx];
            record::started(&run.engine.db, run.build_id, plan.index, step.kind.as_str(), &step.name).await?;
            let v = &v;
            running.push(async move { (idx, one(v, idx).await) });
        }
        // After `ready`: it decides the steps that can no longer run, also
        // when nothing is left to start (they are recorded before the end).
        for idx in schedule.take_decided() {
            let status = match schedule.state(idx) {
                Some(StepState::Cancelled) => "cancelled",
                _ => "skipped",
            };
            let end = Ended { status, error: schedule.reason(idx).map(str::to_string), ..Ended::default() };
            let step = &spec.steps[idx];
            record::ended(&run.engine.db, run.build_id, plan.index, step.kind.as_str(), &step.name, &end)
                .await?;
        }
        let Some((idx, (outcome, mut end))) = running.next().await else {
            anyhow::ensure!(schedule.is_done(), "the schedule stopped with steps left");
            break;
        };
        let step = &spec.steps[idx];
        let state = schedule.finish(idx, outcome).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        end.ignored = state == StepState::IgnoredFailure;
        if state == StepState::Failure && error.is_none() {
            error = Some(format!("step {} failed: {}", step.name, end.error.as_deref().unwrap_or("failed")));
        }
        record::ended(&run.engine.db, run.build_id, plan.index, step.kind.as_str(), &step.name, &end).await?;
    }
    let image_id = v.image.lock().await.clone();
    Ok(Finished { status: schedule.run_status(), image_id, error })
}

/// Starts every service and waits until all are healthy; `Err`: why not.
async fn services(v: &Variant<'_, '_>) -> Result<(), String> {
    let run = v.run;
    let mut started = Vec::new();
    for service in &run.spec.services {
        match start(v, service).await {
            Ok(id) => started.push((service, id)),
            Err(e) => {
                let reason = format!("service {} did not start: {e:#}", service.name);
                let end = Ended { status: "failure", error: Some(reason.clone()), ..Ended::default() };
                let _ =
                    record::ended(&run.engine.db, run.build_id, v.plan.index, "service", &service.name, &end)
                        .await;
                v.say(&service.name, reason.clone());
                return Err(reason);
            }
        }
    }
    let waits = started.iter().map(|(service, id)| async move {
        let check = service.healthcheck.as_ref().map(|h| rt::Healthcheck {
            cmd: match &h.cmd {
                Command::Argv(argv) => HealthCmd::Argv(argv.clone()),
                Command::Shell(line) => HealthCmd::Shell(line.clone()),
            },
            interval: h.interval,
            retries: h.retries,
            start_period: h.start_period,
            timeout: h.timeout,
        });
        let limit = check.as_ref().map_or(Duration::from_secs(30), |c| {
            c.start_period + (c.interval + c.timeout) * c.retries.saturating_add(1) + Duration::from_secs(5)
        });
        let deadline = tokio::time::Instant::now() + limit;
        (service, run.engine.docker.wait_service_healthy(id, check.as_ref(), deadline).await)
    });
    let mut failed = None;
    for (service, result) in futures::future::join_all(waits).await {
        let db = &run.engine.db;
        match result {
            Ok(took) => {
                let ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
                let _ = record::healthy(db, run.build_id, v.plan.index, &service.name, ms).await;
                v.say(
                    &service.name,
                    format!("Service {} is healthy ({:.1} s)", service.name, took.as_secs_f64()),
                );
            }
            Err(unhealthy) => {
                let reason = format!("service {} never became healthy: {}", service.name, unhealthy.reason);
                for line in &unhealthy.last_log_lines {
                    v.say(&service.name, format!("{}: {line}", service.name));
                }
                v.say(&service.name, reason.clone());
                let end = Ended { status: "failure", error: Some(reason.clone()), ..Ended::default() };
                let _ = record::ended(db, run.build_id, v.plan.index, "service", &service.name, &end).await;
                failed = failed.or(Some(reason));
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

async fn start(v: &Variant<'_, '_>, service: &Service) -> anyhow::Result<String> {
    let run = v.run;
    record::started(&run.engine.db, run.build_id, v.plan.index, "service", &service.name).await?;
    let mut env = v.plan.axes.clone();
    env.extend(v.environment(service.environment.clone())?);
    let spec = rt::ServiceSpec {
        container_name: format!("{}-svc-{}", v.prefix, service.name),
        name: service.name.clone(),
        image: service.image.clone(),
        env,
        command: service.command.as_ref().map(|c| match c {
            Command::Argv(argv) => argv.clone(),
            Command::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
        }),
        network: v.prefix.clone(),
        memory_bytes: run.memory_bytes,
        cpu_millis: run.cpu_millis,
        labels: run.labels.clone(),
    };
    v.say(&service.name, format!("Starting service {} ({})", service.name, service.image));
    Ok(run.engine.docker.start_service(&v.owner, &spec).await?)
}

/// Runs step `idx`: how it ended, for the schedule and the row.
async fn one(v: &Variant<'_, '_>, idx: StepIdx) -> (Outcome, Ended) {
    let step = &v.run.spec.steps[idx];
    let result: anyhow::Result<()> = match &step.kind {
        StepKind::Commands { .. } | StepKind::FromBuild { .. } => return container(v, idx).await,
        StepKind::Deploy if v.plan.index != 0 => {
            let why = "a run deploys once, from its first variant".to_string();
            v.say(&step.name, why.clone());
            return (Outcome::Success, Ended { status: "skipped", error: Some(why), ..Ended::default() });
        }
        StepKind::Build(build) => {
            let mut log = v.log.lock().await;
            log.set_step(Some(&step.name));
            let built = v.run.native.build(build, &mut log).await;
            log.set_step(None);
            match built {
                Ok(id) => {
                    *v.image.lock().await = Some(id);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        StepKind::Deploy => match v.image.lock().await.clone() {
            Some(image) => {
                let mut log = v.log.lock().await;
                log.set_step(Some(&step.name));
                let deployed = v.run.native.deploy(&image, &mut log).await;
                log.set_step(None);
                deployed
            }
            None => Err(anyhow::anyhow!("this run's build step made no image")),
        },
    };
    match result {
        Ok(()) => (Outcome::Success, Ended { status: "success", ..Ended::default() }),
        Err(e) => {
            let text = format!("{e:#}");
            v.say(&step.name, format!("Step {} failed: {text}", step.name));
            (Outcome::Failure, Ended { status: "failure", error: Some(text), ..Ended::default() })
        }
    }
}

/// A command or `from: build` step, in its own container.
async fn container(v: &Variant<'_, '_>, idx: StepIdx) -> (Outcome, Ended) {
    let step = &v.run.spec.steps[idx];
    match run_container(v, idx).await {
        Ok(outcome) if outcome.cancelled => (
            Outcome::Cancelled,
            Ended { status: "cancelled", error: Some("cancelled".into()), ..Ended::default() },
        ),
        Ok(outcome) => {
            let exit_code = Some(outcome.exit_code);
            let (status, error) = if outcome.timed_out {
                let limit = step.timeout.unwrap_or(v.run.default_timeout);
                ("killed", Some(format!("timed out after {}", crate::pipeline::spec::show_duration(limit))))
            } else if outcome.oom_killed {
                ("killed", Some("killed: out of memory".to_string()))
            } else if outcome.exit_code == 0 {
                ("success", None)
            } else {
                ("failure", Some(format!("exited with code {}", outcome.exit_code)))
            };
            let oom = outcome.oom_killed;
            match &error {
                Some(e) => v.say(&step.name, format!("Step {} {e}", step.name)),
                None => v.say(&step.name, format!("Step {} succeeded", step.name)),
            }
            let ran = outcome.started_at.zip(outcome.finished_at).map(|(started, finished)| {
                (crate::db::format_time(started), crate::db::format_time(finished))
            });
            let outcome = if status == "success" { Outcome::Success } else { Outcome::Failure };
            (outcome, Ended { status, exit_code, oom, ignored: false, error, ran })
        }
        Err(e) => {
            let text = format!("{e:#}");
            v.say(&step.name, format!("Step {} failed: {text}", step.name));
            (Outcome::Failure, Ended { status: "failure", error: Some(text), ..Ended::default() })
        }
    }
}

async fn run_container(v: &Variant<'_, '_>, idx: StepIdx) -> anyhow::Result<rt::StepOutcome> {
    let run = v.run;
    let step = &run.spec.steps[idx];
    let (image, commands) = match &step.kind {
        StepKind::Commands { image, commands } => (image.clone(), commands.clone()),
        StepKind::FromBuild { commands } => {
            let image = v.image.lock().await.clone().context("this run's build step made no image")?;
            (image, commands.clone())
        }
        StepKind::Build(_) | StepKind::Deploy => anyhow::bail!("{} is not a container step", step.name),
    };
    v.ensure_workspace(&image).await?;
    let spec = rt::StepSpec {
        container_name: format!("{}-{}", v.prefix, step.name),
        name: step.name.clone(),
        image,
        commands,
        env: v.environment(v.plan.environment(step))?,
        workdir: step.workdir.clone(),
        network: v.prefix.clone(),
        volume: v.prefix.clone(),
        memory_bytes: run.memory_bytes,
        cpu_millis: run.cpu_millis,
        labels: run.labels.clone(),
    };
    let lines = v.lines.clone();
    let name = step.name.clone();
    let on_line = move |stream: StdStream, text: &str| {
        let stream = match stream {
            StdStream::Stdout => LogStream::Stdout,
            StdStream::Stderr => LogStream::Stderr,
        };
        let _ = lines.send(Line { step: name.clone(), stream, text: text.to_string() });
    };
    let timeout = step.timeout.unwrap_or(run.default_timeout);
    Ok(run.engine.docker.run_step(&v.owner, &spec, on_line, &run.cancel.child_token(), timeout).await?)
}
