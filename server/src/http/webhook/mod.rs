//! `POST /hooks/{forge}/{service}` and `POST /hooks/{forge}/projects/{project}`:
//! the checks in order (body limit, service or project, content type,
//! signature, JSON, event), then the event's effect ([`push`]). Every
//! delivery to a known service or project is recorded; the response is
//! `{ status, reason, build_id, build_ids }` (202 when a build was queued,
//! else 200) or an error body `{ "error": { "code", "message" } }`.

mod push;

use std::borrow::Cow;

use axum::{
    body::Body,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde::Serialize;
use serde_json::Value;
use tracing::{field, Instrument};

use crate::webhooks::{
    body::{self, BodyError, Encoding},
    deliveries::{self, Owner, Received},
    payload::{self, PayloadError},
    verify::VerifyError,
    Forge, MAX_BODY,
};
use crate::{engine::Engine, http::api::json_error};

/// `POST /hooks/{github,gitlab,gitea}/{service}` and
/// `…/projects/{project}`. The handler reads the raw
/// body itself under [`MAX_BODY`]; axum's default limit (2 MB, for the
/// `Bytes`/`Json` extractors) is raised to the same value so that no
/// extractor added later cuts deliveries short either.
pub fn routes<S: Clone + Send + Sync + 'static>(engine: Engine) -> Router<S> {
    Router::new()
        .route("/hooks/{forge}/{service}", post(receive))
        .route("/hooks/{forge}/projects/{project}", post(receive_project))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(engine)
}

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("no such webhook")]
    NotFound,
    #[error("the hook has no secret yet; open its settings to generate one")]
    NoSecret,
    #[error(transparent)]
    Signature(#[from] VerifyError),
    /// The whole message (it depends on where the JSON was looked for).
    #[error("{0}")]
    Json(String),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// Queueing failed after the claim; the claim was released and recorded.
    #[error("the build could not be queued")]
    Queue,
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl HookError {
    fn status(&self) -> StatusCode {
        match self {
            HookError::Body(BodyError::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            HookError::Body(BodyError::UnsupportedType(_)) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HookError::Body(_) | HookError::Json(_) | HookError::Payload(_) => StatusCode::BAD_REQUEST,
            HookError::NotFound => StatusCode::NOT_FOUND,
            HookError::NoSecret | HookError::Signature(_) => StatusCode::UNAUTHORIZED,
            HookError::Queue | HookError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            HookError::Body(BodyError::TooLarge) => "payload_too_large",
            HookError::Body(BodyError::UnsupportedType(_)) => "unsupported_media_type",
            HookError::Body(_) | HookError::Json(_) | HookError::Payload(_) => "invalid",
            HookError::NotFound => "not_found",
            HookError::NoSecret | HookError::Signature(_) => "unauthenticated",
            HookError::Queue | HookError::Internal(_) => "internal",
        }
    }

    /// The reason stored with the delivery.
    fn reason(&self) -> String {
        match self {
            HookError::Internal(e) => format!("internal error: {e:#}").chars().take(300).collect(),
            other => other.to_string(),
        }
    }
}

/// A delivery's outcome when it was not refused.
#[derive(Debug, Serialize)]
struct Accepted {
    status: &'static str,
    reason: String,
    /// The (first) build queued.
    build_id: Option<i64>,
    /// Every build queued (a project hook queues one per matching service).
    build_ids: Vec<i64>,
}

/// What a delivery needs of the hook's owner.
struct Target {
    hook: Hook,
    /// Sealed.
    secret: Option<String>,
}

enum Hook {
    Service { id: i64, branch: String, auto_deploy: bool },
    Project { id: i64 },
}

impl Target {
    fn owner(&self) -> Owner {
        match self.hook {
            Hook::Service { id, .. } => Owner::Service(id),
            Hook::Project { id } => Owner::Project(id),
        }
    }
}

pub(super) async fn receive(
    State(engine): State<Engine>,
    Path((forge, service)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let owner = service.parse::<i64>().ok().map(Owner::Service);
    receive_for(engine, forge, owner, headers, body).await
}

pub(super) async fn receive_project(
    State(engine): State<Engine>,
    Path((forge, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let owner = project.parse::<i64>().ok().map(Owner::Project);
    receive_for(engine, forge, owner, headers, body).await
}

async fn receive_for(
    engine: Engine,
    forge: String,
    owner: Option<Owner>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(forge) = Forge::parse(&forge) else {
        return error_response(&HookError::NotFound);
    };
    let (service_id, project_id) = match owner {
        Some(Owner::Service(id)) => (Some(id), None),
        Some(Owner::Project(id)) => (None, Some(id)),
        None => (None, None),
    };
    let ids = Ids {
        delivery: payload::delivery_id(forge, &headers),
        key: payload::idempotency_key(forge, &headers),
    };
    let span = tracing::info_span!(
        "webhook",
        forge = forge.as_str(),
        service_id,
        project_id,
        delivery = field::Empty,
        idempotency_key = field::Empty
    );
    if let Ok(Some(id)) = &ids.delivery {
        span.record("delivery", id.as_str());
    }
    if let Ok(Some(key)) = &ids.key {
        span.record("idempotency_key", key.as_str());
    }
    async move {
        match handle(&engine, forge, owner, &headers, ids, body).await {
            Ok(done) => {
                let (status, reason, build_id) = (done.status, &done.reason, done.build_id);
                tracing::info!(status, %reason, build_id, "webhook delivery");
                let code = if done.build_id.is_some() { StatusCode::ACCEPTED } else { StatusCode::OK };
                (code, Json(done)).into_response()
            }
            Err(e) => {
                let (status, reason) = (e.status().as_u16(), e.reason());
                tracing::warn!(status, %reason, "webhook delivery refused");
                error_response(&e)
            }
        }
    }
    .instrument(span)
    .await
}

fn error_response(e: &HookError) -> Response {
    json_error(e.status(), e.code(), &e.to_string())
}

/// The delivery id and the idempotency key as read from the headers.
struct Ids {
    delivery: Result<Option<String>, PayloadError>,
    key: Result<Option<String>, PayloadError>,
}

async fn handle(
    engine: &Engine,
    forge: Forge,
    owner: Option<Owner>,
    headers: &HeaderMap,
    ids: Ids,
    body: Body,
) -> Result<Accepted, HookError> {
    let read = body::read(headers, body).await;
    let service = match owner {
        Some(owner) => lookup(engine, owner).await?,
        None => None,
    };
    let Some(service) = service else {
        return Err(read.err().map_or(HookError::NotFound, HookError::from));
    };
    let rec = Received {
        owner: service.owner(),
        forge,
        delivery_id: ids.delivery.clone().ok().flatten(),
        idempotency_key: ids.key.clone().ok().flatten(),
        event: payload::event_name(forge, headers).ok(),
    };
    let result = async {
        let raw = read?;
        let encoding = body::encoding(headers)?;
        let json = authentic_json(engine, &service, forge, headers, encoding, &raw)?;
        let payload: Value =
            serde_json::from_slice(&json).map_err(|e| payload_json_error(encoding, &raw, &e))?;
        ids.delivery?;
        ids.key?;
        let event = payload::event_name(forge, headers)?;
        push::dispatch(engine, &service, &rec, &event, &payload).await
    }
    .await;
    if let Err(e) = &result {
        if !matches!(e, HookError::Queue) {
            deliveries::reject(&engine.db, &rec, &e.reason()).await;
        }
    }
    result
}

async fn lookup(engine: &Engine, owner: Owner) -> Result<Option<Target>, HookError> {
    let found = match owner {
        Owner::Service(id) => {
            let row: Option<(String, bool, Option<String>)> =
                sqlx::query_as("SELECT branch, auto_deploy, webhook_secret FROM services WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&engine.db)
                    .await
                    .map_err(anyhow::Error::from)?;
            row.map(|(branch, auto_deploy, secret)| (Hook::Service { id, branch, auto_deploy }, secret))
        }
        Owner::Project(id) => {
            let row: Option<Option<String>> =
                sqlx::query_scalar("SELECT webhook_secret FROM projects WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&engine.db)
                    .await
                    .map_err(anyhow::Error::from)?;
            row.map(|secret| (Hook::Project { id }, secret))
        }
    };
    Ok(found.map(|(hook, secret)| Target { hook, secret }))
}

/// The JSON the forge signed (or, for GitLab, sent with its token): the body
/// itself, or the `payload` field of a form. The signature is checked, in
/// constant time, over the bytes the forge signs ([`body::signed_messages`]);
/// a GitHub form is verified before it is decoded.
fn authentic_json<'a>(
    engine: &Engine,
    service: &Target,
    forge: Forge,
    headers: &HeaderMap,
    encoding: Encoding,
    raw: &'a [u8],
) -> Result<Cow<'a, [u8]>, HookError> {
    let sealed = service.secret.as_deref().ok_or(HookError::NoSecret)?;
    let secret = engine.secrets.open(sealed).map_err(anyhow::Error::from)?;
    // Gitea signs the payload before form encoding: decode first.
    let early = match (forge, encoding) {
        (Forge::Gitea, Encoding::Form) => Some(body::form_payload(raw)?),
        _ => None,
    };
    let mut verdict = Err(VerifyError::Mismatch);
    for message in body::signed_messages(forge, encoding, raw, early.as_deref()) {
        verdict = forge.verify(secret.as_bytes(), message, headers);
        if !matches!(verdict, Err(VerifyError::Mismatch)) {
            break;
        }
    }
    verdict?;
    Ok(match (encoding, early) {
        (Encoding::Json, _) => Cow::Borrowed(raw),
        (Encoding::Form, Some(payload)) => Cow::Owned(payload),
        (Encoding::Form, None) => Cow::Owned(body::form_payload(raw)?),
    })
}

/// A JSON error that says where the JSON was looked for, and names a form
/// body sent as `application/json`.
fn payload_json_error(encoding: Encoding, raw: &[u8], e: &serde_json::Error) -> HookError {
    HookError::Json(match encoding {
        Encoding::Json if raw.starts_with(b"payload=") => format!(
            "the body is form-encoded (payload=…) but its content type says application/json \
             ({e}): send it as application/x-www-form-urlencoded, or send JSON"
        ),
        Encoding::Json => format!("the body is not valid JSON ({e})"),
        Encoding::Form => format!("the form's payload field is not valid JSON ({e})"),
    })
}
