//! Push: Slipway's push of a 100 MB image (`DockerEngine::push_image`, the
//! call the build job makes, credentials in `X-Registry-Auth`) against
//! `docker push` run by hand, in one run, interleaved. Goal: ≤ 1.10×.
//!
//! Each push goes to a fresh registry (Debian's `docker-registry` with
//! htpasswd, on its own loopback port and storage), so every layer is
//! really uploaded by both sides: the engine cannot mount a layer from a
//! registry it has never pushed to. The CLI logs in with its own
//! `DOCKER_CONFIG` directory (never the user's). The image is the test base
//! image plus one 100 MB layer of random bytes, built once.
//!
//! `cargo bench -p server --bench push` (`BENCH_ITERATIONS`, default 5).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use server::docker::{build::BuildRequest, registry::Credentials, DockerEngine};
use server::logs::LogHub;
use server::testkit::{registry::LocalRegistry, DockerKit, BASE_IMAGE};

const DEFAULT_ITERATIONS: usize = 5;
const GOAL: f64 = 1.10;
const USER: &str = "bench";
const PASSWORD: &str = "bench-password";

fn iterations() -> anyhow::Result<usize> {
    match std::env::var("BENCH_ITERATIONS") {
        Ok(v) => v.trim().parse::<usize>().ok().filter(|n| *n >= 1).context("BENCH_ITERATIONS must be ≥ 1"),
        Err(_) => Ok(DEFAULT_ITERATIONS),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The 100 MB image, built once per run (its random layer is new each run).
async fn image(kit: &DockerKit) -> anyhow::Result<String> {
    let ctx = tempfile::tempdir()?;
    let mut bytes = vec![0u8; 100 * 1024 * 1024];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(std::process::id());
    for chunk in bytes.chunks_mut(8) {
        // xorshift: incompressible, so the push moves 100 MB.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(ctx.path().join("blob"), bytes)?;
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {BASE_IMAGE}\nCOPY blob /blob\n"))?;
    let logs = tempfile::tempdir()?;
    let hub = LogHub::new(logs.path());
    let mut log = hub.writer(1, Vec::new()).await?;
    let tag = format!("slipway-bench/push-{}:1", kit.run_id);
    let request = BuildRequest {
        context_dir: ctx.path().to_path_buf(),
        dockerfile: "Dockerfile".into(),
        tags: vec![tag.clone()],
        labels: kit.labels(),
        ..Default::default()
    };
    let built = server::docker::build::build_image(&kit.docker, request, &mut log).await?;
    Ok(built.image_id)
}

async fn slipway_push(docker: &DockerEngine, image_id: &str) -> anyhow::Result<Duration> {
    let registry = LocalRegistry::start(USER, PASSWORD).await?;
    let repository = format!("{}/bench/slipway", registry.host);
    docker.tag_image(image_id, &repository, "1").await?;
    let credentials = Credentials {
        server: registry.host.clone(),
        username: Some(USER.into()),
        password: Some(PASSWORD.into()),
    };
    let started = Instant::now();
    let pushed = docker.push_image(&repository, "1", &credentials).await?;
    let took = started.elapsed();
    anyhow::ensure!(pushed.uploaded >= 1 && pushed.digest.is_some(), "nothing was uploaded: {pushed:?}");
    docker.untag_image(&format!("{repository}:1")).await?;
    Ok(took)
}

fn cli(config: &std::path::Path, args: &[&str]) -> anyhow::Result<std::process::Output> {
    let out = Command::new("docker").env("DOCKER_CONFIG", config).args(args).output()?;
    if !out.status.success() {
        bail!("docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out)
}

async fn docker_push(image_id: &str) -> anyhow::Result<Duration> {
    let registry = LocalRegistry::start(USER, PASSWORD).await?;
    let config = tempfile::tempdir()?;
    let reference = format!("{}/bench/cli:1", registry.host);
    cli(config.path(), &["tag", image_id, &reference])?;
    let login = Command::new("docker")
        .env("DOCKER_CONFIG", config.path())
        .args(["login", "--username", USER, "--password-stdin", &registry.host])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let login = {
        use std::io::Write;
        let mut login = login;
        login.stdin.take().context("stdin")?.write_all(PASSWORD.as_bytes())?;
        login.wait_with_output()?
    };
    anyhow::ensure!(
        login.status.success(),
        "docker login failed: {}",
        String::from_utf8_lossy(&login.stderr)
    );
    let started = Instant::now();
    cli(config.path(), &["push", "--quiet", &reference])?;
    let took = started.elapsed();
    cli(config.path(), &["rmi", &reference])?;
    Ok(took)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = iterations()?;
    let kit = DockerKit::new().await?;
    let docker = DockerEngine::with_client(kit.docker.clone());
    let image_id = image(&kit).await?;
    println!("push: 100 MB image {image_id}, {n} interleaved rounds, a fresh registry per push");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..n {
        // Alternate which goes first, so neither always finds a warm cache.
        let (a, b) = if round % 2 == 0 {
            let a = slipway_push(&docker, &image_id).await?;
            (a, docker_push(&image_id).await?)
        } else {
            let b = docker_push(&image_id).await?;
            (slipway_push(&docker, &image_id).await?, b)
        };
        println!(
            "  round {}: slipway {:.2} s, docker push {:.2} s",
            round + 1,
            a.as_secs_f64(),
            b.as_secs_f64()
        );
        ours.push(a);
        theirs.push(b);
    }
    let (a, b) = (median(ours), median(theirs));
    let ratio = a.as_secs_f64() / b.as_secs_f64();
    let verdict = if ratio <= GOAL { "goal met" } else { "GOAL MISSED" };
    println!(
        "push: slipway median {:.2} s, docker push median {:.2} s, ratio {ratio:.3} (goal ≤ {GOAL}): {verdict}",
        a.as_secs_f64(),
        b.as_secs_f64()
    );
    Ok(())
}
