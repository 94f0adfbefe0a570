//! The build context: the context directory packed into a tar as
//! `docker build` sends it, honouring `.dockerignore`.

use std::path::Path;

use anyhow::{bail, Context};

use super::dockerignore::DockerIgnore;
use crate::validate;

/// Packs `context_dir` into a tar as `docker build` would send it: paths
/// excluded by `.dockerignore` left out (the Dockerfile and `.dockerignore`
/// are always sent), symlinks stored as symlinks (never followed), sockets
/// and other special files skipped. `dockerfile` is relative to the context
/// and must stay inside it.
pub fn context_tar(context_dir: &Path, dockerfile: &str) -> anyhow::Result<Vec<u8>> {
    let dockerfile = validate::rel_path("dockerfile", dockerfile)?;
    let meta = std::fs::symlink_metadata(context_dir)
        .with_context(|| format!("cannot read the context dir {}", context_dir.display()))?;
    if !meta.is_dir() {
        bail!("the context {} is not a directory", context_dir.display());
    }
    match std::fs::symlink_metadata(context_dir.join(&dockerfile)) {
        Ok(m) if m.is_file() || m.is_symlink() => {}
        Ok(_) => bail!("the Dockerfile {dockerfile} is not a file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("there is no Dockerfile at {dockerfile} in the context")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read the Dockerfile {dockerfile}")),
    }

    let mut ignore = match std::fs::read(context_dir.join(".dockerignore")) {
        Ok(bytes) => DockerIgnore::parse(&String::from_utf8_lossy(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(e) => return Err(e).context("cannot read .dockerignore"),
    };
    // Docker sends these whatever .dockerignore says.
    ignore.add_exception(&dockerfile);
    ignore.add_exception(".dockerignore");

    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    add_dir(&mut tar, context_dir, "", &ignore)?;
    Ok(tar.into_inner()?)
}

/// Adds the entries of `dir` (at `rel` inside the context) and below.
fn add_dir(
    tar: &mut tar::Builder<Vec<u8>>,
    dir: &Path,
    rel: &str,
    ignore: &DockerIgnore,
) -> anyhow::Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path_in_context = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        let full = entry.path();
        let meta =
            std::fs::symlink_metadata(&full).with_context(|| format!("cannot read {path_in_context}"))?;
        let excluded = ignore.excludes(&path_in_context);
        if meta.is_dir() {
            if !excluded {
                let mut header = header_for(&meta, tar::EntryType::Directory);
                tar.append_data(&mut header, format!("{path_in_context}/"), std::io::empty())?;
            }
            // An exception may bring back something below an excluded dir.
            if !excluded || ignore.may_include_below(&path_in_context) {
                add_dir(tar, &full, &path_in_context, ignore)?;
            }
            continue;
        }
        if excluded {
            continue;
        }
        if meta.is_symlink() {
            let target =
                std::fs::read_link(&full).with_context(|| format!("cannot read link {path_in_context}"))?;
            let mut header = header_for(&meta, tar::EntryType::Symlink);
            tar.append_link(&mut header, &path_in_context, &target)?;
        } else if meta.is_file() {
            let mut header = header_for(&meta, tar::EntryType::Regular);
            header.set_size(meta.len());
            let file =
                std::fs::File::open(&full).with_context(|| format!("cannot open {path_in_context}"))?;
            tar.append_data(&mut header, &path_in_context, file)?;
        } else {
            tracing::debug!(path = %path_in_context, "skipping a special file in the build context");
        }
    }
    Ok(())
}

/// A tar header for `meta`: its mode and mtime, owned by root.
pub(crate) fn header_for(meta: &std::fs::Metadata, kind: tar::EntryType) -> tar::Header {
    use std::os::unix::fs::MetadataExt;
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(meta.mode() & 0o7777);
    header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    header
}
