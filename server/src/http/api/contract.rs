//! The OpenAPI document as served: utoipa's output from the handlers'
//! annotations, made exact here.
//!
//! * Every operation needs a caller, so every one documents 401; one that
//!   reads an id from its path documents 404 and 422 (and the id is an
//!   int64 of at least 1); one with query parameters documents 422; one
//!   with a body documents 400 (malformed JSON), 413 (over
//!   [`super::BODY_LIMIT`]), 415 (not `application/json`) and 422. The
//!   handlers document their success, 403 and 409 themselves.
//! * Request bodies state what the domain's validators enforce (patterns,
//!   ranges, enums, lengths), from the validators' own constants: a client
//!   that follows the document is not refused for its input, and input
//!   outside it is refused. The requests that carry a service's settings
//!   use `ServiceSettingsInput` (the response's `ServiceSettings` shows
//!   stored, masked values).

use std::sync::LazyLock;

use serde_json::{json, Value};
use utoipa::OpenApi;

use super::{contract_patterns as pat, ApiDoc};
use crate::{
    auth::tokens::MAX_DAYS,
    history::MAX_PAGE,
    runtime::logs::MAX_TAIL,
    validate::{MAX_ENV_VALUE, MAX_GIT_REF, MAX_IMAGE_REF, MAX_SLUG},
};

/// The document, built once.
static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    let (doc, missing) = build();
    for pointer in missing {
        tracing::error!(pointer, "OpenAPI contract: a constraint names no place in the document");
    }
    doc
});

/// The served document.
pub fn document() -> &'static Value {
    &DOCUMENT
}

/// The document and the JSON pointers of constraints that found no place
/// in it (a test asserts there are none).
pub fn build() -> (Value, Vec<String>) {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    let mut missing = Vec::new();
    schemas(&mut doc, &mut missing);
    operations(&mut doc);
    (doc, missing)
}

/// An id: a positive int64.
fn id_schema() -> Value {
    json!({ "type": "integer", "format": "int64", "minimum": 1, "maximum": i64::MAX })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
    })
}

/// Adds `status` to an operation's responses unless the handler documented it.
fn respond(op: &mut Value, status: &str, description: &str) {
    if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
        responses.entry(status.to_string()).or_insert_with(|| error_response(description));
    }
}

/// The statuses every operation answers the same way, and the path id's range.
fn operations(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for op in item.values_mut() {
            let mut has_id = false;
            let mut has_query = false;
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                for p in params.iter_mut() {
                    match p["in"].as_str() {
                        Some("path") => {
                            has_id = true;
                            p["schema"] = id_schema();
                            p["required"] = json!(true);
                        }
                        Some("query") => has_query = true,
                        _ => {}
                    }
                }
            }
            respond(op, "401", "no valid token or session (`unauthenticated`), checked first");
            if op.get("requestBody").is_some() {
                op["requestBody"]["required"] = json!(true);
                respond(op, "400", "the body is not well-formed JSON (`invalid`)");
                respond(op, "413", "the body is larger than 256 KiB (`too_large`)");
                respond(op, "415", "the body is not `application/json` (`invalid`)");
                respond(
                    op,
                    "422",
                    "a field is missing, of the wrong type, unknown or refused (`invalid`, `invalid_field`)",
                );
            }
            if has_id || has_query {
                respond(op, "422", "a path id or query parameter is malformed or out of range (`invalid`)");
            }
            if has_id {
                respond(op, "404", "nothing has that id (`not_found`)");
            }
        }
    }
}

/// Merges `patch` into the object at `pointer`, or records the pointer as missing.
pub(super) fn merge(doc: &mut Value, pointer: &str, patch: Value, missing: &mut Vec<String>) {
    match (doc.pointer_mut(pointer), patch) {
        (Some(Value::Object(target)), Value::Object(fields)) => {
            for (k, v) in fields {
                target.insert(k, v);
            }
        }
        _ => missing.push(pointer.to_string()),
    }
}

/// Replaces the schema at `pointer`, or records the pointer as missing.
pub(super) fn replace(doc: &mut Value, pointer: &str, schema: Value, missing: &mut Vec<String>) {
    match doc.pointer_mut(pointer) {
        Some(slot) => *slot = schema,
        None => missing.push(pointer.to_string()),
    }
}

pub(super) fn nullable(schema: Value) -> Value {
    json!({ "oneOf": [schema, { "type": "null" }] })
}

pub(super) fn int(min: u64, max: u64) -> Value {
    json!({ "type": "integer", "minimum": min, "maximum": max })
}

