//! A bounded schemathesis run against the real `slipway serve`: every check
//! of schemathesis 4, a fixed seed, at most [`MAX_EXAMPLES`] cases per
//! operation and phase, first with an admin's token, then with a viewer's
//! (and token revocation last, as it ends the run's own credential). Any
//! failure (a 5xx, a status or body outside the document, valid input
//! refused, invalid input accepted, an ignored token, …) fails the test.
//!
//! schemathesis is installed by `scripts/setup.sh` (a venv under the cache
//! dir); its path comes from `SLIPWAY_SCHEMATHESIS`, which `build/setup.mk`
//! exports to `make test`.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use app::wire::Role;
use serde_json::{json, Value};
use server::testkit::{instance::InstanceCleanup, wait::unique_suffix, ServerProcess, TestDataDir};

const PW: &str = "correct horse battery";
/// Cases per operation and phase: the two runs take a few minutes on 2 cores.
const MAX_EXAMPLES: &str = "20";
const SEED: &str = "20261205";
/// The answers each check accepts: schemathesis's defaults, plus 413, the
/// documented answer to a body over 256 KiB (a limit JSON Schema cannot
/// state; the generated bodies of large arrays of long strings pass it).
/// A certificate upload may also answer schema-valid input with 422: what a
/// PEM must hold (a certificate valid now, with a DNS name, and its own
/// key) is beyond JSON Schema, and generated strings never are one.
const CONFIG: &str = r#"
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]

[[operations]]
include-operation-id = "upload_certificate"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "413", "422", "429", "5xx"]
"#;
/// A run that has not finished by then is killed and fails the test.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// The schemathesis CLI: `$SLIPWAY_SCHEMATHESIS`, as setup wrote it.
fn schemathesis() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("SLIPWAY_SCHEMATHESIS").map(PathBuf::from).context(
        "SLIPWAY_SCHEMATHESIS is not set: run scripts/setup.sh (it installs schemathesis) and test through make, \
         or export SLIPWAY_SCHEMATHESIS=<path of the schemathesis binary>",
    )?;
    if !path.is_file() {
        bail!("SLIPWAY_SCHEMATHESIS={} does not exist: run scripts/setup.sh", path.display());
    }
    Ok(path)
}

/// A served data dir with an admin, a viewer, a token for each, and a
/// project with a service and a notification target (real ids to hit).
struct Served {
    server: ServerProcess,
    admin_token: String,
    viewer_token: String,
    data: TestDataDir,
    _site: TestDataDir,
    _cleanup: InstanceCleanup,
}

async fn served() -> anyhow::Result<Served> {
    let data = TestDataDir::new()?;
    let site = TestDataDir::new()?;
    let db = data.open_db().await?;
    let uid = server::db::instance_uid(&db).await?;
    let auth = server::auth::Auth::open(db.clone(), Default::default()).await?;
    let admin = auth.users.create("root", PW, Role::Admin).await?;
    let viewer = auth.users.create("watcher", PW, Role::Viewer).await?;
    let (a, admin_token) = auth.tokens.create(&admin.caller(), "fuzz-admin", None).await?;
    let (v, viewer_token) = auth.tokens.create(&viewer.caller(), "fuzz-viewer", None).await?;
    // Out of reach of generated ids: a DELETE /tokens/{id} must not revoke
    // the run's own credential half-way through.
    for (stored, id) in [(a.id, 7_340_032_001_i64), (v.id, 7_340_032_002)] {
        sqlx::query("UPDATE api_tokens SET id = ? WHERE id = ?").bind(id).bind(stored).execute(&db).await?;
    }
    db.close().await;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_slipway"));
    let (d, s) = (data.path().to_path_buf(), site.path().to_path_buf());
    let server = tokio::task::spawn_blocking(move || ServerProcess::start(&bin, &d, &s)).await??;
    let docker = bollard::Docker::connect_with_defaults()?;
    let served = Served {
        server,
        admin_token,
        viewer_token,
        data,
        _site: site,
        _cleanup: InstanceCleanup::new(docker, uid),
    };
    served.seed().await?;
    Ok(served)
}

