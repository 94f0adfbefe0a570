//! The CLI client commands (`slipway build`, `deploy`, `rollback`, `logs`,
//! …): thin callers of the REST API with a token, for scripts and CI.
//!
//! `SLIPWAY_URL` (default `http://127.0.0.1:3000`) and `SLIPWAY_TOKEN` (an
//! API token) configure them. The token is sent only as a bearer header and
//! never printed.

mod commands;
mod report;
mod runtime_logs;
mod sse;

pub use commands::{run, ClientCommand, Remote};

use anyhow::{bail, Context};
use app::wire::ProjectView;
use reqwest::{Method, StatusCode};
use serde::{de::DeserializeOwned, Serialize};

/// An API client bound to one server and token.
pub struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    token: String,
}

/// A refusal from the API, with the server's code and message.
#[derive(Debug, thiserror::Error)]
#[error("{message} ({code}, HTTP {status})")]
pub struct ApiRefusal {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Client {
    /// Checks the URL (http or https, with a host) and the token's shape.
    pub fn new(url: &str, token: &str) -> anyhow::Result<Client> {
        let base = reqwest::Url::parse(url).context("SLIPWAY_URL is not a URL")?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            bail!("SLIPWAY_URL must be an http:// or https:// URL with a host");
        }
        let token = token.trim();
        if token.is_empty() {
            bail!("SLIPWAY_TOKEN is empty: create a token in the dashboard (Account → API tokens)");
        }
        if token.chars().any(|c| c.is_control() || c == ' ') {
            bail!("SLIPWAY_TOKEN contains spaces or control characters");
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("slipway-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client { http, base, token: token.to_string() })
    }

    fn url(&self, path: &str) -> anyhow::Result<reqwest::Url> {
        self.base.join(path).with_context(|| format!("bad API path {path}"))
    }

    /// A request with the bearer token.
    pub fn request(&self, method: Method, path: &str) -> anyhow::Result<reqwest::RequestBuilder> {
        Ok(self.http.request(method, self.url(path)?).bearer_auth(&self.token))
    }

    /// Sends `req` and decodes a JSON answer, or the API's error.
    pub async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let response = req.send().await.context("cannot reach the Slipway server (SLIPWAY_URL)")?;
        let status = response.status();
        let body = response.bytes().await.context("the server's answer was cut off")?;
        if !status.is_success() {
            return Err(refusal(status, &body).into());
        }
        serde_json::from_slice(&body).context("the server's answer is not the expected JSON")
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.request(Method::GET, path)?).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        self.send(self.request(Method::POST, path)?.json(body)).await
    }

    /// The project id for `spec`: a number or a project name.
    pub async fn project_id(&self, spec: &str) -> anyhow::Result<i64> {
        if let Ok(id) = spec.parse::<i64>() {
            return Ok(id);
        }
        let projects: Vec<ProjectView> = self.get("api/v1/projects").await?;
        projects
            .iter()
            .find(|p| p.name == spec)
            .map(|p| p.id)
            .with_context(|| format!("no project {spec:?} (use an id or a project name)"))
    }

    /// The service id for `spec`: a number, `project/service`, or a service
    /// name that exists in only one project.
    pub async fn service_id(&self, spec: &str) -> anyhow::Result<i64> {
        if let Ok(id) = spec.parse::<i64>() {
            return Ok(id);
        }
        let projects: Vec<ProjectView> = self.get("api/v1/projects").await?;
        let (project, name) = match spec.split_once('/') {
            Some((p, s)) => (Some(p), s),
            None => (None, spec),
        };
        let found: Vec<i64> = projects
            .iter()
            .filter(|p| project.is_none_or(|want| p.name == want))
            .flat_map(|p| p.services.iter())
            .filter(|s| s.name == name)
            .map(|s| s.id)
            .collect();
        match found.as_slice() {
            [id] => Ok(*id),
            [] => bail!("no service {spec:?} (use an id, project/service or a service name)"),
            _ => bail!("{name:?} exists in several projects: say project/{name}"),
        }
    }
}

fn refusal(status: StatusCode, body: &[u8]) -> ApiRefusal {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| parsed.as_ref().and_then(|v| v["error"][name].as_str()).map(str::to_string);
    ApiRefusal {
        status: status.as_u16(),
        code: field("code").unwrap_or_else(|| "http".into()),
        message: field("message").unwrap_or_else(|| format!("the server answered {status}")),
    }
}
