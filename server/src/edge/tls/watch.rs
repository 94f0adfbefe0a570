//! The certificate directory (`SLIPWAY_EDGE_CERT_DIR`), polled: new or
//! renewed files are served within a second, without a restart, so
//! certbot, lego or acme.sh renew with their own timers.
//!
//! What counts as a certificate (symlinks followed; domains come from the
//! certificates' names, never from file names):
//! - `<dir>/<any>.pem`: one file with the chain (leaf first) and the key;
//! - `<dir>/<any>/fullchain.pem` with `<dir>/<any>/privkey.pem` (certbot's
//!   `live/` layout; acme.sh and lego can write the same two files).
//!
//! Each poll reads the candidates and compares a SHA-256 of their bytes with
//! the last poll's (no mtime granularity or symlink traps). On a change
//! every candidate is loaded again; one that fails (half-written, garbage,
//! a key of another certificate) keeps its previous certificate and counts
//! a reload error, and the next change tries again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::certs::{self, LoadedCert};
use super::store::{CertStore, Source, TlsStats};
use crate::edge::EdgeRouter;

/// How often the directory is read.
pub const POLL: Duration = Duration::from_millis(500);
/// A bigger file is not a certificate (and is not read whole).
const MAX_FILE: u64 = 1 << 20;

/// One certificate's files: the chain, and the key (the same file for one
/// `.pem` holding both).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Candidate {
    chain: PathBuf,
    key: PathBuf,
}

/// A candidate's chain and key bytes, or why they could not be read.
type Read = Result<(Vec<u8>, Vec<u8>), String>;

/// The watcher's memory between polls.
#[derive(Default)]
struct Watched {
    digest: Option<[u8; 32]>,
    loaded: HashMap<Candidate, Arc<LoadedCert>>,
}

/// Loads `dir` once, then polls it on the current runtime until `shutdown`
/// fires, keeping the router's directory certificates in step with it.
pub async fn start(dir: PathBuf, router: Arc<EdgeRouter>, shutdown: CancellationToken) {
    let mut watched = poll_blocking(&dir, &router, Watched::default()).await;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.cancelled() => return,
            }
            watched = poll_blocking(&dir, &router, std::mem::take(&mut watched)).await;
        }
    });
}

async fn poll_blocking(dir: &Path, router: &Arc<EdgeRouter>, watched: Watched) -> Watched {
    let (dir, router) = (dir.to_path_buf(), router.clone());
    match tokio::task::spawn_blocking(move || poll(&dir, &router.certs, watched)).await {
        Ok(next) => next,
        Err(e) => {
            tracing::warn!(error = %e, "certificate directory poll failed");
            Watched::default()
        }
    }
}

/// One poll: reload when the files' bytes changed.
fn poll(dir: &Path, store: &CertStore, mut watched: Watched) -> Watched {
    let candidates = candidates(dir);
    let mut hasher = Sha256::new();
    let mut files: Vec<(Candidate, Read)> = Vec::new();
    for candidate in candidates {
        let read = read_small(&candidate.chain).and_then(|chain| {
            let key =
                if candidate.key == candidate.chain { chain.clone() } else { read_small(&candidate.key)? };
            Ok((chain, key))
        });
        hasher.update(candidate.chain.as_os_str().as_encoded_bytes());
        match &read {
            Ok((chain, key)) => {
                hasher.update(Sha256::digest(chain));
                hasher.update(Sha256::digest(key));
            }
            Err(e) => hasher.update(e.as_bytes()),
        }
        files.push((candidate, read));
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if watched.digest == Some(digest) {
        return watched;
    }
    let mut loaded = HashMap::new();
    for (candidate, read) in files {
        let result = read.and_then(|(chain, key)| certs::load(&chain, &key).map_err(|e| e.to_string()));
        match result {
            Ok(cert) => {
                tracing::info!(file = %candidate.chain.display(), names = ?cert.names, "certificate loaded");
                loaded.insert(candidate, Arc::new(cert));
            }
            Err(error) => {
                TlsStats::count(&store.stats.reload_errors);
                tracing::warn!(file = %candidate.chain.display(), %error, "certificate not loaded; its previous version (if any) stays served");
                if let Some(previous) = watched.loaded.remove(&candidate) {
                    loaded.insert(candidate, previous);
                }
            }
        }
    }
    store.replace(Source::Directory, loaded.values().cloned().collect());
    watched.loaded = loaded;
    watched.digest = Some(digest);
    watched
}

/// The directory's certificates, in a stable order.
fn candidates(dir: &Path) -> Vec<Candidate> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            let (chain, key) = (path.join("fullchain.pem"), path.join("privkey.pem"));
            if chain.is_file() && key.is_file() {
                found.push(Candidate { chain, key });
            }
        } else if path.extension().is_some_and(|e| e == "pem") && path.is_file() {
            found.push(Candidate { chain: path.clone(), key: path });
        }
    }
    found.sort_by(|a, b| a.chain.cmp(&b.chain));
    found
}

fn read_small(path: &Path) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_FILE {
        return Err(format!("{size} bytes: over {MAX_FILE}"));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}
