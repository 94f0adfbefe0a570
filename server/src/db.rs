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
    migrate(&pool).await.context("database migration failed")?;
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

/// Applies the pending migrations in order, as `MIGRATOR.run` does (its
/// checks included: a changed or unknown applied migration, or a dirty one,
/// is an error), except that a migration whose file starts with
/// `-- no-transaction` runs with foreign keys off. sqlx 0.8 runs every
/// SQLite migration in a transaction, where `PRAGMA foreign_keys` does
/// nothing; a table rebuild (SQLite's only way to change a CHECK
/// constraint) needs them off, or dropping the old table cascades into its
/// children. Such a migration still runs in one transaction of its own,
/// with its bookkeeping row and a `PRAGMA foreign_key_check` that must come
/// back empty.
pub async fn migrate(pool: &Db) -> anyhow::Result<()> {
    use sqlx::migrate::{Migrate, MigrateError};
    let mut conn = pool.acquire().await?;
    conn.ensure_migrations_table().await?;
    if let Some(version) = conn.dirty_version().await? {
        return Err(MigrateError::Dirty(version).into());
    }
    let applied = conn.list_applied_migrations().await?;
    for a in &applied {
        match MIGRATOR.iter().find(|m| m.version == a.version) {
            None => return Err(MigrateError::VersionMissing(a.version).into()),
            Some(m) if m.checksum != a.checksum => {
                return Err(MigrateError::VersionMismatch(a.version).into())
            }
            Some(_) => {}
        }
    }
    for m in MIGRATOR.iter().filter(|m| !m.migration_type.is_down_migration()) {
        if applied.iter().any(|a| a.version == m.version) {
            continue;
        }
        if m.no_tx {
            apply_with_foreign_keys_off(&mut conn, m).await?;
        } else {
            conn.apply(m).await?;
        }
        tracing::info!(version = m.version, description = %m.description, "migration applied");
    }
    Ok(())
}

async fn apply_with_foreign_keys_off(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    m: &sqlx::migrate::Migration,
) -> anyhow::Result<()> {
    use sqlx::Connection;
    sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut **conn).await?;
    let applied = async {
        let started = std::time::Instant::now();
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::raw_sql(&m.sql).execute(&mut *tx).await?;
        let broken = sqlx::query("PRAGMA foreign_key_check").fetch_all(&mut *tx).await?;
        if !broken.is_empty() {
            anyhow::bail!("migration {} leaves {} rows with a broken foreign key", m.version, broken.len());
        }
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?, ?, TRUE, ?, ?)",
        )
        .bind(m.version)
        .bind(&*m.description)
        .bind(&*m.checksum)
        .bind(i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        anyhow::Ok(())
    }
    .await;
    // Back on whatever happened: the connection returns to the pool.
    sqlx::query("PRAGMA foreign_keys = ON").execute(&mut **conn).await?;
    applied.with_context(|| format!("migration {} ({}) failed", m.version, m.description))
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
