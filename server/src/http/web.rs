//! The dashboard's HTTP server: Leptos SSR routes, server functions, static
//! assets under `/pkg`.

use std::sync::Arc;

use app::{backend::Backend, shell, App};
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::services::ServeDir;

use crate::{auth::Auth, config::Config, edge::EdgeRouter, engine::Engine};

/// Everything the HTTP layer needs, built once at startup.
#[derive(Clone)]
pub struct AppState {
    pub backend: Arc<dyn Backend>,
    pub leptos_options: LeptosOptions,
    /// Sessions and users, for the session layer and caller resolution.
    pub auth: Auth,
    /// The engine, for routes outside the server functions (the log stream);
    /// `None` in tests that serve only sign-in.
    pub engine: Option<Engine>,
    /// The edge router, for its per-route counters on `/metrics`.
    pub edge: Option<Arc<EdgeRouter>>,
    /// When set, `/metrics` needs `Authorization: Bearer <this>`.
    pub metrics_token: Option<String>,
}

pub fn leptos_options(config: &Config) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("slipway")
        .site_root(config.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.dashboard_addr)
        .build()
}

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let backend = state.backend.clone();
    let options = state.leptos_options.clone();
    let pkg_dir = std::path::Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let api = match state.engine.clone() {
        Some(engine) => crate::http::log_stream::routes(engine.clone())
            .merge(crate::http::runtime_log_stream::routes(engine.clone()))
            .merge(crate::http::api::routes(state.backend.clone()))
            .merge(crate::http::webhook::routes(engine.clone()))
            .merge(crate::http::metrics::routes(engine, state.edge.clone(), state.metrics_token.clone())),
        None => Router::new(),
    };
    Router::new()
        .merge(api)
        .leptos_routes_with_context(&options, routes, move || provide_context(backend.clone()), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .nest_service("/pkg", ServeDir::new(pkg_dir))
        // Unknown paths render the 404 page with the backend too, so its
        // top bar knows the signed-in caller.
        .fallback(leptos_axum::file_and_error_handler_with_context(
            {
                let backend = state.backend.clone();
                move || provide_context(backend.clone())
            },
            shell,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            crate::http::identity::resolve_caller,
        ))
        .layer(state.auth.session_layer())
        .layer(axum::middleware::from_fn(crate::auth::origin::reject_cross_origin))
        .layer(axum::middleware::from_fn(limit_rpc_body))
        .with_state(options)
}

/// Server functions read their whole body, under axum's 2 MB default, and
/// a body over it fails as a 500 "transport" error. Here a body over the
/// API's limit ([`crate::http::api::BODY_LIMIT`]) is refused with 413 and
/// the server functions' error body: at once when its length is declared,
/// else as soon as it is read past the limit.
async fn limit_rpc_body(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::body::HttpBody as _;
    use http_body_util::BodyExt as _;
    const LIMIT: usize = crate::http::api::BODY_LIMIT;
    if !req.uri().path().starts_with("/rpc/") {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        .max(req.body().size_hint().lower());
    if declared > LIMIT as u64 {
        return rpc_refusal(http::StatusCode::PAYLOAD_TOO_LARGE, too_large());
    }
    let (parts, body) = req.into_parts();
    let bytes = match http_body_util::Limited::new(body, LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return rpc_refusal(http::StatusCode::PAYLOAD_TOO_LARGE, too_large())
        }
        Err(_) => {
            let error = app::AppError::Invalid("the request body could not be read".into());
            return rpc_refusal(http::StatusCode::BAD_REQUEST, error);
        }
    };
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

fn too_large() -> app::AppError {
    app::AppError::Invalid(format!("the request is larger than {} KiB", crate::http::api::BODY_LIMIT / 1024))
}

/// A server function's error answer.
fn rpc_refusal(status: http::StatusCode, error: app::AppError) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::to_string(&error).unwrap_or_default();
    (status, [(http::header::CONTENT_TYPE, "application/json")], body).into_response()
}
