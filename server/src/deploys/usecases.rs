//! Deploy and rollback use-cases, and history. Each checks the role first.

use app::wire::{Caller, Role};
use serde::{Deserialize, Serialize};
use sqlx::SqliteConnection;

use super::{from_row, DeployConfig, Deployment, DeploymentStatus, COLUMNS};
use crate::{
    access::require,
    audit::{self, Event},
    engine::{deploy_timeout, Engine, EngineError, DEPLOY_JOB},
    history::{Page, PageRequest},
    jobs::{JobQueue, NewJob},
    projects::{ProjectStore, Service},
    service_env, validate,
};

/// Longest deploy reason.
pub const MAX_REASON: usize = 500;

/// What to deploy: a build, an image already in the engine, or (neither
/// given) the service's newest successful build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    pub service_id: i64,
    pub build_id: Option<i64>,
    /// An image reference or id present in the engine (nothing is pulled).
    pub image: Option<String>,
    pub reason: Option<String>,
}

fn reason(raw: Option<&str>) -> Result<Option<String>, EngineError> {
    let Some(text) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let invalid = |message: &str| EngineError::Invalid { field: "reason", message: message.into() };
    if text.chars().count() > MAX_REASON {
        return Err(invalid("at most 500 characters"));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid("must be one line without control characters"));
    }
    Ok(Some(text.to_string()))
}

impl Engine {
    /// Queues a deployment (deployer).
    pub async fn deploy(&self, caller: &Caller, req: DeployRequest) -> Result<Deployment, EngineError> {
        let actor = require(caller, Role::Deployer)?;
        let reason = reason(req.reason.as_deref())?;
        let service = ProjectStore::new(self.db.clone()).get_service(req.service_id).await?;
        let (image_id, build_id) = self.deploy_target(&service, &req).await?;
        let mut tx = self.db.begin_with("BEGIN IMMEDIATE").await?;
        let id = self.queue_deployment(&mut tx, &service, &image_id, build_id, reason, &actor, None).await?;
        tx.commit().await?;
        self.queue.notify();
        let what = match build_id {
            Some(b) => format!("build:{b}"),
            None => format!("image {image_id}"),
        };
        audit::record(
            &self.db,
            Event::by(caller, "deploy.create").target(format!("deployment:{id}")).detail(what),
        )
        .await;
        self.deployment(id).await
    }

