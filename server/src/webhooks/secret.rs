//! The per-service webhook secret and the caller-facing use-cases: show the
//! hook paths and secret (deployer), rotate the secret (deployer, audited),
//! list deliveries (admin). The secret handling is shared with the project
//! hook (`super::project`) through [`Owner`].
//!
//! The secret is 32 random bytes from the OS, hex-encoded (the text the
//! forge is configured with; HMAC key and GitLab token alike), stored sealed
//! in `services.webhook_secret`. It is generated when a service is created,
//! and on first use for services made before (or outside) that path.

use aes_gcm::aead::{rand_core::RngCore, OsRng};
use app::wire::{Caller, Role};
use serde::{Deserialize, Serialize};

use super::{
    deliveries::{self, Owner},
    Delivery, Forge,
};
use crate::{
    access::require,
    audit::{self, Event},
    engine::{Engine, EngineError},
    history::{Page, PageRequest},
};

/// Where each forge delivers to, relative to the dashboard's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookPaths {
    pub github: String,
    pub gitlab: String,
    pub gitea: String,
}

/// A service's webhook settings, as shown in its settings page. `Debug`
/// masks the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookInfo {
    pub service_id: i64,
    pub paths: HookPaths,
    /// The plaintext secret to configure in the forge.
    pub secret: String,
}

impl std::fmt::Debug for WebhookInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookInfo")
            .field("service_id", &self.service_id)
            .field("paths", &self.paths)
            .field("secret", &"…")
            .finish()
    }
}

/// The hook path of `service_id` for `forge`.
pub fn hook_path(forge: Forge, service_id: i64) -> String {
    format!("/hooks/{}/{service_id}", forge.as_str())
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Owner {
    /// The table holding the owner's secret, its id, what it is called,
    /// and the audit action of a rotation.
    fn row(self) -> (&'static str, i64, &'static str, &'static str) {
        match self {
            Owner::Service(id) => ("services", id, "service", "service.webhook_rotate"),
            Owner::Project(id) => ("projects", id, "project", "project.webhook_rotate"),
        }
    }
}

impl Engine {
    /// The hook paths and the secret (deployer); generates the secret when
    /// the service has none yet.
    pub async fn webhook_info(&self, caller: &Caller, service_id: i64) -> Result<WebhookInfo, EngineError> {
        require(caller, Role::Deployer)?;
        let secret = self.ensure_webhook_secret(Owner::Service(service_id)).await?;
        Ok(info(service_id, secret))
    }

    /// Replaces the secret with a new one (deployer); the old one stops
    /// working at once.
    pub async fn rotate_webhook_secret(
        &self,
        caller: &Caller,
        service_id: i64,
    ) -> Result<WebhookInfo, EngineError> {
        let secret = self.rotate_hook_secret(caller, Owner::Service(service_id)).await?;
        Ok(info(service_id, secret))
    }

    /// A service's webhook deliveries, newest first (admin).
    pub async fn list_deliveries(
        &self,
        caller: &Caller,
        service_id: i64,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Page<Delivery>, EngineError> {
        require(caller, Role::Admin)?;
        self.owner_of(service_id).await?;
        self.deliveries_page(Owner::Service(service_id), before, limit).await
    }

    /// Gives a new service its secret (called right after it is created).
    /// Never fails the caller: the secret is made on first use otherwise.
    pub async fn init_webhook_secret(&self, service_id: i64) {
        if let Err(e) = self.ensure_webhook_secret(Owner::Service(service_id)).await {
            tracing::warn!(service_id, error = %e, "cannot generate the webhook secret yet");
        }
    }

    /// A hook's deliveries, newest first (the caller is checked already).
    pub(super) async fn deliveries_page(
        &self,
        owner: Owner,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Page<Delivery>, EngineError> {
        let page = PageRequest { before, limit };
        let rows = deliveries::list(&self.db, owner, page.before(), i64::from(page.limit()) + 1).await?;
        Ok(Page::from_rows(rows, page.limit(), |d| d.id))
    }

    /// Replaces a hook's secret (deployer, audited as
    /// `<service|project>.webhook_rotate`); the new plaintext secret.
    pub(super) async fn rotate_hook_secret(
        &self,
        caller: &Caller,
        owner: Owner,
    ) -> Result<String, EngineError> {
        let actor = require(caller, Role::Deployer)?;
        let (table, id, what, action) = owner.row();
        let secret = new_secret();
        let done = sqlx::query(&format!("UPDATE {table} SET webhook_secret = ? WHERE id = ?"))
            .bind(self.secrets.seal(&secret))
            .bind(id)
            .execute(&self.db)
            .await?;
        if done.rows_affected() == 0 {
            return Err(EngineError::NotFound(what));
        }
        tracing::info!(?owner, %actor, "webhook secret rotated");
        audit::record(&self.db, Event::by(caller, action).target(format!("{what}:{id}"))).await;
        Ok(secret)
    }

    /// A hook's plaintext secret, generated and stored first when missing
    /// (two concurrent callers end up with the same one).
    pub(super) async fn ensure_webhook_secret(&self, owner: Owner) -> Result<String, EngineError> {
        let (table, id, what, _) = owner.row();
        sqlx::query(&format!(
            "UPDATE {table} SET webhook_secret = ? WHERE id = ? AND webhook_secret IS NULL"
        ))
        .bind(self.secrets.seal(&new_secret()))
        .bind(id)
        .execute(&self.db)
        .await?;
        let sealed: Option<Option<String>> =
            sqlx::query_scalar(&format!("SELECT webhook_secret FROM {table} WHERE id = ?"))
                .bind(id)
                .fetch_optional(&self.db)
                .await?;
        let sealed = sealed.ok_or(EngineError::NotFound(what))?;
        let sealed = sealed.ok_or_else(|| anyhow::anyhow!("the webhook secret was not stored"))?;
        Ok(self.secrets.open(&sealed).map_err(anyhow::Error::from)?)
    }
}

fn info(service_id: i64, secret: String) -> WebhookInfo {
    WebhookInfo {
        service_id,
        paths: HookPaths {
            github: hook_path(Forge::Github, service_id),
            gitlab: hook_path(Forge::Gitlab, service_id),
            gitea: hook_path(Forge::Gitea, service_id),
        },
        secret,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_32_random_bytes_in_hex() {
        let a = new_secret();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_secret());
        assert_eq!(hook_path(Forge::Gitea, 7), "/hooks/gitea/7");
    }
}
