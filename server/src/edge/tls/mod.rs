//! The edge's TLS listener (`SLIPWAY_EDGE_TLS_ADDR`): rustls (TLS 1.2 and
//! 1.3 only, ring), the certificate picked by SNI from [`store::CertStore`],
//! HTTP/2 or HTTP/1.1 by ALPN, then the same proxy as the plain listener.
//!
//! The accept loop never waits for a handshake: each runs in its own task,
//! with a timeout, under a cap on handshakes at once. A hello without a
//! name, or for a name no certificate covers, is refused before the
//! handshake; every outcome is counted ([`store::TlsStats`]).

pub mod certs;
pub mod store;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::LazyConfigAcceptor;
use tokio_util::sync::CancellationToken;

use super::proxy::{accept, serve_connection, EdgeConfig, Proxy, Scheme};
use super::EdgeRouter;
use store::TlsStats;

/// A handshake not done by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes under way at once; more connections are closed at once.
const MAX_HANDSHAKES: usize = 1024;

/// rustls's server config: TLS 1.3 and 1.2, no client certificates, the
/// router's certificates by SNI, ALPN `h2` then `http/1.1`.
pub fn server_config(router: Arc<EdgeRouter>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(store::Resolver(router)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves HTTPS on `listener` until `shutdown` fires (`tls`: from
/// [`server_config`]).
pub async fn serve_tls(
    listener: TcpListener,
    router: Arc<EdgeRouter>,
    tls: Arc<rustls::ServerConfig>,
    config: EdgeConfig,
    shutdown: CancellationToken,
) {
    let proxy = Proxy::new(router.clone(), config);
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    while let Some((stream, peer)) = accept(&listener, &shutdown).await {
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            TlsStats::count(&router.certs.stats.rejected);
            continue;
        };
        let (router, tls, proxy) = (router.clone(), tls.clone(), proxy.clone());
        tokio::spawn(async move {
            let handshaken = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(stream, &router, tls)).await;
            drop(permit);
            let (stream, scheme) = match handshaken {
                Ok(Some(done)) => done,
                Ok(None) => return,
                Err(_) => {
                    TlsStats::count(&router.certs.stats.timed_out);
                    return;
                }
            };
            serve_connection(stream, peer, proxy, scheme).await;
        });
    }
}

/// Reads the hello, sorts out what cannot be served, then completes the
/// handshake. `None`: refused or failed (and counted).
async fn handshake(
    stream: TcpStream,
    router: &EdgeRouter,
    tls: Arc<rustls::ServerConfig>,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, Scheme)> {
    let stats = &router.certs.stats;
    let start = match LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await {
        Ok(start) => start,
        Err(e) => {
            tracing::debug!(error = %e, "TLS hello unreadable");
            TlsStats::count(&stats.failed);
            return None;
        }
    };
    let Some(name) = start.client_hello().server_name().map(str::to_string) else {
        TlsStats::count(&stats.no_sni);
        return None;
    };
    let Some(cert) = router.certs.lookup(&name) else {
        tracing::debug!(server_name = %name, "TLS hello for a name without a certificate");
        TlsStats::count(&stats.unknown_sni);
        return None;
    };
    if cert.expired_at(chrono::Utc::now().timestamp()) {
        TlsStats::count(&stats.expired);
    }
    match start.into_stream(tls).await {
        Ok(stream) => {
            TlsStats::count(&stats.handshakes);
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            Some((stream, if h2 { Scheme::Https2 } else { Scheme::Https }))
        }
        Err(e) => {
            tracing::debug!(error = %e, server_name = %name, "TLS handshake failed");
            TlsStats::count(&stats.failed);
            None
        }
    }
}
