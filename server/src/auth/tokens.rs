//! API tokens: `slp_` + 32 random bytes (base64url), shown once at creation,
//! stored as their SHA-256. A token acts with its owner's current role;
//! a disabled owner, a revoked or an expired token is refused.

use app::wire::{Caller, Role, Via};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{
    access::{require, AccessError},
    audit::{self, Event},
    db::{format_time, now_rfc3339, Db},
};

/// Token text prefix, so leaked tokens are recognisable (secret scanners).
pub const PREFIX: &str = "slp_";
/// The longest lifetime a token may be given, in days.
pub const MAX_DAYS: u32 = 3650;
/// `last_used_at` is written at most this often per token.
const LAST_USED_EVERY_SECS: i64 = 30;

/// A token as listed (never the token itself): the wire type.
pub use app::wire::TokenView as ApiToken;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// Several fields refused at once: each a [`TokenError::Invalid`].
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Fields(Vec<TokenError>),
    #[error("no such token")]
    NotFound,
    /// A token may not mint tokens: a leaked or expiring one could outlive
    /// its own expiry or revocation that way.
    #[error("API tokens are created when signed in to the dashboard, not with another token")]
    FromToken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Why a presented bearer token does not sign anyone in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("the API token is not valid")]
    Unknown,
    #[error("the API token was revoked")]
    Revoked,
    #[error("the API token has expired")]
    Expired,
    #[error("the API token's user is disabled")]
    Disabled,
}

#[derive(Clone)]
pub struct TokenStore {
    db: Db,
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn check_name(raw: &str) -> Result<String, TokenError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Err(TokenError::Invalid {
            field: "name",
            message: "must be 1 to 60 printable characters".into(),
        });
    }
    Ok(name.to_string())
}

const COLUMNS: &str = "id, user_id, name, prefix, created_at, expires_at, last_used_at, revoked_at";

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ApiToken, sqlx::Error> {
    Ok(ApiToken {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl TokenStore {
    pub fn new(db: Db) -> Self {
        TokenStore { db }
    }

    /// Creates a token for the caller (any signed-in user). Returns the
    /// stored row and the token text, which is never shown again.
    pub async fn create(
        &self,
        caller: &Caller,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<(ApiToken, String), TokenError> {
        require(caller, Role::Viewer)?;
        let Caller::User { id: user_id, via, .. } = caller else {
            return Err(AccessError::Unauthenticated.into());
        };
        if *via == Via::Token {
            return Err(TokenError::FromToken);
        }
        // Both fields are checked; the answer names each one refused.
        let name = check_name(name);
        let expires_at = match expires_in_days {
            None => Ok(None),
            Some(days) if (1..=MAX_DAYS).contains(&days) => {
                Ok(Some(format_time(Utc::now() + Duration::days(i64::from(days)))))
            }
            Some(_) => Err(TokenError::Invalid {
                field: "expires_in_days",
                message: format!("must be between 1 and {MAX_DAYS}"),
            }),
        };
        let (name, expires_at) = match (name, expires_at) {
            (Ok(name), Ok(at)) => (name, at),
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
            (Err(a), Err(b)) => return Err(TokenError::Fields(vec![a, b])),
        };
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
        let prefix: String = token.chars().take(PREFIX.len() + 6).collect();
        let row = sqlx::query(&format!(
            "INSERT INTO api_tokens (user_id, name, token_sha256, prefix, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}"
        ))
        .bind(user_id)
        .bind(&name)
        .bind(digest(&token))
        .bind(&prefix)
        .bind(now_rfc3339())
        .bind(&expires_at)
        .fetch_one(&self.db)
        .await?;
        let stored = from_row(&row)?;
        audit::record(
            &self.db,
            Event::by(caller, "token.create").target(format!("token:{}", stored.id)).detail(&name),
        )
        .await;
        Ok((stored, token))
    }

    /// The caller's tokens; an admin sees everyone's. Newest first.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<ApiToken>, TokenError> {
        require(caller, Role::Viewer)?;
        let (all, user_id) = match caller {
            Caller::User { id, role, .. } => (*role == Role::Admin, *id),
            Caller::Anonymous => return Err(AccessError::Unauthenticated.into()),
        };
        let rows =
            sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens WHERE ? OR user_id = ? ORDER BY id DESC"))
                .bind(all)
                .bind(user_id)
                .fetch_all(&self.db)
                .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Revokes one of the caller's tokens (an admin may revoke any).
    /// Revoking twice is harmless.
    pub async fn revoke(&self, caller: &Caller, token_id: i64) -> Result<ApiToken, TokenError> {
        require(caller, Role::Viewer)?;
        let token =
            self.list(caller).await?.into_iter().find(|t| t.id == token_id).ok_or(TokenError::NotFound)?;
        sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now_rfc3339())
            .bind(token_id)
            .execute(&self.db)
            .await?;
        audit::record(
            &self.db,
            Event::by(caller, "token.revoke").target(format!("token:{token_id}")).detail(&token.name),
        )
        .await;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?"))
            .bind(token_id)
            .fetch_one(&self.db)
            .await?;
        Ok(from_row(&row)?)
    }

    /// The caller a bearer token stands for, and records its use.
    pub async fn resolve(&self, token: &str) -> Result<Result<Caller, Rejected>, sqlx::Error> {
        if !token.starts_with(PREFIX) || token.len() > 100 {
            return Ok(Err(Rejected::Unknown));
        }
        let row = sqlx::query(
            "SELECT t.id, t.expires_at, t.revoked_at, t.last_used_at, u.id AS uid, u.name, u.role, u.disabled \
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_sha256 = ?",
        )
        .bind(digest(token))
        .fetch_optional(&self.db)
        .await?;
        let Some(row) = row else { return Ok(Err(Rejected::Unknown)) };
        let now = Utc::now();
        let expired = |at: Option<String>| {
            at.and_then(|t| DateTime::parse_from_rfc3339(&t).ok()).is_some_and(|t| t <= now)
        };
        if row.try_get::<Option<String>, _>("revoked_at")?.is_some() {
            return Ok(Err(Rejected::Revoked));
        }
        if expired(row.try_get("expires_at")?) {
            return Ok(Err(Rejected::Expired));
        }
        if row.try_get::<bool, _>("disabled")? {
            return Ok(Err(Rejected::Disabled));
        }
        let Some(role) = Role::parse(&row.try_get::<String, _>("role")?) else {
            return Ok(Err(Rejected::Unknown));
        };
        let id: i64 = row.try_get("id")?;
        let recent = format_time(now - Duration::seconds(LAST_USED_EVERY_SECS));
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)")
            .bind(format_time(now))
            .bind(id)
            .bind(recent)
            .execute(&self.db)
            .await?;
        Ok(Ok(Caller::User { id: row.try_get("uid")?, name: row.try_get("name")?, role, via: Via::Token }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name(" ci ").is_ok_and(|n| n == "ci"));
        assert!(check_name("").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"x".repeat(61)).is_err());
    }
}
