//! The server's implementation of the UI's `Backend` port: each method calls
//! one domain use-case and maps its error to `AppError`.

use app::{
    backend::Backend,
    wire::{Caller, SystemStatus},
    AppError,
};

use crate::status::StatusService;

pub struct ServerBackend {
    pub status: StatusService,
}

impl ServerBackend {
    pub fn new(status: StatusService) -> Self {
        ServerBackend { status }
    }
}

/// Logs an unexpected failure in full and gives the caller a short message.
pub fn internal(e: anyhow::Error) -> AppError {
    tracing::error!(error = %format!("{e:#}"), "request failed");
    AppError::Internal(e.to_string())
}

#[async_trait::async_trait]
impl Backend for ServerBackend {
    async fn system_status(&self, _caller: &Caller) -> Result<SystemStatus, AppError> {
        self.status.system_status().await.map_err(internal)
    }
}
