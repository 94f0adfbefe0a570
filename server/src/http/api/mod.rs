//! REST API v1 under `/api/v1`: JSON in and out, errors as
//! `{ "error": { "code", "message" } }`, `Authorization: Bearer <token>` (or
//! a dashboard session). Every handler calls the same `Backend` port as the
//! dashboard's server functions, so roles are checked in one place (the
//! domain). The OpenAPI 3 document is generated from the handlers'
//! annotations, completed by [`contract`] and served at
//! `/api/v1/openapi.json`.
//!
//! Every handler checks in one order: the caller (401), then the role
//! (403), then the input (400/404/413/415/422). Its first extractor after
//! the state is a role extractor of [`extract`] (`Viewer`, `Deployer`,
//! `Admin`, `SessionUser`), which reads only the request's head; the path
//! id, query and body extractors come after it, and axum runs extractors in
//! argument order.

mod account;
mod applications;
mod builds;
mod catalog;
mod certificates;
pub mod contract;
mod contract_patterns;
mod contract_settings;
mod deploys;
mod error;
pub mod extract;
mod integrations;
mod registry;
mod runtime;

use std::sync::Arc;

pub use error::{json_error, ApiError};

use app::backend::Backend;
use axum::{extract::DefaultBodyLimit, routing::get, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi, ToSchema,
};

/// Request bodies of the API are small; anything larger is refused (413).
pub const BODY_LIMIT: usize = 256 * 1024;

pub type State = Arc<dyn Backend>;

/// The API's routes (the live log stream is mounted by `log_stream`).
pub fn routes<S: Clone + Send + Sync + 'static>(backend: State) -> Router<S> {
    Router::new()
        .merge(catalog::routes())
        .merge(builds::routes())
        .merge(deploys::routes())
        .merge(account::routes())
        .merge(integrations::routes())
        .merge(registry::routes())
        .merge(certificates::routes())
        .merge(runtime::routes())
        .merge(applications::routes())
        .route("/api/v1/openapi.json", get(openapi_json))
        // Unknown API paths answer in the API's error shape, not with the
        // dashboard's HTML page (static routes win over this wildcard).
        .route("/api/v1/{*rest}", axum::routing::any(unknown_path))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(backend)
}

/// The error body every refusal has.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// unauthenticated, forbidden, not_found, invalid, invalid_field,
    /// conflict, rate_limited, too_large, unavailable, internal.
    pub code: String,
    pub message: String,
    /// With `invalid_field` (422) and a taken name (409): every field
    /// refused, each with its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<app::wire::FieldError>>,
}

/// Keyset paging of a history: `before` is the `next` of the previous page.
#[derive(Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub before: Option<i64>,
    /// Page size, default 25; 0 counts as 1, more than 200 as 200.
    pub limit: Option<u32>,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Slipway API", version = "1", description = "Builds, deployments and rollbacks of Slipway services."),
    paths(
        catalog::list_projects, catalog::create_project, catalog::create_service, catalog::get_service,
        catalog::update_service,
        builds::list_builds, builds::trigger_build, builds::get_build, builds::cancel_build, builds::build_log,
        builds::build_report,
        crate::http::log_stream::stream,
        runtime::runtime, runtime::restart, runtime::stop, runtime::start, runtime::redeploy,
        runtime::deployment_events, runtime::delete_service, runtime::delete_project,
        crate::http::runtime_log_stream::stream,
        deploys::list_deployments, deploys::deploy, deploys::get_deployment, deploys::rollback_preview,
        deploys::rollback,
        account::whoami, account::get_job, account::list_tokens, account::create_token, account::revoke_token,
        account::list_audit,
        integrations::webhook_info, integrations::rotate_webhook_secret, integrations::list_deliveries,
        integrations::project_webhook_info, integrations::rotate_project_webhook_secret,
        integrations::list_project_deliveries,
        integrations::list_targets, integrations::create_target, integrations::delete_target,
        registry::get_registry, registry::set_registry, registry::clear_registry,
        certificates::list_certificates, certificates::upload_certificate, certificates::delete_certificate,
        applications::list_volumes, applications::delete_volume, applications::deploy_all,
        applications::build_all,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

async fn unknown_path() -> axum::response::Response {
    crate::http::api::json_error(
        http::StatusCode::NOT_FOUND,
        "not_found",
        "no such API path (see /api/v1/openapi.json)",
    )
}

/// The OpenAPI document (public, like any API's reference), made exact by
/// [`contract`].
async fn openapi_json() -> Json<&'static serde_json::Value> {
    Json(contract::document())
}
