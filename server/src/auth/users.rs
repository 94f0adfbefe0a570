//! The `users` table: create, look up, list, change role, disable, change
//! password, and [`UserStore::verify_login`].
//!
//! Role checks (who may call these) belong to the use-cases that call the
//! store; the store keeps the invariants that hold for everyone: valid
//! names, the password rules, and at least one enabled admin once one exists.

use std::sync::Arc;

use app::wire::{Caller, Role, Via};
use sqlx::Row;

use super::{
    password::{self, PasswordError},
    user_cache::UserCache,
};
use crate::{
    db::{now_rfc3339, Db},
    validate::{self, ValidationError},
};

/// A user as stored, without the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    /// Bumped on password change and disable; sessions remember it.
    pub session_epoch: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl User {
    pub fn caller(&self) -> Caller {
        Caller::User { id: self.id, name: self.name.clone(), role: self.role, via: Via::Session }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("a user with this name already exists")]
    NameTaken,
    #[error("no such user")]
    NotFound,
    #[error("this would leave no enabled admin")]
    LastAdmin,
    #[error("role: must be admin, deployer or viewer")]
    BadRole,
    /// Several fields refused at once (name and password).
    #[error("{}", validate::join(.0))]
    Fields(Vec<ValidationError>),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// Why a sign-in was refused. The first two read the same to the user when
/// the password was wrong, so names cannot be probed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("wrong name or password")]
    BadCredentials,
    #[error("this account is disabled")]
    Disabled,
    #[error(transparent)]
    Store(#[from] UserError),
}

pub fn parse_role(text: &str) -> Result<Role, UserError> {
    Role::parse(text).ok_or(UserError::BadRole)
}

/// A user name as accepted by [`UserStore::create`].
pub fn check_name(name: &str) -> Result<String, ValidationError> {
    validate::slug("name", name)
}

const COLUMNS: &str = "id, name, role, disabled, session_epoch, created_at, updated_at";

fn user_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<User, UserError> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: parse_role(row.try_get::<&str, _>("role")?)?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        session_epoch: row.try_get("session_epoch")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[derive(Clone)]
pub struct UserStore {
    db: Db,
    /// Rows by id for [`UserStore::get`]; every write below forgets its row.
    cache: Arc<UserCache>,
}

impl UserStore {
    pub fn new(db: Db) -> Self {
        UserStore { db, cache: Arc::default() }
    }

    /// Creates a user after checking the name and the password rules.
    pub async fn create(&self, name: &str, password: &str, role: Role) -> Result<User, UserError> {
        // Both fields are checked, so a form shows both problems at once.
        let name = match (check_name(name), password::check_rules(password)) {
            (Ok(name), Ok(())) => name,
            (Err(e), Ok(())) => return Err(e.into()),
            (Ok(_), Err(e)) => return Err(e.into()),
            (Err(e), Err(p)) => {
                return Err(UserError::Fields(vec![e, ValidationError::new("password", p.to_string())]))
            }
        };
        let hash = password::hash_blocking(password.to_owned()).await?;
        let now = now_rfc3339();
        let inserted = sqlx::query(
            "INSERT INTO users (name, password_hash, role, disabled, created_at, updated_at) \
             VALUES (?, ?, ?, 0, ?, ?) RETURNING id",
        )
        .bind(&name)
        .bind(&hash)
        .bind(role.as_str())
        .bind(&now)
        .bind(&now)
        .fetch_one(&self.db)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get("id")?,
            Err(e) if is_unique_violation(&e) => return Err(UserError::NameTaken),
            Err(e) => return Err(e.into()),
        };
        tracing::info!(user_id = id, role = role.as_str(), "user created");
        self.get(id).await?.ok_or(UserError::NotFound)
    }

    /// User `id`, from the cache when it was read lately (see `user_cache`).
    pub async fn get(&self, id: i64) -> Result<Option<User>, UserError> {
        if let Some(user) = self.cache.get(id) {
            return Ok(Some(user));
        }
        let read_at = self.cache.generation();
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        let user = row.as_ref().map(user_from_row).transpose()?;
        if let Some(user) = &user {
            self.cache.keep(user, read_at);
        }
        Ok(user)
    }

    pub async fn get_by_name(&self, name: &str) -> Result<Option<User>, UserError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.db)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn count(&self) -> Result<i64, UserError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.db).await?)
    }

    /// Every user, by name.
    pub async fn list(&self) -> Result<Vec<User>, UserError> {
        let rows =
            sqlx::query(&format!("SELECT {COLUMNS} FROM users ORDER BY name")).fetch_all(&self.db).await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn set_role(&self, id: i64, role: Role) -> Result<User, UserError> {
        let mut tx = self.db.begin().await?;
        if role != Role::Admin {
            guard_last_admin(&mut tx, id).await?;
        }
        let done = sqlx::query("UPDATE users SET role = ?, updated_at = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(now_rfc3339())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(UserError::NotFound);
        }
        tx.commit().await?;
        self.cache.forget(id);
        tracing::info!(user_id = id, role = role.as_str(), "user role changed");
        self.get(id).await?.ok_or(UserError::NotFound)
    }

    /// Disables (ending the user's sessions) or re-enables a user.
    pub async fn set_disabled(&self, id: i64, disabled: bool) -> Result<User, UserError> {
        let mut tx = self.db.begin().await?;
        if disabled {
            guard_last_admin(&mut tx, id).await?;
        }
        let done = sqlx::query(
            "UPDATE users SET disabled = ?, session_epoch = session_epoch + ?, updated_at = ? WHERE id = ?",
        )
        .bind(i64::from(disabled))
        .bind(i64::from(disabled))
        .bind(now_rfc3339())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(UserError::NotFound);
        }
        tx.commit().await?;
        self.cache.forget(id);
        tracing::info!(user_id = id, disabled, "user disabled flag changed");
        self.get(id).await?.ok_or(UserError::NotFound)
    }

    /// Sets a new password (rules checked) and ends the user's sessions.
    pub async fn set_password(&self, id: i64, password: &str) -> Result<(), UserError> {
        password::check_rules(password)?;
        let hash = password::hash_blocking(password.to_owned()).await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = ?, session_epoch = session_epoch + 1, updated_at = ? \
             WHERE id = ?",
        )
        .bind(hash)
        .bind(now_rfc3339())
        .bind(id)
        .execute(&self.db)
        .await?;
        self.cache.forget(id);
        if done.rows_affected() == 0 {
            return Err(UserError::NotFound);
        }
        tracing::info!(user_id = id, "user password changed");
        Ok(())
    }

    /// The user whose name and password these are. Unknown names cost one
    /// verification against a dummy hash, as long as a real one; a disabled
    /// user is named only once the password was right.
    pub async fn verify_login(&self, name: &str, password: &str) -> Result<User, VerifyError> {
        let name = name.trim().to_ascii_lowercase();
        let found = match check_name(&name) {
            Ok(name) => sqlx::query(&format!("SELECT {COLUMNS}, password_hash FROM users WHERE name = ?"))
                .bind(name)
                .fetch_optional(&self.db)
                .await
                .map_err(UserError::from)?,
            Err(_) => None,
        };
        let (user, hash) = match &found {
            Some(row) => (
                Some(user_from_row(row)?),
                Some(row.try_get::<String, _>("password_hash").map_err(UserError::from)?),
            ),
            None => (None, None),
        };
        // Over-long input is refused unhashed whoever it names: the work per
        // request stays bounded and the timing says nothing about the name.
        if password.len() > password::MAX_PASSWORD_BYTES {
            return Err(VerifyError::BadCredentials);
        }
        let matches = password::verify_blocking(password.to_owned(), hash).await;
        match user {
            Some(user) if matches && user.disabled => Err(VerifyError::Disabled),
            Some(user) if matches => Ok(user),
            _ => Err(VerifyError::BadCredentials),
        }
    }
}

/// Refuses when `id` is the only enabled admin.
async fn guard_last_admin(tx: &mut sqlx::SqliteConnection, id: i64) -> Result<(), UserError> {
    let other_admins: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id <> ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    let is_enabled_admin: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE id = ? AND role = 'admin' AND disabled = 0")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if is_enabled_admin > 0 && other_admins == 0 {
        return Err(UserError::LastAdmin);
    }
    Ok(())
}
