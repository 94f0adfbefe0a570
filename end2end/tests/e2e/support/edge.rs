//! Requests through the server's edge router with a chosen `Host` header
//! (std TcpStream, HTTP/1.1, one connection per request).

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

/// `GET /` to `edge` with `Host: host`: the status code and the body
/// (chunk framing, if any, left in place).
pub fn get(edge: SocketAddr, host: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&edge, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to the edge router at {edge}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("malformed HTTP response from the edge")?;
    let code =
        head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("malformed status line")?;
    Ok((code, body.to_string()))
}

/// Polls the edge until `host` answers 200 with a body line equal to
/// `expected`; the error names the last answer.
pub async fn wait_for_body(
    edge: SocketAddr,
    host: &str,
    expected: &str,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut last = String::from("no answer yet");
    while start.elapsed() < limit {
        let h = host.to_string();
        match tokio::task::spawn_blocking(move || get(edge, &h)).await? {
            Ok((200, body)) if body.lines().any(|l| l.trim() == expected) => return Ok(start.elapsed()),
            Ok((code, body)) => last = format!("HTTP {code}: {:?}", body.trim()),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the edge did not answer {expected:?} for {host} within {limit:?}; last answer: {last}")
}
