//! A certificate authority made in the test (rcgen, ECDSA P-256, so
//! handshakes stay cheap) and an HTTPS client that trusts only it, speaking
//! HTTP/1.1 or HTTP/2 as ALPN settles.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, ServerName};

/// A leaf certificate and its key, as PEM.
pub struct Issued {
    /// Leaf, then the CA's certificate.
    pub chain_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Issued {
    /// Chain and key in one file (the cert directory's `*.pem`).
    pub fn combined(&self) -> String {
        format!("{}{}", self.chain_pem, self.key_pem)
    }
}

pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new() -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "Slipway test CA");
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        Ok(TestCa { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)? })
    }

    /// A certificate for `names` valid from 2020 to 2099.
    pub fn issue(&self, names: &[&str]) -> anyhow::Result<Issued> {
        self.issue_valid(names, (2020, 1, 1), (2099, 1, 1))
    }

    /// A certificate for `names` valid between two dates (year, month, day).
    pub fn issue_valid(
        &self,
        names: &[&str],
        from: (i32, u8, u8),
        until: (i32, u8, u8),
    ) -> anyhow::Result<Issued> {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("test"));
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            chain_pem: format!("{}{}", cert.pem(), self.issuer.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        })
    }

    /// A client trusting only this CA, offering `alpn` (e.g. `["h2"]`).
    pub fn client(&self, alpn: &[&str]) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// What an HTTPS request got.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub version: http::Version,
    pub headers: http::HeaderMap,
    /// The leaf certificate the server presented.
    pub peer: CertificateDer<'static>,
}

/// Either protocol's request sender over one TLS connection.
pub enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

/// An open HTTPS connection to `addr`, for server name `name`.
pub struct Connection {
    pub sender: Sender,
    pub name: String,
    pub peer: CertificateDer<'static>,
}

impl Connection {
    /// TCP, the TLS handshake (SNI `name`; an IP address sends none), then
    /// HTTP/2 if the server chose `h2`, else HTTP/1.1.
    pub async fn open(addr: SocketAddr, name: &str, tls: Arc<rustls::ClientConfig>) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let server_name = ServerName::try_from(name.to_string()).context("not a server name")?;
        let stream = tokio_rustls::TlsConnector::from(tls).connect(server_name, stream).await?;
        let (_, session) = stream.get_ref();
        let peer =
            session.peer_certificates().and_then(|c| c.first()).context("no server certificate")?.clone();
        let h2 = session.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(stream);
        let sender = if h2 {
            let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            Sender::H2(sender)
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(conn);
            Sender::H1(sender)
        };
        Ok(Connection { sender, name: name.to_string(), peer })
    }

    /// `GET path` on this connection.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<Answer> {
        self.try_get(path).await?.context("the connection closed before the request was sent")
    }

    /// `GET path` on this connection; `None`: never sent (the connection
    /// had closed), so it may be sent again on another.
    pub async fn try_get(&mut self, path: &str) -> anyhow::Result<Option<Answer>> {
        let sent = match &mut self.sender {
            Sender::H1(sender) => {
                let req =
                    http::Request::get(path).header(http::header::HOST, &self.name).body(Empty::new())?;
                if sender.ready().await.is_err() {
                    return Ok(None);
                }
                sender.try_send_request(req).await
            }
            Sender::H2(sender) => {
                let uri = format!("https://{}{path}", self.name);
                let req = http::Request::get(uri).version(http::Version::HTTP_2).body(Empty::new())?;
                if sender.ready().await.is_err() {
                    return Ok(None);
                }
                sender.try_send_request(req).await
            }
        };
        let response = match sent {
            Ok(response) => response,
            Err(mut e) => match e.take_message() {
                Some(_) => return Ok(None),
                None => return Err(e.into_error().into()),
            },
        };
        let (status, version) = (response.status().as_u16(), response.version());
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        Ok(Some(Answer { status, body, version, headers, peer: self.peer.clone() }))
    }
}

/// One `GET` on a new HTTPS connection.
pub async fn get(
    addr: SocketAddr,
    name: &str,
    path: &str,
    tls: Arc<rustls::ClientConfig>,
) -> anyhow::Result<Answer> {
    Connection::open(addr, name, tls).await?.get(path).await
}
