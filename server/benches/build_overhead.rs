//! Build overhead: the same repository built by Slipway (the real engine:
//! job queue, checkout, context tar, BuildKit build through the Engine API,
//! tags) and by hand (`git clone --depth 1`, then a BuildKit build, run as
//! processes), interleaved in one run on the real Docker Engine. Goal:
//! median(Slipway) / median(by hand) ≤ 1.05. Missing the goal is reported,
//! not an error.
//!
//! The repository is a small app: 200 source files of about 1 KiB, a 5 MiB
//! asset, a `.dockerignore` (`.git`) and a Dockerfile `FROM` the test base
//! image with one `COPY . /app/` and a short `RUN`. Before every timed build
//! a commit changes `BUILD_MARK`, so neither path gets the `COPY` (and later)
//! layers from the Docker layer cache: both do the same work every time.
//!
//! What is timed:
//! - Slipway: the build row's `created_at` → `finished_at` (set by the engine
//!   when the build is queued and when it is recorded `succeeded`). Also
//!   shown: wall clock from calling `trigger_build` to seeing `succeeded`
//!   (polled every 10 ms).
//! - By hand: wall clock from spawning `git clone` to the build's end. The
//!   Docker CLI here has no buildx, so `DOCKER_BUILDKIT=1 docker build`
//!   cannot run; the hand-run build does what it does instead: `tar` of the
//!   checkout (without `.git`, as the `.dockerignore` says) and a `curl`
//!   `POST /build?version=2` of that tar to the engine socket, reading the
//!   progress to its end (the same endpoint and builder Slipway uses).
//!
//! Also shown: a breakdown of each path (queue, checkout, context tar,
//! daemon build; clone, tar, daemon build) and the BuildKit steps of the
//! last build of each (labels are image config with BuildKit: no step).
//!
//! One untimed warm-up build per path runs first. Between builds the bench
//! waits for Slipway's job to finish (workspace removal) so nothing overlaps.
//! Every image carries `dev.slipway.test=<run id>`; the kit removes them and
//! the bench checks that no image, layer or container of the run is left.
//!
//! `cargo bench -p server --bench build_overhead` (`BENCH_ITERATIONS`, default 8)

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use app::wire::{Caller, Role};
use bollard::query_parameters::{ListContainersOptionsBuilder, ListImagesOptionsBuilder};
use server::builds::{Build, TriggerBuild};
use server::history::duration_ms;
use server::jobs::JobStatus;
use server::projects::Service;
use server::testkit::engine::{anyhow_of, user};
use server::testkit::{DockerKit, GitRepo, TestEngine, BASE_IMAGE, TEST_LABEL};

const DEFAULT_ITERATIONS: usize = 8;
const GOAL_RATIO: f64 = 1.05;
const SMALL_FILES: usize = 200;
const ASSET_BYTES: usize = 5 * 1024 * 1024;
const BUILD_LIMIT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(10);

const DOCKERFILE: &str = "FROM slipway-test/busybox:1\n\
COPY . /app/\n\
RUN cat /app/BUILD_MARK && ls /app/src > /app/manifest.txt && test -s /app/assets/bundle.bin\n\
EXPOSE 8080\n\
CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/app/public\"]\n";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    Slipway,
    ByHand,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Slipway => "slipway",
            Way::ByHand => "by-hand",
        }
    }
}

/// One Slipway build: the figures and the image.
struct SlipwayRun {
    /// created_at → finished_at of the build row.
    row: Duration,
    /// trigger call → `succeeded` seen.
    wall: Duration,
    /// created → started (queue pickup).
    queued: Duration,
    /// started → "Checked out" log line.
    checkout: Duration,
    /// "Checked out" → "Sending build context" (tar packing, phase update).
    pack: Duration,
    /// "Sending build context" → "Built image" (daemon build + tags).
    docker: Duration,
    /// BuildKit step (vertex) names, in order.
    steps: Vec<String>,
    image_id: String,
}

/// One by-hand build.
struct HandRun {
    total: Duration,
    clone: Duration,
    tar: Duration,
    docker: Duration,
    image_id: String,
}

/// A `#N name` line's name, for the vertex lines of a BuildKit log.
fn vertex_name(text: &str) -> Option<&str> {
    let (index, rest) = text.split_once(' ')?;
    let n = index.strip_prefix('#')?;
    (n.parse::<u32>().is_ok()
        && !rest.starts_with(|c: char| c.is_ascii_digit())
        && rest != "CACHED"
        && !rest.starts_with("DONE ")
        && !rest.starts_with("ERROR")
        && !rest.ends_with(" done"))
    .then_some(rest)
}