/// An environment or build-arg value: anything but NUL, at most 32 KiB.
pub(super) fn env_value() -> Value {
    json!({ "type": "string", "pattern": pat::NO_NUL, "maxLength": MAX_ENV_VALUE,
            "description": "anything but NUL, at most 32 KiB (UTF-8 bytes)" })
}

fn schemas(doc: &mut Value, missing: &mut Vec<String>) {
    let s = "/components/schemas";
    // Unknown fields are refused (`deny_unknown_fields`).
    for name in [
        "NewProject",
        "NewTokenRequest",
        "NewBuild",
        "NewDeployment",
        "RollbackRequest",
        "NewNotificationTarget",
        "RegistryForm",
        "CertificateForm",
    ] {
        merge(doc, &format!("{s}/{name}"), json!({ "additionalProperties": false }), missing);
    }
    merge(doc, &format!("{s}/NewProject/properties/name"), slug(), missing);
    token(doc, missing);
    builds_and_deploys(doc, missing);
    super::contract_settings::settings(doc, missing);
    notifications(doc, missing);
    registry(doc, missing);
    certificates(doc, missing);
    queries(doc, missing);
}

/// The sizes `crate::certificates` accepts. What a PEM must hold (a
/// certificate with a DNS name, valid now, and its own key) is beyond JSON
/// Schema: such a refusal is a 422 naming the field.
fn certificates(doc: &mut Value, missing: &mut Vec<String>) {
    use crate::certificates::{MAX_CHAIN, MAX_KEY};
    let c = "/components/schemas/CertificateForm/properties";
    let pem = |max: usize, what: &str| json!({ "type": "string", "minLength": 1, "maxLength": max, "description": what });
    let chain = pem(MAX_CHAIN, "PEM: the certificate, then its intermediates; at most 64 KiB");
    replace(doc, &format!("{c}/chain_pem"), chain, missing);
    let key = pem(MAX_KEY, "PEM: the private key; sealed at rest, never answered; at most 16 KiB");
    replace(doc, &format!("{c}/key_pem"), key, missing);
}

fn registry(doc: &mut Value, missing: &mut Vec<String>) {
    let r = "/components/schemas/RegistryForm/properties";
    let host = json!({ "type": "string", "pattern": pat::REGISTRY_HOST, "minLength": 1, "maxLength": 255,
        "description": "host[:port], no scheme or path; IPv6 is not accepted" });
    replace(doc, &format!("{r}/host"), host, missing);
    let image = json!({ "type": "string", "pattern": pat::IMAGE_REPOSITORY, "minLength": 1,
        "maxLength": crate::validate::MAX_IMAGE_NAME - 64 });
    replace(doc, &format!("{r}/image"), image, missing);
    let username = json!({ "type": "string", "pattern": pat::REGISTRY_USERNAME, "maxLength": 255 });
    replace(doc, &format!("{r}/username"), nullable(username), missing);
    let password = json!({ "type": "string", "pattern": pat::NO_CONTROL, "maxLength": 4096,
        "description": "sealed at rest, never answered; absent or empty keeps the stored one" });
    replace(doc, &format!("{r}/password"), nullable(password), missing);
}

fn slug() -> Value {
    json!({ "pattern": pat::SLUG, "minLength": 1, "maxLength": MAX_SLUG,
            "description": "lowercase letters, digits and '-', not first or last" })
}

fn token(doc: &mut Value, missing: &mut Vec<String>) {
    let t = "/components/schemas/NewTokenRequest/properties";
    merge(
        doc,
        &format!("{t}/name"),
        json!({ "pattern": pat::NAME_60,
        "description": "1 to 60 characters once trimmed, no control characters" }),
        missing,
    );
    replace(doc, &format!("{t}/expires_in_days"), nullable(int(1, u64::from(MAX_DAYS))), missing);
}

fn reason() -> Value {
    nullable(json!({ "type": "string", "pattern": pat::REASON,
        "description": "one line of at most 500 characters once trimmed; blank means none" }))
}

