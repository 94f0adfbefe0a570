//! The service page's read model: the service, its build duration chart and
//! the first page of its build and deployment histories as slim rows, in two
//! statements.
//!
//! The histories are read as JSON built by SQLite (`json_group_array` of
//! `json_object`, ordered inside the aggregate): one row and one value per
//! list instead of a row per item and a value per column. sqlx copies every
//! column value and hands every row across threads, which was half of a
//! page render's CPU. The rows are the wire types themselves, so nothing is
//! converted twice. Postgres has the same shape (`json_agg`,
//! `json_build_object`).

use std::sync::LazyLock;

use app::wire::{BuildPoint, BuildRow, Caller, DeploymentRow, Role, CHART_BUILDS, RECENT_DELIVERIES};
use serde::de::DeserializeOwned;

use crate::{
    access::require,
    catalog::ServiceView,
    engine::{Engine, EngineError},
    history::{Page, PageRequest, DEFAULT_PAGE},
    service_env,
    webhooks::deliveries::{self, Delivery},
};

/// What the service page shows.
pub struct ServicePageData {
    pub service: ServiceView,
    pub chart: Vec<BuildPoint>,
    pub builds: Page<BuildRow>,
    pub deployments: Page<DeploymentRow>,
    /// The newest webhook deliveries, for admins only.
    pub deliveries: Option<Page<Delivery>>,
}

/// Run time in ms of a row with `started_at` and `finished_at`, in SQL.
const DURATION: &str = "CAST(ROUND((julianday(finished_at) - julianday(started_at)) * 86400000) AS INTEGER)";

/// The newest builds before `?2` of service `?1`, at most `?3`, as a JSON
/// array; each with its count of steps and of succeeded steps (service
/// containers are not steps).
fn builds_sql() -> String {
    format!(
        "SELECT json_group_array(json_object('id', id, 'number', number, 'status', status, \
         'git_ref', git_ref, 'commit_sha', commit_sha, 'trigger', trigger, 'actor', actor, \
         'duration_ms', {DURATION}, 'created_at', created_at, \
         'steps_total', steps_total, 'steps_passed', steps_passed) ORDER BY id DESC) \
         FROM (SELECT b.id, b.number, b.status, b.git_ref, b.commit_sha, b.trigger, b.actor, b.started_at, \
         b.finished_at, b.created_at, \
         (SELECT COUNT(*) FROM build_steps s WHERE s.build_id = b.id AND s.kind <> 'service') AS steps_total, \
         (SELECT COUNT(*) FROM build_steps s WHERE s.build_id = b.id AND s.kind <> 'service' \
          AND s.status = 'success') AS steps_passed \
         FROM builds b WHERE b.service_id = ?1 AND b.id < ?2 ORDER BY b.id DESC LIMIT ?3)"
    )
}

/// The newest deployments before `?2` of service `?1`, at most `?3`, with
/// their builds' number and commit, as a JSON array.
fn deployments_sql() -> &'static str {
    "SELECT json_group_array(json_object('id', d.id, 'status', d.status, 'build_id', d.build_id, \
         'build_number', b.number, 'commit_sha', b.commit_sha, 'image_id', d.image_id, \
         'reason', d.reason, 'actor', d.actor, 'rollback_of', d.rollback_of, 'error', d.error, \
         'log_tail', d.log_tail, 'created_at', d.created_at, \
         'duration_ms', CAST(ROUND((julianday(d.finished_at) - julianday(d.started_at)) * 86400000) AS INTEGER)) \
         ORDER BY d.id DESC) \
         FROM (SELECT id, status, build_id, image_id, reason, actor, rollback_of, error, log_tail, created_at, \
         started_at, finished_at FROM deployments WHERE service_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3) d \
     LEFT JOIN builds b ON b.id = d.build_id"
}

/// The newest `?4` builds of service `?1` as chart points, as a JSON array.
fn chart_sql() -> String {
    format!(
        "SELECT json_group_array(json_object('id', id, 'number', number, 'status', status, \
         'duration_ms', {DURATION}, 'created_at', created_at) ORDER BY id DESC) \
         FROM (SELECT id, number, status, started_at, finished_at, created_at \
         FROM builds WHERE service_id = ?1 ORDER BY id DESC LIMIT ?4)"
    )
}

/// The service page's lists in one statement (built once; sqlx keeps the
/// prepared statement per connection).
static PAGE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT ({}), ({}), ({}), ({}), ({})",
        service_env::LIST_JSON_SQL,
        chart_sql(),
        builds_sql(),
        deployments_sql(),
        deliveries::list_json_sql("?5"),
    )
});

fn parse<T: DeserializeOwned>(json: &str) -> Result<Vec<T>, EngineError> {
    serde_json::from_str(json).map_err(|e| EngineError::Internal(anyhow::anyhow!("history JSON: {e}")))
}

impl Engine {
    /// The service page in one use-case (viewer): the service and its
    /// project, then one statement for everything listed: the masked env,
    /// the chart, both histories' first pages and, for an admin, the recent
    /// webhook deliveries.
    pub async fn service_page(
        &self,
        caller: &Caller,
        service_id: i64,
    ) -> Result<ServicePageData, EngineError> {
        require(caller, Role::Viewer)?;
        let (project, service) = self.owner_of(service_id).await?;
        let limit = DEFAULT_PAGE;
        let admin = caller.may(Role::Admin);
        let (env, chart, builds, deployments, recent): (String, String, String, String, String) =
            sqlx::query_as(PAGE_SQL.as_str())
                .bind(service_id)
                .bind(i64::MAX)
                .bind(i64::from(limit) + 1)
                .bind(i64::from(CHART_BUILDS))
                .bind(if admin { i64::from(RECENT_DELIVERIES) + 1 } else { 0 })
                .fetch_one(&self.db)
                .await?;
        let deliveries = match admin {
            true => Some(Page::from_rows(deliveries::parse_list(&recent)?, RECENT_DELIVERIES, |d| d.id)),
            false => None,
        };
        Ok(ServicePageData {
            service: ServiceView { project, service, env: service_env::parse_list(&env)? },
            chart: parse(&chart)?,
            builds: Page::from_rows(parse(&builds)?, limit, |b: &BuildRow| b.id),
            deployments: Page::from_rows(parse(&deployments)?, limit, |d: &DeploymentRow| d.id),
            deliveries,
        })
    }

    /// A page of the build table (viewer).
    pub async fn build_rows(
        &self,
        caller: &Caller,
        service_id: i64,
        page: PageRequest,
    ) -> Result<Page<BuildRow>, EngineError> {
        require(caller, Role::Viewer)?;
        self.rows(&builds_sql(), service_id, page, |b: &BuildRow| b.id).await
    }

    /// A page of the deployment table (viewer).
    pub async fn deployment_rows(
        &self,
        caller: &Caller,
        service_id: i64,
        page: PageRequest,
    ) -> Result<Page<DeploymentRow>, EngineError> {
        require(caller, Role::Viewer)?;
        self.rows(deployments_sql(), service_id, page, |d: &DeploymentRow| d.id).await
    }

    async fn rows<T: DeserializeOwned>(
        &self,
        sql: &str,
        service_id: i64,
        page: PageRequest,
        id: impl Fn(&T) -> i64,
    ) -> Result<Page<T>, EngineError> {
        let limit = page.limit();
        let json: String = sqlx::query_scalar(sql)
            .bind(service_id)
            .bind(page.before())
            .bind(i64::from(limit) + 1)
            .fetch_one(&self.db)
            .await?;
        Ok(Page::from_rows(parse(&json)?, limit, id))
    }
}
