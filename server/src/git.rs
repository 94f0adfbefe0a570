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

use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::logs::{LogStream, LogWriter};
use crate::validate::{self, UrlCredentials, REDACTED};

/// The commit a checkout ended on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// Full commit id (40 hex digits, 64 for SHA-256 repositories).
    pub commit: String,
    /// The first 7 hex digits, for tags and display.
    pub short: String,
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
    tracing::info!(commit = %commit, elapsed_ms = started.elapsed().as_millis() as u64, "checkout done");
    log_system(log, &format!("Checked out {commit} in {:.1} s", started.elapsed().as_secs_f64())).await?;
    Ok(Checkout { commit, short })
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

/// How to run git in one workspace.
struct Git<'a> {
    dir: &'a Path,
    url: &'a str,
    file_url: bool,
    /// `Authorization` header value, when the URL carried credentials.
    auth_header: Option<String>,
    /// Literal secrets to mask in git's output.
    secrets: Vec<String>,
}

impl<'a> Git<'a> {
    fn new(dir: &'a Path, url: &'a str, credentials: Option<&UrlCredentials>) -> Self {
        let mut secrets = Vec::new();
        let auth_header = credentials.map(|c| {
            let pair = format!("{}:{}", c.username, c.password.as_deref().unwrap_or(""));
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
            secrets.push(encoded.clone());
            match &c.password {
                Some(p) => secrets.push(p.clone()),
                // A bare user name in an https URL is a token.
                None => secrets.push(c.username.clone()),
            }
            format!("Authorization: Basic {encoded}")
        });
        secrets.retain(|s| !s.is_empty());
        Git {
            dir,
            url,
            file_url: url.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("file://")),
            auth_header,
            secrets,
        }
    }

    fn home(&self) -> PathBuf {
        self.dir.join(".git").join(SCRATCH_HOME)
    }

    /// `git fetch --depth 1` of one ref or commit into FETCH_HEAD.
    async fn fetch_one(&self, what: &str, log: &mut LogWriter) -> anyhow::Result<()> {
        self.run(&["fetch", "--depth", "1", "--no-tags", "--progress", "--", self.url, what], log)
            .await
            .context("git fetch failed")?;
        Ok(())
    }

    /// Full fetch of every branch and tag (when a commit cannot be fetched
    /// by id).
    async fn fetch_all(&self, log: &mut LogWriter) -> anyhow::Result<()> {
        self.run(
            &[
                "fetch",
                "--no-tags",
                "--progress",
                "--",
                self.url,
                "+refs/heads/*:refs/remotes/origin/*",
                "+refs/tags/*:refs/tags/*",
            ],
            log,
        )
        .await
        .context("git fetch of all branches failed")?;
        Ok(())
    }

    /// Runs `git <global options> <args>` in the workspace; stderr lines go
    /// to the log as they come, stdout is returned.
    async fn run(&self, args: &[&str], log: &mut LogWriter) -> anyhow::Result<String> {
        let mut cmd = Command::new("git");
        cmd.arg("-c").arg("protocol.ext.allow=never");
        if self.file_url {
            cmd.arg("-c").arg("protocol.file.allow=always");
        }
        cmd.args([
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "credential.helper=",
            "-c",
            "init.defaultBranch=main",
        ]);
        cmd.args(args)
            .current_dir(self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        // Nothing from the server's own environment may redirect or
        // reconfigure git.
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_OBJECT_DIRECTORY",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            "GIT_CONFIG",
            "GIT_CONFIG_PARAMETERS",
            "GIT_CONFIG_GLOBAL",
            "GIT_CONFIG_SYSTEM",
            "GIT_ASKPASS",
            "SSH_ASKPASS",
            "GIT_EXEC_PATH",
            "GIT_TEMPLATE_DIR",
            "GIT_TRACE",
            "GIT_TRACE_CURL",
            "GIT_TRACE_PACKET",
            "GIT_CURL_VERBOSE",
        ] {
            cmd.env_remove(var);
        }
        let home = self.home();
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", &home)
            .env("LC_ALL", "C");
        match &self.auth_header {
            Some(header) => {
                cmd.env("GIT_CONFIG_COUNT", "1")
                    .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                    .env("GIT_CONFIG_VALUE_0", header);
            }
            None => {
                cmd.env_remove("GIT_CONFIG_COUNT");
            }
        }

        let subcommand =
            args.iter().find(|a| !a.starts_with('-') && !a.contains('=')).copied().unwrap_or("git");
        let mut child = cmd.spawn().context("cannot run git (is it installed?)")?;
        let mut stdout = child.stdout.take().context("git's stdout is not piped")?;
        let mut stderr = child.stderr.take().context("git's stderr is not piped")?;

        let read_stdout = async {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).await.map(|_| out)
        };
        let relay_stderr = self.relay(&mut stderr, log);
        let (out, last_line) = tokio::join!(read_stdout, relay_stderr);
        let status = child.wait().await.context("waiting for git failed")?;
        let last_line = last_line?;
        let out = out.context("reading git's output failed")?;
        if !status.success() {
            return Err(GitFailed { subcommand: subcommand.to_string(), status, last_line }.into());
        }
        String::from_utf8(out).context("git printed non-UTF-8 output")
    }

    /// Copies git's stderr into the log line by line, redacted; progress
    /// updates (ended by `\r`) at most every [`PROGRESS_EVERY`]. Returns the
    /// last complete line, for the error message.
    async fn relay(
        &self,
        stderr: &mut tokio::process::ChildStderr,
        log: &mut LogWriter,
    ) -> anyhow::Result<Option<String>> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let mut last_line = None;
        let mut last_progress: Option<Instant> = None;
        loop {
            let n = stderr.read(&mut chunk).await.context("reading git's messages failed")?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut lines = String::new();
            while let Some(pos) = buf.iter().position(|&b| b == b'\n' || b == b'\r') {
                let ended_by_newline = buf[pos] == b'\n';
                let piece: Vec<u8> = buf.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&piece[..piece.len() - 1]).trim_end().to_string();
                if text.is_empty() {
                    continue;
                }
                if !ended_by_newline {
                    if last_progress.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
                        continue;
                    }
                    last_progress = Some(Instant::now());
                }
                let text = self.redact(&text);
                lines.push_str(&text);
                lines.push('\n');
                last_line = Some(text);
            }
            if !lines.is_empty() {
                log.line(LogStream::Stderr, &lines).await?;
            }
        }
        if !buf.is_empty() {
            let text = self.redact(String::from_utf8_lossy(&buf).trim_end());
            if !text.is_empty() {
                log.line(LogStream::Stderr, &text).await?;
                last_line = Some(text);
            }
        }
        Ok(last_line)
    }

    /// Masks URL credentials and the literal secrets in one line of output.
    fn redact(&self, line: &str) -> String {
        let mut out = line.split(' ').map(redact_token).collect::<Vec<_>>().join(" ");
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

/// Redacts a URL inside one whitespace-free token, which may be quoted
/// (`'https://u:p@h/x/'`).
fn redact_token(token: &str) -> String {
    match token.find("://") {
        Some(i) => {
            // Back up to the start of the scheme.
            let start =
                token[..i].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+')).map_or(0, |p| p + 1);
            format!("{}{}", &token[..start], validate::redact_url(&token[start..]))
        }
        None => token.to_string(),
    }
}

async fn log_system(log: &mut LogWriter, text: &str) -> anyhow::Result<()> {
    log.line(LogStream::System, text).await.map_err(Into::into)
}

/// `kill_on_drop` does nothing when Slipway itself is killed (`kill -9`):
/// on Linux, ask the kernel to kill git with its parent, so a hanging fetch
/// never outlives a crashed server.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lines_lose_url_credentials_and_secrets() {
        let creds = UrlCredentials { username: "oauth2".into(), password: Some("s3cret".into()) };
        let git = Git::new(Path::new("/nonexistent"), "https://host/x", Some(&creds));
        let line = "fatal: unable to access 'https://oauth2:s3cret@host/x/': s3cret rejected";
        let out = git.redact(line);
        assert!(!out.contains("s3cret"), "{out}");
        assert!(out.contains("'https://oauth2:********@host/x/'"), "{out}");
        let header = git.auth_header.as_deref().unwrap_or_default();
        assert_eq!(
            header,
            format!(
                "Authorization: Basic {}",
                base64::engine::general_purpose::STANDARD.encode(b"oauth2:s3cret")
            )
        );
    }

    #[test]
    fn refs_that_look_like_commits_are_classified() {
        assert!(matches!(Target::parse(&"a".repeat(40)), Ok(Target::Commit(_))));
        assert!(matches!(Target::parse("deadbeef"), Ok(Target::Abbreviated(_))));
        assert!(matches!(Target::parse("main"), Ok(Target::Ref(_))));
        assert!(Target::parse("--upload-pack=x").is_err());
        assert!(Target::parse("HEAD~1").is_err());
    }
}
