//! `#[server]` functions. Each one identifies the caller, calls one use-case
//! on the `Backend` port and maps the error. Nothing else.
//!
//! The first four take form-encoded arguments (they predate the rest and
//! tests post forms to them); all others take JSON.

use leptos::prelude::*;
use server_fn::codec::Json;

use crate::{
    error::AppError,
    wire::{Caller, SetupInfo, SystemStatus},
};

pub mod builds;
pub mod certificates;
pub mod deploys;
pub mod integrations;
pub mod runtime;
pub mod services;
pub mod team;

#[server(prefix = "/rpc", endpoint = "check_status")]
pub async fn check_status() -> Result<SystemStatus, AppError> {
    use crate::backend::{backend, caller, respond};
    let caller = caller();
    respond(backend()?.system_status(&caller).await)
}

/// Signs in; answers the new caller. Refused with a message for a wrong name
/// or password, a disabled account, or too many failed attempts.
#[server(prefix = "/rpc", endpoint = "login")]
pub async fn login(name: String, password: String) -> Result<Caller, AppError> {
    use crate::backend::{backend, request_parts, respond};
    let request = request_parts()?;
    respond(backend()?.login(&request, name, password).await)
}

/// Signs out (ends the session and its cookie).
#[server(prefix = "/rpc", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::backend::{backend, caller, request_parts, respond};
    let (caller, request) = (caller(), request_parts()?);
    respond(backend()?.logout(&caller, &request).await)
}

/// The caller as the server sees it: a user, or anonymous.
#[server(prefix = "/rpc", endpoint = "whoami")]
pub async fn whoami() -> Result<Caller, AppError> {
    use crate::backend::{backend, caller, respond};
    let caller = caller();
    respond(backend()?.whoami(&caller).await)
}

/// Whether the installation still needs its first admin (anyone may ask).
#[server(prefix = "/rpc", endpoint = "setup_state", input = Json)]
pub async fn setup_state() -> Result<SetupInfo, AppError> {
    use crate::backend::{backend, respond};
    respond(backend()?.setup_state().await)
}

/// Creates the first admin with the one-time token printed in the server log
/// and signs them in. Refused once any user exists.
#[server(prefix = "/rpc", endpoint = "setup_admin", input = Json)]
pub async fn setup_admin(token: String, name: String, password: String) -> Result<Caller, AppError> {
    use crate::backend::{backend, request_parts, respond};
    let request = request_parts()?;
    respond(backend()?.setup_admin(&request, token, name, password).await)
}
