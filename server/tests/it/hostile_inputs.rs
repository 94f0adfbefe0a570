//! Hostile inputs against the real code paths.
//!
//! Every value a user, a webhook or a repository supplies (git URL, branch,
//! build context and Dockerfile paths, image references, env and build-arg
//! names, service and project names, the health-check path) is refused with
//! an error that names the field, by `server::validate`, by the project store
//! (with nothing written), by `git::checkout` (before any git process starts)
//! and by `docker::build::build_image` (before the engine is contacted).
//!
//! Each shell payload would create a canary file in a per-test temp dir if it
//! ever reached a shell (or git's option parser, or a git remote helper); the
//! canary must never appear. A positive control runs the very same payloads
//! through `sh` and git and watches the canary appear, so the check can fail.
//!
//! The corpus (canary, payloads, rows, per-kind tables) is
//! `server::testkit::hostile`, shared with the REST API's test.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use server::{
    docker::build::{build_image_on, engine_http::Endpoint, image_tags, BuildError, BuildRequest},
    git::checkout,
    logs::{LogHub, LogWriter},
    projects::{HealthProbe, ProjectError, ProjectStore},
    testkit::{
        hostile::{
            base_spec, ext_payload, non_utf8_table, row, shell_payloads, upload_pack_payload, Canary, Kind,
            Row,
        },
        GitRepo, TestDataDir,
    },
    validate::{self, ValidationError},
};

// ----------------------------------------------------------------- helpers --

/// A refusal, whichever layer produced it.
#[derive(Debug)]
struct Refusal {
    field: String,
    message: String,
    /// The error as the user sees it.
    display: String,
}

impl From<&ValidationError> for Refusal {
    fn from(e: &ValidationError) -> Self {
        Refusal { field: e.field.into(), message: e.message.clone(), display: e.to_string() }
    }
}

