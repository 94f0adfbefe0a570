//! `#[server]` functions. Each one identifies the caller, calls one use-case
//! on the `Backend` port and maps the error. Nothing else.

use leptos::prelude::*;

use crate::{error::AppError, wire::SystemStatus};

#[server(prefix = "/rpc", endpoint = "system_status")]
pub async fn system_status() -> Result<SystemStatus, AppError> {
    use crate::backend::{backend, caller, respond};
    let caller = caller();
    respond(backend()?.system_status(&caller).await)
}
