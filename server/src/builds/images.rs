//! The image (or images) of one build: one for the engine's own platform,
//! or one per listed platform, each built by BuildKit with `platform` set
//! (foreign ones run their `RUN` steps under QEMU user emulation).
//!
//! A platform's image is tagged `<tag>-<arch>` (`build-3-arm64`); the image
//! of the engine's own platform also gets the plain tags and is the one
//! deployments run. With a registry, `crate::registry::publish` pushes each
//! platform's tags and puts a manifest list under the plain tags.

use crate::docker::{
    build::{BuildRequest, BuiltImage},
    ContainerRuntime, DockerEngine,
};
use crate::logs::{LogStream, LogWriter};

/// Longest Docker image tag.
const MAX_TAG: usize = 128;

/// One platform's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformImage {
    /// `linux/arm64`.
    pub platform: String,
    pub image_id: String,
    /// `<repo>:<tag>-<arch>` for each plain tag.
    pub tags: Vec<String>,
}

/// What a build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// The image deployments run: the engine's platform's (or the first).
    pub image_id: String,
    /// The plain tags (on `image_id`) then every platform's tags.
    pub tags: Vec<String>,
    /// Empty for a build of the engine's own platform only.
    pub platforms: Vec<PlatformImage>,
}

impl Images {
    /// The plain tags: `build-<n>`, `sha-<short>`, `<branch>-latest`.
    pub fn plain_tags(&self) -> &[String] {
        let per_platform: usize = self.platforms.iter().map(|p| p.tags.len()).sum();
        &self.tags[..self.tags.len() - per_platform]
    }
}

/// `linux/arm/v7` → `armv7`, `linux/amd64` → `amd64`.
pub fn arch_suffix(platform: &str) -> String {
    platform.split('/').skip(1).collect::<Vec<_>>().concat()
}

/// `repo:tag` → `repo:tag-<arch>`, the tag part shortened to stay a valid tag.
pub fn platform_tag(reference: &str, platform: &str) -> String {
    let suffix = format!("-{}", arch_suffix(platform));
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => {
            let (repo, tag) = reference.split_at(slash + i + 1);
            let keep = tag.len().min(MAX_TAG - suffix.len());
            format!("{repo}{}{suffix}", &tag[..keep])
        }
        None => format!("{reference}:latest{suffix}"),
    }
}

/// The build requests of one build: `request` itself when `platforms` is
/// empty, else one per platform, each with its `<tag>-<arch>` tags.
pub fn requests(request: &BuildRequest, platforms: &[String]) -> Vec<BuildRequest> {
    if platforms.is_empty() {
        return vec![request.clone()];
    }
    platforms
        .iter()
        .map(|platform| BuildRequest {
            tags: request.tags.iter().map(|t| platform_tag(t, platform)).collect(),
            platform: Some(platform.clone()),
            ..request.clone()
        })
        .collect()
}

/// What the builds of [`requests`] produced, in order, as one [`Images`]:
/// the image of the engine's `native` platform (or the first) gets the
/// plain tags `plain`.
pub async fn assemble(
    docker: &DockerEngine,
    plain: Vec<String>,
    built: Vec<(Option<String>, BuiltImage)>,
    log: &mut LogWriter,
) -> anyhow::Result<Images> {
    if let [(None, _)] = built.as_slice() {
        let Some((_, only)) = built.into_iter().next() else { anyhow::bail!("no image was built") };
        return Ok(Images { image_id: only.image_id, tags: only.tags, platforms: Vec::new() });
    }
    let images: Vec<PlatformImage> = built
        .into_iter()
        .map(|(platform, one)| PlatformImage {
            platform: platform.unwrap_or_default(),
            image_id: one.image_id,
            tags: one.tags,
        })
        .collect();
    anyhow::ensure!(!images.is_empty(), "no image was built");
    let native = docker.engine_info().await?.platform;
    let deployed = match images.iter().find(|p| p.platform == native) {
        Some(p) => p.clone(),
        None => {
            let first = images[0].clone();
            log.line(
                LogStream::System,
                &format!(
                    "No image for this engine's platform {native}: deployments run the {} image under emulation",
                    first.platform
                ),
            )
            .await?;
            first
        }
    };
    for tag in &plain {
        let (repo, tag_part) = split(tag);
        docker.tag_image(&deployed.image_id, repo, tag_part).await?;
    }
    let mut tags = plain;
    tags.extend(images.iter().flat_map(|p| p.tags.iter().cloned()));
    Ok(Images { image_id: deployed.image_id, tags, platforms: images })
}

/// `shared` (what another build of the same inputs made) tagged with this
/// build's `plain` tags too: those on the deployed image, and each
/// platform's `<tag>-<arch>` on its image.
pub async fn retag(docker: &DockerEngine, shared: &Images, plain: Vec<String>) -> anyhow::Result<Images> {
    for tag in &plain {
        let (repo, tag_part) = split(tag);
        docker.tag_image(&shared.image_id, repo, tag_part).await?;
    }
    let mut platforms = Vec::with_capacity(shared.platforms.len());
    for one in &shared.platforms {
        let tags: Vec<String> = plain.iter().map(|t| platform_tag(t, &one.platform)).collect();
        for tag in &tags {
            let (repo, tag_part) = split(tag);
            docker.tag_image(&one.image_id, repo, tag_part).await?;
        }
        platforms.push(PlatformImage {
            platform: one.platform.clone(),
            image_id: one.image_id.clone(),
            tags,
        });
    }
    let mut tags = plain;
    tags.extend(platforms.iter().flat_map(|p| p.tags.iter().cloned()));
    Ok(Images { image_id: shared.image_id.clone(), tags, platforms })
}

/// `repo:tag` split at the tag's ':' (never a registry port's).
fn split(reference: &str) -> (&str, &str) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
        None => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_tags_carry_the_arch_and_stay_valid() {
        assert_eq!(platform_tag("slipway/p-s:build-3", "linux/arm64"), "slipway/p-s:build-3-arm64");
        assert_eq!(
            platform_tag("127.0.0.1:5000/a/s:sha-1", "linux/arm/v7"),
            "127.0.0.1:5000/a/s:sha-1-armv7"
        );
        let long = format!("slipway/p-s:{}", "b".repeat(128));
        let tagged = platform_tag(&long, "linux/amd64");
        assert!(tagged.ends_with("-amd64"));
        assert!(crate::validate::image_ref(&tagged).is_ok(), "{tagged}");
    }

    #[test]
    fn plain_tags_are_the_ones_before_the_platform_tags() {
        let images = Images {
            image_id: "sha256:a".into(),
            tags: vec!["r:build-1".into(), "r:build-1-arm64".into()],
            platforms: vec![PlatformImage {
                platform: "linux/arm64".into(),
                image_id: "sha256:b".into(),
                tags: vec!["r:build-1-arm64".into()],
            }],
        };
        assert_eq!(images.plain_tags(), ["r:build-1"]);
    }
}