impl Refusal {
    fn from_project(e: &ProjectError) -> Self {
        match e {
            ProjectError::Invalid { field, message } => {
                Refusal { field: (*field).into(), message: message.clone(), display: e.to_string() }
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    /// `build_image`'s `Invalid` carries the validator's "field: message".
    fn from_build(e: &BuildError) -> Self {
        match e {
            BuildError::Invalid(text) => {
                let (field, message) =
                    text.split_once(": ").unwrap_or_else(|| panic!("no field in {text:?}"));
                Refusal { field: field.into(), message: message.into(), display: text.clone() }
            }
            other => panic!("expected BuildError::Invalid, got {other:?}"),
        }
    }

    /// `git::checkout`'s error wraps the validator's.
    fn from_checkout(e: &anyhow::Error) -> Self {
        let inner = e
            .downcast_ref::<ValidationError>()
            .unwrap_or_else(|| panic!("expected a validation error, got {e:#}"));
        let mut refusal = Refusal::from(inner);
        refusal.display = format!("{e:#}");
        refusal
    }

    /// The error names `field`, gives a message (containing `row.says`), and
    /// does not echo the value or the canary path.
    #[track_caller]
    fn assert_clear(&self, field: &str, row: &Row, canary: &Canary, layer: &str) {
        let value = &row.value;
        assert_eq!(self.field, field, "{layer}: {value:?} refused under the wrong field: {self:?}");
        assert!(!self.message.trim().is_empty(), "{layer}: {value:?} refused without a message");
        assert!(
            self.display.ends_with(&format!("{field}: {}", self.message)),
            "{layer}: {value:?}: the error does not show `field: message`: {:?}",
            self.display
        );
        assert!(
            self.message.contains(row.says),
            "{layer}: {value:?}: message {:?} does not say {:?}",
            self.message,
            row.says
        );
        assert!(
            !self.display.contains(canary.target()),
            "{layer}: {value:?}: the error echoes the payload: {:?}",
            self.display
        );
        if value.len() >= 8 {
            assert!(
                !self.display.contains(value.as_str()),
                "{layer}: the error echoes the rejected value: {:?}",
                self.display
            );
        }
    }
}

async fn count_services(store_db: &server::db::Db) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM services").fetch_one(store_db).await?)
}

/// A log hub in `dir` and a writer for build 1.
async fn build_log(dir: &Path) -> anyhow::Result<(LogHub, LogWriter)> {
    let hub = LogHub::new(dir);
    let writer = hub.writer(1, vec![]).await?;
    Ok((hub, writer))
}

// ------------------------------------------------------------------- tests --

#[test]
fn canary_payloads_fire_when_they_do_reach_a_shell_or_git() -> anyhow::Result<()> {
    let control = Canary::new();
    let target = control.target().to_string();

    for payload in shell_payloads(&target) {
        let script = format!("true main{payload}");
        let _ = Command::new("sh").args(["-c", &script]).status()?;
        assert!(
            control.path().exists(),
            "{payload:?} did not run in sh: the canary check would prove nothing"
        );
        std::fs::remove_file(control.path())?;
    }

    // The git payloads need no shell in the caller: git runs them itself.
    let repo = GitRepo::new()?;
    repo.write("app.txt", "v1")?;
    repo.commit("v1")?;
    let repo_path = repo.path().to_str().expect("temp paths are ASCII").to_string();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(control.dir())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", repo.path())
            .output()
    };
    git(&["ls-remote", &upload_pack_payload(&target), &repo_path])?;
    assert!(control.path().exists(), "git did not run the --upload-pack payload");
    std::fs::remove_file(control.path())?;

    git(&["-c", "protocol.ext.allow=always", "ls-remote", &ext_payload(&target)])?;
    assert!(control.path().exists(), "git did not run the ext:: payload");
    std::fs::remove_file(control.path())?;

    control.assert_untouched();
    Ok(())
}

#[test]
fn validators_reject_every_hostile_value_naming_the_field() {
    let canary = Canary::new();
    let mut total = 0;
    for kind in Kind::ALL {
        let rows = kind.hostile(canary.target());
        assert!(!rows.is_empty(), "{kind:?} has no hostile rows");
        for row in &rows {
            match kind.validate(&row.value) {
                Ok(accepted) => panic!("{kind:?} accepted hostile {:?} as {accepted:?}", row.value),
                Err(e) => Refusal::from(&e).assert_clear(kind.field(), row, &canary, "validate"),
            }
        }
        total += rows.len();
    }
    eprintln!("{total} hostile values refused by the validators");
    assert!(total >= 30, "the issue asks for at least 30 hostile values, the tables have {total}");
    canary.assert_untouched();
}

#[test]
fn non_utf8_bytes_are_rejected_naming_the_field() {
    let canary = Canary::new();
    for (kind, bytes) in non_utf8_table(canary.target()) {
        let bad_at = std::str::from_utf8(&bytes).expect_err("the row is valid UTF-8").valid_up_to();
        let e = validate::from_os_bytes(kind.field(), &bytes).expect_err("non-UTF-8 bytes accepted");
        let described = row(format!("{bytes:?}"), "is not valid UTF-8");
        Refusal::from(&e).assert_clear(kind.field(), &described, &canary, "from_os_bytes");
        assert!(e.message.contains(&format!("byte {bad_at}")), "{kind:?}: {e} does not say where");

        // A lossy conversion must not smuggle the value past the validator.
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        let e = kind.validate(&lossy).expect_err("a lossily decoded value was accepted");
        Refusal::from(&e).assert_clear(kind.field(), &row(lossy, ""), &canary, "validate(lossy)");
    }
    canary.assert_untouched();
}

#[tokio::test]
async fn service_store_rejects_hostile_values_and_writes_nothing() -> anyhow::Result<()> {
    let canary = Canary::new();
    let data = TestDataDir::new()?;
    let db = data.open_db().await?;
    let store = ProjectStore::new(db.clone());
    let project = store.create_project("shop").await?;
    let baseline = store.create_service(project.id, &base_spec("api")).await?;

    let mut checked = 0;
    for kind in Kind::ALL {
        let Some(field) = kind.store_field() else { continue };
        for row in kind.hostile(canary.target()) {
            let mut spec = base_spec("web");
            kind.apply(&mut spec, &row.value);
            let e = store.create_service(project.id, &spec).await.expect_err("hostile service created");
            Refusal::from_project(&e).assert_clear(field, &row, &canary, "create_service");

            let mut spec = baseline.spec.clone();
            kind.apply(&mut spec, &row.value);
            let e = store.update_service(baseline.id, &spec).await.expect_err("hostile update stored");
            Refusal::from_project(&e).assert_clear(field, &row, &canary, "update_service");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} rows went through the store");

    for row in Kind::ProjectName.hostile(canary.target()) {
        let e = store.create_project(&row.value).await.expect_err("hostile project created");
        Refusal::from_project(&e).assert_clear("project", &row, &canary, "create_project");
        let e = store.rename_project(project.id, &row.value).await.expect_err("hostile rename stored");
        Refusal::from_project(&e).assert_clear("project", &row, &canary, "rename_project");
    }

    // Nothing half-written: no new row, the existing ones byte-for-byte unchanged.
    assert_eq!(count_services(&db).await?, 1, "a rejected create left a row behind");
    assert_eq!(store.get_service(baseline.id).await?, baseline, "a rejected update changed the row");
    assert_eq!(store.list_services(project.id).await?, vec![baseline]);
    assert_eq!(store.list_projects().await?, vec![project]);
    canary.assert_untouched();
    Ok(())
}

#[tokio::test]
async fn checkout_rejects_hostile_urls_and_refs_before_git_runs() -> anyhow::Result<()> {
    let canary = Canary::new();
    let repo = GitRepo::new()?;
    repo.write("app.txt", "v1")?;
    let sha = repo.commit("v1")?;
    repo.git(&["branch", "feature/x-1"])?;
    repo.git(&["tag", "v1.2.3"])?;
    let data = TestDataDir::new()?;
    let (hub, mut log) = build_log(data.path()).await?;
    let workspaces = data.path().join("ws");

    // Hostile URLs with a valid ref, and hostile refs against a real
    // repository: were validation skipped, git would really run.
    let attempts = Kind::GitUrl
        .hostile(canary.target())
        .into_iter()
        .map(|row| (row.value.clone(), "main".to_string(), "git_url", row))
        .chain(
            Kind::GitRef
                .hostile(canary.target())
                .into_iter()
                .map(|row| (repo.url(), row.value.clone(), "git_ref", row)),
        );
    for (i, (url, git_ref, field, row)) in attempts.enumerate() {
        let dest = workspaces.join(format!("attempt-{i}"));
        let e = checkout(&url, &git_ref, &dest, &mut log).await.expect_err("hostile checkout ran");
        Refusal::from_checkout(&e).assert_clear(field, &row, &canary, "checkout");
        assert!(!dest.exists(), "{:?}: the workspace was created before validation", row.value);
    }
    assert!(!workspaces.exists(), "no workspace may exist after refused checkouts");
    let logged = hub.read_from(1, 0).await?;
    assert!(logged.is_empty(), "refused checkouts logged (so got as far as git): {logged:?}");
    canary.assert_untouched();

    // Control: the same call with legitimate values does run git.
    for good in ["feature/x-1", "v1.2.3", sha.as_str()] {
        let dest = workspaces.join(format!("good-{}", good.replace('/', "-")));
        let got = checkout(&repo.url(), good, &dest, &mut log).await?;
        assert_eq!(got.commit, sha, "{good}");
        assert_eq!(std::fs::read_to_string(dest.join("app.txt"))?, "v1");
    }
    canary.assert_untouched();
    Ok(())
}

#[tokio::test]
async fn build_image_rejects_hostile_requests_before_contacting_docker() -> anyhow::Result<()> {
    let canary = Canary::new();
    let data = TestDataDir::new()?;
    let context_dir = data.path().join("ctx");
    std::fs::create_dir_all(&context_dir)?;
    std::fs::write(context_dir.join("Dockerfile"), "FROM scratch\n")?;
    // An engine socket nobody listens on: a request that gets past
    // validation fails as an engine error, never as `Invalid`.
    let socket = data.path().join("no-engine.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket)?);
    let docker = bollard::Docker::connect_with_unix(
        socket.to_str().expect("temp paths are ASCII"),
        10,
        bollard::API_DEFAULT_VERSION,
    )?;
    let (hub, mut log) = build_log(data.path()).await?;
    let valid = || BuildRequest {
        context_dir: context_dir.clone(),
        dockerfile: "Dockerfile".into(),
        tags: vec!["slipway/shop-api:build-1".into()],
        build_args: HashMap::from([("NODE_ENV".to_string(), "production".to_string())]),
        ..BuildRequest::default()
    };

    // build_image names the Dockerfile field "dockerfile".
    for (kind, field) in
        [(Kind::DockerfilePath, "dockerfile"), (Kind::Image, "image"), (Kind::BuildArg, "build_arg")]
    {
        for row in kind.hostile(canary.target()) {
            let mut req = valid();
            match kind {
                Kind::DockerfilePath => req.dockerfile = row.value.clone(),
                // Second place: every tag is checked, not just the first.
                Kind::Image => req.tags.push(row.value.clone()),
                Kind::BuildArg => {
                    req.build_args.insert(row.value.clone(), "1".into());
                }
                _ => unreachable!(),
            }
            let e = build_image_on(&docker, Ok(Endpoint::Unix(socket.clone())), req, &mut log)
                .await
                .expect_err("hostile build request accepted");
            Refusal::from_build(&e).assert_clear(field, &row, &canary, "build_image");
        }
    }
    let logged = hub.read_from(1, 0).await?;
    assert!(logged.is_empty(), "refused builds packed or sent a context: {logged:?}");
    canary.assert_untouched();

    // Control: the valid request passes validation and fails only at the
    // (absent) engine, after packing the context (BuildKit's ping fails:
    // the classic builder is tried, and fails too).
    let endpoint = Ok(Endpoint::Unix(socket.clone()));
    match build_image_on(&docker, endpoint, valid(), &mut log).await {
        Err(BuildError::Engine(_)) => {}
        other => panic!("a valid request must reach the engine, got {other:?}"),
    }
    let logged = hub.read_from(1, 0).await?;
    assert!(logged.iter().any(|l| l.text.contains("Sending build context")), "{logged:?}");
    canary.assert_untouched();
    Ok(())
}

#[test]
fn image_tags_from_any_branch_are_valid_and_inert() {
    let canary = Canary::new();
    let branches = Kind::GitRef
        .table(canary.target())
        .into_iter()
        .map(|r| r.value)
        .chain(["feature/x-1", "v1.2.3", "-", ".", "..", "\u{e9}t\u{e9}"].map(String::from));
    for branch in branches {
        let tags = image_tags("shop", "api", 12, "abc1234", &branch);
        assert_eq!(tags.len(), 3, "{branch:?}: {tags:?}");
        for tag in tags {
            assert!(tag.starts_with("slipway/shop-api:"), "{branch:?}: {tag}");
            assert!(
                tag.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.-:/".contains(&c)),
                "{branch:?}: tag {tag:?} carries a metacharacter"
            );
            if let Err(e) = validate::image_ref(&tag) {
                panic!("{branch:?}: tag {tag:?} is not a valid image reference: {e}");
            }
        }
    }
    canary.assert_untouched();
}

#[tokio::test]
async fn legitimate_edge_cases_are_accepted() -> anyhow::Result<()> {
    let accepted: Vec<(Kind, &str, &str)> = vec![
        (Kind::GitUrl, "https://example.com/a/b.git", "https://example.com/a/b.git"),
        (Kind::GitUrl, "file:///srv/git/repo.git", "file:///srv/git/repo.git"),
        (Kind::GitUrl, "ssh://git@example.com:2222/o/r.git", "ssh://git@example.com:2222/o/r.git"),
        (Kind::GitUrl, "git@example.com:o/r.git", "git@example.com:o/r.git"),
        (Kind::GitUrl, "https://example.com/a%20b/c.git", "https://example.com/a%20b/c.git"),
        (Kind::GitRef, "feature/x-1", "feature/x-1"),
        (Kind::GitRef, "v1.2.3", "v1.2.3"),
        (Kind::GitRef, "refs/tags/v1.0", "refs/tags/v1.0"),
        (Kind::GitRef, "dependabot/npm_and_yarn/lodash-4.17.21", "dependabot/npm_and_yarn/lodash-4.17.21"),
        (Kind::GitRef, "fix-#12", "fix-#12"),
        (Kind::ContextPath, ".", "."),
        (Kind::ContextPath, "./services/api/", "services/api"),
        (Kind::DockerfilePath, "docker/Dockerfile.prod", "docker/Dockerfile.prod"),
        (Kind::DockerfilePath, ".config/Dockerfile", ".config/Dockerfile"),
        (Kind::Image, "alpine", "alpine"),
        (Kind::Image, "ghcr.io/o/app:v1.2.3", "ghcr.io/o/app:v1.2.3"),
        (Kind::Image, "localhost:5000/team/app", "localhost:5000/team/app"),
        (Kind::Image, "slipway/shop-api:build-12", "slipway/shop-api:build-12"),
        (Kind::EnvName, "DATABASE_URL", "DATABASE_URL"),
        (Kind::EnvName, "_x1", "_x1"),
        (Kind::BuildArg, "NODE_ENV", "NODE_ENV"),
        (Kind::ServiceName, "my-api-2", "my-api-2"),
        (Kind::ServiceName, "a", "a"),
        (Kind::ProjectName, "shop", "shop"),
        (Kind::HealthPath, "/healthz", "/healthz"),
        (Kind::HealthPath, "/api/v1/health?full=1", "/api/v1/health?full=1"),
    ];
    for (kind, raw, normalized) in accepted {
        assert_eq!(kind.validate(raw).as_deref(), Ok(normalized), "{kind:?} {raw:?}");
    }

    // The same edge cases in one service, through the store.
    let data = TestDataDir::new()?;
    let store = ProjectStore::new(data.open_db().await?);
    let project = store.create_project("shop").await?;
    let mut spec = base_spec("my-api-2");
    spec.git_url = "file:///srv/git/repo.git".into();
    spec.branch = "feature/x-1".into();
    spec.context_path = "./services/api/".into();
    spec.dockerfile_path = "docker/Dockerfile.prod".into();
    spec.build_args.insert("NODE_ENV".into(), "$(not a shell)".into());
    spec.health.probe = HealthProbe::Http { path: "/healthz".into() };
    let created = store.create_service(project.id, &spec).await?;
    assert_eq!(created.spec.context_path, "services/api");
    assert_eq!(created.spec.branch, "feature/x-1");
    assert_eq!(created.spec.build_args.get("NODE_ENV").map(String::as_str), Some("$(not a shell)"));
    assert_eq!(store.get_service(created.id).await?, created);
    Ok(())
}
