//! What a build pushes and what a deploy pulls.
//!
//! After a successful build the image gets every local tag's name under the
//! project's registry repository (`<host>/<image>/<service>:build-<n>`,
//! `:sha-<short>`, `:<branch>-latest`) and each is pushed; the build records
//! `<repository>@<digest>`. A deploy whose image the engine lacks (another
//! engine, or retention removed it) pulls that reference and checks that the
//! engine now holds exactly the recorded image id.

use anyhow::Context;

use super::{
    manifest::{Platform, Repository},
    settings::{self, Registry},
};
use crate::{
    builds::images::{arch_suffix, Images},
    docker::{
        registry::{Credentials, TransferError},
        DockerEngine,
    },
    engine::Engine,
    logs::{LogStream, LogWriter},
};

/// The tag part of a local image reference (`repo:tag` → `tag`).
fn tag_of(reference: &str) -> Option<&str> {
    let slash = reference.rfind('/').unwrap_or(0);
    reference[slash..].rsplit_once(':').map(|(_, tag)| tag)
}

/// A push the registry refused: the build fails with this message.
#[derive(Debug, thiserror::Error)]
#[error("push to {repository} refused: {reason}")]
pub struct PushRefused {
    pub repository: String,
    pub reason: String,
}

/// Where a build's images go.
pub struct Target<'a> {
    pub registry: &'a Registry,
    pub credentials: &'a Credentials,
    /// The service's name: the last component of the repository.
    pub service: &'a str,
}

/// Pushes a build's images and returns `<repository>@<digest>`: the image
/// under every plain tag, or, for a multi-platform build, each platform's
/// image under its `<tag>-<arch>` tags and a manifest list of them under
/// every plain tag (the digest is then the list's).
pub async fn push_build(
    docker: &DockerEngine,
    target: &Target<'_>,
    images: &Images,
    log: &mut LogWriter,
) -> anyhow::Result<String> {
    let repository = target.registry.repository(target.service);
    log.line(LogStream::System, &format!("Pushing to {repository}")).await?;
    if images.platforms.is_empty() {
        let mut digest = None;
        for tag in images.tags.iter().filter_map(|t| tag_of(t)) {
            let pushed = push_one(docker, target, &repository, &images.image_id, tag, log).await?;
            digest = digest.or(pushed);
        }
        let digest = digest.context("the registry answered no digest for the pushed image")?;
        return Ok(format!("{repository}@{digest}"));
    }
    let mut list_digest = None;
    let mut client = Repository::new(&repository, target.credentials)?;
    for plain in images.plain_tags().iter().filter_map(|t| tag_of(t)) {
        let mut entries = Vec::with_capacity(images.platforms.len());
        for image in &images.platforms {
            let tag = format!("{plain}-{}", arch_suffix(&image.platform));
            push_one(docker, target, &repository, &image.image_id, &tag, log).await?;
            let platform = Platform::parse(&image.platform).context("a platform is os/arch")?;
            entries.push(client.entry(&tag, platform).await?);
        }
        let digest = client.put_list(plain, &entries).await?;
        let platforms: Vec<&str> = images.platforms.iter().map(|p| p.platform.as_str()).collect();
        log.line(
            LogStream::System,
            &format!("Pushed manifest list {repository}:{plain} ({}) {digest}", platforms.join(", ")),
        )
        .await?;
        list_digest = list_digest.or(Some(digest));
    }
    let digest = list_digest.context("the build has no tag to push")?;
    Ok(format!("{repository}@{digest}"))
}

/// Tags `image_id` as `repository:tag` and pushes it; the manifest digest.
async fn push_one(
    docker: &DockerEngine,
    target: &Target<'_>,
    repository: &str,
    image_id: &str,
    tag: &str,
    log: &mut LogWriter,
) -> anyhow::Result<Option<String>> {
    docker.tag_image(image_id, repository, tag).await?;
    let started = std::time::Instant::now();
    let pushed = match docker.push_image(repository, tag, target.credentials).await {
        Ok(p) => p,
        Err(TransferError::Refused(reason)) => {
            let refused = PushRefused { repository: format!("{repository}:{tag}"), reason };
            log.line(LogStream::Stderr, &format!("Push failed: {refused}")).await?;
            return Err(refused.into());
        }
        Err(TransferError::Runtime(e)) => return Err(e.into()),
    };
    log.line(
        LogStream::System,
        &format!(
            "Pushed {repository}:{tag} ({} layers uploaded, {} already there, {:.1} s){}",
            pushed.uploaded,
            pushed.existing,
            started.elapsed().as_secs_f64(),
            pushed.digest.as_deref().map(|d| format!(" {d}")).unwrap_or_default()
        ),
    )
    .await?;
    Ok(pushed.digest)
}

/// Makes sure the engine holds `image_id`, pulling it by digest from the
/// registry a build of `service_id` pushed it to. `Ok(false)`: it is not
/// there and no registry has it.
pub async fn ensure_image(engine: &Engine, service_id: i64, image_id: &str) -> anyhow::Result<bool> {
    if engine.docker.image_exists(image_id).await? {
        return Ok(true);
    }
    let pushed: Option<(String, i64)> = sqlx::query_as(
        "SELECT b.pushed_ref, s.project_id FROM builds b JOIN services s ON s.id = b.service_id \
         WHERE b.service_id = ? AND b.image_id = ? AND b.pushed_ref IS NOT NULL ORDER BY b.id DESC LIMIT 1",
    )
    .bind(service_id)
    .bind(image_id)
    .fetch_optional(&engine.db)
    .await?;
    let Some((reference, project_id)) = pushed else { return Ok(false) };
    let registry = settings::of_project(&engine.db, project_id).await?.with_context(|| {
        format!("the image was pushed to {reference}, but the project has no registry any more")
    })?;
    let credentials = registry.credentials(&engine.secrets)?;
    tracing::info!(%reference, "pulling the image by digest");
    let pulled = match engine.docker.pull_image(&reference, &credentials).await {
        Ok(id) => id,
        Err(TransferError::Refused(reason)) => anyhow::bail!("pull of {reference} refused: {reason}"),
        Err(TransferError::Runtime(e)) => return Err(e.into()),
    };
    anyhow::ensure!(pulled == image_id, "{reference} holds image {pulled}, not the deployment's {image_id}");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::tag_of;

    #[test]
    fn the_tag_is_after_the_last_colon_of_the_last_component() {
        assert_eq!(tag_of("slipway/p-s:build-3"), Some("build-3"));
        assert_eq!(tag_of("127.0.0.1:5000/p/s:sha-abc"), Some("sha-abc"));
        assert_eq!(tag_of("127.0.0.1:5000/p/s"), None);
    }
}
