//! The one error type every server function returns. Serializable so the
//! browser gets the same variant the server produced.

use serde::{Deserialize, Serialize};
use server_fn::{codec::JsonEncoding, error::FromServerFnError, ServerFnError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", content = "message", rename_all = "snake_case")]
pub enum AppError {
    #[error("sign in first")]
    Unauthenticated,
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A form field the domain refused; the UI shows it next to the field.
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    /// Too many attempts (login); the message says when to try again.
    #[error("{0}")]
    RateLimited(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// A field's value is already taken (a unique name): a conflict (409)
    /// that the UI shows next to the field.
    #[error("{field}: {message}")]
    Taken { field: String, message: String },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error (see the server log): {0}")]
    Internal(String),
    /// The call itself failed (network, encoding) before the domain answered.
    #[error("{0}")]
    Transport(String),
}

impl AppError {
    /// HTTP status a server function or REST route answers with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::Invalid(_) | AppError::InvalidField { .. } => 422,
            AppError::RateLimited(_) => 429,
            AppError::Conflict(_) | AppError::Taken { .. } => 409,
            AppError::Unavailable(_) => 503,
            AppError::Internal(_) | AppError::Transport(_) => 500,
        }
    }

    /// The machine-readable code, as in the serialized form.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => "unauthenticated",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Invalid(_) => "invalid",
            AppError::InvalidField { .. } => "invalid_field",
            AppError::RateLimited(_) => "rate_limited",
            AppError::Conflict(_) | AppError::Taken { .. } => "conflict",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
            AppError::Transport(_) => "transport",
        }
    }

    /// The field a refusal is about, for inline display.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::InvalidField { field, .. } | AppError::Taken { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: server_fn::error::ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

impl From<ServerFnError> for AppError {
    fn from(value: ServerFnError) -> Self {
        AppError::Transport(value.to_string())
    }
}
