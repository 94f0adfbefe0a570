//! The registry's own HTTP API (distribution v2), for what the engine
//! cannot do: read a pushed manifest's digest, size and media type, and put
//! a manifest list (one tag, several platforms).
//!
//! Authentication follows the registry's challenge: `Basic` (e.g. the
//! `docker-registry` with htpasswd) sends the credentials on the retry;
//! `Bearer` (GHCR, Docker Hub, GitLab) fetches a token for the repository
//! from the realm first. Loopback registries are spoken to over plain HTTP,
//! as the engine does (127.0.0.0/8 is an insecure registry by default).

use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use reqwest::{header, Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::docker::registry::Credentials;

const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.manifest.v1+json";
pub const LIST_TYPE: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const TIMEOUT: Duration = Duration::from_secs(30);

/// One platform's manifest, as a manifest list refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
    pub digest: String,
    pub platform: Platform,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/arm/v7` → os `linux`, architecture `arm`, variant `v7`.
    pub fn parse(platform: &str) -> Option<Platform> {
        let mut parts = platform.split('/');
        let os = parts.next()?.to_string();
        let architecture = parts.next()?.to_string();
        let variant = parts.next().map(str::to_string);
        Some(Platform { architecture, os, variant })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ManifestList {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub manifests: Vec<Entry>,
}

/// A client for one repository of one registry.
pub struct Repository {
    http: reqwest::Client,
    base: String,
    name: String,
    credentials: Credentials,
    /// `Authorization` value once a challenge was answered.
    auth: Option<String>,
}

fn is_loopback(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    name == "localhost" || name.starts_with("127.") || name == "[::1]"
}

impl Repository {
    /// `repository` is `<host>/<path>`, the host the credentials' server.
    pub fn new(repository: &str, credentials: &Credentials) -> anyhow::Result<Repository> {
        let (host, name) = repository.split_once('/').context("a repository is host/path")?;
        let scheme = if is_loopback(host) { "http" } else { "https" };
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()?;
        Ok(Repository {
            http,
            base: format!("{scheme}://{host}/v2/{name}"),
            name: name.to_string(),
            credentials: credentials.clone(),
            auth: None,
        })
    }

    fn basic(&self) -> Option<String> {
        let user = self.credentials.username.as_deref()?;
        let password = self.credentials.password.as_deref().unwrap_or("");
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        ))
    }

    /// Answers a `WWW-Authenticate` challenge: the `Authorization` to retry with.
    async fn answer(&self, challenge: &str) -> anyhow::Result<String> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return self.basic().context("the registry asks for credentials and the project has none");
        }
        anyhow::ensure!(scheme.eq_ignore_ascii_case("bearer"), "unsupported registry auth scheme {scheme}");
        let param = |key: &str| {
            params.split(',').find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                (k == key).then(|| v.trim_matches('"').to_string())
            })
        };
        let realm = param("realm").context("the registry's challenge has no realm")?;
        let mut request = self.http.get(&realm).query(&[
            ("service", param("service").unwrap_or_default()),
            ("scope", format!("repository:{}:pull,push", self.name)),
        ]);
        if let Some(basic) = self.basic() {
            request = request.header(header::AUTHORIZATION, basic);
        }
        #[derive(Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let response = request.send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "the registry's token service answered {}",
            response.status()
        );
        let token: Token = response.json().await?;
        let token = token.token.or(token.access_token).context("the token service answered no token")?;
        Ok(format!("Bearer {token}"))
    }

    /// Sends a request, answering one auth challenge.
    async fn send(
        &mut self,
        method: Method,
        url: &str,
        headers: &[(header::HeaderName, &str)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<reqwest::Response> {
        for _ in 0..2 {
            let mut request = self.http.request(method.clone(), url);
            for (name, value) in headers {
                request = request.header(name, *value);
            }
            if let Some(auth) = &self.auth {
                request = request.header(header::AUTHORIZATION, auth);
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let response = request.send().await?;
            if response.status() != StatusCode::UNAUTHORIZED || self.auth.is_some() {
                return Ok(response);
            }
            let challenge = response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .context("the registry refused without a challenge")?
                .to_string();
            self.auth = Some(self.answer(&challenge).await?);
        }
        anyhow::bail!("the registry refused the credentials")
    }

    /// The manifest a tag (or digest) names: its entry for a list.
    pub async fn entry(&mut self, reference: &str, platform: Platform) -> anyhow::Result<Entry> {
        let url = format!("{}/manifests/{reference}", self.base);
        let response = self.send(Method::GET, &url, &[(header::ACCEPT, MANIFEST_TYPES)], None).await?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "the registry has no manifest {reference} ({status})");
        let media_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
            .context("the manifest has no content type")?;
        let body = response.bytes().await?;
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body)));
        Ok(Entry { media_type, size: body.len() as u64, digest, platform })
    }

    /// Puts a manifest list under `tag`; returns its digest.
    pub async fn put_list(&mut self, tag: &str, entries: &[Entry]) -> anyhow::Result<String> {
        let list =
            ManifestList { schema_version: 2, media_type: LIST_TYPE.into(), manifests: entries.to_vec() };
        let body = serde_json::to_vec(&list)?;
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body)));
        let url = format!("{}/manifests/{tag}", self.base);
        let response = self.send(Method::PUT, &url, &[(header::CONTENT_TYPE, LIST_TYPE)], Some(body)).await?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            anyhow::bail!("the registry refused the manifest list {tag} ({status}): {}", text.trim());
        }
        Ok(digest)
    }

    /// A manifest list as stored (tests and `slipway` diagnostics).
    pub async fn list(&mut self, reference: &str) -> anyhow::Result<ManifestList> {
        let url = format!("{}/manifests/{reference}", self.base);
        let response = self.send(Method::GET, &url, &[(header::ACCEPT, LIST_TYPE)], None).await?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "the registry has no manifest list {reference} ({status})");
        Ok(response.json().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_split_into_os_architecture_and_variant() {
        let p = Platform::parse("linux/arm/v7").expect("platform");
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("linux", "arm", Some("v7"))
        );
        assert_eq!(Platform::parse("linux/arm64").and_then(|p| p.variant), None);
        assert!(is_loopback("127.0.0.1:5000") && is_loopback("localhost:5000") && !is_loopback("ghcr.io"));
    }
}
