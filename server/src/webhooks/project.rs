//! The project hook: one URL per forge and one secret per project
//! (`/hooks/{forge}/projects/{id}`), whose pushes fan out to every service
//! of the project that builds the pushed repository at the pushed branch
//! (`crate::http::webhook`, [`super::fanout`]). Per-service hooks keep
//! working beside it.
//!
//! The use-cases mirror the service hook's ([`super::secret`]): show the
//! paths and secret (deployer; generated on first use), rotate the secret
//! (deployer, audited), list deliveries (admin).

use app::wire::{Caller, Role};
use serde::{Deserialize, Serialize};

use super::{
    deliveries::{self, Owner},
    secret::new_secret,
    Delivery, Forge, HookPaths,
};
use crate::{
    access::require,
    audit::{self, Event},
    engine::{Engine, EngineError},
    history::{Page, PageRequest},
    projects::ProjectStore,
};

/// A project hook's settings. `Debug` masks the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectWebhookInfo {
    pub project_id: i64,
    pub paths: HookPaths,
    /// The plaintext secret to configure in the forge.
    pub secret: String,
}

impl std::fmt::Debug for ProjectWebhookInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectWebhookInfo")
            .field("project_id", &self.project_id)
            .field("paths", &self.paths)
            .field("secret", &"…")
            .finish()
    }
}

/// The project hook's path for `forge`.
pub fn project_hook_path(forge: Forge, project_id: i64) -> String {
    format!("/hooks/{}/projects/{project_id}", forge.as_str())
}

fn info(project_id: i64, secret: String) -> ProjectWebhookInfo {
    ProjectWebhookInfo {
        project_id,
        paths: HookPaths {
            github: project_hook_path(Forge::Github, project_id),
            gitlab: project_hook_path(Forge::Gitlab, project_id),
            gitea: project_hook_path(Forge::Gitea, project_id),
        },
        secret,
    }
}

impl Engine {
    /// The project hook's paths and secret (deployer); generates the secret
    /// when the project has none yet.
    pub async fn project_webhook_info(
        &self,
        caller: &Caller,
        project_id: i64,
    ) -> Result<ProjectWebhookInfo, EngineError> {
        require(caller, Role::Deployer)?;
        sqlx::query("UPDATE projects SET webhook_secret = ? WHERE id = ? AND webhook_secret IS NULL")
            .bind(self.secrets.seal(&new_secret()))
            .bind(project_id)
            .execute(&self.db)
            .await?;
        let sealed: Option<Option<String>> =
            sqlx::query_scalar("SELECT webhook_secret FROM projects WHERE id = ?")
                .bind(project_id)
                .fetch_optional(&self.db)
                .await?;
        let sealed = sealed.ok_or(EngineError::NotFound("project"))?;
        let sealed = sealed.ok_or_else(|| anyhow::anyhow!("the project's webhook secret was not stored"))?;
        let secret = self.secrets.open(&sealed).map_err(anyhow::Error::from)?;
        Ok(info(project_id, secret))
    }

    /// Replaces the project hook's secret (deployer); the old one stops
    /// working at once.
    pub async fn rotate_project_webhook_secret(
        &self,
        caller: &Caller,
        project_id: i64,
    ) -> Result<ProjectWebhookInfo, EngineError> {
        let actor = require(caller, Role::Deployer)?;
        let secret = new_secret();
        let done = sqlx::query("UPDATE projects SET webhook_secret = ? WHERE id = ?")
            .bind(self.secrets.seal(&secret))
            .bind(project_id)
            .execute(&self.db)
            .await?;
        if done.rows_affected() == 0 {
            return Err(EngineError::NotFound("project"));
        }
        tracing::info!(project_id, %actor, "project webhook secret rotated");
        audit::record(
            &self.db,
            Event::by(caller, "project.webhook_rotate").target(format!("project:{project_id}")),
        )
        .await;
        Ok(info(project_id, secret))
    }

    /// The project hook's deliveries, newest first (admin).
    pub async fn list_project_deliveries(
        &self,
        caller: &Caller,
        project_id: i64,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Page<Delivery>, EngineError> {
        require(caller, Role::Admin)?;
        ProjectStore::new(self.db.clone()).get_project(project_id).await?;
        let page = PageRequest { before, limit };
        let rows = deliveries::list(
            &self.db,
            Owner::Project(project_id),
            page.before(),
            i64::from(page.limit()) + 1,
        )
        .await?;
        Ok(Page::from_rows(rows, page.limit(), |d| d.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_hooks_have_their_own_paths() {
        assert_eq!(project_hook_path(Forge::Github, 4), "/hooks/github/projects/4");
        let shown = format!("{:?}", info(4, "s3cret".into()));
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
