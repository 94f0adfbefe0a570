//! A minimal HTTP/1.1 client to the Docker Engine for the two calls whose
//! answers bollard's typed API cannot carry without its `buildkit` feature
//! (tonic/gRPC, a large compile-time cost): `GET /_ping` (its
//! `Builder-Version` header) and a `version=2` `POST /build` (its
//! `moby.buildkit.trace` messages carry base64 in `aux`, which bollard's
//! `BuildInfo` types as an image id).
//!
//! The engine address is the one bollard's `connect_with_defaults` uses:
//! `DOCKER_HOST` (`unix://` or plain `tcp://`/`http://`), else the local
//! socket. The connection lives inside the [`Exchange`]: dropping it closes
//! the socket, which makes the daemon cancel the build.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `host:port`, plain HTTP.
    Tcp(String),
}

impl Endpoint {
    /// From `DOCKER_HOST` and `DOCKER_TLS_VERIFY`; `Err` names what this
    /// client does not speak (TLS, ssh, named pipes).
    pub fn from_env() -> Result<Endpoint, String> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_default();
        let tls = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty());
        Endpoint::parse(&host, tls)
    }

    pub fn parse(host: &str, tls: bool) -> Result<Endpoint, String> {
        if host.is_empty() {
            return Ok(Endpoint::Unix(DEFAULT_SOCKET.into()));
        }
        if let Some(path) = host.strip_prefix("unix://") {
            return Ok(Endpoint::Unix(path.into()));
        }
        let rest = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("http://"));
        match rest {
            Some(_) if tls => Err("a TLS engine address (DOCKER_TLS_VERIFY)".into()),
            Some(rest) => {
                let authority = rest.split('/').next().unwrap_or_default();
                if authority.is_empty() {
                    return Err(format!("the engine address {host:?} has no host"));
                }
                Ok(Endpoint::Tcp(authority.to_string()))
            }
            None => Err(format!("the engine address scheme of {host:?}")),
        }
    }

    fn host_header(&self) -> &str {
        match self {
            Endpoint::Unix(_) => "localhost",
            Endpoint::Tcp(authority) => authority,
        }
    }
}

type Connection = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// One request's answer: status, headers, and the body read chunk by chunk
/// while the connection is driven.
pub struct Exchange {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    body: Incoming,
    connection: Option<Connection>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(pub String);

impl Exchange {
    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, HttpError>> {
        loop {
            let Some(connection) = self.connection.as_mut() else {
                return next_data(&mut self.body).await;
            };
            tokio::select! {
                biased;
                data = next_data(&mut self.body) => return data,
                ended = connection => {
                    self.connection = None;
                    if let Err(e) = ended {
                        return Some(Err(HttpError(format!("the engine connection failed: {e}"))));
                    }
                }
            }
        }
    }

    /// The whole body, refused past `limit` bytes (success answers: the
    /// build cache listing of a busy engine runs to megabytes).
    pub async fn bytes(mut self, limit: usize) -> Result<Vec<u8>, HttpError> {
        let mut all = Vec::new();
        while let Some(chunk) = self.chunk().await {
            all.extend_from_slice(&chunk?);
            if all.len() > limit {
                return Err(HttpError(format!("the engine's answer is over {limit} bytes")));
            }
        }
        Ok(all)
    }

