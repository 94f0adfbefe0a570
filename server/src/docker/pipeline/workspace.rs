//! The checkout into the run's workspace volume, without a host bind mount:
//! a helper container (created, never started) mounts the volume at
//! `/workspace`, the checkout goes in as a tar through the Engine's archive
//! endpoint (`PUT /containers/{id}/archive`), and the helper is removed.
//!
//! The tar is the whole checkout minus the top-level `.git` directory:
//! symlinks are stored as symlinks (never followed, so a link cannot pull a
//! host file in), special files are skipped, owners are root. It is packed
//! on a blocking thread and streamed in 64 KiB chunks, never held whole in
//! memory. (`build::context` packs a build context instead: it honours
//! `.dockerignore` and insists on a Dockerfile, neither of which applies.)

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::UploadToContainerOptionsBuilder;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{sandbox, DockerEngine, RunError, RunRef, WORKSPACE};
use crate::docker::build::context::header_for;

const CHUNK: usize = 64 * 1024;

impl DockerEngine {
    /// Puts the contents of `dir` into the run's `volume` at `/workspace`.
    /// `helper_image` is any local image (the first step's image will do;
    /// its command never runs). The helper container carries the run's
    /// labels, so a crash mid-upload leaves nothing `remove_run` misses.
    pub async fn upload_workspace(
        &self,
        run: &RunRef,
        volume: &str,
        dir: &Path,
        helper_image: &str,
        extra_labels: &HashMap<String, String>,
    ) -> Result<(), RunError> {
        let meta = std::fs::symlink_metadata(dir)
            .map_err(|e| RunError::Checkout(format!("{}: {e}", dir.display())))?;
        if !meta.is_dir() {
            return Err(RunError::Checkout(format!("{} is not a directory", dir.display())));
        }
        let docker = self.client()?;
        let body = ContainerCreateBody {
            image: Some(helper_image.to_string()),
            // Never started; the engine wants a command for images without one.
            cmd: Some(vec!["/bin/true".to_string()]),
            labels: Some(run.labels(extra_labels)),
            network_disabled: Some(true),
            host_config: Some(sandbox("none", Some(volume), 0, 0)),
            ..Default::default()
        };
        let helper = match docker
            .create_container(None::<bollard::query_parameters::CreateContainerOptions>, body)
            .await
        {
            Ok(created) => created.id,
            Err(e) if super::status_code(&e) == Some(404) => {
                return Err(RunError::ImageMissing(helper_image.into()))
            }
            Err(e) => return Err(e.into()),
        };
        let result = self.upload_into(&helper, dir).await;
        let removed = self.remove_container(&helper, std::time::Duration::ZERO).await;
        result?;
        removed?;
        Ok(())
    }

    async fn upload_into(&self, helper: &str, dir: &Path) -> Result<(), RunError> {
        let (tx, mut rx) = mpsc::channel::<Bytes>(8);
        let root = dir.to_path_buf();
        let packer = tokio::task::spawn_blocking(move || {
            let mut tar = tar::Builder::new(ChunkWriter { tx, buffer: Vec::with_capacity(CHUNK) });
            tar.follow_symlinks(false);
            add_dir(&mut tar, &root, "")?;
            let mut writer = tar.into_inner()?;
            writer.flush()
        });
        let chunks = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let options = UploadToContainerOptionsBuilder::new().path(WORKSPACE).build();
        let uploaded =
            self.client()?.upload_to_container(helper, Some(options), bollard::body_stream(chunks)).await;
        // A packing error cuts the stream short: report it, not the engine's
        // view of a truncated tar.
        match packer.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(RunError::Checkout(e.to_string())),
            Err(e) => return Err(RunError::Checkout(format!("the packing thread failed: {e}"))),
        }
        uploaded?;
        Ok(())
    }
}

/// Sends what the tar writes in [`CHUNK`]-sized pieces to the upload.
struct ChunkWriter {
    tx: mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped reading"))
    }
}

/// Adds the entries of `dir` (at `rel` inside the checkout) and below,
/// sorted by name; `.git` at the top is left out.
fn add_dir<W: Write>(tar: &mut tar::Builder<W>, dir: &Path, rel: &str) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if rel.is_empty() && name == ".git" {
            continue;
        }
        let path = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        let full = entry.path();
        let meta = std::fs::symlink_metadata(&full)?;
        if meta.is_dir() {
            let mut header = header_for(&meta, tar::EntryType::Directory);
            tar.append_data(&mut header, format!("{path}/"), std::io::empty())?;
            add_dir(tar, &full, &path)?;
        } else if meta.is_symlink() {
            let target = std::fs::read_link(&full)?;
            let mut header = header_for(&meta, tar::EntryType::Symlink);
            tar.append_link(&mut header, &path, &target)?;
        } else if meta.is_file() {
            let mut header = header_for(&meta, tar::EntryType::Regular);
            header.set_size(meta.len());
            tar.append_data(&mut header, &path, std::fs::File::open(&full)?)?;
        } else {
            tracing::debug!(path = %path, "skipping a special file in the workspace");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tar_holds_the_checkout_without_git() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join(".git/objects"))?;
        std::fs::write(dir.path().join(".git/HEAD"), "ref")?;
        std::fs::create_dir_all(dir.path().join("src/.git"))?;
        std::fs::write(dir.path().join("src/main.c"), "int main;")?;
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link"))?;
        let mut tar = tar::Builder::new(Vec::new());
        add_dir(&mut tar, dir.path(), "")?;
        let bytes = tar.into_inner()?;
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries()? {
            let entry = entry?;
            names.push((entry.path()?.to_string_lossy().to_string(), entry.header().entry_type()));
        }
        let paths: Vec<&str> = names.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["link", "src/", "src/.git/", "src/main.c"]);
        assert_eq!(names[0].1, tar::EntryType::Symlink, "a symlink stays a link, never followed");
        Ok(())
    }
}
