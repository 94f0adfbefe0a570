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

use super::{deliveries::Owner, Delivery, Forge, HookPaths};
use crate::{
    access::require,
    engine::{Engine, EngineError},
    history::Page,
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
        let secret = self.ensure_webhook_secret(Owner::Project(project_id)).await?;
        Ok(info(project_id, secret))
    }

    /// Replaces the project hook's secret (deployer); the old one stops
    /// working at once.
    pub async fn rotate_project_webhook_secret(
        &self,
        caller: &Caller,
        project_id: i64,
    ) -> Result<ProjectWebhookInfo, EngineError> {
        let secret = self.rotate_hook_secret(caller, Owner::Project(project_id)).await?;
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
        self.deliveries_page(Owner::Project(project_id), before, limit).await
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
