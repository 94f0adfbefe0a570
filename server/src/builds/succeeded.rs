//! A build's success: its row, and in the same transaction the deploy it
//! asked for and the deployments of the services that take their image
//! from it (`image_from`) and deploy automatically.

use super::{
    job::{BuildHandler, Produced},
    Build,
};
use crate::{
    audit::{self, Event, Source},
    jobs::JobQueue,
    projects::Service,
};

impl BuildHandler {
    /// Records success and, when asked, queues the deploy, in one transaction.
    pub(super) async fn succeeded(
        &self,
        build: &Build,
        service: &Service,
        produced: Option<&Produced>,
    ) -> anyhow::Result<()> {
        // Services that take their image from this one and deploy
        // automatically get this image too (never for a build-only run).
        let dependents = match produced {
            Some(_) if !build.build_only => {
                crate::projects::ProjectStore::new(self.engine.db.clone()).dependents(service.id).await?
            }
            _ => Vec::new(),
        };
        let mut tx = self.engine.db.begin_with("BEGIN IMMEDIATE").await?;
        let tags = produced.map(|p| p.images.tags.clone()).unwrap_or_default();
        sqlx::query(
            "UPDATE builds SET status = 'succeeded', image_id = ?, tags = ?, pushed_ref = ?, phase = 'done', \
             progress = 100, finished_at = ? WHERE id = ? AND status = 'running'",
        )
        .bind(produced.map(|p| p.images.image_id.as_str()))
        .bind(serde_json::to_string(&tags)?)
        .bind(produced.and_then(|p| p.pushed.as_deref()))
        .bind(crate::db::now_rfc3339())
        .bind(build.id)
        .execute(&mut *tx)
        .await?;
        let actor = build.actor.clone().unwrap_or_else(|| "slipway".into());
        let mut deployment = None;
        if let Some(Produced { images, deploy: true, .. }) = produced {
            let image_id = images.image_id.as_str();
            let reason = super::auto_deploy_reason(build);
            deployment = Some(
                self.engine
                    .queue_deployment(&mut tx, service, image_id, Some(build.id), Some(reason), &actor, None)
                    .await?,
            );
        }
        let mut queued: Vec<i64> = deployment.into_iter().collect();
        if let Some(produced) = produced {
            let reason = format!("build #{} of {}", build.number, service.spec.name);
            for dependent in dependents.iter().filter(|d| d.spec.auto_deploy) {
                let image_id = produced.images.image_id.as_str();
                let id = self
                    .engine
                    .queue_deployment(
                        &mut tx,
                        dependent,
                        image_id,
                        Some(build.id),
                        Some(reason.clone()),
                        &actor,
                        None,
                    )
                    .await?;
                queued.push(id);
            }
        }
        tx.commit().await?;
        for id in queued {
            self.engine.queue.notify();
            let event = Event::from(actor.clone(), Source::of_trigger(&build.trigger), "deploy.create");
            audit::record(
                &self.engine.db,
                event.target(format!("deployment:{id}")).detail(format!("build:{} (auto-deploy)", build.id)),
            )
            .await;
        }
        tracing::info!(image_id = produced.map(|p| p.images.image_id.as_str()), "build succeeded");
        Ok(())
    }
}
