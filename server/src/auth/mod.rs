//! Authentication: users and passwords (argon2id), sign-in with a rate
//! limit, sessions (tower-sessions, SQLite store behind a memory cache), the
//! origin check, and the `slipway admin create` command.
//!
//! Who may do what (roles) is checked by the use-cases through
//! `crate::access`; this module only says who the caller is.

pub mod admin_cmd;
pub mod limiter;
pub mod login;
pub mod origin;
pub mod password;
pub mod session;
pub mod session_cache;
pub mod setup;
pub mod team;
pub mod tokens;
pub mod user_cache;
pub mod users;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use tower_sessions::SessionManagerLayer;
use tower_sessions_sqlx_store::SqliteStore;

pub use limiter::LoginLimiter;
pub use login::LoginError;
pub use session::SessionSettings;
pub use session_cache::CachedSessions;
pub use users::{User, UserError, UserStore};

use crate::db::Db;

/// How often expired session records are deleted.
const SESSION_CLEANUP_EVERY: Duration = Duration::from_secs(3600);

/// Everything authentication needs at runtime, cheap to clone.
#[derive(Clone)]
pub struct Auth {
    pub users: UserStore,
    pub limiter: Arc<LoginLimiter>,
    /// The SQLite session store behind a write-through memory cache.
    pub sessions: CachedSessions,
    pub settings: SessionSettings,
    pub setup: setup::SetupToken,
    pub tokens: tokens::TokenStore,
    /// For the audit log.
    pub db: Db,
}

impl Auth {
    /// Creates the session table if needed (the store's own migration).
    pub async fn open(db: Db, settings: SessionSettings) -> anyhow::Result<Self> {
        let store = SqliteStore::new(db.clone());
        store.migrate().await.context("cannot create the session table")?;
        let sessions = CachedSessions::new(store, session_cache::CACHED_SESSIONS);
        Ok(Auth {
            users: UserStore::new(db.clone()),
            tokens: tokens::TokenStore::new(db.clone()),
            db,
            limiter: Arc::new(LoginLimiter::new()),
            sessions,
            settings,
            setup: setup::SetupToken::default(),
        })
    }

    /// The session layer for the dashboard's router.
    pub fn session_layer(&self) -> SessionManagerLayer<CachedSessions> {
        self.settings.layer(self.sessions.clone())
    }

    /// Deletes expired session records every hour until aborted.
    pub fn spawn_session_cleanup(&self) -> tokio::task::JoinHandle<()> {
        let store = self.sessions.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SESSION_CLEANUP_EVERY);
            loop {
                every.tick().await;
                if let Err(e) = store.delete_expired().await {
                    tracing::warn!(error = %e, "cannot delete expired sessions");
                }
            }
        })
    }
}

/// The client's address, when the server was started with connect info.
pub fn client_ip(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}
