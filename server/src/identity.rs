//! Resolves the caller once per request and stores it in the request
//! extensions, where server functions and REST handlers read it.
//!
//! Sessions and API tokens arrive with the login and integrations issues;
//! until then every request is `Caller::Anonymous`.

use app::wire::Caller;
use axum::{extract::Request, middleware::Next, response::Response};

pub async fn resolve_caller(mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(Caller::Anonymous);
    next.run(req).await
}
