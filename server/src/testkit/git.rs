//! Throwaway git repositories made with the real `git` CLI.

use std::{path::Path, process::Command};

use anyhow::{bail, Context};
use tempfile::TempDir;

pub struct GitRepo {
    dir: TempDir,
}

impl GitRepo {
    /// `git init` on branch `main`, with a local identity and no signing.
    pub fn new() -> anyhow::Result<Self> {
        let repo = GitRepo { dir: tempfile::Builder::new().prefix("slipway-repo-").tempdir()? };
        repo.git(&["init", "-q", "-b", "main"])?;
        repo.git(&["config", "user.name", "Slipway Test"])?;
        repo.git(&["config", "user.email", "test@slipway.invalid"])?;
        repo.git(&["config", "commit.gpgsign", "false"])?;
        Ok(repo)
    }

    /// A repository whose Dockerfile serves `body` over HTTP on port 8080
    /// from the local test base image, with a `wget` health check.
    pub fn http_service(body: &str) -> anyhow::Result<Self> {
        let repo = GitRepo::new()?;
        repo.write("index.html", body)?;
        repo.write(
            "Dockerfile",
            &format!(
                "FROM {}\nCOPY index.html /www/index.html\nEXPOSE 8080\n\
                 CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
                super::BASE_IMAGE
            ),
        )?;
        repo.commit("http service")?;
        Ok(repo)
    }

    /// A repository whose image runs `run_sh` (the base image's `sh`) as its
    /// command, with `files` (path, contents) copied to `/app` beside it;
    /// committed. The script serves port 8080 itself (busybox `httpd`).
    pub fn script_service(run_sh: &str, files: &[(&str, &str)]) -> anyhow::Result<Self> {
        let repo = GitRepo::new()?;
        repo.write(
            "Dockerfile",
            &format!(
                "FROM {}\nCOPY . /app\nRUN chmod +x /app/run.sh\nEXPOSE 8080\nCMD [\"/app/run.sh\"]\n",
                super::BASE_IMAGE
            ),
        )?;
        repo.write("run.sh", run_sh)?;
        for (path, contents) in files {
            repo.write(path, contents)?;
        }
        repo.commit("script service")?;
        Ok(repo)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `file://` URL of the repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    /// Writes a file (creating parent directories) relative to the work tree.
    pub fn write(&self, rel: &str, contents: &str) -> anyhow::Result<()> {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
    }

    /// Stages everything and commits; returns the new commit's full sha.
    pub fn commit(&self, message: &str) -> anyhow::Result<String> {
        self.git(&["add", "-A"])?;
        self.git(&["commit", "-q", "-m", message])?;
        self.head()
    }

    pub fn head(&self) -> anyhow::Result<String> {
        Ok(self.git(&["rev-parse", "HEAD"])?.trim().to_string())
    }

    /// Runs `git <args>` in the repository (argument vector, no shell).
    pub fn git(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.path())
            .output()
            .context("cannot run git")?;
        if !out.status.success() {
            bail!("git {:?} failed: {}", args, String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}
