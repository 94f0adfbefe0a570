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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use server::{
    docker::build::{build_image, image_tags, BuildError, BuildRequest},
    git::checkout,
    logs::{LogHub, LogWriter},
    projects::{HealthProbe, ProjectError, ProjectStore, ServiceSpec},
    testkit::{GitRepo, TestDataDir},
    validate::{self, ValidationError},
};
use tempfile::TempDir;

// ------------------------------------------------------------------ canary --

/// A file the payloads create if they ever run. Its path is kept short (and
/// free of shell metacharacters) so that payloads still fit in short fields
/// such as 40-byte slugs and are refused for their characters, not their
/// length.
struct Canary {
    dir: TempDir,
    path: PathBuf,
}

impl Canary {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sw")
            .rand_bytes(6)
            .tempdir_in("/tmp")
            .expect("cannot create the canary dir");
        let path = dir.path().join("c");
        let canary = Canary { dir, path };
        assert!(
            canary.target().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'/'),
            "the canary path must be plain for the payloads to be well-formed: {}",
            canary.target()
        );
        canary
    }

    /// The canary's absolute path, as the payloads spell it.
    fn target(&self) -> &str {
        self.path.to_str().expect("temp paths are ASCII")
    }

    /// Panics if the canary, or anything else, appeared in its directory.
    #[track_caller]
    fn assert_untouched(&self) {
        let entries: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("the canary dir is readable")
            .map(|e| e.expect("canary dir entry").file_name())
            .collect();
        assert!(
            entries.is_empty(),
            "a hostile payload ran: {entries:?} appeared in {}",
            self.dir.path().display()
        );
    }
}

/// Every way a value could smuggle a command into a shell, each running
/// `touch <target>`. The last one contains no whitespace, to get past
/// validators that only look for spaces.
fn shell_payloads(target: &str) -> Vec<String> {
    vec![
        format!("$(touch {target})"),
        format!("`touch {target}`"),
        format!(";touch {target}"),
        format!("|touch {target}"),
        format!("&&touch {target}"),
        format!("\ntouch {target}"),
        format!("$(touch${{IFS}}{target})"),
    ]
}

/// A git option that runs a command instead of `git-upload-pack`.
fn upload_pack_payload(target: &str) -> String {
    format!("--upload-pack=touch {target}")
}

/// git's `ext::` remote helper, which runs a command (`% ` is a space).
fn ext_payload(target: &str) -> String {
    format!("ext::sh -c touch% {target}")
}

// -------------------------------------------------------------------- rows --

/// One hostile value.
struct Row {
    value: String,
    /// A fragment the error message must contain; "" when any clear message
    /// will do (which check fires first is the validator's business).
    says: &'static str,
}

fn row(value: impl Into<String>, says: &'static str) -> Row {
    Row { value: value.into(), says }
}

/// `prefix` followed by each shell payload.
fn shell_rows(prefix: &str, target: &str) -> Vec<Row> {
    shell_payloads(target).into_iter().map(|p| row(format!("{prefix}{p}"), "")).collect()
}

/// The kinds of field, each with its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    GitUrl,
    GitRef,
    ContextPath,
    DockerfilePath,
    Image,
    EnvName,
    BuildArg,
    ServiceName,
    ProjectName,
    HealthPath,
}

impl Kind {
    const ALL: [Kind; 10] = [
        Kind::GitUrl,
        Kind::GitRef,
        Kind::ContextPath,
        Kind::DockerfilePath,
        Kind::Image,
        Kind::EnvName,
        Kind::BuildArg,
        Kind::ServiceName,
        Kind::ProjectName,
        Kind::HealthPath,
    ];

