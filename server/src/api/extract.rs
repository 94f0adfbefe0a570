//! Request extractors whose refusals are the API's JSON errors
//! (`{ "error": { "code", "message" } }`), never axum's plain-text ones.

use app::{wire::Caller, AppError};
use axum::{
    extract::{rejection::JsonRejection, FromRequest, FromRequestParts, Request},
    http::request::Parts,
    response::Response,
    Json,
};
use serde::{de::DeserializeOwned, Serialize};

use crate::log_stream::ApiError;

/// A handler's answer: JSON or an API error.
pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// Turns a port result into a handler's answer.
pub fn reply<T: Serialize>(result: Result<T, AppError>) -> ApiResult<T> {
    result.map(Json).map_err(ApiError)
}

fn invalid(message: String) -> ApiError {
    ApiError(AppError::Invalid(message))
}

/// A JSON request body; malformed JSON, wrong types, a missing or wrong
/// content type and too-deep nesting are 400/415/422 with a message.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => {
                let status = rejection.status();
                let message = match &rejection {
                    JsonRejection::MissingJsonContentType(_) => {
                        "the body must be JSON (Content-Type: application/json)".to_string()
                    }
                    JsonRejection::BytesRejection(_) => "the body is too large or unreadable".to_string(),
                    other => other.body_text(),
                };
                let code = if status.as_u16() == 413 { "too_large" } else { "invalid" };
                Err(crate::log_stream::json_error(status, code, &message))
            }
        }
    }
}

/// A numeric id from the path (`/builds/{id}`); anything else is a 400.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid("the path needs one id".into()))?;
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Id(id)),
            _ => Err(invalid("the id in the path must be a positive number".into())),
        }
    }
}

/// Query parameters; unknown or malformed ones are a 400 with a message.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e| invalid(format!("bad query parameters: {}", e.body_text())))
    }
}

/// The caller the identity middleware resolved (anonymous when absent).
pub struct Who(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Who(parts.extensions.get::<Caller>().cloned().unwrap_or(Caller::Anonymous)))
    }
}
