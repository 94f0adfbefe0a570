//! A real image registry for tests: Debian's `docker-registry` (the CNCF
//! distribution registry) on a free loopback port, with htpasswd (bcrypt)
//! authentication, its storage in a temporary directory; killed and removed
//! on drop. And the multi-arch test's needs: QEMU registered with
//! binfmt_misc, and a linux/arm64 busybox base image.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use bollard::Docker;

use super::{free_port, wait::wait_until};
use crate::docker::build::{build_image, BuildRequest};

/// A running registry.
pub struct LocalRegistry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub host: String,
    dir: tempfile::TempDir,
}

impl LocalRegistry {
    /// Starts a registry that accepts `user` / `password` only.
    pub async fn start(user: &str, password: &str) -> anyhow::Result<LocalRegistry> {
        let dir = tempfile::tempdir()?;
        let htpasswd = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .context("htpasswd is missing: install Debian's apache2-utils (scripts/setup.sh does)")?;
        anyhow::ensure!(htpasswd.status.success(), "htpasswd failed");
        std::fs::write(dir.path().join("htpasswd"), &htpasswd.stdout)?;
        // A port can be taken between choosing and binding: a few tries.
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  \
                     delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    \
                     realm: slipway-test\n    path: {htpasswd}\n",
                    data = dir.path().join("data").display(),
                    htpasswd = dir.path().join("htpasswd").display(),
                ),
            )?;
            let log = std::fs::File::create(dir.path().join("registry.log"))?;
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context(
                    "docker-registry is missing: install Debian's docker-registry (scripts/setup.sh does)",
                )?;
            let host = format!("127.0.0.1:{port}");
            let url = format!("http://{host}/v2/");
            let up = wait_until("the registry to answer", Duration::from_secs(15), || {
                let url = url.clone();
                let exited = child.try_wait().ok().flatten().is_some();
                async move {
                    if exited {
                        bail!("the registry exited");
                    }
                    Ok(reqwest::get(&url).await.ok().map(|r| r.status()))
                }
            })
            .await;
            match up {
                Ok(status) if status == reqwest::StatusCode::UNAUTHORIZED => {
                    return Ok(LocalRegistry { child, host, dir })
                }
                Ok(status) => {
                    let _ = child.kill();
                    bail!("the registry answered {status} without credentials, not 401");
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = format!("{e:#}: {}", std::fs::read_to_string(dir.path().join("registry.log"))?);
                }
            }
        }
        bail!("the registry did not start: {last}")
    }

    /// Where the registry keeps its blobs and manifests.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails, saying why, unless QEMU's aarch64 emulator is registered with
/// binfmt_misc (a foreign-platform build needs it).
pub fn require_arm64_emulation() -> anyhow::Result<()> {
    let entry = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64").context(
        "qemu-aarch64 is not registered with binfmt_misc on this machine (scripts/setup.sh mounts binfmt_misc \
         and installs qemu-user-static): linux/arm64 images cannot be built here",
    )?;
    anyhow::ensure!(entry.starts_with("enabled"), "the qemu-aarch64 binfmt entry is disabled: {entry}");
    Ok(())
}

/// A linux/arm64 image of Debian's arm64 busybox-static (the binary setup
/// keeps at `SLIPWAY_ARM64_BUSYBOX`), built once per machine.
pub const ARM64_BASE_IMAGE: &str = "slipway-test/busybox-arm64:1";

pub async fn ensure_arm64_base_image(docker: &Docker) -> anyhow::Result<()> {
    if let Ok(image) = docker.inspect_image(ARM64_BASE_IMAGE).await {
        if image.architecture.as_deref() == Some("arm64") {
            return Ok(());
        }
    }
    let busybox = std::env::var("SLIPWAY_ARM64_BUSYBOX").unwrap_or_else(|_| {
        format!("{}/.cache/slipway/busybox-arm64", std::env::var("HOME").unwrap_or_default())
    });
    let binary = std::fs::read(&busybox).with_context(|| {
        format!("{busybox} is missing (scripts/setup.sh downloads Debian's busybox-static:arm64)")
    })?;
    let ctx = tempfile::tempdir()?;
    let bin = ctx.path().join("rootfs/bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(ctx.path().join("rootfs/tmp"))?;
    std::fs::write(bin.join("busybox"), binary)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("busybox"), std::fs::Permissions::from_mode(0o755))?;
    for applet in ["sh", "uname", "echo", "cat", "ls", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet))?;
    }
    std::fs::write(ctx.path().join("Dockerfile"), "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\n")?;
    let logs = tempfile::tempdir()?;
    let hub = crate::logs::LogHub::new(logs.path());
    let mut log = hub.writer(1, Vec::new()).await?;
    let labels = std::collections::HashMap::from([("dev.slipway.testkit".to_string(), "base".to_string())]);
    let request = BuildRequest {
        context_dir: ctx.path().to_path_buf(),
        dockerfile: "Dockerfile".into(),
        tags: vec![ARM64_BASE_IMAGE.into()],
        labels,
        platform: Some("linux/arm64".into()),
        ..Default::default()
    };
    build_image(docker, request, &mut log).await.context("building the arm64 base image")?;
    Ok(())
}