    /// The start of the body as text, at most about 64 KiB (error answers).
    pub async fn text(mut self) -> String {
        let mut all = Vec::new();
        while let Some(Ok(chunk)) = self.chunk().await {
            all.extend_from_slice(&chunk);
            if all.len() > 64 * 1024 {
                break;
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    }

    /// The engine's `{"message": …}` of an error answer, or the body.
    pub async fn error_message(self) -> String {
        let text = self.text().await;
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| text.trim().to_string())
    }
}

async fn next_data(body: &mut Incoming) -> Option<Result<Bytes, HttpError>> {
    loop {
        match body.frame().await? {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
            }
            Err(e) => return Some(Err(HttpError(format!("reading the engine's answer failed: {e}")))),
        }
    }
}

/// Sends one request on a new connection and waits for the answer's head.
pub async fn send(
    endpoint: &Endpoint,
    method: http::Method,
    path_and_query: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Exchange, HttpError> {
    let connect_error = |e: std::io::Error| HttpError(format!("cannot reach the Docker engine: {e}"));
    let handshake_error = |e: hyper::Error| HttpError(format!("cannot talk to the Docker engine: {e}"));
    let (mut sender, mut connection): (_, Connection) = match endpoint {
        Endpoint::Unix(path) => {
            let io = TokioIo::new(tokio::net::UnixStream::connect(path).await.map_err(connect_error)?);
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(handshake_error)?;
            (sender, Box::pin(conn))
        }
        Endpoint::Tcp(authority) => {
            let io = TokioIo::new(tokio::net::TcpStream::connect(authority).await.map_err(connect_error)?);
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(handshake_error)?;
            (sender, Box::pin(conn))
        }
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(http::header::HOST, endpoint.host_header());
    if let Some(content_type) = content_type {
        request = request.header(http::header::CONTENT_TYPE, content_type);
    }
    let request = request.body(Full::new(body)).map_err(|e| HttpError(format!("bad engine request: {e}")))?;
    let response = sender.send_request(request);
    let response = tokio::select! {
        response = response => {
            response.map_err(|e| HttpError(format!("the Docker engine request failed: {e}")))?
        }
        ended = &mut connection => {
            let why = ended.err().map(|e| e.to_string()).unwrap_or_else(|| "closed".into());
            return Err(HttpError(format!("the Docker engine connection ended before an answer: {why}")));
        }
    };
    let (parts, body) = response.into_parts();
    Ok(Exchange { status: parts.status, headers: parts.headers, body, connection: Some(connection) })
}

/// What `GET /_ping` tells about the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ping {
    /// `Api-Version`, e.g. `1.41`.
    pub api_version: Option<String>,
    /// `Builder-Version`: `2` BuildKit, `1` classic, absent: not configured.
    pub builder_version: Option<String>,
    /// `OSType`, e.g. `linux`.
    pub os_type: Option<String>,
}

pub async fn ping(endpoint: &Endpoint) -> Result<Ping, HttpError> {
    let exchange = send(endpoint, http::Method::GET, "/_ping", None, Bytes::new()).await?;
    let header =
        |name: &str| exchange.headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string());
    let ping = Ping {
        api_version: header("api-version"),
        builder_version: header("builder-version"),
        os_type: header("ostype"),
    };
    if !exchange.status.is_success() {
        return Err(HttpError(format!("the engine's ping answered {}", exchange.status)));
    }
    drop(exchange.text().await);
    Ok(ping)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves one answer of `body_len` bytes in 16 KiB chunks, as the
    /// engine sends large JSON.
    async fn one_answer(body_len: usize) -> std::io::Result<Endpoint> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let mut head = [0u8; 4096];
            let _ = socket.read(&mut head).await;
            let mut out =
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                    .to_vec();
            let body = vec![b'x'; body_len];
            for piece in body.chunks(16 * 1024) {
                out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            let _ = socket.write_all(&out).await;
        });
        Ok(Endpoint::Tcp(addr.to_string()))
    }

    #[tokio::test]
    async fn a_large_answer_is_read_whole_up_to_its_limit() -> anyhow::Result<()> {
        let big = 300 * 1024;
        let endpoint = one_answer(big).await?;
        let answer = send(&endpoint, http::Method::GET, "/system/df", None, Bytes::new()).await?;
        assert_eq!(answer.bytes(1024 * 1024).await?.len(), big, "the whole body, past 64 KiB");
        let endpoint = one_answer(big).await?;
        let answer = send(&endpoint, http::Method::GET, "/system/df", None, Bytes::new()).await?;
        let refused = answer.bytes(100 * 1024).await;
        assert!(refused.is_err_and(|e| e.0.contains("over 102400 bytes")));
        Ok(())
    }

    #[test]
    fn engine_addresses_follow_docker_host() {
        assert_eq!(Endpoint::parse("", false), Ok(Endpoint::Unix(DEFAULT_SOCKET.into())));
        assert_eq!(Endpoint::parse("unix:///run/d.sock", false), Ok(Endpoint::Unix("/run/d.sock".into())));
        assert_eq!(Endpoint::parse("tcp://10.0.0.2:2375", false), Ok(Endpoint::Tcp("10.0.0.2:2375".into())));
        assert_eq!(Endpoint::parse("http://h:2375/", false), Ok(Endpoint::Tcp("h:2375".into())));
        assert!(Endpoint::parse("tcp://h:2376", true).is_err());
        assert!(Endpoint::parse("ssh://me@h", false).is_err());
        assert!(Endpoint::parse("npipe:////./pipe/docker_engine", false).is_err());
        assert!(Endpoint::parse("tcp://", false).is_err());
    }
}
