//! Step start latency: from a dependency's end to its dependent's container
//! running, as the Docker Engine saw it. Goal: p50 ≤ 300 ms, p99 ≤ 1 s.
//! Missing a goal is reported, not an error.
//!
//! A `.slipway.yml` of a chain of `BENCH_STEPS` short steps (busybox, one
//! `echo`; no `depends_on`, so each waits for the one before) runs
//! `BENCH_RUNS` times through the real build job. During the runs the bench
//! follows the engine's event stream (`GET /events`, containers carrying
//! this bench's test label: `create`, `attach`, `start`, `die`), because
//! the run's containers are removed when it ends. For every step after the first:
//! latency = its container's `start` event − the previous step's `die`
//! event (the engine's nanosecond times), split at the `attach` event: die
//! → attach (Slipway sees the end, reads the exit code, records it, takes
//! the next step and attaches to its output; the step's container was
//! created while the dependency ran, or after it: the bench counts them)
//! and attach → start (the engine's start call: network endpoint, cgroups,
//! runc). Also shown: the same gap from Slipway's own rows
//! (`build_steps.started_at` − the previous `finished_at`).
//!
//! `cargo bench -p server --bench step_start` (`BENCH_STEPS`, default 16;
//! `BENCH_RUNS`, default 4)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use app::wire::Role;
use bollard::query_parameters::EventsOptionsBuilder;
use futures::StreamExt;
use server::builds::TriggerBuild;
use server::docker::labels;
use server::history::duration_ms;
use server::jobs::JobStatus;
use server::testkit::engine::{anyhow_of, user};
use server::testkit::{DockerKit, GitRepo, TestEngine, BASE_IMAGE, TEST_LABEL};

const GOAL_P50: Duration = Duration::from_millis(300);
const GOAL_P99: Duration = Duration::from_secs(1);
const LIMIT: Duration = Duration::from_secs(300);

fn env_count(name: &str, default: usize, min: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= min)
            .with_context(|| format!("{name} must be ≥ {min}")),
        Err(_) => Ok(default),
    }
}

fn step_name(i: usize) -> String {
    format!("s{i:02}")
}

fn pipeline_file(steps: usize) -> String {
    let mut file = String::from("steps:\n");
    for i in 0..steps {
        let name = step_name(i);
        file.push_str(&format!(
            "  - name: {name}\n    image: {BASE_IMAGE}\n    commands: [\"echo {name}\"]\n"
        ));
    }
    file
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Nearest rank.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, values: &[Duration]) -> (Duration, Duration) {
    let mut v = values.to_vec();
    v.sort_unstable();
    let (p50, p99) = (percentile(&v, 50.0), percentile(&v, 99.0));
    println!(
        "  {name:<44} p50 {:>7}  p90 {:>7}  p99 {:>7}  max {:>7}  min {:>7}  n={}",
        ms(p50),
        ms(percentile(&v, 90.0)),
        ms(p99),
        ms(v[v.len() - 1]),
        ms(v[0]),
        v.len()
    );
    (p50, p99)
}

/// Engine event times (ns since the epoch) of one container.
#[derive(Debug, Default, Clone, Copy)]
struct Times {
    create: Option<i64>,
    attach: Option<i64>,
    start: Option<i64>,
    die: Option<i64>,
}

/// (build id, step name) → times, from the engine's events.
type Seen = HashMap<(i64, String), Times>;

/// Follows the engine's container events of this kit's objects until
/// `stop` fires.
fn follow_events(
    kit: &DockerKit,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<Seen>> {
    // The client's default 120 s request timeout would cut the stream short.
    let docker = kit.docker.clone().with_timeout(Duration::from_secs(3600));
    let filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        ("label".to_string(), vec![format!("{TEST_LABEL}={}", kit.run_id)]),
        ("event".to_string(), ["create", "attach", "start", "die"].map(String::from).to_vec()),
    ]);
    tokio::spawn(async move {
        let mut events = docker.events(Some(EventsOptionsBuilder::new().filters(&filters).build()));
        let mut seen = Seen::new();
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return Ok(seen),
                e = events.next() => match e {
                    Some(e) => e.context("the event stream broke")?,
                    None => bail!("the event stream ended"),
                },
            };
            let Some(attrs) = event.actor.and_then(|a| a.attributes) else { continue };
            let (Some(build), Some(name), Some(at)) = (
                attrs.get(labels::BUILD_ID).and_then(|b| b.parse::<i64>().ok()),
                attrs.get("name"),
                event.time_nano,
            ) else {
                continue;
            };
            // Step containers are `slipway-run-<instance>-<build>-<variant>-<step>`;
            // the upload helper has an engine-made name.
            let Some((head, step)) = name.rsplit_once('-') else { continue };
            if !head.ends_with(&format!("-{build}-0")) || !step.starts_with('s') {
                continue;
            }
            let times = seen.entry((build, step.to_string())).or_default();
            match event.action.as_deref() {
                Some("create") => times.create = Some(at),
                Some("attach") => times.attach = Some(at),
                Some("start") => times.start = Some(at),
                Some("die") => times.die = Some(at),
                _ => {}
            }
        }
    })
}