fn builds_and_deploys(doc: &mut Value, missing: &mut Vec<String>) {
    let s = "/components/schemas";
    replace(
        doc,
        &format!("{s}/NewBuild/properties/ref"),
        nullable(json!({ "type": "string", "pattern": pat::OPTIONAL_GIT_REF, "maxLength": MAX_GIT_REF,
            "description": "a branch, tag or commit (git check-ref-format, ASCII, no shell metacharacters); empty means the service's branch" })),
        missing,
    );
    // `deploy` and `build_only` together are refused (422).
    merge(
        doc,
        &format!("{s}/NewBuild"),
        json!({ "not": { "required": ["deploy", "build_only"],
            "properties": { "deploy": { "const": true }, "build_only": { "const": true } } } }),
        missing,
    );
    let d = format!("{s}/NewDeployment");
    replace(doc, &format!("{d}/properties/build_id"), nullable(id_schema()), missing);
    replace(
        doc,
        &format!("{d}/properties/image"),
        nullable(json!({ "type": "string", "pattern": pat::IMAGE_REF, "maxLength": MAX_IMAGE_REF,
        "description": "an image reference `name[:tag][@digest]` or id present in the engine (nothing is pulled)" })),
        missing,
    );
    replace(doc, &format!("{d}/properties/reason"), reason(), missing);
    merge(
        doc,
        &d,
        json!({
            "description": "`build_id` or `image`, not both; neither: the service's newest successful build",
            "anyOf": [
                { "properties": { "image": { "type": "null" } } },
                { "properties": { "build_id": { "type": "null" } } }
            ]
        }),
        missing,
    );
    replace(doc, &format!("{s}/RollbackRequest/properties/reason"), reason(), missing);
}

fn notifications(doc: &mut Value, missing: &mut Vec<String>) {
    let n = "/components/schemas/NewNotificationTarget/properties";
    merge(
        doc,
        &format!("{n}/name"),
        json!({ "pattern": pat::NAME_60,
        "description": "1 to 60 characters once trimmed, no control characters" }),
        missing,
    );
    merge(doc, &format!("{n}/kind"), json!({ "enum": ["webhook", "slack"] }), missing);
    merge(
        doc,
        &format!("{n}/url"),
        json!({ "pattern": pat::HTTP_URL, "maxLength": crate::notify::targets::MAX_URL_BYTES,
        "description": "an absolute http:// or https:// URL with a host" }),
        missing,
    );
    let events: Vec<&str> = crate::notify::EventKind::ALL.iter().map(|e| e.as_str()).collect();
    merge(
        doc,
        &format!("{n}/events"),
        json!({ "minItems": 1, "items": { "type": "string", "enum": events } }),
        missing,
    );
}

/// Paging and filter parameters: their real (unsigned) ranges.
fn queries(doc: &mut Value, missing: &mut Vec<String>) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        missing.push("/paths".into());
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in item.values_mut() {
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else { continue };
            for p in params.iter_mut().filter(|p| p["in"] == "query") {
                let schema = match p["name"].as_str() {
                    Some("limit") => json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX,
                        "description": format!("page size; 0 counts as 1, more than {MAX_PAGE} as {MAX_PAGE}") }),
                    Some("after") => json!({ "type": "integer", "minimum": 0, "maximum": u64::MAX }),
                    Some("before") => {
                        json!({ "type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX })
                    }
                    Some("tail") => int(0, u64::from(MAX_TAIL)),
                    Some("deployment") => id_schema(),
                    Some("since") => json!({ "type": "string", "pattern": pat::SINCE,
                        "description": "an age (`30s`, `15m`, `2h`, `1d`, at most 366 days) or an RFC 3339 time in that window" }),
                    Some("step") => json!({ "type": "string", "pattern": pat::STEP_NAME,
                        "description": "a pipeline step's name" }),
                    Some("follow") => json!({ "type": "boolean" }),
                    Some("confirm") => json!({ "type": "string",
                        "description": "the name, typed again (trimmed); any other text is a 409" }),
                    Some("actor" | "action" | "source") => json!({ "type": "string" }),
                    _ => continue,
                };
                p["schema"] = schema;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constraint_finds_its_place() {
        let (_, missing) = build();
        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn the_patterns_count_what_the_domain_counts() {
        let name = crate::notify::targets::MAX_NAME_CHARS - 2;
        assert!(pat::NAME_60.contains(&format!("{{0,{name}}}")), "{}", pat::NAME_60);
        let reason = crate::deploys::MAX_REASON - 2;
        assert!(pat::REASON.contains(&format!("{{0,{reason}}}")), "{}", pat::REASON);
        assert!(pat::SLUG.contains(&format!("{{0,{}}}", MAX_SLUG - 2)), "{}", pat::SLUG);
        let image = crate::validate::MAX_IMAGE_NAME;
        assert!(pat::IMAGE_REF.contains(&format!("{{1,{image}}}")), "{}", pat::IMAGE_REF);
    }

    #[test]
    fn every_operation_documents_401() {
        let (doc, _) = build();
        let mut n = 0;
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                n += 1;
                assert!(op["responses"].get("401").is_some(), "{method} {path}");
            }
        }
        assert!(n > 30, "{n} operations");
    }
}
