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
