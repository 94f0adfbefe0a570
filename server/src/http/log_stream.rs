//! The live build log as Server-Sent Events:
//! `GET /api/v1/builds/{id}/log/stream`.
//!
//! Viewer role, checked on the server from the caller the identity
//! middleware resolved. Every line is one `line` event whose `id` is its
//! sequence number, so a browser's EventSource resumes after a dropped
//! connection with `Last-Event-ID` and gets each line exactly once; `?after=`
//! does the same for other clients. When the build is finished and every
//! line was sent, an `end` event carries its status.

use std::{convert::Infallible, time::Duration};

use app::AppError;
use axum::{
    extract::State,
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
    routing::get,
    Router,
};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::api::{
    extract::{Id, Params, Viewer},
    ApiError,
};
use crate::{backend::errors, engine::Engine};

/// How long to wait before looking again when a build has no live log yet
/// (queued) or between attempts.
const IDLE_POLL: Duration = Duration::from_millis(100);

pub fn routes<S: Clone + Send + Sync + 'static>(engine: Engine) -> Router<S> {
    Router::new().route("/api/v1/builds/{id}/log/stream", get(stream)).with_state(engine)
}

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    /// Resume after this sequence number.
    after: Option<u64>,
    /// Only the lines of this pipeline step.
    step: Option<String>,
}

/// The live log as Server-Sent Events: `line` events (`id` = sequence
/// number, resumable with `Last-Event-ID` or `?after=`), then one `end`
/// event with the final status.
#[utoipa::path(get, path = "/api/v1/builds/{id}/log/stream", tag = "builds",
    params(("id" = i64, Path, description = "build id"),
           ("after" = Option<u64>, Query, description = "resume after this sequence number"),
           ("step" = Option<String>, Query, description = "only the lines of this pipeline step (1 to 63 of `A-Za-z0-9_.-`)")),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream"),
              (status = 404, body = super::api::ErrorBody), (status = 422, body = super::api::ErrorBody)))]
pub async fn stream(
    State(engine): State<Engine>,
    Viewer(caller): Viewer,
    Id(build_id): Id,
    Params(query): Params<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    engine.get_build(&caller, build_id).await.map_err(|e| ApiError(errors::engine(e)))?;
    let step = crate::build_report::step_filter(query.step).map_err(ApiError)?;
    let after =
        match headers.get("last-event-id") {
            Some(v) => v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()).ok_or_else(|| {
                ApiError(AppError::Invalid("Last-Event-ID must be a sequence number".into()))
            })?,
            None => query.after.unwrap_or(0),
        };
    let (tx, mut rx) = mpsc::channel::<Event>(256);
    let span = tracing::info_span!("log_stream", build_id, after);
    tokio::spawn(follow(engine, build_id, after, step, tx).instrument(span));
    let events = futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(Ok);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Sends lines after `after` until the build is finished, then `end`.
/// Returns early when the client went away.
async fn follow(
    engine: Engine,
    build_id: i64,
    mut after: u64,
    step: Option<String>,
    tx: mpsc::Sender<Event>,
) {
    let step = step.as_deref();
    loop {
        if !send_lines(&engine, build_id, &mut after, step, &tx).await {
            return;
        }
        match engine.build(build_id).await {
            Ok(build) if build.status.is_terminal() => {
                // The log is complete before the status turns final, but the
                // build may have run entirely between the drain above and
                // the status read: drain once more, then end.
                if !send_lines(&engine, build_id, &mut after, step, &tx).await {
                    return;
                }
                let end = Event::default()
                    .event("end")
                    .json_data(serde_json::json!({ "status": build.status.as_str() }));
                if let Ok(end) = end {
                    let _ = tx.send(end).await;
                }
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "log stream: cannot read the build");
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(IDLE_POLL) => {}
            _ = tx.closed() => return,
        }
    }
}

/// Replays and follows the log from `after + 1` until the writer finishes
/// (or at once when the build is not live). `false` when the client left.
async fn send_lines(
    engine: &Engine,
    build_id: i64,
    after: &mut u64,
    step: Option<&str>,
    tx: &mpsc::Sender<Event>,
) -> bool {
    // `after` comes from the client (up to u64::MAX): no line follows the last.
    let mut lines = Box::pin(engine.logs.subscribe(build_id, after.saturating_add(1)));
    loop {
        let line = tokio::select! {
            line = lines.next() => line,
            _ = tx.closed() => return false,
        };
        let Some(line) = line else { return true };
        if line.seq <= *after {
            continue;
        }
        *after = line.seq;
        if step.is_some() && line.step.as_deref() != step {
            continue;
        }
        let seq = line.seq;
        match Event::default().event("line").id(seq.to_string()).json_data(crate::backend::log_line(line)) {
            Ok(event) => {
                if tx.send(event).await.is_err() {
                    return false;
                }
            }
            Err(e) => tracing::error!(error = %e, seq, "cannot encode a log line"),
        }
    }
}
