//! Checkout of exactly one branch, tag or commit into a fresh per-build
//! workspace, with the git CLI.
//!
//! Every git process gets an argument vector (never a shell), `--` (or
//! `--end-of-options`) before positionals, values validated by
//! [`crate::validate`] first, no prompts, no system or user configuration,
//! and is killed when the future driving it is dropped (cancel, timeout).
//!
//! Credentials embedded in an https URL are taken out of it: git sees the
//! bare URL on its command line and gets an `Authorization` header through
//! `GIT_CONFIG_*` environment variables, which no other user can read. Lines
//! git prints are redacted before they reach the build log.

mod changes;
mod command;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::logs::{LogStream, LogWriter};
use crate::validate;
use command::Git;

pub use changes::changed_paths;

/// The commit a checkout ended on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// Full commit id (40 hex digits, 64 for SHA-256 repositories).
    pub commit: String,
    /// The first 7 hex digits, for tags and display.
    pub short: String,
    /// The commit's message (`[skip ci]` is looked for in it).
    pub message: String,
}

/// Progress updates (`\r`-terminated) are logged at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// Name of the empty HOME given to git, inside the repository's `.git`.
const SCRATCH_HOME: &str = "slipway-home";

/// Fetches `git_ref` (a branch, tag or full ref name, or a commit id) of the
/// repository at `url` into `dest`, which must not exist or be empty, and
/// checks it out detached. Only that one commit is fetched (`--depth 1`)
/// unless the server refuses to serve a commit by id, in which case its
/// branches and tags are fetched in full and the commit looked up among them.
/// An abbreviated commit id is tried as a ref first, then looked up the same
/// way.
///
/// `url` and `git_ref` are validated before any process starts. git's
/// messages are written to `log` (stream `stderr`), credentials redacted.
pub async fn checkout(
    url: &str,
    git_ref: &str,
    dest: &Path,
    log: &mut LogWriter,
) -> anyhow::Result<Checkout> {
    let (bare_url, credentials) = validate::split_credentials(url)?;
    let target = Target::parse(git_ref)?;
    prepare_dest(dest).await?;

    let git = Git::new(dest, &bare_url, credentials.as_ref());
    log_system(log, &format!("Fetching {} at {}", validate::redact_url(&bare_url), target.display())).await?;
    let started = Instant::now();

    let init_args: Vec<&str> = match &target {
        Target::Commit(sha) if sha.len() == 64 => vec!["init", "-q", "--object-format=sha256"],
        _ => vec!["init", "-q"],
    };
    git.run(&init_args, log).await.context("git init failed")?;
    tokio::fs::create_dir_all(git.home()).await.context("cannot create git's scratch HOME")?;

    let fetched_by_name = match &target {
        Target::Ref(name) => {
            git.fetch_one(name, log).await?;
            true
        }
        Target::Commit(sha) => match git.fetch_one(sha, log).await {
            Ok(()) => true,
            Err(e) => {
                tracing::info!(error = %e, "fetching a commit by id failed; fetching all branches");
                log_system(
                    log,
                    "The server would not serve the commit by id; fetching all branches and tags",
                )
                .await?;
                git.fetch_all(log).await?;
                false
            }
        },
        Target::Abbreviated(sha) => match git.fetch_one(sha, log).await {
            Ok(()) => true,
            Err(e) => {
                tracing::info!(error = %e, "no ref named like the abbreviated commit; fetching all branches");
                log_system(log, "Not a ref name; fetching all branches and tags to find the commit").await?;
                git.fetch_all(log).await?;
                false
            }
        },
    };

    let rev = if fetched_by_name {
        "FETCH_HEAD".to_string()
    } else {
        // Only hex digits reach this point (validated by Target::parse).
        let sha = target.name();
        let found = git
            .run(&["rev-parse", "-q", "--verify", "--end-of-options", &format!("{sha}^{{commit}}")], log)
            .await
            .with_context(|| format!("commit {sha} is not in the repository"))?;
        found.trim().to_string()
    };
    // The revision goes before `--`: after it, it would be a pathspec.
    git.run(&["-c", "advice.detachedHead=false", "checkout", "-q", "--detach", &rev, "--"], log)
        .await
        .context("git checkout failed")?;
    let head = git.run(&["rev-parse", "--verify", "HEAD"], log).await.context("git rev-parse failed")?;
    let commit = head.trim().to_ascii_lowercase();
    if !(commit.len() == 40 || commit.len() == 64) || !commit.bytes().all(|c| c.is_ascii_hexdigit()) {
        bail!("git rev-parse printed something that is not a commit id");
    }
    let expected = match &target {
        Target::Commit(sha) => Some(sha),
        // Fetched by name, an abbreviated id was a ref called like that.
        Target::Abbreviated(sha) if !fetched_by_name => Some(sha),
        _ => None,
    };
    if let Some(sha) = expected.filter(|sha| !commit.starts_with(sha.as_str())) {
        bail!("checked out {commit}, not the requested commit {sha}");
    }
    let short = commit[..7].to_string();
    // Only `[skip ci]` is looked for in it: a message git cannot print as
    // UTF-8 is taken as empty rather than failing the build.
    let message = match git.run(&["log", "-1", "--format=%B", "HEAD", "--"], log).await {
        Ok(message) => message,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "cannot read the commit message");
            String::new()
        }
    };
    tracing::info!(commit = %commit, elapsed_ms = started.elapsed().as_millis() as u64, "checkout done");
    log_system(log, &format!("Checked out {commit} in {:.1} s", started.elapsed().as_secs_f64())).await?;
    Ok(Checkout { commit, short, message })
}

