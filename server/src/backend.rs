//! The server's implementation of the UI's `Backend` port: each method calls
//! one domain use-case and maps its error to `AppError`.

use app::{
    backend::Backend,
    wire::{Caller, SystemStatus},
    AppError,
};

use crate::{
    auth::{Auth, LoginError},
    status::StatusService,
};

pub struct ServerBackend {
    pub status: StatusService,
    /// Sign-in and sessions; `None` until [`ServerBackend::with_auth`].
    pub auth: Option<Auth>,
}

impl ServerBackend {
    pub fn new(status: StatusService) -> Self {
        ServerBackend { status, auth: None }
    }

    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    fn auth(&self) -> Result<&Auth, AppError> {
        self.auth.as_ref().ok_or_else(|| AppError::Unavailable("sign-in is not configured".into()))
    }
}

/// The session the session layer put into the request.
fn session(request: &http::request::Parts) -> Result<tower_sessions::Session, AppError> {
    request.extensions.get::<tower_sessions::Session>().cloned().ok_or_else(|| {
        tracing::error!("no session layer in front of a session use-case");
        AppError::Internal("no session".into())
    })
}

fn login_error(e: LoginError) -> AppError {
    match e {
        LoginError::BadCredentials | LoginError::Disabled | LoginError::TooManyAttempts(_) => {
            AppError::Forbidden(e.to_string())
        }
        LoginError::Store(_) | LoginError::Session(_) => internal(e.into()),
    }
}

/// Logs an unexpected failure in full and gives the caller a short message.
pub fn internal(e: anyhow::Error) -> AppError {
    tracing::error!(error = %format!("{e:#}"), "request failed");
    AppError::Internal(e.to_string())
}

#[async_trait::async_trait]
impl Backend for ServerBackend {
    async fn system_status(&self, _caller: &Caller) -> Result<SystemStatus, AppError> {
        self.status.system_status().await.map_err(internal)
    }

    async fn login(
        &self,
        request: &http::request::Parts,
        name: String,
        password: String,
    ) -> Result<Caller, AppError> {
        let ip = crate::auth::client_ip(&request.extensions);
        let user = self.auth()?.login(&session(request)?, &name, &password, ip).await.map_err(login_error)?;
        Ok(user.caller())
    }

    async fn logout(&self, _caller: &Caller, request: &http::request::Parts) -> Result<(), AppError> {
        self.auth()?.logout(&session(request)?).await.map_err(|e| internal(e.into()))
    }

    async fn whoami(&self, caller: &Caller) -> Result<Caller, AppError> {
        Ok(caller.clone())
    }
}
