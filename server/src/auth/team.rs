//! Team use-cases: admins list, create, re-role, disable and reset users;
//! everyone changes their own password. Each checks the caller's role.

use std::{net::IpAddr, time::Instant};

use app::wire::{Caller, Role};
use tower_sessions::Session;

use crate::audit::{self, Event};

use super::{
    session::{self, SessionError},
    users::{User, UserError, VerifyError},
    Auth,
};
use crate::access::{require, AccessError};
use crate::validate::ValidationError;

#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("too many failed attempts, try again in {0} s")]
    TooManyAttempts(u64),
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl Auth {
    pub async fn list_users(&self, caller: &Caller) -> Result<Vec<User>, TeamError> {
        require(caller, Role::Admin)?;
        Ok(self.users.list().await?)
    }

    pub async fn create_user(
        &self,
        caller: &Caller,
        name: &str,
        password: &str,
        role: Role,
    ) -> Result<User, TeamError> {
        let actor = require(caller, Role::Admin)?;
        let user = self.users.create(name, password, role).await?;
        tracing::info!(user_id = user.id, role = role.as_str(), %actor, "user created by an admin");
        self.audit(caller, "user.create", &user.name, format!("role {}", role.as_str())).await;
        Ok(user)
    }

    pub async fn set_user_role(&self, caller: &Caller, user_id: i64, role: Role) -> Result<User, TeamError> {
        let actor = require(caller, Role::Admin)?;
        let user = self.users.set_role(user_id, role).await?;
        tracing::info!(user_id, role = role.as_str(), %actor, "role changed by an admin");
        self.audit(caller, "user.role", &user.name, format!("role {}", role.as_str())).await;
        Ok(user)
    }

    /// Disabling ends the user's sessions at their next request.
    pub async fn set_user_disabled(
        &self,
        caller: &Caller,
        user_id: i64,
        disabled: bool,
    ) -> Result<User, TeamError> {
        let actor = require(caller, Role::Admin)?;
        let user = self.users.set_disabled(user_id, disabled).await?;
        tracing::info!(user_id, disabled, %actor, "user enabled/disabled by an admin");
        let action = if disabled { "user.disable" } else { "user.enable" };
        self.audit(caller, action, &user.name, String::new()).await;
        Ok(user)
    }

    /// Sets a password for someone (rules apply) and ends their sessions.
    pub async fn reset_password(
        &self,
        caller: &Caller,
        user_id: i64,
        password: &str,
    ) -> Result<(), TeamError> {
        let actor = require(caller, Role::Admin)?;
        self.users.set_password(user_id, password).await?;
        tracing::info!(user_id, %actor, "password reset by an admin");
        if let Some(user) = self.users.get(user_id).await? {
            self.audit(caller, "user.password_reset", &user.name, String::new()).await;
        }
        Ok(())
    }

    /// Changes the caller's own password after checking the current one
    /// (rate-limited like sign-in). The caller's other sessions end; this
    /// one is re-issued under a new id and stays signed in.
    pub async fn change_own_password(
        &self,
        caller: &Caller,
        session: &Session,
        ip: Option<IpAddr>,
        current: &str,
        new_password: &str,
    ) -> Result<(), TeamError> {
        require(caller, Role::Viewer)?;
        let Caller::User { id, name, .. } = caller else {
            return Err(AccessError::Unauthenticated.into());
        };
        if let Err(wait) = self.limiter.begin(name, ip, Instant::now()) {
            return Err(TeamError::TooManyAttempts(wait.secs()));
        }
        // The new password's rules are checked too before answering, so a
        // wrong current password and a short new one are both reported.
        let rules = super::password::check_rules(new_password).err();
        match self.users.verify_login(name, current).await {
            Ok(user) if user.id == *id => {}
            Ok(_) | Err(VerifyError::BadCredentials) | Err(VerifyError::Disabled) => {
                return Err(match rules {
                    None => TeamError::WrongPassword,
                    Some(rule) => UserError::Fields(vec![
                        ValidationError::new("current", TeamError::WrongPassword.to_string()),
                        ValidationError::new("password", rule.to_string()),
                    ])
                    .into(),
                })
            }
            Err(VerifyError::Store(e)) => return Err(e.into()),
        }
        self.limiter.succeeded(name, ip);
        if let Some(rule) = rules {
            return Err(UserError::Password(rule).into());
        }
        self.users.set_password(*id, new_password).await?;
        let user = self.users.get(*id).await?.ok_or(UserError::NotFound)?;
        session::start(session, &user).await?;
        tracing::info!(user_id = id, "own password changed");
        self.audit(caller, "user.password_change", name, String::new()).await;
        Ok(())
    }

    async fn audit(&self, caller: &Caller, action: &'static str, user: &str, detail: String) {
        let mut event = Event::by(caller, action).target(format!("user:{user}"));
        if !detail.is_empty() {
            event = event.detail(detail);
        }
        audit::record(&self.db, event).await;
    }
}
