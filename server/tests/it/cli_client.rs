//! The real binary both ways: `slipway serve`, and the client commands
//! (`slipway build -f`, `deploy --wait`, `rollback --wait`, `logs`) run as
//! separate processes against its REST API with an API token, real git
//! repositories and the real Docker engine.
//!
//! Also the secrets guarantee: a secret env var whose value the Dockerfile
//! echoes while building and the container prints when it starts appears
//! in no build log, no deployment log tail, no API response, no server log
//! line and no byte of the SQLite files.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use anyhow::Context;
use app::wire::{
    BuildDetail, BuildView, DeploymentView, EnvVar, JobView, LogLineView, ProjectView, Role, ServiceDetail,
    ServiceSettings,
};
use bollard::Docker;
use serde_json::{json, Value};
use server::testkit::{
    docker::ensure_base_image, instance::InstanceCleanup, wait::unique_suffix, GitRepo, ServerProcess,
    TestDataDir, BASE_IMAGE,
};

const PW: &str = "correct horse battery";

struct Live {
    server: ServerProcess,
    token: String,
    http: reqwest::Client,
    data: TestDataDir,
    unique: String,
    _site: TestDataDir,
    _cleanup: InstanceCleanup,
}

impl Live {
    /// A served data dir with an admin and an API token of theirs.
    async fn start() -> anyhow::Result<Live> {
        let docker = Docker::connect_with_defaults()?;
        ensure_base_image(&docker).await?;
        let data = TestDataDir::new()?;
        let site = TestDataDir::new()?;
        let db = data.open_db().await?;
        let uid = server::db::instance_uid(&db).await?;
        let auth = server::auth::Auth::open(db.clone(), Default::default()).await?;
        let admin = auth.users.create("root", PW, Role::Admin).await?;
        let (_, token) = auth.tokens.create(&admin.caller(), "ci", None).await?;
        db.close().await;
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_slipway"));
        let (d, s) = (data.path().to_path_buf(), site.path().to_path_buf());
        let server = tokio::task::spawn_blocking(move || ServerProcess::start(&bin, &d, &s)).await??;
        Ok(Live {
            server,
            token,
            http: reqwest::Client::new(),
            data,
            unique: unique_suffix(),
            _site: site,
            _cleanup: InstanceCleanup::new(docker, uid),
        })
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, String)> {
        let mut req = self.http.request(method, self.server.url(path)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        Ok((res.status().as_u16(), res.text().await?))
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<T> {
        let (status, text) = self.api(method, path, body).await?;
        anyhow::ensure!((200..300).contains(&status), "{path}: {status} {text}");
        serde_json::from_str(&text).with_context(|| format!("{path}: {text}"))
    }

    /// A project and a service (quick HTTP health check, no drain) through the API.
    async fn service(&self, name: &str, repo: &GitRepo, env: Vec<EnvVar>) -> anyhow::Result<ServiceDetail> {
        let body = json!({ "name": format!("p-{name}-{}", self.unique) });
        let project: ProjectView = self.json(reqwest::Method::POST, "/api/v1/projects", Some(body)).await?;
        let settings = ServiceSettings {
            name: format!("{name}-{}", self.unique),
            git_url: repo.url(),
            health_interval_ms: 100,
            health_timeout_ms: 1000,
            health_retries: 30,
            memory_mb: 64,
            cpu_millis: 500,
            auto_deploy: false,
            drain_secs: 0,
            env,
            ..ServiceSettings::defaults()
        };
        let path = format!("/api/v1/projects/{}/services", project.id);
        self.json(reqwest::Method::POST, &path, Some(json!(settings))).await
    }

    /// Runs `slipway <args>` as a client of this server.
    async fn cli(&self, args: &[&str], token: &str) -> anyhow::Result<Output> {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_slipway"));
        let mut cmd = Command::new(bin);
        cmd.args(args).env("SLIPWAY_URL", format!("http://{}", self.server.addr)).env("SLIPWAY_TOKEN", token);
        Ok(tokio::task::spawn_blocking(move || cmd.output()).await??)
    }

    async fn edge_get(&self, host: &str) -> anyhow::Result<String> {
        let url = format!("http://{}/", self.server.edge_addr);
        Ok(self.http.get(url).header("host", host).send().await?.text().await?)
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test]
async fn the_cli_builds_deploys_and_rolls_back_through_the_api() -> anyhow::Result<()> {
    let live = Live::start().await?;
    let repo = GitRepo::http_service("v1")?;
    let svc = live.service("cli", &repo, Vec::new()).await?;
    let spec = format!("p-cli-{}/{}", live.unique, svc.settings.name);
    let token = live.token.clone();

    let out = live.cli(&["build", &spec, "--ref", "main", "-f"], &token).await?;
    let printed = text(&out);
    assert!(out.status.success(), "build -f failed:\n{printed}\n{}", live.server.log());
    assert!(printed.contains("build #1") && printed.contains("succeeded"), "{printed}");
    assert!(printed.contains("Fetching") || printed.contains("Step"), "the log was followed:\n{printed}");
    assert!(!printed.contains("Building without the build cache"), "{printed}");

    // `--no-cache`: this build alone runs every step again.
    let out = live.cli(&["build", &spec, "--no-cache", "--build-only", "-f"], &token).await?;
    let printed = text(&out);
    assert!(out.status.success(), "build --no-cache failed:\n{printed}");
    assert!(
        printed.contains("build #2") && printed.contains("Building without the build cache"),
        "{printed}"
    );
    // The Dockerfile's own step ran again (the base image is always "CACHED").
    let copy = printed.lines().find(|l| l.contains("[2/2] COPY")).and_then(|l| l.split(' ').next());
    let copy = copy.unwrap_or_else(|| panic!("no COPY step:\n{printed}"));
    assert!(
        !printed.lines().any(|l| l == format!("{copy} CACHED")),
        "the COPY step came from the cache:\n{printed}"
    );

    let out = live.cli(&["deploy", &spec, "--reason", "first", "--wait"], &token).await?;
    assert!(out.status.success(), "deploy failed:\n{}", text(&out));
    assert!(text(&out).contains("live"), "{}", text(&out));
    let host = svc.host.clone();
    assert_eq!(live.edge_get(&host).await?.trim(), "v1");

    repo.write("index.html", "v2")?;
    repo.commit("v2")?;
    let out = live.cli(&["build", &spec, "--deploy", "-f"], &token).await?;
    assert!(out.status.success(), "build --deploy failed:\n{}", text(&out));
    let v2_live = server::testkit::wait::wait_until("v2 live", Duration::from_secs(60), || async {
        Ok(live.edge_get(&host).await.ok().filter(|b| b.trim() == "v2"))
    })
    .await;
    assert!(v2_live.is_ok(), "v2 never went live");

    let out = live.cli(&["rollback", &spec, "--reason", "bad v2", "--wait"], &token).await?;
    assert!(out.status.success(), "rollback failed:\n{}", text(&out));
    assert_eq!(live.edge_get(&host).await?.trim(), "v1", "rolled back to v1");
    let history: app::wire::HistoryPage<DeploymentView> =
        live.json(reqwest::Method::GET, &format!("/api/v1/services/{}/deployments", svc.id), None).await?;
    let newest = &history.items[0];
    assert_eq!(newest.status, "live");
    assert!(newest.rollback_of.is_some(), "the live deployment is a rollback");
    assert_eq!(newest.reason.as_deref(), Some("bad v2"));

    let out = live.cli(&["logs", "1"], &token).await?;
    assert!(out.status.success() && !out.stdout.is_empty(), "logs:\n{}", text(&out));
    let out = live.cli(&["builds", &spec, "--json"], &token).await?;
    let first: BuildView =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or(""))?;
    assert_eq!(first.trigger, "api", "a token's build is recorded as from the API");

    // Refusals: a bad token, an unknown service, a failed ref.
    let out = live.cli(&["builds", &spec], "slp_not-a-real-token").await?;
    assert!(!out.status.success() && text(&out).contains("not valid"), "{}", text(&out));
    let out = live.cli(&["build", "no-such-service"], &token).await?;
    assert!(!out.status.success() && text(&out).contains("no service"), "{}", text(&out));
    let out = live.cli(&["build", &spec, "--ref", "$(id)"], &token).await?;
    assert!(!out.status.success() && text(&out).contains("invalid"), "{}", text(&out));

    // The audit log saw the API's work, attributed to the token's user.
    let events: Vec<app::wire::AuditEventView> =
        live.json(reqwest::Method::GET, "/api/v1/audit?actor=root&source=api&limit=100", None).await?;
    for action in ["build.trigger", "deploy.create", "deploy.rollback", "service.create"] {
        assert!(events.iter().any(|e| e.action == action), "no {action} in {events:?}");
    }
    Ok(())
}

/// Every byte of the SQLite database files.
fn database_bytes(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.contains(".db") || name.contains("sqlite") {
            all.extend(std::fs::read(&path)?);
        }
    }
    anyhow::ensure!(!all.is_empty(), "no database file in {}", dir.display());
    Ok(all)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_secret_echoed_by_the_build_and_the_container_is_never_revealed() -> anyhow::Result<()> {
    let live = Live::start().await?;
    let secret = format!("s3cr3t-{}-value", unique_suffix());
    let repo = GitRepo::new()?;
    repo.write("index.html", "ok")?;
    // The Dockerfile prints the value while building; the container prints
    // its environment when it starts.
    repo.write(
        "Dockerfile",
        &format!(
            "FROM {BASE_IMAGE}\nCOPY index.html /www/index.html\nRUN echo \"the key is {secret}\"\n\
             CMD [\"sh\", \"-c\", \"echo started with $API_KEY; httpd -f -p 8080 -h /www\"]\n"
        ),
    )?;
    repo.commit("echo the secret")?;
    let env = vec![
        EnvVar { name: "API_KEY".into(), value: Some(secret.clone()), secret: true },
        EnvVar { name: "MODE".into(), value: Some("prod".into()), secret: false },
    ];
    let svc = live.service("secret", &repo, env).await?;
    let mut responses = Vec::new();

    let (status, body) = live
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/services/{}/builds", svc.id),
            Some(json!({ "deploy": true })),
        )
        .await?;
    assert_eq!(status, 202, "{body}");
    let build: BuildView = serde_json::from_str(&body)?;
    responses.push(body);
    let done = server::testkit::wait::wait_until("build finished", Duration::from_secs(120), || async {
        let d: BuildDetail =
            live.json(reqwest::Method::GET, &format!("/api/v1/builds/{}", build.id), None).await?;
        let b = d.build;
        Ok((!b.is_active()).then_some(b))
    })
    .await;
    let done = done?;
    assert_eq!(done.status, "succeeded", "{:?}", done.error);
    // The build names its job; the jobs endpoint reports its end (the job
    // row is finished just after the build row, so wait for it).
    let job_id = build.job_id.context("a queued build names its job")?;
    let job = server::testkit::wait::wait_until("job finished", Duration::from_secs(30), || async {
        let job: JobView = live.json(reqwest::Method::GET, &format!("/api/v1/jobs/{job_id}"), None).await?;
        Ok((job.status != "queued" && job.status != "running").then_some(job))
    })
    .await?;
    assert_eq!((job.id, job.kind.as_str(), job.status.as_str()), (job_id, "build", "succeeded"), "{job:?}");
    let (_, log_body) =
        live.api(reqwest::Method::GET, &format!("/api/v1/builds/{}/log", build.id), None).await?;
    let lines: Vec<LogLineView> = serde_json::from_str(&log_body)?;
    assert!(lines.iter().any(|l| l.text.contains("the key is ********")), "the echo is masked:\n{log_body}");
    responses.push(log_body);

    // The container printed it at start; a failing deploy keeps its log tail.
    let live_dep = server::testkit::wait::wait_until("deployed", Duration::from_secs(60), || async {
        let page: app::wire::HistoryPage<DeploymentView> = live
            .json(reqwest::Method::GET, &format!("/api/v1/services/{}/deployments", svc.id), None)
            .await?;
        Ok(page.items.into_iter().find(|d| d.status == "live"))
    })
    .await?;
    let mut settings = svc.settings.clone();
    settings.health = app::wire::HealthProbeForm::Http { path: "/missing".into() };
    settings.health_retries = 2;
    // The secret comes back as null, which keeps its stored value.
    assert!(settings.env.iter().any(|v| v.name == "API_KEY" && v.secret && v.value.is_none()));
    let (status, body) = live
        .api(reqwest::Method::PUT, &format!("/api/v1/services/{}", svc.id), Some(json!(settings)))
        .await?;
    assert_eq!(status, 200, "{body}");
    responses.push(body);
    let (status, body) = live
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/services/{}/deployments", svc.id),
            Some(json!({ "build_id": build.id, "reason": "will fail" })),
        )
        .await?;
    assert_eq!(status, 202, "{body}");
    let failing: DeploymentView = serde_json::from_str(&body)?;
    let failed = server::testkit::wait::wait_until("deploy failed", Duration::from_secs(60), || async {
        let d: DeploymentView =
            live.json(reqwest::Method::GET, &format!("/api/v1/deployments/{}", failing.id), None).await?;
        Ok((!d.is_active()).then_some(d))
    })
    .await?;
    assert_eq!(failed.status, "failed");
    let tail = failed.log_tail.clone().unwrap_or_default();
    assert!(tail.contains("started with ********"), "the container's output is kept, masked: {tail:?}");

