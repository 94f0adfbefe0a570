//! The real migrations against a real SQLite file in a temporary data dir.

use server::testkit::TestDataDir;

#[tokio::test]
async fn migrations_apply_to_a_fresh_data_dir_and_are_idempotent() -> anyhow::Result<()> {
    let dir = TestDataDir::new()?;
    let db = dir.open_db().await?;
    assert!(dir.path().join("slipway.db").is_file(), "the SQLite file is created");
    let expected = server::db::MIGRATOR.iter().count() as i64;
    let applied: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(&db).await?;
    assert_eq!(applied, expected);
    db.close().await;

    // Opening again (a restart) applies nothing new and keeps the instance row.
    let db = dir.open_db().await?;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM instance").fetch_one(&db).await?;
    assert_eq!(rows, 1);
    let again: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(&db).await?;
    assert_eq!(again, expected);
    Ok(())
}

/// The `builds` rebuild (migration 13, run with foreign keys off) keeps
/// every row, every child row pointing at it, and the id sequence, and
/// leaves foreign keys enforced afterwards.
#[tokio::test]
async fn the_builds_rebuild_keeps_rows_children_and_ids() -> anyhow::Result<()> {
    use sqlx::sqlite::SqliteConnectOptions;
    let dir = TestDataDir::new()?;
    // The migrations before the rebuild, from a copy of their files.
    let before = dir.path().join("migrations-before");
    std::fs::create_dir_all(&before)?;
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    for entry in std::fs::read_dir(&source)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.as_str() < "20261206000013" {
            std::fs::copy(&path, before.join(&name))?;
        }
    }
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("slipway.db"))
        .create_if_missing(true)
        .foreign_keys(true);
    let old = sqlx::SqlitePool::connect_with(options).await?;
    sqlx::migrate::Migrator::new(before.as_path()).await?.run(&old).await?;
    for sql in [
        "INSERT INTO projects (name, created_at) VALUES ('p', 'x')",
        "INSERT INTO services (project_id, name, git_url, branch, port, health_path, created_at, updated_at) \
         VALUES (1, 's', 'file:///x', 'main', 80, '/', 'x', 'x')",
        "INSERT INTO builds (service_id, number, git_ref, trigger, created_at, status) VALUES \
         (1, 1, 'main', 'manual', 'x', 'succeeded'), (1, 2, 'main', 'manual', 'x', 'failed'), \
         (1, 3, 'main', 'manual', 'x', 'queued')",
        "DELETE FROM builds WHERE number = 3",
        "INSERT INTO build_steps (build_id, name, kind) VALUES (2, 'lint', 'commands')",
        "INSERT INTO deployments (service_id, build_id, image_id, config, created_at) \
         VALUES (1, 1, 'sha256:abc', '{}', 'x')",
    ] {
        sqlx::query(sql).execute(&old).await?;
    }
    old.close().await;

    let db = dir.open_db().await?;
    let builds: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, status FROM builds ORDER BY id").fetch_all(&db).await?;
    assert_eq!(builds, vec![(1, "succeeded".to_string()), (2, "failed".to_string())]);
    let step: i64 = sqlx::query_scalar("SELECT build_id FROM build_steps").fetch_one(&db).await?;
    assert_eq!(step, 2, "the step still belongs to its build");
    let deployed: Option<i64> = sqlx::query_scalar("SELECT build_id FROM deployments").fetch_one(&db).await?;
    assert_eq!(deployed, Some(1), "the deployment still names its build");
    // `skipped` is a build status now, and ids are not reused.
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO builds (service_id, number, git_ref, trigger, created_at, status) \
         VALUES (1, 4, 'main', 'webhook', 'x', 'skipped') RETURNING id",
    )
    .fetch_one(&db)
    .await?;
    assert_eq!(id, 4, "the id sequence went on from the deleted build 3");
    let supersede: bool = sqlx::query_scalar("SELECT supersede_runs FROM services").fetch_one(&db).await?;
    assert!(supersede, "supersede_runs defaults to on");
    // Foreign keys are enforced again: a delete cascades, a bad reference fails.
    sqlx::query("DELETE FROM builds WHERE id = 2").execute(&db).await?;
    let steps: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM build_steps").fetch_one(&db).await?;
    assert_eq!(steps, 0, "deleting a build cascades to its steps");
    let orphan = sqlx::query("INSERT INTO build_steps (build_id, name, kind) VALUES (99, 'x', 'commands')")
        .execute(&db)
        .await;
    assert!(orphan.is_err(), "a step of no build is refused");
    Ok(())
}
