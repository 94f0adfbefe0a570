//! An installation for tests of the real `slipway serve` process: a data
//! dir, an engine opened on the same database (to seed services and queue
//! work directly), a site dir, and Docker cleanup by the installation's
//! `instance.uid`. The test starts, kills (SIGKILL) and restarts the process.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bollard::Docker;

use super::{docker::ensure_base_image, instance::InstanceCleanup, ServerProcess, TestDataDir};
use crate::{
    db::Db,
    deploys::switch::RouteTable,
    docker::{labels, DockerEngine},
    engine::{Engine, EngineSettings},
};

/// Fields drop in order: the installation's Docker objects are removed
/// before its data dir (a test holds its `ServerProcess` separately and
/// drops it first).
pub struct Installation {
    pub engine: Engine,
    pub db: Db,
    /// `instance.uid`, on every Docker object the server makes.
    pub uid: String,
    _cleanup: InstanceCleanup,
    site: TestDataDir,
    pub data: TestDataDir,
    bin: PathBuf,
}

impl Installation {
    /// `bin` is the server binary (`env!("CARGO_BIN_EXE_slipway")` in the
    /// test). Builds the Docker base image when missing.
    pub async fn open(bin: impl Into<PathBuf>) -> anyhow::Result<Installation> {
        let docker = Docker::connect_with_defaults().context("cannot configure the Docker client")?;
        docker.ping().await.context("the Docker engine does not answer")?;
        ensure_base_image(&docker).await?;
        let data = TestDataDir::new()?;
        let db = data.open_db().await?;
        let uid = crate::db::instance_uid(&db).await?;
        let cleanup = InstanceCleanup::new(docker, uid.clone());
        let engine = Engine::open(
            db.clone(),
            DockerEngine::from_env(),
            Arc::new(RouteTable::new()),
            EngineSettings { allow_local_repos: true, ..EngineSettings::new(data.path()) },
            None,
        )
        .await?;
        Ok(Installation {
            engine,
            db,
            uid,
            data,
            site: TestDataDir::new()?,
            bin: bin.into(),
            _cleanup: cleanup,
        })
    }

    pub fn data_path(&self) -> &Path {
        self.data.path()
    }

    /// Starts `slipway serve` on the data dir; returns once it serves (so
    /// its startup recovery is done).
    pub async fn start_server(&self) -> anyhow::Result<ServerProcess> {
        self.start_server_with(&[]).await
    }

    /// [`start_server`](Self::start_server) with more environment variables.
    pub async fn start_server_with(&self, env: &[(&'static str, String)]) -> anyhow::Result<ServerProcess> {
        let (bin, data, site) =
            (self.bin.clone(), self.data.path().to_path_buf(), self.site.path().to_path_buf());
        let env = env.to_vec();
        tokio::task::spawn_blocking(move || ServerProcess::start_with(&bin, &data, &site, &env)).await?
    }

    /// Ids of this installation's containers (running or not) that also
    /// carry the `extra` labels.
    pub async fn containers(&self, extra: &[(&str, &str)]) -> anyhow::Result<Vec<String>> {
        let mut wanted = vec![(labels::INSTANCE, self.uid.as_str())];
        wanted.extend_from_slice(extra);
        Ok(self.engine.docker.containers_labelled(&wanted).await?.into_iter().map(|c| c.id).collect())
    }
}