    /// The field the validator names.
    fn field(self) -> &'static str {
        match self {
            Kind::GitUrl => "git_url",
            Kind::GitRef => "git_ref",
            Kind::ContextPath => "context_path",
            Kind::DockerfilePath => "dockerfile_path",
            Kind::Image => "image",
            Kind::EnvName => "env_name",
            Kind::BuildArg => "build_arg",
            Kind::ServiceName => "service",
            Kind::ProjectName => "project",
            Kind::HealthPath => "health_path",
        }
    }

    /// Runs `value` through the validator of its kind. The health-check path
    /// has no function of its own in `validate`: it goes through
    /// `ServiceSpec::validate`.
    fn validate(self, value: &str) -> Result<String, ValidationError> {
        match self {
            Kind::GitUrl => validate::git_url(value),
            Kind::GitRef => validate::git_ref(value),
            Kind::ContextPath => validate::rel_path("context_path", value),
            Kind::DockerfilePath => validate::rel_path("dockerfile_path", value),
            Kind::Image => validate::image_ref(value),
            Kind::EnvName => validate::env_name(value),
            Kind::BuildArg => validate::build_arg_name(value),
            Kind::ServiceName => validate::slug("service", value),
            Kind::ProjectName => validate::slug("project", value),
            Kind::HealthPath => {
                let mut spec = base_spec("api");
                spec.health.probe = HealthProbe::Http { path: value.into() };
                match spec.validate() {
                    Ok(valid) => match valid.health.probe {
                        HealthProbe::Http { path } => Ok(path),
                        other => panic!("the probe changed kind: {other:?}"),
                    },
                    Err(ProjectError::Invalid { field, message }) => Err(ValidationError { field, message }),
                    Err(other) => panic!("health path {value:?}: not a validation error: {other}"),
                }
            }
        }
    }

    /// The field the project store names when it refuses the value in a
    /// service spec; `None` for values that are not part of a spec.
    fn store_field(self) -> Option<&'static str> {
        match self {
            Kind::GitUrl => Some("git_url"),
            Kind::GitRef => Some("branch"),
            Kind::ContextPath => Some("context_path"),
            Kind::DockerfilePath => Some("dockerfile_path"),
            Kind::BuildArg => Some("build_arg"),
            Kind::ServiceName => Some("service"),
            Kind::HealthPath => Some("health_path"),
            Kind::Image | Kind::EnvName | Kind::ProjectName => None,
        }
    }

    /// Puts `value` into the spec field of this kind.
    fn apply(self, spec: &mut ServiceSpec, value: &str) {
        match self {
            Kind::GitUrl => spec.git_url = value.into(),
            Kind::GitRef => spec.branch = value.into(),
            Kind::ContextPath => spec.context_path = value.into(),
            Kind::DockerfilePath => spec.dockerfile_path = value.into(),
            Kind::BuildArg => {
                spec.build_args.insert(value.into(), "1".into());
            }
            Kind::ServiceName => spec.name = value.into(),
            Kind::HealthPath => spec.health.probe = HealthProbe::Http { path: value.into() },
            Kind::Image | Kind::EnvName | Kind::ProjectName => panic!("{self:?} is not in a service spec"),
        }
    }

    /// Every row of this kind's table, known gaps included.
    fn table(self, c: &str) -> Vec<Row> {
        match self {
            Kind::GitUrl => git_url_table(c),
            Kind::GitRef => git_ref_table(c),
            Kind::ContextPath => context_path_table(c),
            Kind::DockerfilePath => dockerfile_table(c),
            Kind::Image => image_table(c),
            Kind::EnvName => env_name_table(c),
            Kind::BuildArg => build_arg_table(c),
            Kind::ServiceName => service_name_table(c),
            Kind::ProjectName => project_name_table(c),
            Kind::HealthPath => health_path_table(c),
        }
    }

    /// The rows that must be refused.
    fn hostile(self, c: &str) -> Vec<Row> {
        self.table(c)
    }
}

// ------------------------------------------------------------------ tables --

fn git_url_table(c: &str) -> Vec<Row> {
    let mut rows = vec![
        row(upload_pack_payload(c), "must not start with '-'"),
        row(format!("-c core.sshCommand=touch {c}"), "must not start with '-'"),
        row(format!("-oProxyCommand=touch {c}"), "must not start with '-'"),
        row(ext_payload(c), ""),
        row(format!("ext::sh${{IFS}}-c${{IFS}}touch%${{IFS}}{c}"), "remote helper"),
        row("EXT::sh", "remote helper"),
        row("fd::17", "remote helper"),
        row(format!("https://example.com/a/b.git {}", upload_pack_payload(c)), "whitespace"),
        row(format!("https://example.com/a/b.git/--upload-pack=touch${{IFS}}{c}"), "git options"),
        row(format!("ssh://git@-oProxyCommand=touch${{IFS}}{c}/repo"), "must not start with '-'"),
        row(format!("ssh://-oProxyCommand=touch${{IFS}}{c}/repo"), "must not start with '-'"),
        row(format!("https://example.com/a/b.git%0atouch%20{c}"), "encoded control"),
        row("/etc/passwd", "must be an https, ssh, git or file URL"),
        row("../../srv/git/repo.git", "must be an https, ssh, git or file URL"),
        row("file://evil.example.com/srv/repo.git", "empty host"),
        row("https://example.com/a/b.git\0", "control characters"),
        row("https://\u{435}xample.com/a/b.git", "ASCII"),
        row(format!("https://example.com/{}", "a".repeat(3000)), "at most 2048 bytes"),
    ];
    rows.extend(shell_rows("https://example.com/a/b.git", c));
    rows
}

