//! The sign-in and sign-out use-cases: rate limit, password check, session.

use std::{net::IpAddr, time::Instant};

use tower_sessions::Session;

use crate::audit::{self, Event, Source};

use super::{
    session::{self, SessionError},
    users::{User, UserError, VerifyError},
    Auth,
};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong name or password")]
    BadCredentials,
    #[error("this account is disabled")]
    Disabled,
    #[error("too many failed logins, try again in {0} s")]
    TooManyAttempts(u64),
    #[error(transparent)]
    Store(#[from] UserError),
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl Auth {
    /// Checks the name and password (rate-limited per name and client IP)
    /// and signs the user in on `session` under a new session id.
    pub async fn login(
        &self,
        session: &Session,
        name: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<User, LoginError> {
        if let Err(wait) = self.limiter.begin(name, ip, Instant::now()) {
            tracing::warn!(ip = ?ip, "login refused: too many failed attempts");
            return Err(LoginError::TooManyAttempts(wait.secs()));
        }
        let user = match self.users.verify_login(name, password).await {
            Ok(user) => user,
            Err(VerifyError::BadCredentials) => {
                tracing::info!(ip = ?ip, "login failed: wrong name or password");
                self.audit_failed_login(name, ip, "wrong name or password").await;
                return Err(LoginError::BadCredentials);
            }
            Err(VerifyError::Disabled) => {
                tracing::info!(ip = ?ip, "login refused: account disabled");
                self.audit_failed_login(name, ip, "account disabled").await;
                return Err(LoginError::Disabled);
            }
            Err(VerifyError::Store(e)) => return Err(e.into()),
        };
        self.limiter.succeeded(name, ip);
        session::start(session, &user).await?;
        tracing::info!(user_id = user.id, ip = ?ip, "signed in");
        let detail = ip.map(|ip| format!("from {ip}")).unwrap_or_default();
        audit::record(&self.db, Event::by(&user.caller(), "login").detail(detail)).await;
        Ok(user)
    }

    /// A failed sign-in: the name only when it is a well-formed user name
    /// (so a password typed into the name field is never stored).
    async fn audit_failed_login(&self, name: &str, ip: Option<IpAddr>, why: &str) {
        let actor = super::users::check_name(name).unwrap_or_else(|_| "(malformed name)".into());
        let detail = match ip {
            Some(ip) => format!("{why}, from {ip}"),
            None => why.to_string(),
        };
        audit::record(&self.db, Event::from(actor, Source::Dashboard, "login_failed").detail(detail)).await;
    }

    /// Ends the session (its record and its cookie).
    pub async fn logout(&self, session: &Session) -> Result<(), SessionError> {
        if let Ok(Some(current)) = session::current(session, &self.settings).await {
            tracing::info!(user_id = current.user_id, "signed out");
            if let Ok(Some(user)) = self.users.get(current.user_id).await {
                audit::record(&self.db, Event::by(&user.caller(), "logout")).await;
            }
        }
        session::end(session).await
    }
}
