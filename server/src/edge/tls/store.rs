//! The certificates the TLS listener serves, by name: an index rebuilt
//! whole and swapped whenever a source changes, so a handshake reads one
//! `Arc` and a reload never blocks or drops a connection.
//!
//! Lookup (RFC 6125): the exact name, else the wildcard one label up
//! (`x.apps.example.com` matches `*.apps.example.com`; `a.b.apps…` does
//! not). Several certificates for one name: the one that expires last.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::LoadedCert;

/// Where certificates come from; each source is replaced as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// `SLIPWAY_EDGE_CERT_DIR`, watched on disk.
    Directory,
    /// Uploaded in the dashboard or the API (`crate::certificates`).
    Upload,
}

/// What the TLS listener counts (read by `/metrics`).
#[derive(Debug, Default)]
pub struct TlsStats {
    /// Handshakes that completed.
    pub handshakes: AtomicU64,
    /// Hellos without a server name (SNI): refused.
    pub no_sni: AtomicU64,
    /// Hellos for a name no certificate covers: refused.
    pub unknown_sni: AtomicU64,
    /// Hellos answered with an expired (or not yet valid) certificate.
    pub expired: AtomicU64,
    /// Handshakes that failed (bad hello, client refused the certificate…).
    pub failed: AtomicU64,
    /// Handshakes not done within the handshake timeout.
    pub timed_out: AtomicU64,
    /// Connections closed at once: too many handshakes under way.
    pub rejected: AtomicU64,
    /// Certificate files that could not be loaded (the previous certificate
    /// for their names stays served).
    pub reload_errors: AtomicU64,
}

impl TlsStats {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The served certificates and the listener's counters.
#[derive(Debug, Default)]
pub struct CertStore {
    sources: Mutex<BTreeMap<Source, Vec<Arc<LoadedCert>>>>,
    index: RwLock<Arc<HashMap<String, Arc<LoadedCert>>>>,
    pub stats: TlsStats,
}

impl CertStore {
    /// Replaces every certificate of `source`.
    pub fn replace(&self, source: Source, certs: Vec<Arc<LoadedCert>>) {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources.insert(source, certs);
        let mut index: HashMap<String, Arc<LoadedCert>> = HashMap::new();
        for cert in sources.values().flatten() {
            for name in &cert.names {
                let better = index.get(name).is_none_or(|held| cert.not_after > held.not_after);
                if better {
                    index.insert(name.clone(), cert.clone());
                }
            }
        }
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(index);
    }

    /// Every certificate served now, with its source.
    pub fn all(&self) -> Vec<(Source, Arc<LoadedCert>)> {
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources.iter().flat_map(|(s, certs)| certs.iter().map(|c| (*s, c.clone()))).collect()
    }

    /// The certificate for `server_name` (any case, no trailing dot).
    pub fn lookup(&self, server_name: &str) -> Option<Arc<LoadedCert>> {
        let name = server_name.trim_end_matches('.').to_ascii_lowercase();
        let index = self.index.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(cert) = index.get(&name) {
            return Some(cert.clone());
        }
        let (_, parent) = name.split_once('.')?;
        if parent.contains('.') {
            return index.get(&format!("*.{parent}")).cloned();
        }
        None
    }
}

/// rustls's side of the store: the certificate for the hello's name.
pub struct Resolver(pub Arc<super::super::EdgeRouter>);

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.certs.lookup(hello.server_name()?).map(|c| c.key.clone())
    }
}