fn git_ref_table(c: &str) -> Vec<Row> {
    let mut rows = vec![
        row(upload_pack_payload(c), "must not start with '-'"),
        row(format!("--output={c}"), "must not start with '-'"),
        row("-c", "must not start with '-'"),
        row("main:refs/heads/evil", "':'"),
        row("+refs/heads/*:refs/heads/*", ""),
        row("../../.git/config", "'..'"),
        row("/etc/passwd", "must not start or end with '/'"),
        row("HEAD@{1}", "'@{'"),
        row("refs/heads/main.lock", "'.lock'"),
        row("main\0", "control characters"),
        row("m\u{430}in", "ASCII"),
        row("r".repeat(256), "at most 255 bytes"),
    ];
    rows.extend(shell_rows("main", c));
    rows
}

fn context_path_table(c: &str) -> Vec<Row> {
    let mut rows = vec![
        row("..", "'..'"),
        row("../../etc", "'..'"),
        row("app/../../..", "'..'"),
        row("/etc", "relative"),
        row("//etc/passwd", "relative"),
        row("..\\..\\windows", "'/' as separator"),
        row("-f", "must not start with '-'"),
        row(format!("app/--output={c}"), "must not start with '-'"),
        row("app\0", "control characters"),
        row("caf\u{e9}", "ASCII"),
        row("d/".repeat(600), "at most 1024 bytes"),
    ];
    rows.extend(shell_rows("app", c));
    rows
}

fn dockerfile_table(c: &str) -> Vec<Row> {
    let mut rows = vec![
        row("/etc/passwd", "relative"),
        row("../Dockerfile", "'..'"),
        row("../../../../etc/shadow", "'..'"),
        row(format!("--file={c}"), "must not start with '-'"),
        row("-", "must not start with '-'"),
        row(format!("Dockerfile\nRUN touch {c}"), "control characters"),
        row(format!("{}/Dockerfile", "x".repeat(1100)), "at most 1024 bytes"),
    ];
    rows.extend(shell_rows("Dockerfile", c));
    rows
}

fn image_table(c: &str) -> Vec<Row> {
    let mut rows = vec![
        row("--help", "must not start with '-'"),
        row(format!("--output=type=local,dest={c}"), "must not start with '-'"),
        row("-alpine", "must not start with '-'"),
        row("../../etc/passwd", ""),
        row("/etc/passwd", ""),
        row("alpine@sha256:$(id)", "digest"),
        row("alpine\n", "control characters"),
        row("\u{ff41}lpine", "ASCII"),
        row(format!("{}:1", "a".repeat(600)), "at most 512 bytes"),
    ];
    rows.extend(shell_rows("alpine", c));
    rows
}

fn env_name_table(c: &str) -> Vec<Row> {
    let mut rows = vec![
        row("-APP", "must start with a letter or '_'"),
        row("1APP", "must start with a letter or '_'"),
        row(format!("APP=$(touch {c})"), "may only contain letters, digits and '_'"),
        row("A B", "may only contain letters, digits and '_'"),
        row("BASH_FUNC_x%%", "may only contain letters, digits and '_'"),
        row("PATH\0", "control characters"),
        row("\u{c4}PP", "must start with a letter or '_'"),
        row("X".repeat(129), "at most 128 bytes"),
    ];
    rows.extend(shell_rows("APP", c));
    rows
}

fn build_arg_table(c: &str) -> Vec<Row> {
    let mut rows = vec![
        row("-VERSION", "must start with a letter or '_'"),
        row("9LIVES", "must start with a letter or '_'"),
        row(format!("V=1 --build-arg X=$(touch {c})"), "may only contain letters, digits and '_'"),
        row("HTTP_PROXY\n", "control characters"),
        row("B".repeat(200), "at most 128 bytes"),
    ];
    rows.extend(shell_rows("VERSION", c));
    rows
}

fn service_name_table(c: &str) -> Vec<Row> {
    let mut rows = vec![
        row("-api", "must start and end with a letter or digit"),
        row("--rm", "must start and end with a letter or digit"),
        row("api-", "must start and end with a letter or digit"),
        row("API", "lowercase"),
        row("../api", "lowercase"),
        row("/api", "lowercase"),
        row("api.internal", "lowercase"),
        row(" api", "lowercase"),
        row("\u{430}pi", "lowercase"),
        row("api\n", "control characters"),
        row("a".repeat(41), "at most 40 bytes"),
    ];
    rows.extend(shell_rows("api", c));
    rows
}