    // A failing step whose command line and output hold the value: the
    // error stored on the build and the job (and shown by the API, logged
    // by the worker) is masked too.
    repo.write("Dockerfile", &format!("FROM {BASE_IMAGE}\nRUN echo \"the key is {secret}\" && false\n"))?;
    repo.commit("fail while echoing the secret")?;
    let (status, body) = live
        .api(reqwest::Method::POST, &format!("/api/v1/services/{}/builds", svc.id), Some(json!({})))
        .await?;
    assert_eq!(status, 202, "{body}");
    let failing_build: BuildView = serde_json::from_str(&body)?;
    let broken =
        server::testkit::wait::wait_until("failing build finished", Duration::from_secs(120), || async {
            let d: BuildDetail = live
                .json(reqwest::Method::GET, &format!("/api/v1/builds/{}", failing_build.id), None)
                .await?;
            Ok((!d.build.is_active()).then_some(d.build))
        })
        .await?;
    assert_eq!(broken.status, "failed");
    let error = broken.error.clone().unwrap_or_default();
    assert!(error.contains("********"), "the failing step is named, masked: {error:?}");
    responses
        .push(live.api(reqwest::Method::GET, &format!("/api/v1/builds/{}", failing_build.id), None).await?.1);
    responses.push(
        live.api(reqwest::Method::GET, &format!("/api/v1/builds/{}/log", failing_build.id), None).await?.1,
    );