impl Served {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let res = reqwest::Client::new()
            .post(self.server.url(path))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await?;
        let status = res.status();
        let text = res.text().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {text}");
        Ok(serde_json::from_str(&text)?)
    }

    async fn seed(&self) -> anyhow::Result<()> {
        let unique = unique_suffix();
        let project = self.post("/api/v1/projects", json!({ "name": format!("fuzz-{unique}") })).await?;
        let id = project["id"].as_i64().context("project id")?;
        let settings = app::wire::ServiceSettings {
            name: format!("web-{unique}"),
            git_url: "file:///nonexistent/fuzz/repo".into(),
            ..app::wire::ServiceSettings::defaults()
        };
        self.post(&format!("/api/v1/projects/{id}/services"), json!(settings)).await?;
        let target = json!({ "name": "ops", "kind": "webhook", "url": "http://127.0.0.1:9/hook",
            "events": ["build.failed"] });
        self.post(&format!("/api/v1/projects/{id}/notifications"), target).await?;
        Ok(())
    }

    /// One schemathesis run with `token` over the operations `only` selects
    /// (`--include-…`/`--exclude-…` arguments).
    fn fuzz(&self, who: &str, token: &str, only: &[&str]) -> anyhow::Result<Outcome> {
        let reports = self.data.path().join(format!("schemathesis-{who}"));
        let config = self.data.path().join("schemathesis.toml");
        std::fs::write(&config, CONFIG)?;
        let started = Instant::now();
        let mut child = Command::new(schemathesis()?)
            .arg("--config-file")
            .arg(&config)
            .arg("run")
            .arg(self.server.url("/api/v1/openapi.json"))
            // One worker: CPython 3.11's parser is not thread-safe under
            // hypothesis's lambda introspection ("AST constructor recursion
            // depth mismatch").
            .args(["--checks", "all", "--seed", SEED, "--max-examples", MAX_EXAMPLES, "--workers", "1"])
            .args(["--request-timeout", "20", "--no-shrink", "--report", "ndjson", "--report-dir"])
            .arg(&reports)
            .args(only)
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .env("NO_COLOR", "1")
            // Its cache (`.schemathesis/`) goes into the data dir, not the checkout.
            .current_dir(self.data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start schemathesis")?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let (out, err) = (drain(stdout), drain(stderr));
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if started.elapsed() > RUN_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                bail!("schemathesis ({who}) ran past {RUN_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let output = format!("{}{}", out.join().unwrap_or_default(), err.join().unwrap_or_default());
        let requests = count_requests(&reports);
        Ok(Outcome { passed: status.success(), output, requests, took: started.elapsed() })
    }
}

/// Reads a child's pipe to its end on a thread (so a full pipe never
/// blocks the child).
fn drain<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut text);
        }
        text
    })
}

struct Outcome {
    passed: bool,
    output: String,
    requests: usize,
    took: Duration,
}

/// Requests answered, from the ndjson report (each recorded interaction
/// carries one `"response":{…}`); 0 when unreadable.
fn count_requests(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|text| text.matches("\"response\":{").count())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_as_admin_or_viewer() -> anyhow::Result<()> {
    let tool = schemathesis()?;
    let served = served().await?;
    let mut failures = Vec::new();
    // Revoking a token ends the run that holds it: every operation but that
    // one as admin, then as viewer, then that one alone (as admin, last).
    let revoke = ["--exclude-operation-id", "revoke_token"];
    let runs = [
        ("admin", served.admin_token.clone(), revoke),
        ("viewer", served.viewer_token.clone(), revoke),
        ("admin-revoke", served.admin_token.clone(), ["--include-operation-id", "revoke_token"]),
    ];
    for (who, token, only) in runs {
        let outcome = tokio::task::block_in_place(|| served.fuzz(who, &token, &only))?;
        eprintln!(
            "schemathesis {} as {who}: {} requests in {:.0?}, {}",
            tool.display(),
            outcome.requests,
            outcome.took,
            if outcome.passed { "passed" } else { "FAILED" }
        );
        if !outcome.passed {
            failures.push(format!("--- as {who} ---\n{}", outcome.output));
        }
    }
    let log = served.server.log();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    assert!(failures.is_empty(), "schemathesis failed:\n{}", failures.join("\n"));
    Ok(())
}
