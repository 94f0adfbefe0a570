//! Resolves the caller once per request and stores it in the request
//! extensions, where server functions and REST handlers read it.
//!
//! The caller comes from the session cookie: the session's user id must name
//! an enabled user whose `session_epoch` still equals the one at sign-in
//! (a password change or disable ends older sessions), within the absolute
//! timeout. Anything else is `Caller::Anonymous`.
//!
//! An `Authorization: Bearer <token>` header takes precedence over the
//! cookie. A token that is unknown, revoked, expired or whose user is
//! disabled ends the request at once with 401 and a JSON error, so a script
//! never silently runs as anonymous.

use app::wire::Caller;
use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::Response,
};
use tower_sessions::Session;

use crate::{
    auth::{session, Auth},
    http::api::json_error,
};

pub async fn resolve_caller(State(auth): State<Auth>, mut req: Request, next: Next) -> Response {
    // `/metrics` checks its own bearer token (SLIPWAY_METRICS_TOKEN), never an
    // API token; forge webhooks are authenticated by their signature or token
    // alone (Gitea may send a configured `Authorization` header of its own).
    let path = req.uri().path();
    let own_auth = path == crate::http::metrics::PATH || path.starts_with("/hooks/");
    let bearer = req.headers().get(http::header::AUTHORIZATION).filter(|_| !own_auth);
    let caller = if let Some(header) = bearer {
        match caller_from_bearer(&auth, header).await {
            Ok(caller) => caller,
            Err(response) => return response,
        }
    } else {
        match req.extensions().get::<Session>() {
            Some(session) => caller_from_session(&auth, session).await,
            None => Caller::Anonymous,
        }
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The user a bearer token stands for; any failure is a 401 (503 when the
/// database cannot be read).
async fn caller_from_bearer(auth: &Auth, header: &http::HeaderValue) -> Result<Caller, Response> {
    let unauthenticated = |message: String| json_error(StatusCode::UNAUTHORIZED, "unauthenticated", &message);
    let token = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthenticated("the Authorization header must be `Bearer <token>`".into()))?;
    match auth.tokens.resolve(token).await {
        Ok(Ok(caller)) => Ok(caller),
        Ok(Err(rejected)) => {
            tracing::info!(reason = %rejected, "API token refused");
            Err(unauthenticated(rejected.to_string()))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot look up an API token");
            Err(json_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the token store cannot be read"))
        }
    }
}

/// The signed-in user of `session`, or anonymous. Fails closed: a store or
/// database error reads as anonymous (and is logged).
pub async fn caller_from_session(auth: &Auth, sess: &Session) -> Caller {
    let current = match session::current(sess, &auth.settings).await {
        Ok(Some(current)) => current,
        Ok(None) => return Caller::Anonymous,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the session");
            return Caller::Anonymous;
        }
    };
    match auth.users.get(current.user_id).await {
        Ok(Some(user)) if !user.disabled && user.session_epoch == current.epoch => user.caller(),
        Ok(_) => {
            tracing::info!(user_id = current.user_id, "session ended: user gone, disabled or re-keyed");
            if let Err(e) = session::end(sess).await {
                tracing::warn!(error = %e, "cannot end the session");
            }
            Caller::Anonymous
        }
        Err(e) => {
            tracing::error!(user_id = current.user_id, error = %e, "cannot load the session's user");
            Caller::Anonymous
        }
    }
}