struct Bench {
    kit: DockerKit,
    te: TestEngine,
    repo: GitRepo,
    service: Service,
    caller: Caller,
    scratch: tempfile::TempDir,
}

/// SplitMix64: deterministic incompressible bytes for the asset.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn app_repo() -> anyhow::Result<GitRepo> {
    let repo = GitRepo::new()?;
    for i in 0..SMALL_FILES {
        let mut body = format!("// module {i:03}: generated for the build overhead bench\n");
        while body.len() < 1024 {
            let n = body.len();
            body.push_str(&format!("export function f{i}_{n}(x) {{ return x * {n} + {i}; }}\n"));
        }
        repo.write(&format!("src/module_{i:03}.js"), &body)?;
    }
    let mut asset = Vec::with_capacity(ASSET_BYTES);
    let mut state = 0x5eed_u64;
    while asset.len() < ASSET_BYTES {
        state = mix(state);
        asset.extend_from_slice(&state.to_le_bytes());
    }
    std::fs::create_dir_all(repo.path().join("assets"))?;
    std::fs::write(repo.path().join("assets/bundle.bin"), &asset)?;
    repo.write("public/index.html", "<!doctype html><title>bench</title><p>hello</p>\n")?;
    repo.write("package.json", "{\n  \"name\": \"bench-app\",\n  \"version\": \"1.0.0\"\n}\n")?;
    repo.write("README.md", "# bench app\n\nBuilt by the Slipway build overhead bench.\n")?;
    repo.write(".dockerignore", ".git\n")?;
    repo.write("Dockerfile", DOCKERFILE)?;
    repo.write("BUILD_MARK", "initial\n")?;
    repo.commit("bench app")?;
    Ok(repo)
}

fn iterations() -> anyhow::Result<usize> {
    match std::env::var("BENCH_ITERATIONS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => bail!("BENCH_ITERATIONS must be a whole number ≥ 1"),
        },
        Err(_) => Ok(DEFAULT_ITERATIONS),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn millis(v: i64) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(0))
}

fn between(a: &str, b: &str) -> anyhow::Result<Duration> {
    duration_ms(Some(a), Some(b)).map(millis).with_context(|| format!("bad timestamps {a:?} / {b:?}"))
}

fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

/// Nearest rank.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(values: impl Iterator<Item = Duration>) -> Vec<Duration> {
    let mut v: Vec<Duration> = values.collect();
    v.sort_unstable();
    v
}

/// Runs a command (argument vector, no shell) and fails with its stderr.
fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The hand-run BuildKit build: `curl` posts the context tar to the engine
/// socket (`version=2`, as `docker build` with BuildKit does); the progress
/// is read to its end. Returns the image id (`moby.image.id`).
fn buildkit_by_curl(tar: &std::path::Path, tag: &str, labels: &str) -> anyhow::Result<String> {
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_string))
        .unwrap_or_else(|| "/var/run/docker.sock".into());
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("version", "2")
        .append_pair("t", tag)
        .append_pair("labels", labels)
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
        bail!(
            "the hand-run build failed ({}): {}{}",
            out.status,
            body.trim(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    body.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["id"] == "moby.image.id")
        .and_then(|v| v["aux"]["ID"].as_str().map(str::to_string))
        .context("the hand-run build sent no image id")
}

impl Bench {
    /// Commits a new `BUILD_MARK` so the next build misses the layer cache.
    fn mark(&self, label: &str) -> anyhow::Result<()> {
        self.repo.write("BUILD_MARK", &format!("{label} {}\n", self.kit.run_id))?;
        self.repo.commit(&format!("mark {label}"))?;
        Ok(())
    }

    async fn slipway(&self) -> anyhow::Result<SlipwayRun> {
        let engine = &self.te.engine;
        let start = Instant::now();
        let queued = engine
            .trigger_build(&self.caller, TriggerBuild::manual_build_only(self.service.id))
            .await
            .map_err(anyhow_of)?;
        let build = loop {
            let build = engine.get_build(&self.caller, queued.id).await.map_err(anyhow_of)?;
            if build.status.is_terminal() {
                break build;
            }
            if start.elapsed() > BUILD_LIMIT {
                bail!("build {} still {} after {BUILD_LIMIT:?}", build.id, build.status);
            }
            tokio::time::sleep(POLL).await;
        };
        let wall = start.elapsed();
        if build.status != JobStatus::Succeeded {
            let log = engine.build_log(&self.caller, build.id, 0).await.map_err(anyhow_of)?;
            let tail: Vec<&str> = log.iter().rev().take(15).map(|l| l.text.as_str()).collect();
            bail!(
                "Slipway build {} ended {}: {:?}; log tail (newest first): {tail:#?}",
                build.id,
                build.status,
                build.error
            );
        }
        self.te.wait_job_done(&build, Duration::from_secs(60)).await?;
        self.figures(build, wall).await
    }

