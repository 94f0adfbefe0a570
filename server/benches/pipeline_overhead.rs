//! Pipeline overhead: one pipeline run by Slipway (a `.slipway.yml` run
//! through the real build job: queue, checkout, run network and workspace
//! volume, service, steps, build, removal) against the same containers run
//! by hand with the `docker` CLI from one program, interleaved on the real
//! Docker Engine. Goal: median(Slipway) / median(by hand) ≤ 1.15. Missing
//! the goal is reported, not an error.
//!
//! The pipeline: a service `web` (busybox `httpd`, exec health check
//! `wget` on 127.0.0.1 every 1 s, the first second probed every 100 ms);
//! `lint` (busybox, four commands on the checkout) and `build` (the
//! repository's Dockerfile, BuildKit) at once; `test` (`from: build`: reads
//! the image's page, fetches a file from the service by its name `web`,
//! writes a report into the workspace); `final` after `lint` and `test`
//! (reads the report). The hand-run version does the same in the same order,
//! every call an argument vector (no shell on the host; the steps' lines go
//! to the container's own `sh -ec`): `git clone --depth 1`; network; volume;
//! the checkout into the volume (`docker create` + `docker cp`); the service
//! started (`docker run -d`, the same network alias, limits and sandbox
//! flags as Slipway's) and probed with `docker exec … wget` every 100 ms;
//! then on two threads `lint` and the image build (`tar` + `curl POST
//! /build?version=2` on the engine socket, the endpoint Slipway uses; the
//! CLI here has no buildx); `test` after the build; `final` after both;
//! then `docker rm -f`, network and volume removal.
//!
//! The image build is **included on both sides equally**: the same
//! Dockerfile and context through the same BuildKit, a layer-cache hit on
//! both after the warm-up (the build bench measures builds; this one the
//! pipeline around them).
//!
//! Timed: Slipway, the build row's `created_at` → `finished_at` (queue
//! pickup to removal of the run's objects), and wall clock from the trigger
//! call to `succeeded` seen (polled every 10 ms); by hand, wall clock from
//! the clone to the end of the removal. One warm-up round per side first.
//!
//! `cargo bench -p server --bench pipeline_overhead` (`BENCH_ROUNDS`,
//! default 5)

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use app::wire::{Caller, Role};
use server::builds::TriggerBuild;
use server::history::duration_ms;
use server::jobs::JobStatus;
use server::projects::Service;
use server::testkit::engine::{anyhow_of, user};
use server::testkit::{DockerKit, GitRepo, TestEngine, BASE_IMAGE, TEST_LABEL};

const DEFAULT_ROUNDS: usize = 5;
const GOAL: f64 = 1.15;
const LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(10);

const LINT: &[&str] =
    &["test -f index.html", "grep -q httpd Dockerfile", "ls -la /workspace", "head -n 3 .slipway.yml"];
const TEST: &[&str] = &[
    "cat /www/index.html",
    "wget -qO- http://web:8081/passwd > /workspace/report.txt",
    "grep -q root /workspace/report.txt",
];
const FINAL: &[&str] = &["cat /workspace/report.txt", "echo all checks passed"];
const SERVICE_CMD: &[&str] = &["httpd", "-f", "-p", "8081", "-h", "/etc"];
const PROBE: &[&str] = &["wget", "-qO-", "http://127.0.0.1:8081/passwd"];

fn yaml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn pipeline_file() -> String {
    format!(
        "services:\n  web:\n    image: {BASE_IMAGE}\n    command: {}\n    healthcheck:\n      cmd: {}\n      interval: 1s\n\
         steps:\n\
         \x20 - name: lint\n    image: {BASE_IMAGE}\n    depends_on: []\n    commands: {}\n\
         \x20 - name: build\n    build: {{}}\n    depends_on: []\n\
         \x20 - name: test\n    from: build\n    depends_on: [build]\n    commands: {}\n\
         \x20 - name: final\n    image: {BASE_IMAGE}\n    depends_on: [lint, test]\n    commands: {}\n",
        yaml_list(SERVICE_CMD),
        yaml_list(PROBE),
        yaml_list(LINT),
        yaml_list(TEST),
        yaml_list(FINAL),
    )
}

