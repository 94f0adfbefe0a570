//! Resolves the caller once per request and stores it in the request
//! extensions, where server functions and REST handlers read it.
//!
//! The caller comes from the session cookie: the session's user id must name
//! an enabled user whose `session_epoch` still equals the one at sign-in
//! (a password change or disable ends older sessions), within the absolute
//! timeout. Anything else is `Caller::Anonymous`. API tokens arrive with the
//! integrations issue.

use app::wire::Caller;
use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use tower_sessions::Session;

use crate::auth::{session, Auth};

pub async fn resolve_caller(State(auth): State<Auth>, mut req: Request, next: Next) -> Response {
    let caller = match req.extensions().get::<Session>() {
        Some(session) => caller_from_session(&auth, session).await,
        None => Caller::Anonymous,
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
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