    async fn figures(&self, build: Build, wall: Duration) -> anyhow::Result<SlipwayRun> {
        let started = build.started_at.as_deref().context("a succeeded build without started_at")?;
        let finished = build.finished_at.as_deref().context("a succeeded build without finished_at")?;
        let log = self.te.engine.build_log(&self.caller, build.id, 0).await.map_err(anyhow_of)?;
        let ts_of = |prefix: &str| {
            log.iter()
                .find(|l| l.text.starts_with(prefix))
                .map(|l| l.ts.clone())
                .with_context(|| format!("build {} has no {prefix:?} log line", build.id))
        };
        let checked_out = ts_of("Checked out ")?;
        let sending = ts_of("Sending build context")?;
        let built = ts_of("Built image ")?;
        Ok(SlipwayRun {
            steps: log.iter().filter_map(|l| vertex_name(&l.text)).map(str::to_string).collect(),
            row: between(&build.created_at, finished)?,
            wall,
            queued: between(&build.created_at, started)?,
            checkout: between(started, &checked_out)?,
            pack: between(&checked_out, &sending)?,
            docker: between(&sending, &built)?,
            image_id: build.image_id.context("a succeeded build without an image id")?,
        })
    }

    async fn by_hand(&self, label: &str) -> anyhow::Result<HandRun> {
        let dir = tempfile::Builder::new().prefix("clone-").tempdir_in(self.scratch.path())?;
        let checkout = dir.path().join("app");
        let context = dir.path().join("context.tar");
        let url = self.repo.url();
        let tag = format!("slipway-bench/by-hand:{}-{label}", self.kit.run_id);
        let labels = serde_json::json!({ TEST_LABEL: self.kit.run_id }).to_string();
        let (clone, tar, docker, image_id) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let start = Instant::now();
            run(
                Command::new("git")
                    .args(["clone", "-q", "--depth", "1", "--"])
                    .arg(&url)
                    .arg(&checkout)
                    .env("GIT_TERMINAL_PROMPT", "0"),
                "git clone",
            )?;
            let cloned = Instant::now();
            run(
                Command::new("tar")
                    .arg("-C")
                    .arg(&checkout)
                    .args(["--exclude=./.git", "-cf"])
                    .arg(&context)
                    .arg("."),
                "tar",
            )?;
            let packed = Instant::now();
            let image_id = buildkit_by_curl(&context, &tag, &labels)?;
            let done = Instant::now();
            Ok((cloned - start, packed - cloned, done - packed, image_id))
        })
        .await??;
        Ok(HandRun { total: clone + tar + docker, clone, tar, docker, image_id })
    }

    /// Every image id in `image`'s local history down to the base image
    /// (the classic builder's intermediate images).
    async fn layers(
        &self,
        image: &str,
        base: &BTreeSet<String>,
        into: &mut BTreeSet<String>,
    ) -> anyhow::Result<()> {
        let history = self.kit.docker.image_history(image).await?;
        for item in history {
            if item.id != "<missing>" && !item.id.is_empty() && !base.contains(&item.id) {
                into.insert(item.id);
            }
        }
        Ok(())
    }
}

fn print_row(name: &str, v: &[Duration]) {
    let v = sorted(v.iter().copied());
    println!("  {name:<34} median {:>8}   p90 {:>8}", ms(median(&v)), ms(percentile(&v, 90.0)));
}

