//! Requests through an edge router with a chosen `Host` header.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

/// One `GET /` through the edge at `edge` with `Host: host`, on a fresh
/// connection: the status code and the trimmed body.
pub async fn get(edge: SocketAddr, host: &str) -> anyhow::Result<(u16, String)> {
    let stream = tokio::net::TcpStream::connect(edge).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::get("/").header(http::header::HOST, host).body(Empty::<Bytes>::new())?;
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).trim().to_string()))
}
