//! The classic builder (`version=1`, through bollard): its `stream` text is
//! the Dockerfile steps verbatim (`Step n/m : …`), kept as whole log lines.
//! Build labels become a last `LABEL` step (one layer commit).

use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use bollard::Docker;
use bytes::Bytes;
use futures::StreamExt;

use super::{BuildError, BuildRequest, StepSender};
use crate::logs::{LogError, LogStream, LogWriter};

/// Runs the build with the first tag; returns the image id when the engine
/// sent it. Dropping the future drops the request, which cancels the build
/// in the daemon (it kills and removes the running step's container).
pub async fn build(
    client: &Docker,
    req: &BuildRequest,
    dockerfile: &str,
    context: Bytes,
    log: &mut LogWriter,
) -> Result<Option<String>, BuildError> {
    let first_tag = req.tags.first().map(String::as_str).unwrap_or_default();
    let mut options = BuildImageOptionsBuilder::new()
        .dockerfile(dockerfile)
        .t(first_tag)
        .rm(true)
        .forcerm(true)
        .nocache(req.no_cache)
        .buildargs(&req.build_args)
        .labels(&req.labels)
        .version(BuilderVersion::BuilderV1);
    if let Some(target) = req.target.as_deref().filter(|t| !t.is_empty()) {
        options = options.target(target);
    }
    if let Some(platform) = &req.platform {
        options = options.platform(platform);
    }
    let mut stream = client.build_image(options.build(), None, Some(bollard::body_full(context)));

    let mut progress = Progress { steps: req.steps.clone(), ..Progress::default() };
    let mut image_id = None;
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(progress.failure(log, error).await);
            }
            Err(e) => return Err(BuildError::Engine(e.to_string())),
        };
        if let Some(text) = info.stream.as_deref() {
            progress.push(log, text).await?;
        }
        if let Some(status) = info.status.as_deref() {
            // Base image pull progress: only the state changes, not the bars.
            if info.progress_detail.as_ref().is_none_or(|d| d.total.is_none()) {
                let line = match info.id.as_deref() {
                    Some(id) => format!("{id}: {status}"),
                    None => status.to_string(),
                };
                log.line(LogStream::Stdout, &line).await?;
            }
        }
        if let Some(id) = info.aux.and_then(|aux| aux.id) {
            image_id = Some(id);
        }
        if let Some(message) = info.error_detail.and_then(|d| d.message) {
            return Err(progress.failure(log, message).await);
        }
    }
    progress.flush(log).await?;
    Ok(image_id)
}

/// Turns the builder's `stream` text into whole log lines and remembers the
/// step being run.
#[derive(Default)]
struct Progress {
    partial: String,
    step: Option<String>,
    steps: Option<StepSender>,
}

impl Progress {
    async fn push(&mut self, log: &mut LogWriter, text: &str) -> Result<(), LogError> {
        self.partial.push_str(text);
        let Some(end) = self.partial.rfind('\n') else {
            return Ok(());
        };
        let complete: String = self.partial.drain(..=end).collect();
        for line in complete.lines() {
            if line.starts_with("Step ") {
                self.step = Some(line.trim_end().to_string());
                if let (Some(tx), Some(n)) = (&self.steps, step_numbers(line)) {
                    // The receiver may be gone; progress is best effort.
                    let _ = tx.send(n);
                }
            }
        }
        log.line(LogStream::Stdout, &complete).await
    }

    async fn flush(&mut self, log: &mut LogWriter) -> Result<(), LogError> {
        if self.partial.is_empty() {
            return Ok(());
        }
        let rest = std::mem::take(&mut self.partial);
        log.line(LogStream::Stdout, &rest).await
    }

    /// Logs the failure and names the step it happened in.
    async fn failure(&mut self, log: &mut LogWriter, message: String) -> BuildError {
        let message = message.trim_end().to_string();
        let logged = async {
            self.flush(log).await?;
            log.line(LogStream::System, &format!("Build failed: {message}")).await
        }
        .await;
        if let Err(e) = logged {
            tracing::warn!(error = %e, "cannot log a build failure");
        }
        match self.step.take() {
            Some(step) => BuildError::StepFailed { step, message },
            None => BuildError::Failed(message),
        }
    }
}

/// `(n, m)` from a classic builder `Step n/m : …` line.
fn step_numbers(line: &str) -> Option<(u32, u32)> {
    let rest = line.strip_prefix("Step ")?;
    let (counts, _) = rest.split_once(' ')?;
    let (n, m) = counts.split_once('/')?;
    Some((n.parse().ok()?, m.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_lines_give_their_numbers() {
        assert_eq!(step_numbers("Step 2/5 : RUN make"), Some((2, 5)));
        assert_eq!(step_numbers("Step x/5 : RUN make"), None);
        assert_eq!(step_numbers(" ---> Running in abc"), None);
    }
}