async fn bench(kit: DockerKit) -> anyhow::Result<()> {
    let n = iterations()?;
    let te = TestEngine::start(&kit).await?;
    let repo = app_repo()?;
    let service = te.service("bench", "app", &repo.url()).await?;
    let scratch = tempfile::Builder::new().prefix("slipway-bench-").tempdir()?;
    let b = Bench { kit, te, repo, service, caller: user(Role::Deployer), scratch };

    let mut base = BTreeSet::new();
    for item in b.kit.docker.image_history(BASE_IMAGE).await? {
        base.insert(item.id);
    }
    let mut images = Vec::new();

    println!("build_overhead: {n} iterations, interleaved; BuildKit on both sides (by hand: git clone, tar, curl POST /build?version=2)");
    b.mark("warmup-slipway")?;
    let warm = b.slipway().await?;
    images.push(warm.image_id.clone());
    b.mark("warmup-hand")?;
    let warm_hand = b.by_hand("warmup").await?;
    images.push(warm_hand.image_id.clone());
    println!("  warm-up (not counted): slipway {}, by hand {}", ms(warm.row), ms(warm_hand.total));

    let mut slipway = Vec::with_capacity(n);
    let mut hand = Vec::with_capacity(n);
    for i in 0..n {
        let order = if i % 2 == 0 { [Way::Slipway, Way::ByHand] } else { [Way::ByHand, Way::Slipway] };
        for path in order {
            b.mark(&format!("{}-{i}", path.name()))?;
            match path {
                Way::Slipway => {
                    let r = b.slipway().await?;
                    images.push(r.image_id.clone());
                    slipway.push(r);
                }
                Way::ByHand => {
                    let r = b.by_hand(&i.to_string()).await?;
                    images.push(r.image_id.clone());
                    hand.push(r);
                }
            }
        }
        let (s, h) = (&slipway[i], &hand[i]);
        println!(
            "  #{i} ({} first): slipway {} (wall {}), by hand {}  ratio {:.3}",
            order[0].name(),
            ms(s.row),
            ms(s.wall),
            ms(h.total),
            s.row.as_secs_f64() / h.total.as_secs_f64()
        );
    }

    // Layers of every image built, to check they all go away.
    let mut layers = BTreeSet::new();
    for image in &images {
        b.layers(image, &base, &mut layers).await?;
    }

    let s_row = sorted(slipway.iter().map(|r| r.row));
    let s_wall = sorted(slipway.iter().map(|r| r.wall));
    let h_total = sorted(hand.iter().map(|r| r.total));
    let ratio = median(&s_row).as_secs_f64() / median(&h_total).as_secs_f64();
    let ratio_wall = median(&s_wall).as_secs_f64() / median(&h_total).as_secs_f64();
    println!("build_overhead: N={n}");
    print_row("slipway (created_at→finished_at)", &s_row);
    print_row("slipway (wall, trigger→succeeded)", &s_wall);
    print_row("by hand (git clone + BuildKit build)", &h_total);
    println!("  breakdown, medians:");
    print_row("  slipway queue (created→started)", &slipway.iter().map(|r| r.queued).collect::<Vec<_>>());
    print_row("  slipway checkout", &slipway.iter().map(|r| r.checkout).collect::<Vec<_>>());
    print_row("  slipway context tar", &slipway.iter().map(|r| r.pack).collect::<Vec<_>>());
    print_row("  slipway docker build + tags", &slipway.iter().map(|r| r.docker).collect::<Vec<_>>());
    print_row("  by hand git clone", &hand.iter().map(|r| r.clone).collect::<Vec<_>>());
    print_row("  by hand context tar", &hand.iter().map(|r| r.tar).collect::<Vec<_>>());
    print_row("  by hand BuildKit build", &hand.iter().map(|r| r.docker).collect::<Vec<_>>());
    println!("  BuildKit steps of Slipway's last build: {:?}", slipway[n - 1].steps);
    let verdict = if ratio <= GOAL_RATIO { "meets" } else { "MISSES" };
    println!(
        "build_overhead: ratio median(slipway)/median(by hand) = {ratio:.3} ({verdict} the goal ≤ {GOAL_RATIO:.2}); \
         wall-clock ratio {ratio_wall:.3}"
    );

    let Bench { kit, mut te, scratch, .. } = b;
    if let Some(running) = te.running.take() {
        running.shutdown().await;
    }
    drop(te);
    drop(scratch);
    check_cleanup(&kit, &images, &layers).await?;
    Ok(())
}

/// Removes the run's objects and fails if any image, layer or container is
/// left.
async fn check_cleanup(kit: &DockerKit, images: &[String], layers: &BTreeSet<String>) -> anyhow::Result<()> {
    kit.cleanup().await?;
    let filter = std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!("{TEST_LABEL}={}", kit.run_id)],
    )]);
    let left_images = kit
        .docker
        .list_images(Some(ListImagesOptionsBuilder::new().all(true).filters(&filter).build()))
        .await?;
    let left_containers = kit
        .docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filter).build()))
        .await?;
    let mut left_layers = Vec::new();
    for id in layers.iter().chain(images) {
        if kit.docker.inspect_image(id).await.is_ok() {
            left_layers.push(id.clone());
        }
    }
    if !left_images.is_empty() || !left_containers.is_empty() || !left_layers.is_empty() {
        bail!(
            "cleanup left {} labelled images, {} containers, {} images/layers: {left_layers:?}",
            left_images.len(),
            left_containers.len(),
            left_layers.len()
        );
    }
    println!(
        "build_overhead: cleanup removed {} images ({} image ids incl. intermediate layers checked gone)",
        images.len(),
        layers.len()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let kit = DockerKit::new().await?;
        // On an error the kit's Drop removes whatever the run made.
        bench(kit).await
    })
}
