//! The builds of one push to a project hook, or of one "Build all"
//! (`builds.push_group`), share work while they run:
//!
//! * **One checkout per repository and ref.** The first build of the group
//!   to get there fetches the commit (`git::checkout`) into the group's
//!   directory, `workspaces/group-<group>-<key hash>`; every build of the
//!   group, that one included, then copies it into its own workspace
//!   (`cp -a --reflink=auto`, local, no network), because pipeline steps
//!   write to their workspace. Nothing is fetched twice.
//! * **One image build per set of identical inputs** (commit, context,
//!   Dockerfile, build args, target, platforms, cache setting). The first
//!   build builds; the others wait for it and tag its image with their own
//!   tags. A failed shared build fails them too, naming it; a cancelled one
//!   hands the work to the next waiter.
//!
//! Both live in memory, keyed by group (a [`OnceCell`] per checkout, a
//! mutex-guarded slot per image). The group's directory
//! and cells go when none of its builds is queued or running any more
//! ([`BuildHandler::end_group`]). After a crash the memory is gone: a
//! retried build fetches again into a directory it empties first, and
//! retention removes a directory that outlived its builds.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::{images::Images, job::BuildHandler, Build};
use crate::{
    docker::build::BuildRequest,
    git,
    logs::{LogStream, LogWriter},
    webhooks::fanout::repo_key,
};

/// An image one build of the group made for the others.
#[derive(Debug, Clone)]
pub struct SharedImage {
    pub images: Images,
    pub build_number: i64,
    pub service: String,
}

type Shared<T> = Arc<OnceCell<Result<T, String>>>;
/// Empty until the build that holds it first has built (a cancelled build
/// drops it empty: the next waiter builds).
type Slot = Arc<tokio::sync::Mutex<Option<Result<SharedImage, String>>>>;

#[derive(Default)]
struct Group {
    checkouts: HashMap<String, Shared<git::Checkout>>,
    images: HashMap<String, Slot>,
}

/// What [`BuildHandler::group_image`] leaves to its caller.
pub(super) enum ImageSlot {
    /// Build the image, then [`ImageSlot::fill`] the slot with the result.
    Build(tokio::sync::OwnedMutexGuard<Option<Result<SharedImage, String>>>),
    /// Another build of the group built it; here it is with this build's tags.
    Shared(Images),
}

impl ImageSlot {
    /// Shares this build's result with the group's waiting builds.
    pub fn fill(self, result: &anyhow::Result<Images>, (number, service): (i64, &str)) {
        if let ImageSlot::Build(mut slot) = self {
            *slot = Some(match result {
                Ok(images) => Ok(SharedImage {
                    images: images.clone(),
                    build_number: number,
                    service: service.to_string(),
                }),
                Err(e) => Err(format!("build #{number} of {service}: {e:#}")),
            });
        }
    }
}

/// Every running group's shared checkouts and images.
#[derive(Default)]
pub struct Groups {
    groups: Mutex<HashMap<String, Group>>,
}

impl Groups {
    fn cell<T: Default + Clone>(
        &self,
        group: &str,
        key: &str,
        pick: fn(&mut Group) -> &mut HashMap<String, T>,
    ) -> T {
        let mut groups = self.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let group = groups.entry(group.to_string()).or_default();
        pick(group).entry(key.to_string()).or_default().clone()
    }

    fn checkout(&self, group: &str, key: &str) -> Shared<git::Checkout> {
        self.cell(group, key, |g| &mut g.checkouts)
    }

    fn image(&self, group: &str, key: &str) -> Slot {
        self.cell(group, key, |g| &mut g.images)
    }

    fn forget(&self, group: &str) {
        self.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(group);
    }
}

