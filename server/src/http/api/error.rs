//! The REST API's error responses: `{ "error": { "code", "message" } }`.
//! The API's handlers, the live log streams and the webhook endpoint answer
//! with these.

use app::AppError;
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};

/// An `AppError` as a JSON response `{ "error": { "code", "message" } }`;
/// a refusal of fields (422 `invalid_field`) also lists every field refused
/// in `fields: [{ "field", "message" }]`.
pub struct ApiError(pub AppError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let fields = self.0.field_errors();
        if fields.is_empty() {
            return json_error(status, self.0.code(), &self.0.to_string());
        }
        let body = serde_json::json!({
            "error": { "code": self.0.code(), "message": self.0.to_string(), "fields": fields }
        });
        (status, Json(body)).into_response()
    }
}

/// The REST API's error body: `{ "error": { "code", "message" } }`.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, Json(body)).into_response()
}
