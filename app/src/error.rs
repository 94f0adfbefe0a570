//! The one error type every server function returns. Serializable so the
//! browser gets the same variant the server produced.

use serde::{Deserialize, Serialize};
use server_fn::{codec::JsonEncoding, error::FromServerFnError, ServerFnError};

use crate::wire::FieldError;

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
    /// Several form fields refused at once (every field is checked before
    /// answering); the UI shows each message next to its field.
    #[error("{}", join_fields(.0))]
    InvalidFields(Vec<FieldError>),
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
            AppError::Invalid(_) | AppError::InvalidField { .. } | AppError::InvalidFields(_) => 422,
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
            // Same code for one or several fields: the REST body lists them
            // in `fields` either way.
            AppError::InvalidField { .. } | AppError::InvalidFields(_) => "invalid_field",
            AppError::RateLimited(_) => "rate_limited",
            AppError::Conflict(_) | AppError::Taken { .. } => "conflict",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
            AppError::Transport(_) => "transport",
        }
    }

    /// The field a refusal is about (the first, when several are).
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::InvalidField { field, .. } | AppError::Taken { field, .. } => Some(field),
            AppError::InvalidFields(list) => list.first().map(|f| f.field.as_str()),
            _ => None,
        }
    }

    /// Every field refused, each with its message (empty for other errors).
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            AppError::InvalidField { field, message } | AppError::Taken { field, message } => {
                vec![FieldError { field: field.clone(), message: message.clone() }]
            }
            AppError::InvalidFields(list) => list.clone(),
            _ => Vec::new(),
        }
    }

    /// One or several field errors as an `AppError`: [`AppError::InvalidField`]
    /// for one (the shape clients know), [`AppError::InvalidFields`] for more.
    pub fn fields(mut list: Vec<FieldError>) -> AppError {
        match list.len() {
            1 => {
                let FieldError { field, message } = list.remove(0);
                AppError::InvalidField { field, message }
            }
            _ => AppError::InvalidFields(list),
        }
    }

    /// The error as people read it: a plain sentence, without the code
    /// or field prefixes of [`Display`](std::fmt::Display) (which the REST
    /// API and logs use).
    pub fn message(&self) -> String {
        let text = match self {
            AppError::Unauthenticated => "Sign in first".to_string(),
            AppError::NotFound(what) => format!("{what} not found"),
            AppError::Forbidden(m)
            | AppError::Invalid(m)
            | AppError::RateLimited(m)
            | AppError::Conflict(m)
            | AppError::Unavailable(m)
            | AppError::Transport(m) => m.clone(),
            AppError::InvalidField { message, .. } | AppError::Taken { message, .. } => message.clone(),
            AppError::InvalidFields(list) => {
                return list.iter().map(|f| sentence(&f.message)).collect::<Vec<_>>().join(" ")
            }
            AppError::Internal(m) => format!("Something failed on the server ({m}); see the server log"),
        };
        sentence(&text)
    }
}

/// `text` as a sentence: first letter upper case, ending with a full stop.
pub fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?', ')', '…']) {
        out.push('.');
    }
    out
}

fn join_fields(list: &[FieldError]) -> String {
    list.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fe(field: &str, message: &str) -> FieldError {
        FieldError { field: field.into(), message: message.into() }
    }

    #[test]
    fn messages_are_plain_sentences_without_prefixes() {
        let e = AppError::Forbidden("this needs the deployer role".into());
        assert_eq!(e.message(), "This needs the deployer role.");
        let e = AppError::InvalidField {
            field: "password".into(),
            message: "password must be at least 12 characters long".into(),
        };
        assert_eq!(e.message(), "Password must be at least 12 characters long.");
        assert_eq!(AppError::NotFound("service".into()).message(), "Service not found.");
        assert_eq!(sentence("Done."), "Done.");
    }

    #[test]
    fn several_fields_round_trip_and_one_stays_invalid_field() {
        let one = AppError::fields(vec![fe("name", "must not be empty")]);
        assert!(matches!(one, AppError::InvalidField { .. }));
        let two = AppError::fields(vec![fe("name", "must not be empty"), fe("url", "is not a valid URL")]);
        assert_eq!(two.status(), 422);
        assert_eq!(two.code(), "invalid_field");
        assert_eq!(two.field(), Some("name"));
        assert_eq!(two.field_errors().len(), 2);
        assert_eq!(two.to_string(), "name: must not be empty; url: is not a valid URL");
        let json = leptos::serde_json::to_string(&two).expect("serializes");
        assert_eq!(leptos::serde_json::from_str::<AppError>(&json).ok(), Some(two));
    }
}
