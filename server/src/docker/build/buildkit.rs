//! A BuildKit build (`POST /build?version=2`, no session): the request, and
//! its JSON message stream turned into log lines through [`Trace`].
//!
//! Labels go into the image config (no extra layer, unlike the classic
//! builder's `LABEL` steps) and every tag is applied by the build itself.

use bytes::Bytes;
use serde::Deserialize;

use super::choice::refused_buildkit;
use super::engine_http::{self, Endpoint};
use super::trace::{self, Output, Trace};
use super::{BuildError, BuildRequest, StepSender};
use crate::logs::{LogStream, LogWriter};

/// How a BuildKit attempt ended without an error.
pub enum Outcome {
    /// Built; the image id when the engine sent it.
    Built(Option<String>),
    /// The engine has no BuildKit: its message.
    Refused(String),
}

#[derive(Deserialize)]
struct Message {
    id: Option<String>,
    aux: Option<serde_json::Value>,
    stream: Option<String>,
    error: Option<String>,
    #[serde(rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

/// The query of a BuildKit build.
pub fn query(req: &BuildRequest, dockerfile: &str) -> Result<String, BuildError> {
    let json = |v: &std::collections::HashMap<String, String>| {
        serde_json::to_string(v).map_err(|e| BuildError::Invalid(e.to_string()))
    };
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("version", "2").append_pair("dockerfile", dockerfile).append_pair("rm", "1");
    for tag in &req.tags {
        q.append_pair("t", tag);
    }
    q.append_pair("buildargs", &json(&req.build_args)?).append_pair("labels", &json(&req.labels)?);
    if req.no_cache {
        q.append_pair("nocache", "1");
    }
    if let Some(target) = req.target.as_deref().filter(|t| !t.is_empty()) {
        q.append_pair("target", target);
    }
    if let Some(platform) = &req.platform {
        q.append_pair("platform", platform);
    }
    Ok(q.finish())
}

/// Runs the build on `endpoint`; dropping the future closes the connection,
/// which cancels the build in the daemon.
pub async fn build(
    endpoint: &Endpoint,
    api_version: &str,
    req: &BuildRequest,
    dockerfile: &str,
    context: Bytes,
    log: &mut LogWriter,
) -> Result<Outcome, BuildError> {
    let path = format!("/v{api_version}/build?{}", query(req, dockerfile)?);
    let mut exchange =
        engine_http::send(endpoint, http::Method::POST, &path, Some("application/x-tar"), context)
            .await
            .map_err(|e| BuildError::Engine(e.0))?;
    if !exchange.status.is_success() {
        let status = exchange.status.as_u16();
        let message = exchange.error_message().await;
        if refused_buildkit(status, &message) {
            return Ok(Outcome::Refused(message));
        }
        return Err(BuildError::Engine(format!("the engine refused the build ({status}): {message}")));
    }

    let mut run = Run { trace: Trace::default(), steps: req.steps.clone(), image_id: None, bad_messages: 0 };
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = exchange.chunk().await {
        let chunk = chunk.map_err(|e| BuildError::Engine(e.0))?;
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            run.message(&line, log).await?;
        }
    }
    run.message(&pending, log).await?;
    let rest = run.trace.flush();
    run.emit(rest, log).await?;
    Ok(Outcome::Built(run.image_id))
}

struct Run {
    trace: Trace,
    steps: Option<StepSender>,
    image_id: Option<String>,
    bad_messages: u32,
}

impl Run {
    async fn message(&mut self, line: &[u8], log: &mut LogWriter) -> Result<(), BuildError> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        let message: Message = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                self.bad_message(&format!("not JSON: {e}"));
                return Ok(());
            }
        };
        if let Some(error) = message.error_detail.and_then(|d| d.message).or(message.error) {
            return Err(self.failure(log, error).await);
        }
        match (message.id.as_deref(), message.aux) {
            (Some("moby.buildkit.trace"), Some(serde_json::Value::String(aux))) => {
                match trace::decode(&aux) {
                    Ok(status) => {
                        let out = self.trace.apply(status);
                        self.emit(out, log).await?;
                    }
                    Err(e) => self.bad_message(&e),
                }
            }
            (Some("moby.image.id"), Some(aux)) => {
                if let Some(id) = aux.get("ID").and_then(|v| v.as_str()) {
                    self.image_id = Some(id.to_string());
                }
            }
            _ => {}
        }
        if let Some(stream) = message.stream.as_deref().filter(|s| !s.trim().is_empty()) {
            log.line(LogStream::Stdout, stream).await?;
        }
        Ok(())
    }

    /// A message that cannot be read is skipped (the build goes on); the
    /// first few are reported.
    fn bad_message(&mut self, why: &str) {
        self.bad_messages += 1;
        if self.bad_messages <= 3 {
            tracing::warn!(why, "skipping an unreadable BuildKit progress message");
        }
    }

    async fn emit(&mut self, out: Vec<Output>, log: &mut LogWriter) -> Result<(), BuildError> {
        for item in out {
            match item {
                Output::Line(stream, text) => log.line(stream, &text).await?,
                Output::Step(n, m) => {
                    if let Some(tx) = &self.steps {
                        // The receiver may be gone; progress is best effort.
                        let _ = tx.send((n, m));
                    }
                }
            }
        }
        Ok(())
    }

    /// Logs the failure and names the step that failed.
    async fn failure(&mut self, log: &mut LogWriter, message: String) -> BuildError {
        let message = message.trim_end().to_string();
        let rest = self.trace.flush();
        let logged = async {
            self.emit(rest, log).await?;
            log.line(LogStream::System, &format!("Build failed: {message}")).await?;
            Ok::<(), BuildError>(())
        }
        .await;
        if let Err(e) = logged {
            tracing::warn!(error = %e, "cannot log a build failure");
        }
        match self.trace.failed_step() {
            Some((step, error)) => {
                BuildError::StepFailed { step: step.to_string(), message: error.to_string() }
            }
            None => BuildError::Failed(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_carries_every_tag_labels_args_target_and_no_cache() {
        let req = BuildRequest {
            tags: vec!["slipway/a-b:build-1".into(), "slipway/a-b:sha-abc".into()],
            labels: [("k".to_string(), "v w".to_string())].into(),
            build_args: [("A".to_string(), "1&2".to_string())].into(),
            target: Some("runtime".into()),
            no_cache: true,
            ..BuildRequest::default()
        };
        let q = query(&req, "docker/Dockerfile").expect("query");
        let pairs: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        let get =
            |k: &str| pairs.iter().filter(|(key, _)| key == k).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
        assert_eq!(get("version"), ["2"]);
        assert_eq!(get("dockerfile"), ["docker/Dockerfile"]);
        assert_eq!(get("t"), ["slipway/a-b:build-1", "slipway/a-b:sha-abc"]);
        assert_eq!(get("labels"), [r#"{"k":"v w"}"#]);
        assert_eq!(get("buildargs"), [r#"{"A":"1&2"}"#]);
        assert_eq!(get("target"), ["runtime"]);
        assert_eq!(get("nocache"), ["1"]);
        let plain =
            query(&BuildRequest { tags: vec!["x:y".into()], ..BuildRequest::default() }, "Dockerfile")
                .expect("query");
        assert!(!plain.contains("nocache") && !plain.contains("target"), "{plain}");
    }
}
