//! Users and roles (admin), and the caller's own password.

use leptos::prelude::*;
use server_fn::codec::Json;

use crate::{
    error::AppError,
    wire::{Role, UserView},
};

#[server(prefix = "/rpc", endpoint = "list_users", input = Json)]
pub async fn list_users() -> Result<Vec<UserView>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.list_users(&caller()).await)
}

/// Creates a user with an initial password the admin hands over (admin).
#[server(prefix = "/rpc", endpoint = "create_user", input = Json)]
pub async fn create_user(name: String, password: String, role: Role) -> Result<UserView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.create_user(&caller(), name, password, role).await)
}

/// Changes a user's role (admin; the last enabled admin cannot lose it).
#[server(prefix = "/rpc", endpoint = "set_user_role", input = Json)]
pub async fn set_user_role(user_id: i64, role: Role) -> Result<UserView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.set_user_role(&caller(), user_id, role).await)
}

/// Disables or re-enables a user; disabling ends their sessions (admin).
#[server(prefix = "/rpc", endpoint = "set_user_disabled", input = Json)]
pub async fn set_user_disabled(user_id: i64, disabled: bool) -> Result<UserView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.set_user_disabled(&caller(), user_id, disabled).await)
}

/// Sets a new password for a user and ends their sessions (admin).
#[server(prefix = "/rpc", endpoint = "reset_password", input = Json)]
pub async fn reset_password(user_id: i64, password: String) -> Result<(), AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.reset_password(&caller(), user_id, password).await)
}

/// Changes the caller's own password after checking the current one; other
/// sessions end, this one stays signed in (any signed-in user).
#[server(prefix = "/rpc", endpoint = "change_password", input = Json)]
pub async fn change_password(current: String, new_password: String) -> Result<(), AppError> {
    use crate::backend::{backend, caller, request_parts, respond};
    let request = request_parts()?;
    respond(backend()?.change_password(&caller(), &request, current, new_password).await)
}
