//! The container runtime port and its Docker Engine implementation (bollard),
//! and image builds ([`build`]).

pub mod app_network;
pub mod build;
pub mod containers;
pub mod labels;
pub mod pipeline;
pub mod registry;
pub mod runtime;

use std::time::Duration;

use bollard::Docker;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    pub version: String,
    pub api_version: String,
    pub platform: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("Docker engine unreachable: {0}")]
    Unreachable(String),
    #[error("Docker engine error: {0}")]
    Engine(String),
}

/// What Slipway needs from a container engine. The bollard implementation is
/// the real one; fakes exist only in unit tests of the logic around it.
#[async_trait::async_trait]
pub trait ContainerRuntime: Send + Sync + 'static {
    async fn engine_info(&self) -> Result<EngineInfo, RuntimeError>;
}

/// The local (or `DOCKER_HOST`) Docker Engine.
#[derive(Clone)]
pub struct DockerEngine {
    docker: Option<Docker>,
    connect_error: Option<String>,
    /// The same engine for the raw calls of builds (BuildKit, build cache);
    /// `Err`: an address that client does not speak, the reason.
    endpoint: Result<build::engine_http::Endpoint, String>,
}

/// Short calls (ping, inspect) must never hang the caller.
const QUICK_CALL: Duration = Duration::from_secs(3);

impl DockerEngine {
    /// Connects lazily: a missing engine is reported by each call, not here.
    pub fn from_env() -> Self {
        let endpoint = build::engine_http::Endpoint::from_env();
        match Docker::connect_with_defaults() {
            Ok(d) => DockerEngine { docker: Some(d), connect_error: None, endpoint },
            Err(e) => DockerEngine { docker: None, connect_error: Some(e.to_string()), endpoint },
        }
    }

    /// Wraps an already configured client (tests point it at other sockets;
    /// builds reach the engine `DOCKER_HOST` names unless
    /// [`with_endpoint`](Self::with_endpoint) says otherwise).
    pub fn with_client(docker: Docker) -> Self {
        DockerEngine {
            docker: Some(docker),
            connect_error: None,
            endpoint: build::engine_http::Endpoint::from_env(),
        }
    }

    /// Where builds' raw calls go (the client's own socket).
    pub fn with_endpoint(mut self, endpoint: build::engine_http::Endpoint) -> Self {
        self.endpoint = Ok(endpoint);
        self
    }

    /// Where builds' raw calls go.
    pub fn endpoint(&self) -> Result<build::engine_http::Endpoint, String> {
        self.endpoint.clone()
    }

    pub fn client(&self) -> Result<&Docker, RuntimeError> {
        self.docker
            .as_ref()
            .ok_or_else(|| RuntimeError::Unreachable(self.connect_error.clone().unwrap_or_default()))
    }
}

#[async_trait::async_trait]
impl ContainerRuntime for DockerEngine {
    async fn engine_info(&self) -> Result<EngineInfo, RuntimeError> {
        let docker = self.client()?;
        let v = tokio::time::timeout(QUICK_CALL, docker.version())
            .await
            .map_err(|_| RuntimeError::Unreachable(format!("no answer within {QUICK_CALL:?}")))?
            .map_err(|e| RuntimeError::Unreachable(e.to_string()))?;
        Ok(EngineInfo {
            version: v.version.unwrap_or_else(|| "unknown".into()),
            api_version: v.api_version.unwrap_or_else(|| "unknown".into()),
            platform: format!(
                "{}/{}",
                v.os.unwrap_or_else(|| "?".into()),
                v.arch.unwrap_or_else(|| "?".into())
            ),
        })
    }
}
