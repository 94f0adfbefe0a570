//! Session cookies (tower-sessions, SQLite store on the main pool) and what a
//! signed-in session holds.
//!
//! * The cookie is HttpOnly, SameSite=Strict, and Secure when
//!   [`SessionSettings::secure`] says the dashboard is served over https.
//! * Idle timeout: the store's expiry is "on inactivity"; the identity
//!   middleware touches the session at most once per [`TOUCH_EVERY`], so an
//!   active session is written once a minute, not on every request.
//! * Absolute timeout: the sign-in time is stored in the session and checked
//!   on every request ([`SessionUser::is_current`]).
//! * The id is cycled at sign-in; sign-out deletes the record and the cookie.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tower_sessions::{cookie::SameSite, Expiry, Session, SessionManagerLayer, SessionStore};

use super::users::User;

/// Cookie name (generic, so it does not announce the software).
pub const COOKIE_NAME: &str = "id";
/// Session data key.
const KEY: &str = "auth";
/// Default: the cookie is sent over plain http too. Behind https this must
/// become `true`; config.rs has no setting for it yet.
pub const SECURE_COOKIE_DEFAULT: bool = false;
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often an active session's idle expiry is pushed forward.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// Mark the cookie Secure (dashboard behind https).
    pub secure: bool,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            secure: SECURE_COOKIE_DEFAULT,
            idle_timeout: IDLE_TIMEOUT,
            absolute_timeout: ABSOLUTE_TIMEOUT,
        }
    }
}

impl SessionSettings {
    pub fn layer<S: SessionStore>(&self, store: S) -> SessionManagerLayer<S> {
        let idle = tower_sessions::cookie::time::Duration::try_from(self.idle_timeout)
            .unwrap_or(tower_sessions::cookie::time::Duration::hours(12));
        SessionManagerLayer::new(store)
            .with_name(COOKIE_NAME)
            .with_http_only(true)
            .with_same_site(SameSite::Strict)
            .with_secure(self.secure)
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(idle))
    }
}

/// What a signed-in session holds. Times are Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub user_id: i64,
    /// The user's `session_epoch` at sign-in.
    pub epoch: i64,
    pub login_at: i64,
    pub seen_at: i64,
}

impl SessionUser {
    /// Within the absolute timeout at `now`.
    pub fn is_current(&self, now: i64, settings: &SessionSettings) -> bool {
        let age = now.saturating_sub(self.login_at);
        age >= 0 && (age as u64) < settings.absolute_timeout.as_secs()
    }

    fn needs_touch(&self, now: i64) -> bool {
        now.saturating_sub(self.seen_at) >= TOUCH_EVERY.as_secs() as i64
    }
}

pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct SessionError(#[from] tower_sessions::session::Error);

/// Signs `user` in on this session under a new id (no session fixation).
pub async fn start(session: &Session, user: &User) -> Result<(), SessionError> {
    session.cycle_id().await?;
    session.clear().await;
    let now = unix_now();
    let data = SessionUser { user_id: user.id, epoch: user.session_epoch, login_at: now, seen_at: now };
    session.insert(KEY, data).await?;
    Ok(())
}

/// Signs out: deletes the record; the response removes the cookie.
pub async fn end(session: &Session) -> Result<(), SessionError> {
    session.flush().await?;
    Ok(())
}

/// The signed-in user of this session, if any and still within the absolute
/// timeout; an expired session is ended. Pushes the idle expiry forward at
/// most once per [`TOUCH_EVERY`].
pub async fn current(
    session: &Session,
    settings: &SessionSettings,
) -> Result<Option<SessionUser>, SessionError> {
    let Some(mut data) = session.get::<SessionUser>(KEY).await? else {
        return Ok(None);
    };
    let now = unix_now();
    if !data.is_current(now, settings) {
        tracing::info!(user_id = data.user_id, "session reached its absolute timeout");
        end(session).await?;
        return Ok(None);
    }
    if data.needs_touch(now) {
        data.seen_at = now;
        session.insert(KEY, data).await?;
    }
    Ok(Some(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_timeout_counts_from_sign_in() {
        let settings = SessionSettings::default();
        let s = SessionUser { user_id: 1, epoch: 0, login_at: 1_000, seen_at: 1_000 };
        assert!(s.is_current(1_000, &settings));
        assert!(s.is_current(1_000 + ABSOLUTE_TIMEOUT.as_secs() as i64 - 1, &settings));
        assert!(!s.is_current(1_000 + ABSOLUTE_TIMEOUT.as_secs() as i64, &settings));
        assert!(!s.is_current(999, &settings), "a sign-in time in the future is refused");
    }

    #[test]
    fn touches_at_most_once_a_minute() {
        let s = SessionUser { user_id: 1, epoch: 0, login_at: 0, seen_at: 100 };
        assert!(!s.needs_touch(159));
        assert!(s.needs_touch(160));
    }
}
