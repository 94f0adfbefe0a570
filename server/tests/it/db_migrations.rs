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
