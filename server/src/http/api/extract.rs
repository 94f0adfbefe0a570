//! Request extractors whose refusals are the API's JSON errors
//! (`{ "error": { "code", "message" } }`), never axum's plain-text ones.

use app::{
    wire::{Caller, Role, Via},
    AppError,
};
use axum::{
    extract::{rejection::JsonRejection, FromRequest, FromRequestParts, Request},
    http::request::Parts,
    response::Response,
    Json,
};
use serde::{de::DeserializeOwned, Serialize};

use crate::http::api::ApiError;

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
/// content type and too-deep nesting are 400/415/422 with a message, a
/// body over the limit 413. A whole number written with a fraction of zero
/// (`2.0`) is the integer it equals, as JSON Schema reads it.
pub struct Body<T>(pub T);

fn body_error(status: http::StatusCode, message: &str) -> Response {
    let code = if status.as_u16() == 413 { "too_large" } else { "invalid" };
    crate::http::api::json_error(status, code, message)
}

/// `application/json` or `application/<anything>+json`, as axum's `Json` wants.
fn is_json(req: &Request) -> bool {
    let Some(value) = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", sub)) => sub == "json" || sub.ends_with("+json"),
        _ => false,
    }
}

/// `value` with every whole-number float that an i64 holds exactly as that integer.
fn whole_floats_as_integers(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() <= EXACT => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(whole_floats_as_integers).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, whole_floats_as_integers(v))).collect())
        }
        other => other,
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(body_error(
                http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(e.status(), "the body is too large or unreadable"))?;
        let rejection = match Json::<T>::from_bytes(&bytes) {
            Ok(Json(value)) => return Ok(Body(value)),
            Err(rejection) => rejection,
        };
        // Only a body that parsed but did not fit may still be one with `2.0`s.
        if matches!(rejection, JsonRejection::JsonDataError(_)) {
            let whole = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .map(whole_floats_as_integers)
                .and_then(|v| T::deserialize(v).ok());
            if let Some(value) = whole {
                return Ok(Body(value));
            }
        }
        Err(body_error(rejection.status(), &rejection.body_text()))
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

/// A numeric id and a name from the path (`/services/{id}/volumes/{name}`).
pub struct IdAndName(pub i64, pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdAndName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((raw, name)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|_| invalid("the path needs an id and a name".into()))?;
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(IdAndName(id, name)),
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
fn resolved(parts: &Parts) -> Caller {
    parts.extensions.get::<Caller>().cloned().unwrap_or(Caller::Anonymous)
}

/// The caller if they hold `needed`: 401 when anonymous, 403 when their
/// role is lower. Read from the request's head only, so a handler that
/// lists its role extractor first answers these before its path, query or
/// body is parsed (axum runs extractors in argument order).
fn holding(parts: &Parts, needed: Role) -> Result<Caller, ApiError> {
    let caller = resolved(parts);
    crate::access::require(&caller, needed).map_err(|e| ApiError(crate::backend::errors::access(e)))?;
    Ok(caller)
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $role:expr) => {
        $(#[$doc])*
        pub struct $name(pub Caller);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
                holding(parts, $role).map($name)
            }
        }
    };
}

role_extractor!(
    /// A signed-in caller of any role (401 when anonymous).
    Viewer,
    Role::Viewer
);
role_extractor!(
    /// A deployer or admin (401 when anonymous, 403 for a viewer).
    Deployer,
    Role::Deployer
);
role_extractor!(
    /// An admin (401 when anonymous, 403 below admin).
    Admin,
    Role::Admin
);

/// A caller signed in to the dashboard (a session, not an API token): API
/// tokens are made only from a session. 401 when anonymous, 403 with a token.
pub struct SessionUser(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for SessionUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let caller = holding(parts, Role::Viewer)?;
        if matches!(caller, Caller::User { via: Via::Token, .. }) {
            return Err(ApiError(AppError::Forbidden(
                "API tokens are created when signed in to the dashboard, not with another token".into(),
            )));
        }
        Ok(SessionUser(caller))
    }
}