fn rounds() -> anyhow::Result<usize> {
    match std::env::var("BENCH_ROUNDS") {
        Ok(v) => v.trim().parse::<usize>().ok().filter(|n| *n >= 1).context("BENCH_ROUNDS must be ≥ 1"),
        Err(_) => Ok(DEFAULT_ROUNDS),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn between(a: Option<&str>, b: Option<&str>) -> anyhow::Result<Duration> {
    let v = duration_ms(a, b).with_context(|| format!("bad timestamps {a:?} / {b:?}"))?;
    Ok(Duration::from_millis(u64::try_from(v).unwrap_or(0)))
}

/// `docker <args>` (argument vector, no shell); its stdout, or its stderr
/// as the error.
fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker").args(args).output().context("cannot run docker")?;
    if !out.status.success() {
        bail!("docker {args:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

struct SlipwayRound {
    row: Duration,
    wall: Duration,
    /// Step name → (started, finished) offsets from the row's creation.
    steps: Vec<(String, Duration, Duration)>,
    healthy_ms: Option<i64>,
}

#[derive(Default)]
struct HandRound {
    total: Duration,
    /// Phase name → when it ended, from the start.
    marks: Vec<(&'static str, Duration)>,
}

struct Bench {
    kit: DockerKit,
    te: TestEngine,
    repo: GitRepo,
    service: Service,
    caller: Caller,
}

#[derive(sqlx::FromRow)]
struct StepRow {
    name: String,
    status: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    healthy_ms: Option<i64>,
}

impl Bench {
    async fn slipway(&self) -> anyhow::Result<SlipwayRound> {
        let engine = &self.te.engine;
        let start = Instant::now();
        let queued = engine
            .trigger_build(&self.caller, TriggerBuild::manual_build_only(self.service.id))
            .await
            .map_err(anyhow_of)?;
        let build = loop {
            let build = engine.build(queued.id).await.map_err(anyhow_of)?;
            if build.status.is_terminal() {
                break build;
            }
            if start.elapsed() > LIMIT {
                bail!("run {} still {} after {LIMIT:?}", build.id, build.status);
            }
            tokio::time::sleep(POLL).await;
        };
        let wall = start.elapsed();
        if build.status != JobStatus::Succeeded {
            let log = engine.build_log(&self.caller, build.id, 0).await.map_err(anyhow_of)?;
            let text: Vec<String> =
                log.iter().map(|l| format!("[{}] {}", l.step.as_deref().unwrap_or("-"), l.text)).collect();
            bail!("run {} ended {}: {:?}\n{}", build.id, build.status, build.error, text.join("\n"));
        }
        self.te.wait_job_done(&build, Duration::from_secs(60)).await?;
        let rows: Vec<StepRow> = sqlx::query_as(
            "SELECT name, status, started_at, finished_at, healthy_ms FROM build_steps \
             WHERE build_id = ? ORDER BY id",
        )
        .bind(build.id)
        .fetch_all(&engine.db)
        .await?;
        let mut steps = Vec::new();
        let mut healthy_ms = None;
        for r in &rows {
            anyhow::ensure!(r.status == "success", "step {} of run {} is {}", r.name, build.id, r.status);
            healthy_ms = healthy_ms.or(r.healthy_ms);
            // A service row has a start and `healthy_ms`, no end.
            if r.finished_at.is_some() {
                let created = Some(build.created_at.as_str());
                steps.push((
                    r.name.clone(),
                    between(created, r.started_at.as_deref())?,
                    between(created, r.finished_at.as_deref())?,
                ));
            }
        }
        let row = between(Some(&build.created_at), build.finished_at.as_deref())?;
        Ok(SlipwayRound { row, wall, steps, healthy_ms })
    }

    async fn by_hand(&self, round: &str) -> anyhow::Result<HandRound> {
        let hand = Hand {
            url: self.repo.url(),
            name: format!("pbench-{}-{round}", self.kit.run_id),
            label: format!("{TEST_LABEL}={}", self.kit.run_id),
            image: format!("slipway-bench/pipeline-hand:{}", self.kit.run_id),
        };
        tokio::task::spawn_blocking(move || {
            let result = hand.run();
            if result.is_err() {
                // Nothing of a failed round stays behind (best effort).
                for s in ["svc-web", "helper", "lint", "test", "final"] {
                    let _ = docker(&["rm", "-f", "-v", &hand.container(s)]);
                }
                let _ = docker(&["network", "rm", &hand.name]);
                let _ = docker(&["volume", "rm", &hand.name]);
            }
            result
        })
        .await?
    }
}

/// One hand-run pipeline: names of its objects.
struct Hand {
    url: String,
    /// Network, volume and container name prefix.
    name: String,
    label: String,
    image: String,
}

impl Hand {
    fn container(&self, step: &str) -> String {
        format!("{}-{step}", self.name)
    }

    /// `docker run` of one step in the foreground: the same sandbox and
    /// limits as Slipway's step containers, the lines run by `sh -ec`.
    fn step(&self, step: &str, image: &str, lines: &[&str]) -> anyhow::Result<()> {
        let (container, mount) =
            (self.container(step), format!("type=volume,src={},dst=/workspace", self.name));
        let script = lines.join("\n");
        let mut args = vec!["run", "--name", &container, "--label", &self.label, "--hostname", step];
        args.extend(["--network", &self.name, "--mount", &mount, "-w", "/workspace"]);
        args.extend(SANDBOX);
        args.extend(["--entrypoint", "/bin/sh", image, "-ec", &script]);
        docker(&args).map(|_| ())
    }

    fn run(&self) -> anyhow::Result<HandRound> {
        let start = Instant::now();
        let mut round = HandRound::default();
        let dir = tempfile::Builder::new().prefix("pbench-clone-").tempdir()?;
        let checkout = dir.path().join("app");
        let out = Command::new("git")
            .args(["clone", "-q", "--depth", "1", "--"])
            .arg(&self.url)
            .arg(&checkout)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()?;
        anyhow::ensure!(out.status.success(), "git clone: {}", String::from_utf8_lossy(&out.stderr));
        // The workspace holds the checkout without `.git`, as Slipway's does.
        std::fs::remove_dir_all(checkout.join(".git"))?;
        round.marks.push(("clone", start.elapsed()));
        docker(&["network", "create", "--driver", "bridge", "--label", &self.label, &self.name])?;
        docker(&["volume", "create", "--label", &self.label, &self.name])?;
        round.marks.push(("network + volume", start.elapsed()));
        let svc = self.container("svc-web");
        let mut args = vec!["run", "-d", "--name", &svc, "--label", &self.label, "--hostname", "web"];
        args.extend(["--network", &self.name, "--network-alias", "web"]);
        args.extend(SANDBOX);
        args.push(BASE_IMAGE);
        args.extend(SERVICE_CMD);
        docker(&args)?;
        round.marks.push(("service started", start.elapsed()));
        let until = Instant::now() + Duration::from_secs(60);
        let mut probe = vec!["exec", svc.as_str()];
        probe.extend(PROBE);
        while docker(&probe).is_err() {
            anyhow::ensure!(Instant::now() < until, "the service never answered");
            std::thread::sleep(Duration::from_millis(100));
        }
        round.marks.push(("service healthy", start.elapsed()));
        let (lint, build) = std::thread::scope(|s| {
            let lint = s.spawn(|| -> anyhow::Result<Duration> {
                let helper = self.container("helper");
                let mount = format!("type=volume,src={},dst=/workspace", self.name);
                let args = ["create", "--name", &helper, "--label", &self.label, "--mount", &mount];
                docker(&[&args[..], &["--network", "none", BASE_IMAGE, "/bin/true"]].concat())?;
                docker(&["cp", &format!("{}/.", checkout.display()), &format!("{helper}:/workspace")])?;
                docker(&["rm", "-f", &helper])?;
                self.step("lint", BASE_IMAGE, LINT)?;
                Ok(start.elapsed())
            });
            let build = s.spawn(|| -> anyhow::Result<(Duration, Duration)> {
                let context = dir.path().join("context.tar");
                let out = Command::new("tar")
                    .arg("-C")
                    .arg(&checkout)
                    .arg("-cf")
                    .arg(&context)
                    .arg(".")
                    .output()?;
                anyhow::ensure!(out.status.success(), "tar: {}", String::from_utf8_lossy(&out.stderr));
                buildkit_by_curl(&context, &self.image, &self.label)?;
                let built = start.elapsed();
                self.step("test", &self.image, TEST)?;
                Ok((built, start.elapsed()))
            });
            (lint.join(), build.join())
        });
        let lint = lint.map_err(|_| anyhow::anyhow!("the lint thread panicked"))??;
        let (built, tested) = build.map_err(|_| anyhow::anyhow!("the build thread panicked"))??;
        round.marks.extend([("lint (with checkout copy)", lint), ("build", built), ("test", tested)]);
        self.step("final", BASE_IMAGE, FINAL)?;
        round.marks.push(("final", start.elapsed()));
        self.remove()?;
        round.total = start.elapsed();
        round.marks.push(("removed", round.total));
        Ok(round)
    }

    /// `docker rm -f` of the round's containers, then network and volume.
    fn remove(&self) -> anyhow::Result<()> {
        let names: Vec<String> =
            ["svc-web", "lint", "test", "final"].iter().map(|s| self.container(s)).collect();
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(names.iter().map(String::as_str));
        docker(&args)?;
        docker(&["network", "rm", &self.name])?;
        docker(&["volume", "rm", &self.name])?;
        Ok(())
    }
}

/// Slipway's step and service sandbox (`docker::pipeline::sandbox`) with a
/// service's default limits (512 MiB, 1 CPU).
const SANDBOX: [&str; 11] = [
    "--init",
    "--memory",
    "512m",
    "--memory-swap",
    "512m",
    "--cpus",
    "1",
    "--security-opt",
    "no-new-privileges",
    "--pids-limit",
    "4096",
];

/// The BuildKit build Slipway runs (`POST /build?version=2`), by `curl` on
/// the engine socket, read to its end.
fn buildkit_by_curl(tar: &std::path::Path, tag: &str, label: &str) -> anyhow::Result<()> {
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
        .unwrap_or_else(|| "/var/run/docker.sock".into());
    let (key, value) = label.split_once('=').context("label")?;
    let labels = serde_json::json!({ key: value }).to_string();
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("version", "2")
        .append_pair("t", tag)
        .append_pair("labels", &labels)
        .finish();
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "--unix-socket", &socket, "-X", "POST"])
        .args(["-H", "Content-Type: application/x-tar", "--data-binary"])
        .arg(format!("@{}", tar.display()))
        .arg(format!("http://localhost/build?{query}"))
        .output()
        .context("cannot run curl")?;
    let body = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || body.contains("\"errorDetail\"") {
        bail!("the hand-run build failed ({}): {}", out.status, body.trim());
    }
    Ok(())
}

async fn bench(kit: DockerKit) -> anyhow::Result<()> {
    let n = rounds()?;
    let te = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service(&format!("pipeline bench {}", kit.run_id))?;
    repo.write(".slipway.yml", &pipeline_file())?;
    repo.commit("pipeline")?;
    let service = te.service("pbench", "web", &repo.url()).await?;
    let b = Bench { kit, te, repo, service, caller: user(Role::Deployer) };

    println!("pipeline_overhead: {n} interleaved rounds; service + lint, build, test (from: build), final");
    println!("  the image build is included on both sides (same BuildKit endpoint, cache hit after warm-up)");
    let warm = b.slipway().await?;
    let warm_hand = b.by_hand("warmup").await?;
    println!("  warm-up (not counted): slipway {}, by hand {}", ms(warm.row), ms(warm_hand.total));
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..n {
        let slipway_first = i % 2 == 0;
        if slipway_first {
            ours.push(b.slipway().await?);
            theirs.push(b.by_hand(&i.to_string()).await?);
        } else {
            theirs.push(b.by_hand(&i.to_string()).await?);
            ours.push(b.slipway().await?);
        }
        let (s, h) = (&ours[i], &theirs[i]);
        println!(
            "  round {} ({} first): slipway {} (wall {}), by hand {}, ratio {:.3}",
            i + 1,
            if slipway_first { "slipway" } else { "by hand" },
            ms(s.row),
            ms(s.wall),
            ms(h.total),
            s.row.as_secs_f64() / h.total.as_secs_f64()
        );
    }
    let last = &ours[n - 1];
    println!("  slipway's last round, from the row's creation (started → finished):");
    for (name, started, finished) in &last.steps {
        println!("    {name:<8} {:>8} → {:>8}", ms(*started), ms(*finished));
    }
    println!("    service healthy after {:?} ms (from its container's start)", last.healthy_ms);
    println!("  by hand, last round, phase ends from the start:");
    for (name, at) in &theirs[n - 1].marks {
        println!("    {name:<26} {:>8}", ms(*at));
    }
    let row: Vec<Duration> = ours.iter().map(|r| r.row).collect();
    let wall: Vec<Duration> = ours.iter().map(|r| r.wall).collect();
    let hand: Vec<Duration> = theirs.iter().map(|r| r.total).collect();
    let ratio = median(&row).as_secs_f64() / median(&hand).as_secs_f64();
    let ratio_wall = median(&wall).as_secs_f64() / median(&hand).as_secs_f64();
    let verdict = if ratio <= GOAL { "goal met" } else { "GOAL MISSED" };
    println!(
        "pipeline_overhead: median slipway {} (wall {}), by hand {}; ratio {ratio:.3} (goal ≤ {GOAL}): {verdict}; \
         wall-clock ratio {ratio_wall:.3}",
        ms(median(&row)),
        ms(median(&wall)),
        ms(median(&hand))
    );
    let Bench { kit, mut te, .. } = b;
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
        println!("pipeline_overhead: load average before {}", server::testkit::wait::load_average());
        let result = bench(kit).await;
        println!("pipeline_overhead: load average after {}", server::testkit::wait::load_average());
        result
    })
}
