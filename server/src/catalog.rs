//! Caller-facing use-cases for projects and services: the overview, create,
//! read and edit, each after the role check. Storage and validation live in
//! `projects` and `service_env`; this module adds roles and keeps a service
//! and its environment consistent (nothing is written when either is refused).

use app::wire::{Caller, Role};

use crate::{
    access::require,
    audit::{self, Event},
    builds::Build,
    deploys::Deployment,
    engine::{Engine, EngineError},
    projects::{Project, ProjectStore, Service, ServiceSpec},
    service_env::{self, EnvInput, EnvView},
    validate::{self, Problems},
};

/// One service on the overview: its live deployment and newest build.
pub struct ServiceStatus {
    pub service: Service,
    pub live: Option<Deployment>,
    pub last_build: Option<Build>,
}

/// A service with its project and environment (secret values masked).
pub struct ServiceView {
    pub project: Project,
    pub service: Service,
    pub env: Vec<EnvView>,
}

impl Engine {
    /// The store, sealing credentials in git URLs.
    fn projects(&self) -> ProjectStore {
        ProjectStore::sealing(self.db.clone(), self.secrets.clone())
    }

    /// Every project with its services, each with its live deployment and
    /// newest build (viewer).
    pub async fn overview(&self, caller: &Caller) -> Result<Vec<(Project, Vec<ServiceStatus>)>, EngineError> {
        require(caller, Role::Viewer)?;
        let store = self.projects();
        let mut out = Vec::new();
        for project in store.list_projects().await? {
            let mut services = Vec::new();
            for service in store.list_services(project.id).await? {
                let live = self.live_of(service.id).await?.map(Deployment::masked);
                let last_build = self.latest_build(service.id).await?;
                services.push(ServiceStatus { service, live, last_build });
            }
            out.push((project, services));
        }
        Ok(out)
    }

    /// Creates an empty project (deployer).
    pub async fn create_project(&self, caller: &Caller, name: &str) -> Result<Project, EngineError> {
        let actor = require(caller, Role::Deployer)?;
        let project = self.projects().create_project(name).await?;
        tracing::info!(project_id = project.id, %actor, "project created");
        audit::record(
            &self.db,
            Event::by(caller, "project.create")
                .target(format!("project:{}", project.id))
                .detail(&project.name),
        )
        .await;
        Ok(project)
    }

    /// Creates a service with its environment (deployer). Every variable
    /// needs a value; nothing is written when anything is refused.
    pub async fn create_service(
        &self,
        caller: &Caller,
        project_id: i64,
        spec: &ServiceSpec,
        env: &[EnvInput],
    ) -> Result<ServiceView, EngineError> {
        let actor = require(caller, Role::Deployer)?;
        // Every field is checked before answering, so the form shows all
        // its problems at once.
        let mut p = Problems::new();
        self.check_submission(spec, env, &mut p);
        if let Some(var) = env.iter().find(|v| v.value.is_none()) {
            p.add("env", format!("{}: a value is required", var.name));
        }
        p.finish().map_err(EngineError::of_fields)?;
        let store = self.projects();
        let service = store.create_service(project_id, spec).await?;
        if let Err(e) = service_env::replace(&self.db, &self.secrets, service.id, env).await {
            // Checked above, so only a database failure lands here.
            if let Err(undo) = store.delete_service(service.id).await {
                tracing::error!(service_id = service.id, error = %undo, "cannot remove a half-created service");
            }
            return Err(e.into());
        }
        self.init_webhook_secret(service.id).await;
        tracing::info!(service_id = service.id, project_id, %actor, "service created");
        audit::record(
            &self.db,
            Event::by(caller, "service.create")
                .target(format!("service:{}", service.id))
                .detail(&service.spec.name),
        )
        .await;
        self.service_view(service.id).await
    }

    /// Replaces a service's settings and environment (deployer). A secret
    /// variable submitted without a value keeps its stored value.
    pub async fn update_service(
        &self,
        caller: &Caller,
        service_id: i64,
        spec: &ServiceSpec,
        env: &[EnvInput],
    ) -> Result<ServiceView, EngineError> {
        let actor = require(caller, Role::Deployer)?;
        // Views show the git URL with its credentials masked; the form sends
        // that back unchanged, which keeps the stored (sealed) credentials.
        let current = match self.projects().get_service(service_id).await {
            Ok(c) => Some(c.real_git_url(&self.secrets)?),
            Err(_) => None,
        };
        let kept;
        let spec = match current {
            Some(real) if spec.git_url != real && spec.git_url == validate::redact_url(&real) => {
                kept = ServiceSpec { git_url: real, ..spec.clone() };
                &kept
            }
            _ => spec,
        };
        // Validate everything before anything is written, so a refused field
        // leaves the environment untouched too; every refusal is answered.
        let mut p = Problems::new();
        self.check_submission(spec, env, &mut p);
        let stored = service_env::stored(&self.db, service_id).await?;
        if let Some(var) = env
            .iter()
            .find(|v| v.value.is_none() && !stored.iter().any(|s| s.name == v.name && s.secret && v.secret))
        {
            p.add("env", format!("{}: a value is required", var.name));
        }
        p.finish().map_err(EngineError::of_fields)?;
        self.projects().update_service(service_id, spec).await?;
        service_env::replace(&self.db, &self.secrets, service_id, env).await?;
        tracing::info!(service_id, %actor, "service settings changed");
        let names: Vec<&str> = env.iter().map(|v| v.name.as_str()).collect();
        let detail = format!(
            "settings saved; env: {}",
            if names.is_empty() { "(none)".into() } else { names.join(", ") }
        );
        audit::record(
            &self.db,
            Event::by(caller, "service.update").target(format!("service:{service_id}")).detail(detail),
        )
        .await;
        self.service_view(service_id).await
    }

    /// One service with its project and masked environment (viewer).
    pub async fn get_service(&self, caller: &Caller, service_id: i64) -> Result<ServiceView, EngineError> {
        require(caller, Role::Viewer)?;
        self.service_view(service_id).await
    }

    /// The project and service a build or deployment belongs to (internal:
    /// call after the caller's role was checked for that object).
    pub async fn owner_of(&self, service_id: i64) -> Result<(Project, Service), EngineError> {
        Ok(self.projects().get_service_and_project(service_id).await?)
    }

    /// Checks a service's settings and environment, noting every refusal.
    fn check_submission(&self, spec: &ServiceSpec, env: &[EnvInput], p: &mut Problems) {
        spec.check(p);
        if !p.has("git_url") {
            p.check(validate::local_repo_allowed(&spec.git_url, self.settings.allow_local_repos));
        }
        service_env::check_into(env, p);
    }

    async fn service_view(&self, service_id: i64) -> Result<ServiceView, EngineError> {
        let (project, service) = self.owner_of(service_id).await?;
        let env = service_env::list(&self.db, service_id).await?;
        Ok(ServiceView { project, service, env })
    }
}
