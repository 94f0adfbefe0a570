//! `#[server]` functions. Each one identifies the caller, calls one use-case
//! on the `Backend` port and maps the error. Nothing else.

use leptos::prelude::*;

use crate::{error::AppError, wire::SystemStatus};

#[server(prefix = "/rpc", endpoint = "check_status")]
pub async fn check_status() -> Result<SystemStatus, AppError> {
    use crate::backend::{backend, caller, respond};
    let caller = caller();
    respond(backend()?.system_status(&caller).await)
}
