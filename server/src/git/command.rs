//! How one git process runs in a workspace: argument vector, global
//! options that no repository or environment can override, credentials
//! through `GIT_CONFIG_*` variables, output redacted into the build log,
//! killed with its future and with the server.

use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use anyhow::Context;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::{GitFailed, PROGRESS_EVERY, SCRATCH_HOME};
use crate::logs::{LogStream, LogWriter};
use crate::validate::{self, UrlCredentials, REDACTED};

/// How to run git in one workspace.
pub(super) struct Git<'a> {
    dir: &'a Path,
    url: &'a str,
    file_url: bool,
    /// `Authorization` header value, when the URL carried credentials.
    auth_header: Option<String>,
    /// Literal secrets to mask in git's output.
    secrets: Vec<String>,
}

impl<'a> Git<'a> {
    pub(super) fn new(dir: &'a Path, url: &'a str, credentials: Option<&UrlCredentials>) -> Self {
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

    pub(super) fn home(&self) -> PathBuf {
        self.dir.join(".git").join(SCRATCH_HOME)
    }

    /// `git fetch --depth 1` of one ref or commit into FETCH_HEAD.
    pub(super) async fn fetch_one(&self, what: &str, log: &mut LogWriter) -> anyhow::Result<()> {
        self.run(&["fetch", "--depth", "1", "--no-tags", "--progress", "--", self.url, what], log)
            .await
            .context("git fetch failed")?;
        Ok(())
    }

    /// Full fetch of every branch and tag (when a commit cannot be fetched
    /// by id).
    pub(super) async fn fetch_all(&self, log: &mut LogWriter) -> anyhow::Result<()> {
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
    pub(super) async fn run(&self, args: &[&str], log: &mut LogWriter) -> anyhow::Result<String> {
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
}