    /// The image a deploy request asks for, and its build. An `image`
    /// service runs its image reference (resolved to the id the engine has
    /// now) unless an image is given.
    pub(crate) async fn deploy_target(
        &self,
        service: &Service,
        req: &DeployRequest,
    ) -> Result<(String, Option<i64>), EngineError> {
        if service.spec.kind == crate::projects::ServiceKind::Image && req.image.is_none() {
            if req.build_id.is_some() {
                // Well-formed, but this service is not built: a conflict.
                return Err(EngineError::Conflict(
                    "an image service has no builds: deploy its image reference (give no build) or an image"
                        .into(),
                ));
            }
            // The stored reference, not the request, is at fault when the
            // engine's grammar refuses it: a conflict with the settings.
            let reference = service.spec.image.as_deref().unwrap_or_default();
            let id = self.resolve_image(reference).await.map_err(|e| match e {
                EngineError::Invalid { message, .. } => {
                    EngineError::Conflict(format!("the service's image {reference}: {message}"))
                }
                other => other,
            })?;
            return Ok((id, None));
        }
        Ok(match (req.build_id, req.image.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(EngineError::Invalid {
                    field: "image",
                    message: "give a build or an image, not both".into(),
                })
            }
            (None, Some(image)) => {
                let image = validate::image_ref(image)?;
                (self.resolve_image(&image).await?, None)
            }
            (build_id, None) => {
                // A service with `image_from` deploys its source's builds.
                let builder = service.image_from_id.unwrap_or(service.id);
                let (id, image) = self.deployable_build(builder, build_id).await?;
                (image, Some(id))
            }
        })
    }

    /// Queues a new deployment of an earlier one's image **and** config
    /// (deployer). Refused for a deployment that never went live, for the
    /// live one, and when its image no longer exists.
    pub async fn rollback(
        &self,
        caller: &Caller,
        deployment_id: i64,
        reason_text: Option<&str>,
    ) -> Result<Deployment, EngineError> {
        let actor = require(caller, Role::Deployer)?;
        let reason = reason(reason_text)?;
        let target = self.deployment(deployment_id).await?;
        match target.status {
            DeploymentStatus::Live => {
                return Err(EngineError::Conflict(format!("deployment #{deployment_id} is already live")))
            }
            s if !s.was_live() => {
                return Err(EngineError::Conflict(format!(
                    "deployment #{deployment_id} never went live ({s}); only one that served traffic can be rolled back to"
                )))
            }
            _ => {}
        }
        if !self.docker.image_exists(&target.image_id).await.map_err(|e| EngineError::Internal(e.into()))? {
            return Err(EngineError::Conflict(format!(
                "the image {} of deployment #{deployment_id} no longer exists in the Docker engine; \
                 rebuild its commit instead",
                target.image_id
            )));
        }
        let service = ProjectStore::new(self.db.clone()).get_service(target.service_id).await?;
        let reason = reason.or_else(|| Some(format!("rollback to deployment #{deployment_id}")));
        let mut tx = self.db.begin_with("BEGIN IMMEDIATE").await?;
        let id = self
            .insert_deployment(
                &mut tx,
                &service,
                &target.image_id,
                target.build_id,
                &target.config,
                reason,
                &actor,
                Some(deployment_id),
            )
            .await?;
        tx.commit().await?;
        self.queue.notify();
        tracing::info!(deployment_id = id, rollback_of = deployment_id, %actor, "rollback queued");
        audit::record(
            &self.db,
            Event::by(caller, "deploy.rollback")
                .target(format!("deployment:{id}"))
                .detail(format!("rollback to deployment:{deployment_id}")),
        )
        .await;
        self.deployment(id).await
    }

    /// Writes a pending deployment of `image_id` with the service's current
    /// config, and its job, on `tx`. The caller commits and notifies.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn queue_deployment(
        &self,
        tx: &mut SqliteConnection,
        service: &Service,
        image_id: &str,
        build_id: Option<i64>,
        reason: Option<String>,
        actor: &str,
        rollback_of: Option<i64>,
    ) -> Result<i64, EngineError> {
        let spec = &service.spec;
        let config =
            DeployConfig {
                env: service_env::stored(&self.db, service.id).await?,
                kind: spec.kind,
                port: match spec.port {
                    Some(port) => Some(u16::try_from(port).map_err(|_| EngineError::Invalid {
                        field: "port",
                        message: "out of range".into(),
                    })?),
                    None => None,
                },
                health: spec.health.clone(),
                settle_secs: spec.settle_secs,
                command: spec.command.clone(),
                volumes: spec.volumes.clone(),
                ports: spec.ports.clone(),
                memory_bytes: spec.memory_bytes,
                cpu_millis: spec.cpu_millis,
                drain_secs: spec.drain_secs,
            };
        self.insert_deployment(tx, service, image_id, build_id, &config, reason, actor, rollback_of).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_deployment(
        &self,
        tx: &mut SqliteConnection,
        service: &Service,
        image_id: &str,
        build_id: Option<i64>,
        config: &DeployConfig,
        reason: Option<String>,
        actor: &str,
        rollback_of: Option<i64>,
    ) -> Result<i64, EngineError> {
        let deleting: Option<String> = sqlx::query_scalar("SELECT deleting_at FROM services WHERE id = ?")
            .bind(service.id)
            .fetch_one(&mut *tx)
            .await?;
        if deleting.is_some() {
            return Err(EngineError::Conflict("the service is being deleted".into()));
        }
        let job = NewJob::new(DEPLOY_JOB, Some(service.id), deploy_timeout(config));
        let job_id = self.queue.enqueue(tx, &job).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO deployments (service_id, build_id, job_id, image_id, config, status, reason, actor, \
             rollback_of, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?) RETURNING id",
        )
        .bind(service.id)
        .bind(build_id)
        .bind(job_id)
        .bind(image_id)
        .bind(serde_json::to_string(config).map_err(anyhow::Error::from)?)
        .bind(&reason)
        .bind(actor)
        .bind(rollback_of)
        .bind(crate::db::now_rfc3339())
        .fetch_one(&mut *tx)
        .await?;
        tracing::info!(deployment_id = id, service_id = service.id, image_id, %actor, "deployment queued");
        Ok(id)
    }

    /// The build to deploy: the one asked for (it must belong to the service
    /// and have succeeded with its image kept), or the newest such.
    async fn deployable_build(
        &self,
        service_id: i64,
        build_id: Option<i64>,
    ) -> Result<(i64, String), EngineError> {
        let Some(id) = build_id else {
            let newest: Option<(i64, String)> = sqlx::query_as(
                "SELECT id, image_id FROM builds WHERE service_id = ? AND status = 'succeeded' \
                 AND image_id IS NOT NULL AND (image_removed_at IS NULL OR pushed_ref IS NOT NULL) \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(service_id)
            .fetch_optional(&self.db)
            .await?;
            return newest.ok_or_else(|| {
                EngineError::Conflict("the service has no successful build to deploy".into())
            });
        };
        let build = self.build(id).await?;
        // A build of another service is no build of this one (404).
        if build.service_id != service_id {
            return Err(EngineError::NotFound("build of this service"));
        }
        // A removed image still deploys when its registry has it (pulled by
        // digest by the deploy job).
        let removed = build.image_removed_at.as_ref().filter(|_| build.pushed_ref.is_none());
        match (&build.image_id, build.status, removed) {
            (Some(image), crate::jobs::JobStatus::Succeeded, None) => Ok((id, image.clone())),
            (_, crate::jobs::JobStatus::Succeeded, Some(_)) => Err(EngineError::Conflict(format!(
                "the image of build #{} was removed by retention",
                build.number
            ))),
            _ => Err(EngineError::Conflict(format!(
                "build #{} has not succeeded ({})",
                build.number, build.status
            ))),
        }
    }

    async fn resolve_image(&self, image: &str) -> Result<String, EngineError> {
        let docker = self.docker.client().map_err(|e| EngineError::Internal(e.into()))?;
        match docker.inspect_image(image).await {
            Ok(info) => info.id.ok_or_else(|| EngineError::Internal(anyhow::anyhow!("image without id"))),
            // A well-formed reference to an image the engine lacks: nothing
            // has that name (404), as for a build id of no build.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                Err(EngineError::NotFound("image (it is not in the Docker engine; Slipway never pulls)"))
            }
            // The engine's own reference grammar refused it.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 400, message }) => {
                Err(EngineError::Invalid {
                    field: "image",
                    message: format!("the Docker engine refuses it: {message}"),
                })
            }
            Err(e) => Err(EngineError::Internal(e.into())),
        }
    }

    /// One deployment, secrets masked (viewer).
    pub async fn get_deployment(&self, caller: &Caller, id: i64) -> Result<Deployment, EngineError> {
        require(caller, Role::Viewer)?;
        Ok(self.deployment(id).await?.masked())
    }

    /// Internal read without a role check; secrets sealed, not masked.
    pub async fn deployment(&self, id: i64) -> Result<Deployment, EngineError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM deployments WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?
            .ok_or(EngineError::NotFound("deployment"))?;
        Ok(from_row(&row)?)
    }

    /// A service's deployments, newest first, secrets masked (viewer).
    pub async fn list_deployments(
        &self,
        caller: &Caller,
        service_id: i64,
        page: PageRequest,
    ) -> Result<Page<Deployment>, EngineError> {
        require(caller, Role::Viewer)?;
        let limit = page.limit();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM deployments WHERE service_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(service_id)
        .bind(page.before())
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.db)
        .await?;
        let items =
            rows.iter().map(|r| from_row(r).map(Deployment::masked)).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, limit, |d| d.id))
    }

    /// The service's live deployment, if any (viewer).
    pub async fn live_deployment(
        &self,
        caller: &Caller,
        service_id: i64,
    ) -> Result<Option<Deployment>, EngineError> {
        require(caller, Role::Viewer)?;
        Ok(self.live_of(service_id).await?.map(Deployment::masked))
    }

    /// Internal read without a role check.
    pub async fn live_of(&self, service_id: i64) -> anyhow::Result<Option<Deployment>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM deployments WHERE service_id = ? AND status = 'live'"
        ))
        .bind(service_id)
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(from_row).transpose()
    }
}
