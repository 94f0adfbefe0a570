//! The SQLite database: opening, migrations, and small shared queries.

use std::{path::Path, str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    SqlitePool,
};

pub type Db = SqlitePool;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens (creating if needed) `<data_dir>/slipway.db` and applies migrations.
pub async fn open(data_dir: &Path) -> anyhow::Result<Db> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let path = data_dir.join("slipway.db");
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        // The pool hands out connections of its own process; a ping per
        // acquire was a round trip to the SQLite worker thread before every
        // query (about 5 % of a page render's CPU).
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open database {}", path.display()))?;
    MIGRATOR.run(&pool).await.context("database migration failed")?;
    sqlx::query("INSERT OR IGNORE INTO instance (id, created_at, first_version) VALUES (1, ?, ?)")
        .bind(now_rfc3339())
        .bind(crate::VERSION)
        .execute(&pool)
        .await
        .context("cannot record the instance row")?;
    let uid = format!("{:032x}", rand::random::<u128>());
    sqlx::query("UPDATE instance SET uid = ? WHERE id = 1 AND uid IS NULL")
        .bind(uid)
        .execute(&pool)
        .await
        .context("cannot record the instance id")?;
    tracing::info!(path = %path.display(), "database ready");
    Ok(pool)
}

/// Current time as RFC 3339 UTC with milliseconds, the format stored everywhere.
pub fn now_rfc3339() -> String {
    format_time(chrono::Utc::now())
}

/// Formats a time as stored: RFC 3339 UTC with milliseconds, so string order
/// is time order.
pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// This installation's id (labels on its containers and images).
pub async fn instance_uid(db: &Db) -> anyhow::Result<String> {
    sqlx::query_scalar("SELECT uid FROM instance WHERE id = 1")
        .fetch_one(db)
        .await
        .context("cannot read the instance id")
}
