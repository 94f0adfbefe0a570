//! `slipway logs --service <s> [-f] [--tail N] [--since 15m]`: a service's
//! container log over the API's event stream. stdout lines go to stdout,
//! stderr lines to stderr; why the stream ended goes to stderr.

use anyhow::Context;
use reqwest::Method;

use super::{sse, Client};

/// Prints the log; `Ok(true)` when it ended normally.
pub async fn print(
    client: &Client,
    service_id: i64,
    follow: bool,
    tail: Option<u32>,
    since: Option<&str>,
) -> anyhow::Result<bool> {
    let mut query: Vec<(&str, String)> = vec![("follow", follow.to_string())];
    if let Some(tail) = tail {
        query.push(("tail", tail.to_string()));
    }
    if let Some(since) = since {
        query.push(("since", since.to_string()));
    }
    let req = client.request(Method::GET, &format!("api/v1/services/{service_id}/logs"))?.query(&query);
    let response = req.send().await.context("cannot reach the Slipway server")?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        return Err(super::refusal(status, &body).into());
    }
    let mut ended = None;
    sse::follow(response, |ev| {
        let v: serde_json::Value = serde_json::from_str(&ev.data).context("bad event")?;
        match ev.event.as_str() {
            "line" => {
                let text = v["text"].as_str().unwrap_or_default();
                if v["stream"] == "stderr" {
                    eprintln!("{text}");
                } else {
                    println!("{text}");
                }
                Ok(true)
            }
            "end" => {
                ended = Some(v["reason"].as_str().unwrap_or("ended").to_string());
                Ok(false)
            }
            _ => Ok(true),
        }
    })
    .await?;
    match ended {
        Some(reason) => {
            if follow {
                eprintln!("({reason})");
            }
            Ok(true)
        }
        None => anyhow::bail!("the log stream was cut off"),
    }
}
