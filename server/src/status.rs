//! Use-case: report the system's status (version, database, Docker engine).

use std::sync::Arc;

use app::wire::{DatabaseStatus, DockerStatus, SystemStatus};

use crate::{db::Db, docker::ContainerRuntime};

#[derive(Clone)]
pub struct StatusService {
    db: Db,
    runtime: Arc<dyn ContainerRuntime>,
}

impl StatusService {
    pub fn new(db: Db, runtime: Arc<dyn ContainerRuntime>) -> Self {
        StatusService { db, runtime }
    }

    /// Open to every caller, signed in or not: it is the health page.
    pub async fn system_status(&self) -> anyhow::Result<SystemStatus> {
        let (database, docker) = tokio::join!(self.database(), self.runtime.engine_info());
        let docker = match docker {
            Ok(info) => DockerStatus::Reachable {
                version: info.version,
                api_version: info.api_version,
                platform: info.platform,
            },
            Err(e) => DockerStatus::Unreachable { reason: e.to_string() },
        };
        Ok(SystemStatus {
            version: crate::VERSION.to_string(),
            database: database?,
            docker,
            checked_at: crate::db::now_rfc3339(),
            edge_addr: String::new(),
            public_url: String::new(),
        })
    }

    async fn database(&self) -> anyhow::Result<DatabaseStatus> {
        let engine: String =
            sqlx::query_scalar("SELECT 'SQLite ' || sqlite_version()").fetch_one(&self.db).await?;
        let (migrations_applied, latest_migration): (i64, Option<String>) = sqlx::query_as(
            "SELECT COUNT(*), (SELECT description FROM _sqlx_migrations WHERE success \
             ORDER BY version DESC LIMIT 1) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&self.db)
        .await?;
        let initialised_at: Option<String> =
            sqlx::query_scalar("SELECT created_at FROM instance WHERE id = 1")
                .fetch_optional(&self.db)
                .await?;
        let migrations_known = Some(crate::db::MIGRATOR.iter().count() as i64);
        Ok(DatabaseStatus { engine, migrations_applied, latest_migration, initialised_at, migrations_known })
    }
}
