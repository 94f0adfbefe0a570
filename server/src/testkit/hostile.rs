//! The hostile-input corpus: every kind of value a user, a webhook or a
//! repository supplies (git URL, branch, build context and Dockerfile paths,
//! image references, env and build-arg names, service and project names, the
//! health-check path), each with a table of hostile values, and the canary
//! those values would create if they ever reached a shell, git's option
//! parser or a git remote helper.
//!
//! Shared by the engine's hostile-input test (`server/tests/it/hostile_inputs.rs`)
//! and the REST API's (`server/tests/it/api_hostile.rs`), so every layer is fed
//! the very same rows.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::{
    projects::{HealthProbe, ProjectError, ServiceSpec},
    validate::{self, ValidationError},
};

// ------------------------------------------------------------------ canary --

/// A file the payloads create if they ever run. Its path is kept short (and
/// free of shell metacharacters) so that payloads still fit in short fields
/// such as 40-byte slugs and are refused for their characters, not their
/// length.
pub struct Canary {
    dir: TempDir,
    path: PathBuf,
}

// No `Default`: each canary is a fresh temp dir, made on purpose.
#[allow(clippy::new_without_default)]
impl Canary {
    /// A fresh, empty canary dir under `/tmp`.
    pub fn new() -> Self {
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
    pub fn target(&self) -> &str {
        self.path.to_str().expect("temp paths are ASCII")
    }

    /// The canary file's path (it must never exist outside a control).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory that must stay empty.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Panics if the canary, or anything else, appeared in its directory.
    #[track_caller]
    pub fn assert_untouched(&self) {
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
pub fn shell_payloads(target: &str) -> Vec<String> {
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
pub fn upload_pack_payload(target: &str) -> String {
    format!("--upload-pack=touch {target}")
}

/// git's `ext::` remote helper, which runs a command (`% ` is a space).
pub fn ext_payload(target: &str) -> String {
    format!("ext::sh -c touch% {target}")
}

// -------------------------------------------------------------------- rows --

/// One hostile value.
pub struct Row {
    pub value: String,
    /// A fragment the error message must contain; "" when any clear message
    /// will do (which check fires first is the validator's business).
    pub says: &'static str,
}

pub fn row(value: impl Into<String>, says: &'static str) -> Row {
    Row { value: value.into(), says }
}

/// `prefix` followed by each shell payload.
pub fn shell_rows(prefix: &str, target: &str) -> Vec<Row> {
    shell_payloads(target).into_iter().map(|p| row(format!("{prefix}{p}"), "")).collect()
}

/// The kinds of field, each with its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
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
    pub const ALL: [Kind; 10] = [
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
    pub fn field(self) -> &'static str {
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
    pub fn validate(self, value: &str) -> Result<String, ValidationError> {
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
    pub fn store_field(self) -> Option<&'static str> {
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
    pub fn apply(self, spec: &mut ServiceSpec, value: &str) {
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
    pub fn table(self, c: &str) -> Vec<Row> {
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
    pub fn hostile(self, c: &str) -> Vec<Row> {
        self.table(c)
    }
}

// ------------------------------------------------------------------ tables --

pub fn git_url_table(c: &str) -> Vec<Row> {
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

pub fn git_ref_table(c: &str) -> Vec<Row> {
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

pub fn context_path_table(c: &str) -> Vec<Row> {
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

pub fn dockerfile_table(c: &str) -> Vec<Row> {
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

pub fn image_table(c: &str) -> Vec<Row> {
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

pub fn env_name_table(c: &str) -> Vec<Row> {
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

pub fn build_arg_table(c: &str) -> Vec<Row> {
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

pub fn service_name_table(c: &str) -> Vec<Row> {
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

pub fn project_name_table(c: &str) -> Vec<Row> {
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

pub fn health_path_table(c: &str) -> Vec<Row> {
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
pub fn non_utf8_table(c: &str) -> Vec<(Kind, Vec<u8>)> {
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

/// The spec of a valid service, for the store and `validate`.
pub fn base_spec(name: &str) -> ServiceSpec {
    ServiceSpec::new(name, "https://example.com/shop/api.git", 8080)
}