fn project_name_table(c: &str) -> Vec<Row> {
    vec![
        row("-shop", "must start and end with a letter or digit"),
        row("../shop", "lowercase"),
        row(format!("shop;touch {c}"), "lowercase"),
        row(format!("$(touch {c})"), "lowercase"),
        row(format!("`touch {c}`"), "lowercase"),
        row("shop\n", "control characters"),
        row("s".repeat(41), "at most 40 bytes"),
    ]
}

fn health_path_table(c: &str) -> Vec<Row> {
    const ONLY: &str = "may only contain letters, digits";
    vec![
        row("healthz", "must start with '/'"),
        row(format!("$(touch {c})"), "must start with '/'"),
        row(format!("/$(touch {c})"), ONLY),
        row(format!("/;touch {c}"), ONLY),
        row(format!("/`touch {c}`"), ONLY),
        row(format!("/|touch {c}"), ONLY),
        row(format!("/\ntouch {c}"), ONLY),
        row("/h\u{e9}alth", ONLY),
        row(format!("/{}", "a".repeat(1100)), "at most 1024 bytes"),
        row(format!("/$(touch${{IFS}}{c})"), ONLY),
        row(format!("/;touch${{IFS}}{c}"), ONLY),
        row(format!("/|touch${{IFS}}{c}"), ONLY),
        row(format!("/`touch${{IFS}}{c}`"), ONLY),
        row("/../../etc/passwd", "must not contain '..' segments"),
    ]
}

/// Raw bytes that are not UTF-8, one or more per kind; the second part of
/// some carries a shell payload behind the bad byte.
fn non_utf8_table(c: &str) -> Vec<(Kind, Vec<u8>)> {
    let behind = |head: &[u8], tail: String| [head, tail.as_bytes()].concat();
    vec![
        (Kind::GitUrl, b"https://example.com/\xff\xfe.git".to_vec()),
        (Kind::GitUrl, behind(b"https://example.com/a\xc0", format!("$(touch {c})"))),
        (Kind::GitRef, b"main\xc0".to_vec()),
        (Kind::GitRef, behind(b"main\xff", format!(";touch {c}"))),
        (Kind::ContextPath, b"app/\xed\xa0\x80".to_vec()),
        (Kind::DockerfilePath, b"Docker\x80file".to_vec()),
        (Kind::Image, b"alpine:\xff".to_vec()),
        (Kind::EnvName, b"AP\xfeP".to_vec()),
        (Kind::BuildArg, b"\xc3\x28".to_vec()),
        (Kind::ServiceName, b"api\xf5".to_vec()),
        (Kind::ProjectName, b"\xf8\x88\x80\x80\x80".to_vec()),
        (Kind::HealthPath, behind(b"/health\xff", format!("`touch {c}`"))),
    ]
}

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

/// The spec of a valid service, for the store and `validate`.
fn base_spec(name: &str) -> ServiceSpec {
    ServiceSpec::new(name, "https://example.com/shop/api.git", 8080)
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
        assert!(control.path.exists(), "{payload:?} did not run in sh: the canary check would prove nothing");
        std::fs::remove_file(&control.path)?;
    }

    // The git payloads need no shell in the caller: git runs them itself.
    let repo = GitRepo::new()?;
    repo.write("app.txt", "v1")?;
    repo.commit("v1")?;
    let repo_path = repo.path().to_str().expect("temp paths are ASCII").to_string();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(control.dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", repo.path())
            .output()
    };
    git(&["ls-remote", &upload_pack_payload(&target), &repo_path])?;
    assert!(control.path.exists(), "git did not run the --upload-pack payload");
    std::fs::remove_file(&control.path)?;

    git(&["-c", "protocol.ext.allow=always", "ls-remote", &ext_payload(&target)])?;
    assert!(control.path.exists(), "git did not run the ext:: payload");
    std::fs::remove_file(&control.path)?;

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
            let e = build_image(&docker, req, &mut log).await.expect_err("hostile build request accepted");
            Refusal::from_build(&e).assert_clear(field, &row, &canary, "build_image");
        }
    }
    let logged = hub.read_from(1, 0).await?;
    assert!(logged.is_empty(), "refused builds packed or sent a context: {logged:?}");
    canary.assert_untouched();

    // Control: the valid request passes validation and fails only at the
    // (absent) engine, after packing the context.
    match build_image(&docker, valid(), &mut log).await {
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
