//! Retention, run as a periodic `retention` job: per service, keep the
//! newest N images plus every image a rollback can reach (the live
//! deployment and the previous K that served), remove the rest; prune the
//! engine's build cache down to its budget (least recently used first,
//! never the layers of an image in the engine); delete build logs, stale
//! workspaces, webhook delivery records and finished notification jobs
//! older than the age limit.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::{
    docker::{build::cache::CachePrune, containers::ImageRemoval},
    engine::{Engine, RETENTION_JOB},
    jobs::{JobContext, JobHandler, NewJob},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Newest successful build images kept per service.
    pub keep_images: usize,
    /// Deployments before the live one whose images are kept for rollback.
    pub keep_deployments: usize,
    /// Build logs and workspaces older than this are deleted.
    pub max_age: Duration,
    /// How often the job is queued.
    pub every: Duration,
    /// Bytes of build cache kept on the engine (`SLIPWAY_BUILD_CACHE_BUDGET`).
    pub build_cache_budget: u64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            keep_images: 10,
            keep_deployments: 5,
            max_age: Duration::from_secs(30 * 24 * 3600),
            every: Duration::from_secs(3600),
            build_cache_budget: 10 << 30,
        }
    }
}

/// What one pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub images_removed: Vec<String>,
    pub logs_removed: usize,
    pub workspaces_removed: usize,
    /// Webhook delivery records older than the age limit.
    pub deliveries_removed: u64,
    /// Finished notification jobs older than the age limit.
    pub notify_jobs_removed: u64,
    /// Build cache pruned beyond the budget; `None` when the prune failed
    /// (logged; the rest of the pass goes on).
    pub build_cache: Option<CachePrune>,
}

/// Queues a retention job every `policy.every` (the first one a minute after
/// start), unless one is already queued or running.
pub async fn timer(engine: Engine) {
    let first = engine.settings.retention.every.min(Duration::from_secs(60));
    tokio::time::sleep(first).await;
    loop {
        if let Err(e) = queue_retention(&engine).await {
            tracing::warn!(error = %format!("{e:#}"), "cannot queue the retention job");
        }
        tokio::time::sleep(engine.settings.retention.every).await;
    }
}

async fn queue_retention(engine: &Engine) -> anyhow::Result<()> {
    let active: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = ? AND status IN ('queued', 'running')")
            .bind(RETENTION_JOB)
            .fetch_one(&engine.db)
            .await?;
    if active == 0 {
        engine.queue.enqueue_now(&NewJob::new(RETENTION_JOB, None, Duration::from_secs(1800))).await?;
    }
    Ok(())
}

pub struct RetentionHandler {
    engine: Engine,
}

impl RetentionHandler {
    pub fn new(engine: Engine) -> Self {
        RetentionHandler { engine }
    }
}

#[async_trait::async_trait]
impl JobHandler for RetentionHandler {
    async fn run(&self, _ctx: JobContext) -> anyhow::Result<()> {
        let report = run(&self.engine).await?;
        tracing::info!(
            images = report.images_removed.len(),
            logs = report.logs_removed,
            workspaces = report.workspaces_removed,
            deliveries = report.deliveries_removed,
            notify_jobs = report.notify_jobs_removed,
            build_cache_records = report.build_cache.as_ref().map_or(0, |c| c.records_deleted),
            build_cache_bytes = report.build_cache.as_ref().map_or(0, |c| c.bytes_reclaimed),
            "retention pass done"
        );
        Ok(())
    }
}

/// One retention pass over every service.
pub async fn run(engine: &Engine) -> anyhow::Result<RetentionReport> {
    let mut report = RetentionReport::default();
    let services: Vec<(i64,)> = sqlx::query_as("SELECT id FROM services").fetch_all(&engine.db).await?;
    // One image can be several services' (the builds of one push with
    // identical inputs share it): what any service keeps, all keep.
    let mut keep = HashSet::new();
    for (service_id,) in &services {
        keep.extend(protected_images(engine, *service_id).await?);
    }
    for (service_id,) in services {
        prune_images(engine, service_id, &keep, &mut report).await?;
    }
    // After the images: cache that only removed images used can go too.
    let budget = engine.settings.retention.build_cache_budget;
    match engine.docker.prune_build_cache(budget).await {
        Ok(pruned) => report.build_cache = Some(pruned),
        Err(e) => tracing::warn!(error = %e, budget, "cannot prune the build cache"),
    }
    prune_files(engine, &mut report).await?;
    Ok(report)
}

