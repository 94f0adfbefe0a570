//! First run: with no user yet, the server prints a one-time setup token in
//! its log; the setup page creates the first admin with it. Once any user
//! exists (also one made with `slipway admin create`), setup is refused.

use std::sync::Arc;

use app::wire::Role;
use base64::Engine as _;
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;
use tower_sessions::Session;

use super::{
    session::{self, SessionError},
    users::{User, UserError},
    Auth,
};

/// The token, while setup is open. The mutex also serialises setup attempts.
#[derive(Clone, Default)]
pub struct SetupToken(Arc<Mutex<Option<String>>>);

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("setup is already done: sign in instead")]
    Done,
    #[error("wrong setup token (it is printed in the server log)")]
    BadToken,
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl Auth {
    /// Whether no user exists yet.
    pub async fn needs_setup(&self) -> Result<bool, UserError> {
        Ok(self.users.count().await? == 0)
    }

    /// With no user yet, makes the one-time token (32 random bytes,
    /// URL-safe base64) and returns it for the log; `None` otherwise.
    pub async fn open_setup(&self) -> Result<Option<String>, UserError> {
        let mut slot = self.setup.0.lock().await;
        if !self.needs_setup().await? {
            *slot = None;
            return Ok(None);
        }
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        *slot = Some(token.clone());
        Ok(Some(token))
    }

    /// Creates the first admin when `token` is the one printed at startup
    /// and no user exists, then signs them in on `session`.
    pub async fn setup_admin(
        &self,
        session: &Session,
        token: &str,
        name: &str,
        password: &str,
    ) -> Result<User, SetupError> {
        let mut slot = self.setup.0.lock().await;
        if !self.needs_setup().await? {
            *slot = None;
            return Err(SetupError::Done);
        }
        let expected = slot.as_deref().ok_or(SetupError::Done)?;
        if !bool::from(expected.as_bytes().ct_eq(token.trim().as_bytes())) {
            tracing::warn!("setup refused: wrong setup token");
            return Err(SetupError::BadToken);
        }
        let user = self.users.create(name, password, Role::Admin).await?;
        *slot = None;
        session::start(session, &user).await?;
        tracing::info!(user_id = user.id, "first admin created through the setup page");
        let event = crate::audit::Event::by(&user.caller(), "user.create")
            .target(format!("user:{}", user.name))
            .detail("first admin, through the setup page");
        crate::audit::record(&self.db, event).await;
        crate::audit::record(
            &self.db,
            crate::audit::Event::by(&user.caller(), "login").detail("after setup"),
        )
        .await;
        Ok(user)
    }
}