    for path in [
        format!("/api/v1/services/{}", svc.id),
        format!("/api/v1/services/{}/deployments", svc.id),
        format!("/api/v1/deployments/{}", live_dep.id),
        format!("/api/v1/deployments/{}", failed.id),
        format!("/api/v1/deployments/{}/rollback", live_dep.id),
        "/api/v1/projects".to_string(),
        "/api/v1/audit?limit=200".to_string(),
    ] {
        responses.push(live.api(reqwest::Method::GET, &path, None).await?.1);
    }
    for (i, r) in responses.iter().enumerate() {
        assert!(!r.contains(&secret), "API response {i} reveals the secret: {r}");
    }
    assert!(!live.server.log().contains(&secret), "the server log reveals the secret");
    let db = database_bytes(live.data.path())?;
    assert!(!contains(&db, &secret), "the SQLite files hold the secret in plain text");
    assert!(
        contains(&db, "API_KEY") && contains(&db, "prod"),
        "the env was stored (the grep can see plain text)"
    );
    let logs_dir = live.data.path().join("logs");
    for entry in walk(&logs_dir)? {
        let bytes = std::fs::read(&entry)?;
        assert!(!contains(&bytes, &secret), "{} holds the secret", entry.display());
    }
    Ok(())
}

fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if !dir.exists() {
        return Ok(files);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(walk(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}
