//! Pushing and pulling images through the engine (`/images/{name}/push`,
//! `/images/create`), with a registry's credentials in the engine's
//! `X-Registry-Auth` header: never on a command line, never in a log.

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{CreateImageOptionsBuilder, PushImageOptionsBuilder};
use futures::StreamExt;

use super::containers::{engine, status_code};
use super::{DockerEngine, RuntimeError};

/// A registry's credentials, opened, for one call to the engine.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `host[:port]`.
    pub server: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Credentials {
    fn for_engine(&self) -> Option<DockerCredentials> {
        self.username.as_ref()?;
        Some(DockerCredentials {
            username: self.username.clone(),
            password: self.password.clone(),
            serveraddress: Some(self.server.clone()),
            ..Default::default()
        })
    }
}

/// Why a push or pull did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The registry refused (credentials, permissions, a missing manifest):
    /// the registry's own words.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// What one push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest digest the registry answered (`sha256:…`).
    pub digest: Option<String>,
    /// Layers uploaded, and layers the registry already had.
    pub uploaded: u32,
    pub existing: u32,
}

/// `<tag>: digest: sha256:… size: N`, the engine's last status of a push.
fn digest_of_status(status: &str) -> Option<String> {
    let rest = status.split_once("digest: ")?.1;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

impl DockerEngine {
    /// Pushes `repository:tag` (already tagged locally).
    pub async fn push_image(
        &self,
        repository: &str,
        tag: &str,
        credentials: &Credentials,
    ) -> Result<Pushed, TransferError> {
        let docker = self.client()?;
        let options = PushImageOptionsBuilder::new().tag(tag).build();
        let mut stream = docker.push_image(repository, Some(options), credentials.for_engine());
        let mut pushed = Pushed::default();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(e) => return Err(refusal(e)),
            };
            if let Some(detail) = info.error_detail {
                return Err(TransferError::Refused(detail.message.unwrap_or_else(|| "push failed".into())));
            }
            match info.status.as_deref() {
                Some("Pushed") => pushed.uploaded += 1,
                Some("Layer already exists") => pushed.existing += 1,
                Some(s) => {
                    if let Some(d) = digest_of_status(s) {
                        pushed.digest = Some(d);
                    }
                }
                None => {}
            }
        }
        Ok(pushed)
    }

    /// Pulls `reference` (`repository@sha256:…` or `repository:tag`);
    /// returns the image id the engine now holds for it.
    pub async fn pull_image(
        &self,
        reference: &str,
        credentials: &Credentials,
    ) -> Result<String, TransferError> {
        let docker = self.client()?;
        let options = CreateImageOptionsBuilder::new().from_image(reference).build();
        let mut stream = docker.create_image(Some(options), None, credentials.for_engine());
        while let Some(item) = stream.next().await {
            let info = item.map_err(refusal)?;
            if let Some(detail) = info.error_detail {
                return Err(TransferError::Refused(detail.message.unwrap_or_else(|| "pull failed".into())));
            }
        }
        let inspected = docker.inspect_image(reference).await.map_err(engine)?;
        inspected.id.ok_or_else(|| TransferError::Refused(format!("the engine has no id for {reference}")))
    }

    /// Adds `repository:tag` to a local image.
    pub async fn tag_image(&self, image: &str, repository: &str, tag: &str) -> Result<(), RuntimeError> {
        let options =
            bollard::query_parameters::TagImageOptionsBuilder::new().repo(repository).tag(tag).build();
        self.client()?.tag_image(image, Some(options)).await.map_err(engine)
    }

    /// Removes a tag (never the image while other tags or containers use it).
    pub async fn untag_image(&self, reference: &str) -> Result<(), RuntimeError> {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::new().noprune(true).build();
        match self.client()?.remove_image(reference, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(engine(e)),
        }
    }
}

/// An engine answer as a refusal with the registry's words (an engine
/// error body carries them), or an unreachable engine.
fn refusal(e: bollard::errors::Error) -> TransferError {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => TransferError::Refused(message),
        bollard::errors::Error::DockerStreamError { error } => TransferError::Refused(error),
        other => TransferError::Runtime(engine(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_comes_from_the_last_status_line() {
        assert_eq!(
            digest_of_status("build-3: digest: sha256:0123abcd size: 527").as_deref(),
            Some("sha256:0123abcd")
        );
        assert_eq!(digest_of_status("Preparing"), None);
    }

    #[test]
    fn credentials_never_show_the_password() {
        let c = Credentials {
            server: "r:5000".into(),
            username: Some("u".into()),
            password: Some("hunter2".into()),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let anonymous = Credentials { server: "r:5000".into(), username: None, password: None };
        assert!(anonymous.for_engine().is_none());
    }
}
