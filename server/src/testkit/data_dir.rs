//! A temporary data dir with a real SQLite file and the real migrations.

use std::path::Path;

use tempfile::TempDir;

use crate::db::Db;

pub struct TestDataDir {
    dir: TempDir,
}

impl TestDataDir {
    pub fn new() -> anyhow::Result<Self> {
        Ok(TestDataDir { dir: tempfile::Builder::new().prefix("slipway-test-").tempdir()? })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Opens `<dir>/slipway.db`, applying every migration.
    pub async fn open_db(&self) -> anyhow::Result<Db> {
        crate::db::open(self.path()).await
    }
}
