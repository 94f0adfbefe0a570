//! Builds: trigger with a git ref, list, get, cancel, log from a sequence
//! number. The live log (SSE) is `crate::http::log_stream`.

use app::wire::{BuildDetail, BuildReport, BuildView, HistoryPage, LogLineView};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    extract::{reply, ApiResult, Body, Deployer, Id, Params, Viewer},
    ErrorBody, PageQuery, State as Backend,
};
use crate::{build_report::step_filter, http::api::ApiError};

pub fn routes() -> Router<Backend> {
    Router::new()
        .route("/api/v1/services/{id}/builds", get(list_builds).post(trigger_build))
        .route("/api/v1/builds/{id}", get(get_build))
        .route("/api/v1/builds/{id}/cancel", post(cancel_build))
        .route("/api/v1/builds/{id}/log", get(build_log))
        .route("/api/v1/builds/{id}/report", get(build_report))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBuild {
    /// Branch, tag or full commit id; the service's branch when absent.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// Deploy the image once built, whatever the service's auto-deploy
    /// setting.
    #[serde(default)]
    pub deploy: bool,
    /// Build only: never deploy this build, even when the service deploys
    /// automatically after every successful build. Not with `deploy`.
    #[serde(default)]
    pub build_only: bool,
    /// Build every step again, ignoring the build cache, for this build
    /// only (the service's own setting stays).
    #[serde(default)]
    pub no_cache: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Lines with a sequence number greater than this (default 0: all).
    pub after: Option<u64>,
    /// Only the lines of this pipeline step (1 to 63 of `A-Za-z0-9_.-`).
    pub step: Option<String>,
}

/// A service's builds, newest first.
#[utoipa::path(get, path = "/api/v1/services/{id}/builds", tag = "builds",
    params(("id" = i64, Path, description = "service id"), PageQuery),
    responses((status = 200, body = HistoryPage<BuildView>), (status = 404, body = ErrorBody)))]
pub async fn list_builds(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
    Id(id): Id,
    Params(page): Params<PageQuery>,
) -> ApiResult<HistoryPage<BuildView>> {
    reply(b.list_builds(&caller, id, page.before, page.limit).await)
}

/// Queues a build of a ref (deployer); `202` with the queued build.
#[utoipa::path(post, path = "/api/v1/services/{id}/builds", tag = "builds", request_body = NewBuild,
    params(("id" = i64, Path, description = "service id")),
    responses((status = 202, body = BuildView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn trigger_build(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
    Body(body): Body<NewBuild>,
) -> Result<(StatusCode, Json<BuildView>), ApiError> {
    let build =
        reply(b.trigger_build(&caller, id, body.git_ref, body.deploy, body.build_only, body.no_cache).await)?;
    Ok((StatusCode::ACCEPTED, build))
}

/// One build with its service and project names.
#[utoipa::path(get, path = "/api/v1/builds/{id}", tag = "builds",
    params(("id" = i64, Path, description = "build id")),
    responses((status = 200, body = BuildDetail), (status = 404, body = ErrorBody)))]
pub async fn get_build(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
    Id(id): Id,
) -> ApiResult<BuildDetail> {
    reply(b.get_build(&caller, id).await)
}

/// Cancels a queued or running build (deployer); `409` when it has finished.
#[utoipa::path(post, path = "/api/v1/builds/{id}/cancel", tag = "builds",
    params(("id" = i64, Path, description = "build id")),
    responses((status = 200, body = BuildView), (status = 409, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn cancel_build(
    State(b): State<Backend>,
    Deployer(caller): Deployer,
    Id(id): Id,
) -> ApiResult<BuildView> {
    reply(b.cancel_build(&caller, id).await)
}

/// The build's stored log lines after a sequence number.
#[utoipa::path(get, path = "/api/v1/builds/{id}/log", tag = "builds",
    params(("id" = i64, Path, description = "build id"), LogQuery),
    responses((status = 200, body = Vec<LogLineView>), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn build_log(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
    Id(id): Id,
    Params(q): Params<LogQuery>,
) -> ApiResult<Vec<LogLineView>> {
    let step = step_filter(q.step).map_err(ApiError)?;
    let mut lines = reply(b.build_log(&caller, id, q.after.unwrap_or(0)).await)?;
    if let Some(step) = step {
        lines.0.retain(|l| l.step.as_deref() == Some(step.as_str()));
    }
    Ok(lines)
}

/// The run's report: commit, ref, event, trigger, status, timings, each
/// step (kind, status, exit code, duration, depends_on, error), each
/// service (health, time to healthy) and each matrix variant. A run without
/// a pipeline (or from before pipelines) has one step, `build`.
#[utoipa::path(get, path = "/api/v1/builds/{id}/report", tag = "builds",
    params(("id" = i64, Path, description = "build id")),
    responses((status = 200, body = BuildReport), (status = 404, body = ErrorBody)))]
pub async fn build_report(
    State(b): State<Backend>,
    Viewer(caller): Viewer,
    Id(id): Id,
) -> ApiResult<BuildReport> {
    reply(b.build_report(&caller, id).await)
}