/// The images of `service_id` retention must keep.
pub async fn protected_images(engine: &Engine, service_id: i64) -> anyhow::Result<HashSet<String>> {
    let policy = &engine.settings.retention;
    let limit = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let newest: Vec<(String,)> = sqlx::query_as(
        "SELECT image_id FROM builds WHERE service_id = ? AND status = 'succeeded' AND image_id IS NOT NULL \
         AND image_removed_at IS NULL GROUP BY image_id ORDER BY MAX(id) DESC LIMIT ?",
    )
    .bind(service_id)
    .bind(limit(policy.keep_images))
    .fetch_all(&engine.db)
    .await?;
    let mut keep: HashSet<String> = newest.into_iter().map(|(id,)| id).collect();
    // Per service deploying these images (this one and those that take
    // their image from it): in progress and live, then the previous K
    // that served.
    let dependents: Vec<i64> = sqlx::query_scalar("SELECT id FROM services WHERE image_from_id = ?")
        .bind(service_id)
        .fetch_all(&engine.db)
        .await?;
    for deployer in std::iter::once(service_id).chain(dependents) {
        let current: Vec<(String,)> = sqlx::query_as(
            "SELECT image_id FROM deployments WHERE service_id = ? AND status IN ('pending', 'starting', 'live')",
        )
        .bind(deployer)
        .fetch_all(&engine.db)
        .await?;
        let previous: Vec<(String,)> = sqlx::query_as(
            "SELECT image_id FROM deployments WHERE service_id = ? AND status IN ('superseded', 'rolled_back') \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(deployer)
        .bind(limit(policy.keep_deployments))
        .fetch_all(&engine.db)
        .await?;
        keep.extend(current.into_iter().chain(previous).map(|(id,)| id));
    }
    Ok(keep)
}

async fn prune_images(
    engine: &Engine,
    service_id: i64,
    keep: &HashSet<String>,
    report: &mut RetentionReport,
) -> anyhow::Result<()> {
    let candidates: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT image_id FROM builds WHERE service_id = ? AND image_id IS NOT NULL \
         AND image_removed_at IS NULL",
    )
    .bind(service_id)
    .fetch_all(&engine.db)
    .await?;
    for (image_id,) in candidates.into_iter().filter(|(id,)| !keep.contains(id)) {
        match engine.docker.remove_image(&image_id).await? {
            ImageRemoval::Removed | ImageRemoval::Missing => {
                sqlx::query("UPDATE builds SET image_removed_at = ? WHERE service_id = ? AND image_id = ?")
                    .bind(crate::db::now_rfc3339())
                    .bind(service_id)
                    .bind(&image_id)
                    .execute(&engine.db)
                    .await?;
                tracing::info!(service_id, %image_id, "retention removed an image");
                report.images_removed.push(image_id);
            }
            ImageRemoval::InUse => tracing::info!(service_id, %image_id, "image still in use; kept"),
        }
    }
    Ok(())
}

/// Build logs of builds finished before the cutoff, and workspaces (left by
/// a crash) not touched since then.
async fn prune_files(engine: &Engine, report: &mut RetentionReport) -> anyhow::Result<()> {
    let max_age = engine.settings.retention.max_age;
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(max_age)?;
    let old: Vec<(i64,)> = sqlx::query_as("SELECT id FROM builds WHERE finished_at < ?")
        .bind(crate::db::format_time(cutoff))
        .fetch_all(&engine.db)
        .await?;
    let cutoff_text = crate::db::format_time(cutoff);
    // A claimed delivery (a crash between claim and build) stays for an
    // admin to see; forges do not redeliver month-old ids.
    report.deliveries_removed =
        sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < ? AND status <> 'claimed'")
            .bind(&cutoff_text)
            .execute(&engine.db)
            .await?
            .rows_affected();
    report.notify_jobs_removed = sqlx::query(
        "DELETE FROM jobs WHERE kind = ? AND finished_at < ? AND status NOT IN ('queued', 'running')",
    )
    .bind(crate::notify::NOTIFY_JOB)
    .bind(&cutoff_text)
    .execute(&engine.db)
    .await?
    .rows_affected();
    for (build_id,) in old {
        match tokio::fs::remove_file(engine.logs.log_path(build_id)).await {
            Ok(()) => report.logs_removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(build_id, error = %e, "cannot remove a build log"),
        }
    }
    let dir = engine.settings.data_dir.join("workspaces");
    let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
        return Ok(());
    };
    let limit = SystemTime::now() - max_age;
    while let Some(entry) = entries.next_entry().await? {
        let stale = entry.metadata().await.and_then(|m| m.modified()).is_ok_and(|t| t < limit);
        if stale && tokio::fs::remove_dir_all(entry.path()).await.is_ok() {
            report.workspaces_removed += 1;
        }
    }
    Ok(())
}
