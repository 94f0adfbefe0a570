//! A service's container log as Server-Sent Events:
//! `GET /api/v1/services/{id}/logs?follow=true&tail=200&since=15m`.
//!
//! Viewer role, checked before the query is looked at. Each line is one
//! `line` event (`{"stream","ts","text"}`, secrets redacted); the last
//! event is `end` with the reason (`{"reason"}`): end of the log, or, when
//! following, the container stopped or was replaced.

use std::convert::Infallible;

use app::AppError;
use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
    routing::get,
    Router,
};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tracing::Instrument;

use crate::{
    backend::errors,
    engine::Engine,
    http::api::extract::{Id, Params, Viewer},
    http::api::ApiError,
    runtime::logs::{LogEvent, LogRequest},
};

pub fn routes<S: Clone + Send + Sync + 'static>(engine: Engine) -> Router<S> {
    Router::new().route("/api/v1/services/{id}/logs", get(stream)).with_state(engine)
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// Keep the stream open for new lines (default false).
    pub follow: Option<bool>,
    /// The last N lines first: 0 to 10000, default 200.
    #[param(minimum = 0, maximum = 10000)]
    pub tail: Option<u32>,
    /// Only lines since an RFC 3339 time or an age (`30s`, `15m`, `2h`, `1d`).
    pub since: Option<String>,
    /// A deployment of the service whose container still exists (default:
    /// the live one).
    #[param(minimum = 1)]
    pub deployment: Option<i64>,
}

/// The container log of the service's live deployment: `line` events, then
/// one `end` event with the reason.
#[utoipa::path(get, path = "/api/v1/services/{id}/logs", tag = "runtime",
    params(("id" = i64, Path, description = "service id"), LogsQuery),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream"),
              (status = 422, body = crate::http::api::ErrorBody), (status = 401, body = crate::http::api::ErrorBody),
              (status = 404, body = crate::http::api::ErrorBody), (status = 409, body = crate::http::api::ErrorBody)))]
pub async fn stream(
    State(engine): State<Engine>,
    Viewer(caller): Viewer,
    Id(service_id): Id,
    Params(query): Params<LogsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if query.deployment.is_some_and(|d| d < 1) {
        return Err(ApiError(AppError::InvalidField {
            field: "deployment".into(),
            message: "must be a positive id".into(),
        }));
    }
    let request = LogRequest {
        service_id,
        deployment_id: query.deployment,
        tail: query.tail,
        since: query.since,
        follow: query.follow.unwrap_or(false),
    };
    let span = tracing::info_span!("runtime_log", service_id, follow = request.follow);
    let events = engine
        .runtime_log(&caller, request)
        .instrument(span)
        .await
        .map_err(|e| ApiError(errors::engine(e)))?;
    let events = events.map(|event| {
        let sse = match event {
            LogEvent::Line { stream, ts, text } => Event::default()
                .event("line")
                .json_data(serde_json::json!({ "stream": stream, "ts": ts, "text": text })),
            LogEvent::End { reason } => {
                Event::default().event("end").json_data(serde_json::json!({ "reason": reason }))
            }
        };
        Ok(sse.unwrap_or_else(|_| Event::default().event("line").data("(a line that could not be encoded)")))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