fn nanos(from: i64, to: i64) -> Duration {
    Duration::from_nanos(u64::try_from(to - from).unwrap_or(0))
}

async fn bench(kit: DockerKit) -> anyhow::Result<()> {
    let steps = env_count("BENCH_STEPS", 16, 2)?;
    let runs = env_count("BENCH_RUNS", 4, 1)?;
    let te = TestEngine::start(&kit).await?;
    let repo = GitRepo::new()?;
    repo.write("README.md", "step start bench\n")?;
    repo.write(".slipway.yml", &pipeline_file(steps))?;
    repo.commit("a chain of steps")?;
    let service = te.service("sbench", "chain", &repo.url()).await?;
    let caller = user(Role::Deployer);
    let stop = tokio_util::sync::CancellationToken::new();
    let follower = follow_events(&kit, stop.clone());
    // The stream is open once the engine has answered; a moment for that.
    tokio::time::sleep(Duration::from_millis(300)).await;

    println!("step_start: {runs} runs of a chain of {steps} steps (busybox, one echo each)");
    let mut builds = Vec::new();
    let mut row_gaps = Vec::new();
    for run in 0..runs {
        let start = Instant::now();
        let queued = te
            .engine
            .trigger_build(&caller, TriggerBuild::manual_build_only(service.id))
            .await
            .map_err(anyhow_of)?;
        let done = te.wait_build(queued.id, LIMIT).await?;
        if done.status != JobStatus::Succeeded {
            bail!("run {} ended {}: {:?}", done.id, done.status, done.error);
        }
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT name, started_at, finished_at FROM build_steps WHERE build_id = ? ORDER BY id",
        )
        .bind(done.id)
        .fetch_all(&te.engine.db)
        .await?;
        anyhow::ensure!(rows.len() == steps, "run {} has {} step rows", done.id, rows.len());
        for pair in rows.windows(2) {
            let gap = duration_ms(pair[0].2.as_deref(), pair[1].1.as_deref())
                .context("a step row without times")?;
            row_gaps.push(Duration::from_millis(u64::try_from(gap).unwrap_or(0)));
        }
        println!("  run {} (build {}): {} wall", run + 1, done.id, ms(start.elapsed()));
        builds.push(done.id);
    }
    // The last `die` events are in before the run ends (its containers are
    // removed first); a moment for the stream to deliver them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let seen = follower.await??;

    let (mut total, mut react, mut engine_start) = (Vec::new(), Vec::new(), Vec::new());
    let mut ahead = 0;
    for build in &builds {
        for i in 1..steps {
            let get = |i: usize| seen.get(&(*build, step_name(i))).copied().unwrap_or_default();
            let (prev, next) = (get(i - 1), get(i));
            let (Some(die), Some(create), Some(attach), Some(started)) =
                (prev.die, next.create, next.attach, next.start)
            else {
                bail!(
                    "build {build}: events missing for {} → {}: {prev:?} {next:?}",
                    step_name(i - 1),
                    step_name(i)
                );
            };
            total.push(nanos(die, started));
            // The executor creates a step's container while its dependency runs.
            if create < die {
                ahead += 1;
            }
            react.push(nanos(die, attach));
            engine_start.push(nanos(attach, started));
        }
    }
    println!("step_start: engine events (dependency `die` → dependent `start`):");
    let (p50, p99) = summary("die → start (the latency)", &total);
    summary("  die → attach (Slipway sees the end, records, attaches)", &react);
    summary("  attach → start (the engine's start call)", &engine_start);
    println!("  containers created before their dependency ended: {ahead} of {}", total.len());
    println!("  Slipway's rows:");
    summary("finished_at → next started_at", &row_gaps);
    let verdict = |v: Duration, goal: Duration| if v <= goal { "met" } else { "MISSED" };
    println!(
        "step_start: p50 {} (goal ≤ {}: {}), p99 {} (goal ≤ {}: {})",
        ms(p50),
        ms(GOAL_P50),
        verdict(p50, GOAL_P50),
        ms(p99),
        ms(GOAL_P99),
        verdict(p99, GOAL_P99)
    );
    let mut te = te;
    if let Some(running) = te.running.take() {
        running.shutdown().await;
    }
    drop(te);
    kit.cleanup().await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let kit = DockerKit::new().await?;
        // On an error the kit's Drop removes whatever the run made.
        println!("step_start: load average before {}", server::testkit::wait::load_average());
        let result = bench(kit).await;
        println!("step_start: load average after {}", server::testkit::wait::load_average());
        result
    })
}
