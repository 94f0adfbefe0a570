//! Builds: history, trigger, one build, its stored log, cancel. The live log
//! is an SSE stream served by the server (`/api/v1/builds/{id}/log/stream`).

use leptos::prelude::*;
use server_fn::codec::Json;

use crate::{
    error::AppError,
    wire::{
        BuildDetail, BuildPageData, BuildPoint, BuildPoll, BuildRow, BuildView, HistoryPage, LogLineView,
    },
};

/// A service's builds, newest first; `before` from the previous page's
/// `next`; `limit` 1–200, default 25 (viewer).
#[server(prefix = "/rpc", endpoint = "list_builds", input = Json)]
pub async fn list_builds(
    service_id: i64,
    before: Option<i64>,
    limit: Option<u32>,
) -> Result<HistoryPage<BuildView>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.list_builds(&caller(), service_id, before, limit).await)
}

/// A page of the service page's build table (viewer): 25 rows before
/// `before`, newest first.
#[server(prefix = "/rpc", endpoint = "build_rows", input = Json)]
pub async fn build_rows(service_id: i64, before: Option<i64>) -> Result<HistoryPage<BuildRow>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.build_rows(&caller(), service_id, before).await)
}

/// The newest `limit` builds (1–200, default 25) as chart points: number,
/// status, run time (viewer).
#[server(prefix = "/rpc", endpoint = "build_durations", input = Json)]
pub async fn build_durations(service_id: i64, limit: Option<u32>) -> Result<Vec<BuildPoint>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.build_durations(&caller(), service_id, limit).await)
}

/// Queues a build of `git_ref` (the service's branch when empty) (deployer).
/// It is deployed once it succeeds when `deploy`, or when the service
/// deploys automatically and `build_only` is false.
#[server(prefix = "/rpc", endpoint = "trigger_build", input = Json)]
pub async fn trigger_build(
    service_id: i64,
    git_ref: Option<String>,
    deploy: bool,
    build_only: bool,
) -> Result<BuildView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.trigger_build(&caller(), service_id, git_ref, deploy, build_only, false).await)
}

/// The build page's data in one call: the build with its service and
/// project names, and its stored log (viewer).
#[server(prefix = "/rpc", endpoint = "build_page", input = Json)]
pub async fn build_page(build_id: i64) -> Result<BuildPageData, AppError> {
    use crate::backend::{backend, caller, respond};
    use crate::pages::build::pipeline::poll;
    let page = backend()?.build_page(&caller(), build_id).await;
    respond(page.map(|p| BuildPageData { detail: p.detail, lines: p.lines, poll: poll(p.report) }))
}

/// One build with its service and project names (viewer).
#[server(prefix = "/rpc", endpoint = "get_build", input = Json)]
pub async fn get_build(build_id: i64) -> Result<BuildDetail, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.get_build(&caller(), build_id).await)
}

/// A build's stored log lines with `seq > after` (viewer).
#[server(prefix = "/rpc", endpoint = "build_log", input = Json)]
pub async fn build_log(build_id: i64, after: u64) -> Result<Vec<LogLineView>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.build_log(&caller(), build_id, after).await)
}

/// The build and its Pipeline section as markup, from the run's report
/// (viewer). The report itself is `GET /api/v1/builds/{id}/report`.
#[server(prefix = "/rpc", endpoint = "build_report", input = Json)]
pub async fn build_report(build_id: i64) -> Result<BuildPoll, AppError> {
    use crate::backend::{backend, caller, respond};
    use crate::pages::build::pipeline::poll;
    respond(backend()?.build_report(&caller(), build_id).await.map(poll))
}

/// Cancels a queued or running build (deployer).
#[server(prefix = "/rpc", endpoint = "cancel_build", input = Json)]
pub async fn cancel_build(build_id: i64) -> Result<BuildView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.cancel_build(&caller(), build_id).await)
}