/// A new group's name part: 8 random bytes, hex.
pub fn new_group_id() -> String {
    use aes_gcm::aead::{rand_core::RngCore, OsRng};
    let mut bytes = [0u8; 8];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// `group-<group>-`: the prefix of a group's directories (group names are
/// `push-<n>` or `all-<hex>`; anything else is dropped from the name).
fn dir_prefix(group: &str) -> String {
    let tame: String = group.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(40).collect();
    format!("group-{tame}-")
}

/// What makes two image builds the same build.
pub fn image_key(commit: &str, context: &str, request: &BuildRequest, platforms: &[String]) -> String {
    let args: BTreeMap<&String, &String> = request.build_args.iter().collect();
    let inputs = serde_json::json!({
        "commit": commit,
        "context": context,
        "dockerfile": request.dockerfile,
        "args": args,
        "target": request.target,
        "platforms": platforms,
        "no_cache": request.no_cache,
    });
    inputs.to_string()
}

impl BuildHandler {
    fn group_dir(&self, group: &str, key: &str) -> PathBuf {
        let name = format!("{}{}", dir_prefix(group), short_hash(key));
        self.engine.settings.data_dir.join("workspaces").join(name)
    }

    /// The group's checkout of `url` at the build's ref (fetched by the
    /// first build to ask), copied into `workspace`.
    pub(super) async fn group_checkout(
        &self,
        group: &str,
        url: &str,
        build: &Build,
        workspace: &Path,
        log: &mut LogWriter,
    ) -> anyhow::Result<git::Checkout> {
        let key = format!("{}\n{}", repo_key(url).unwrap_or_else(|| url.to_string()), build.git_ref);
        let dir = self.group_dir(group, &key);
        let cell = self.engine.groups.checkout(group, &key);
        let mut fetched_here = None;
        let shared = cell
            .get_or_init(|| async {
                let fetched = async {
                    remove_dir(&dir).await?;
                    git::checkout(url, &build.git_ref, &dir, log).await
                }
                .await;
                match fetched {
                    Ok(checkout) => Ok(checkout),
                    Err(e) => {
                        let text = format!("{e:#}");
                        fetched_here = Some(e);
                        Err(text)
                    }
                }
            })
            .await;
        if let Some(e) = fetched_here {
            return Err(e);
        }
        let checkout = match shared {
            Ok(checkout) => checkout.clone(),
            Err(e) => anyhow::bail!("the push's shared checkout failed: {e}"),
        };
        copy_tree(&dir, workspace).await?;
        log.line(
            LogStream::System,
            &format!("Using this push's checkout of {} (fetched once for all its builds)", checkout.commit),
        )
        .await?;
        Ok(checkout)
    }

    /// The group's image for these inputs: [`ImageSlot::Build`] for the
    /// first build to ask (it builds and [`ImageSlot::fill`]s the slot,
    /// while the others wait), else that build's image, retagged with
    /// `plain_tags`, or its failure.
    pub(super) async fn group_image(
        &self,
        group: &str,
        key: &str,
        plain_tags: Vec<String>,
        log: &mut LogWriter,
    ) -> anyhow::Result<ImageSlot> {
        let slot = self.engine.groups.image(group, key).lock_owned().await;
        let shared = match &*slot {
            None => return Ok(ImageSlot::Build(slot)),
            Some(Ok(shared)) => shared.clone(),
            Some(Err(e)) => anyhow::bail!("the push's shared image build failed: {e}"),
        };
        log.line(
            LogStream::System,
            &format!(
                "Image shared with build #{} of {}: the same commit, context, Dockerfile, build args and \
                 target are built once per push",
                shared.build_number, shared.service
            ),
        )
        .await?;
        let images = super::images::retag(&self.engine.docker, &shared.images, plain_tags).await?;
        Ok(ImageSlot::Shared(images))
    }

    /// Once none of the group's builds is queued or running: removes its
    /// directories and forgets its shared work.
    pub(super) async fn end_group(&self, build: &Build) {
        let Some(group) = &build.push_group else { return };
        let open: Result<i64, _> = sqlx::query_scalar(
            "SELECT COUNT(*) FROM builds WHERE push_group = ? AND status IN ('queued', 'running')",
        )
        .bind(group)
        .fetch_one(&self.engine.db)
        .await;
        match open {
            Ok(0) => {}
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(build_id = build.id, error = %e, "cannot tell whether a build group ended");
                return;
            }
        }
        self.engine.groups.forget(group);
        let prefix = dir_prefix(group);
        let root = self.engine.settings.data_dir.join("workspaces");
        let Ok(mut entries) = tokio::fs::read_dir(&root).await else { return };
        while let Ok(Some(entry)) = entries.next_entry().await {
            if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
                if let Err(e) = remove_dir(&entry.path()).await {
                    tracing::warn!(build_id = build.id, error = %format!("{e:#}"), "cannot remove a group checkout");
                }
            }
        }
    }
}

async fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", dir.display())),
    }
}

/// Copies the tree at `from` (files, modes, symbolic links as links) into
/// `to`, which is made first.
async fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    tokio::fs::create_dir_all(to).await.with_context(|| format!("cannot create {}", to.display()))?;
    let output = tokio::process::Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg("--")
        .arg(from.join("."))
        .arg(to)
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot run cp")?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        anyhow::bail!("copying the push's checkout failed: {}", said.lines().next().unwrap_or("").trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_inputs_make_one_key_and_any_difference_another() {
        let request = BuildRequest {
            dockerfile: "Dockerfile".into(),
            build_args: [("A".to_string(), "1".to_string()), ("B".to_string(), "2".to_string())].into(),
            tags: vec!["mine:1".into()],
            ..Default::default()
        };
        let key = image_key("abc", "api", &request, &[]);
        let other_tags = BuildRequest { tags: vec!["theirs:7".into()], ..request.clone() };
        assert_eq!(image_key("abc", "api", &other_tags, &[]), key, "tags are not inputs");
        assert_ne!(image_key("abd", "api", &request, &[]), key);
        assert_ne!(image_key("abc", "web", &request, &[]), key);
        let target = BuildRequest { target: Some("prod".into()), ..request.clone() };
        assert_ne!(image_key("abc", "api", &target, &[]), key);
        let mut args = request.clone();
        args.build_args.insert("B".into(), "3".into());
        assert_ne!(image_key("abc", "api", &args, &[]), key);
        assert_ne!(image_key("abc", "api", &request, &["linux/arm64".into()]), key);
        assert_eq!(dir_prefix("push-12"), "group-push-12-");
        assert_eq!(dir_prefix("../x"), "group-x-");
    }
}
