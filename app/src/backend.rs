//! The port the server functions call (server side only). The `server` crate
//! implements it and provides it as `Arc<dyn Backend>` context; each method is
//! one use-case and takes the caller's identity.

use std::sync::Arc;

use leptos::prelude::*;

use crate::{
    error::AppError,
    wire::{Caller, SystemStatus},
};

#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    async fn system_status(&self, caller: &Caller) -> Result<SystemStatus, AppError>;

    /// Signs in on the request's session (its id is cycled) and returns the
    /// new caller. `request` carries the session and the client address.
    async fn login(
        &self,
        request: &http::request::Parts,
        name: String,
        password: String,
    ) -> Result<Caller, AppError>;

    /// Ends the request's session (anonymous callers too: it is harmless).
    async fn logout(&self, caller: &Caller, request: &http::request::Parts) -> Result<(), AppError>;

    /// Who the caller is, as the server resolved it.
    async fn whoami(&self, caller: &Caller) -> Result<Caller, AppError>;
}

/// The backend provided by the server.
pub fn backend() -> Result<Arc<dyn Backend>, AppError> {
    use_context::<Arc<dyn Backend>>().ok_or_else(|| AppError::Internal("no backend in context".into()))
}

/// The caller the server's middleware put into the request extensions.
pub fn caller() -> Caller {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>().cloned())
        .unwrap_or(Caller::Anonymous)
}

/// The request as the server's middleware left it (session, client address).
pub fn request_parts() -> Result<http::request::Parts, AppError> {
    use_context::<http::request::Parts>().ok_or_else(|| AppError::Internal("no request in context".into()))
}

/// Sets the HTTP status of the server function's response from the error.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(e) = &result {
        if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
            if let Ok(code) = http::StatusCode::from_u16(e.status()) {
                options.set_status(code);
            }
        }
    }
    result
}