/// git exited with an error. Its messages are in the build log already (the
/// last one is also in this error, for the build's `error`).
#[derive(Debug)]
pub struct GitFailed {
    pub subcommand: String,
    pub status: std::process::ExitStatus,
    pub last_line: Option<String>,
}

impl GitFailed {
    /// The failure without git's message: for the log, right below it.
    pub fn summary(&self) -> String {
        format!("git {} exited with {}", self.subcommand, self.status)
    }
}

impl std::fmt::Display for GitFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())?;
        match &self.last_line {
            Some(line) => write!(f, ": {line}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for GitFailed {}

/// What to fetch, validated.
enum Target {
    /// A full commit id (40 or 64 hex digits).
    Commit(String),
    /// 7 to 39 hex digits: a ref name or an abbreviated commit id.
    Abbreviated(String),
    /// A branch, tag or full ref name.
    Ref(String),
}

impl Target {
    fn parse(raw: &str) -> anyhow::Result<Self> {
        if let Ok(sha) = validate::commit_sha(raw) {
            return Ok(if sha.len() == 40 || sha.len() == 64 {
                Target::Commit(sha)
            } else {
                // Keep the original spelling: it may be a ref name.
                Target::Abbreviated(validate::git_ref(raw)?)
            });
        }
        Ok(Target::Ref(validate::git_ref(raw)?))
    }

    fn name(&self) -> &str {
        match self {
            Target::Commit(s) | Target::Abbreviated(s) | Target::Ref(s) => s,
        }
    }

    fn display(&self) -> String {
        match self {
            Target::Commit(s) => format!("commit {s}"),
            Target::Abbreviated(s) | Target::Ref(s) => s.clone(),
        }
    }
}

/// Creates `dest`, or accepts it if it exists and is empty.
async fn prepare_dest(dest: &Path) -> anyhow::Result<()> {
    match tokio::fs::read_dir(dest).await {
        Ok(mut entries) => {
            if entries.next_entry().await?.is_some() {
                bail!("the workspace {} is not empty", dest.display());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => tokio::fs::create_dir_all(dest)
            .await
            .with_context(|| format!("cannot create the workspace {}", dest.display())),
        Err(e) => Err(e).with_context(|| format!("cannot read the workspace {}", dest.display())),
    }
}

async fn log_system(log: &mut LogWriter, text: &str) -> anyhow::Result<()> {
    log.line(LogStream::System, text).await.map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_that_look_like_commits_are_classified() {
        assert!(matches!(Target::parse(&"a".repeat(40)), Ok(Target::Commit(_))));
        assert!(matches!(Target::parse("deadbeef"), Ok(Target::Abbreviated(_))));
        assert!(matches!(Target::parse("main"), Ok(Target::Ref(_))));
        assert!(Target::parse("--upload-pack=x").is_err());
        assert!(Target::parse("HEAD~1").is_err());
    }
}
