//! Image builds through the Engine API: BuildKit (`version=2`) when the
//! engine has it, else the classic builder, said in the log.
//!
//! - [`context`]: the context tar, honouring `.dockerignore` ([`dockerignore`]);
//! - [`choice`]: which builder (the engine's ping, a refused `version=2`);
//! - [`buildkit`] and [`trace`]: the BuildKit request and its progress stream
//!   (`moby.buildkit.trace`) as `--progress=plain`-like log lines;
//! - [`classic`]: the classic builder through bollard;
//! - [`engine_http`]: the raw HTTP calls bollard's types cannot carry;
//! - [`cache`]: the engine's build cache, pruned to a budget by retention.
//!
//! Cancellation: dropping the [`build_image`] future drops the HTTP request;
//! the daemon sees the connection close and cancels the build, killing the
//! running step (tested in `server/tests/it/build_pipeline.rs` for both
//! builders).

pub mod buildkit;
pub mod cache;
pub mod choice;
pub mod classic;
pub mod context;
pub mod dockerignore;
pub mod engine_http;
pub mod proto;
pub mod trace;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::query_parameters::TagImageOptionsBuilder;
use bollard::Docker;
use bytes::Bytes;

pub use choice::{Builder, BuilderPreference};
pub use context::context_tar;
pub use dockerignore::DockerIgnore;

use crate::logs::{LogError, LogStream, LogWriter};
use crate::validate;

/// Longest a whole build may take at the HTTP client level; the job's own
/// timeout (default 30 min) is shorter and cancels the build first.
pub const BUILD_CLIENT_TIMEOUT: Duration = Duration::from_secs(3600);
/// Longest Docker image tag.
const MAX_TAG: usize = 128;
const LATEST_SUFFIX: &str = "-latest";

/// Receives `(step, steps)` as each Dockerfile step starts.
pub type StepSender = tokio::sync::mpsc::UnboundedSender<(u32, u32)>;

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The build context directory (inside the checkout).
    pub context_dir: PathBuf,
    /// The Dockerfile, relative to `context_dir`.
    pub dockerfile: String,
    /// Full image references to tag the result with; at least one.
    pub tags: Vec<String>,
    pub build_args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    /// The Dockerfile stage to build (`None`: the last one).
    pub target: Option<String>,
    /// Build every step again, ignoring the build cache.
    pub no_cache: bool,
    /// The platform to build for (`linux/arm64`); `None`: the engine's own.
    /// A foreign platform runs its `RUN` steps under QEMU user emulation.
    pub platform: Option<String>,
    /// BuildKit when the engine has it (default), or the classic builder.
    pub builder: BuilderPreference,
    /// Receives `(step, steps)` as each Dockerfile step starts.
    pub steps: Option<StepSender>,
}

/// A finished build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// `sha256:…`, what deployments refer to.
    pub image_id: String,
    pub tags: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The request itself is unusable (a bad tag, Dockerfile path, build arg).
    #[error("invalid build request: {0}")]
    Invalid(String),
    /// The context could not be read or packed.
    #[error("build context: {0}")]
    Context(String),
    /// A Dockerfile step failed; `step` is its name (BuildKit's
    /// `[2/3] RUN …`, the classic builder's `Step 2/3 : RUN …`).
    #[error("{step} failed: {message}")]
    StepFailed { step: String, message: String },
    /// The build failed before any step ran (e.g. a Dockerfile syntax error).
    #[error("build failed: {0}")]
    Failed(String),
    /// The engine was unreachable or answered with an error outside a step.
    #[error("Docker engine error: {0}")]
    Engine(String),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The tags of build `build_number` of `service` in `project`:
/// `slipway/<project>-<service>:build-<n>`, `:sha-<short>` and
/// `:<branch>-latest`, the branch made into a valid tag (characters outside
/// `[A-Za-z0-9_.-]` become `-`, no leading `.` or `-`, length capped).
/// `project` and `service` are validated slugs.
pub fn image_tags(
    project: &str,
    service: &str,
    build_number: u64,
    short_sha: &str,
    branch: &str,
) -> Vec<String> {
    let repo = format!("slipway/{project}-{service}");
    vec![
        format!("{repo}:build-{build_number}"),
        format!("{repo}:sha-{short_sha}"),
        format!("{repo}:{}{LATEST_SUFFIX}", branch_tag(branch)),
    ]
}

/// `branch` as the first part of a tag (`[A-Za-z0-9_][A-Za-z0-9_.-]*`).
fn branch_tag(branch: &str) -> String {
    let mapped: String = branch
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' })
        .collect();
    let trimmed = mapped.trim_start_matches(['.', '-']);
    let mut tag: String = trimmed.chars().take(MAX_TAG - LATEST_SUFFIX.len()).collect();
    while tag.ends_with(['.', '-']) {
        tag.pop();
    }
    if tag.is_empty() {
        tag.push_str("branch");
    }
    tag
}

/// Builds the image: packs the context, builds it with BuildKit (or the
/// classic builder when the engine has no BuildKit, said in the log),
/// streams the progress into `log`, tags the image with every requested tag
/// and returns its id. Never pulls newer base images. Dropping the future
/// cancels the build in the daemon. The engine is the one `DOCKER_HOST`
/// names (as for `docker`, the client's own address).
pub async fn build_image(
    docker: &Docker,
    req: BuildRequest,
    log: &mut LogWriter,
) -> Result<BuiltImage, BuildError> {
    build_image_on(docker, engine_http::Endpoint::from_env(), req, log).await
}

/// [`build_image`] with BuildKit's calls going to `endpoint` (`Err`: an
/// address the BuildKit client does not speak, the reason).
pub async fn build_image_on(
    docker: &Docker,
    endpoint: Result<engine_http::Endpoint, String>,
    req: BuildRequest,
    log: &mut LogWriter,
) -> Result<BuiltImage, BuildError> {
    let invalid = |e: validate::ValidationError| BuildError::Invalid(e.to_string());
    let dockerfile = validate::rel_path("dockerfile", &req.dockerfile).map_err(invalid)?;
    let Some(first_tag) = req.tags.first().cloned() else {
        return Err(BuildError::Invalid("at least one tag is needed".into()));
    };
    for tag in &req.tags {
        validate::image_ref(tag).map_err(invalid)?;
    }
    for name in req.build_args.keys() {
        validate::build_arg_name(name).map_err(invalid)?;
    }
    if let Some(target) = req.target.as_deref().filter(|t| !t.is_empty()) {
        validate::stage_name("target", target).map_err(invalid)?;
    }
    if let Some(platform) = &req.platform {
        validate::platform(platform).map_err(invalid)?;
    }

    let context_dir = req.context_dir.clone();
    let packed_dockerfile = dockerfile.clone();
    let context = tokio::task::spawn_blocking(move || context_tar(&context_dir, &packed_dockerfile))
        .await
        .map_err(|e| BuildError::Context(format!("packing the context stopped: {e}")))?
        .map_err(|e| BuildError::Context(format!("{e:#}")))?;
    let context = Bytes::from(context);
    log.line(LogStream::System, &format!("Sending build context to the engine ({} bytes)", context.len()))
        .await?;

    // bollard's client timeout (120 s by default) covers the whole request,
    // i.e. the whole build; the BuildKit client gets the same limit.
    let client = docker.clone().with_timeout(BUILD_CLIENT_TIMEOUT);
    let built =
        tokio::time::timeout(BUILD_CLIENT_TIMEOUT, run(&client, endpoint, &req, &dockerfile, context, log))
            .await
            .map_err(|_| {
                BuildError::Engine(format!("no end of the build within {BUILD_CLIENT_TIMEOUT:?}"))
            })??;

    let image_id = match built.image_id {
        Some(id) => id,
        None => client
            .inspect_image(&first_tag)
            .await
            .map_err(|e| BuildError::Engine(format!("the built image cannot be inspected: {e}")))?
            .id
            .ok_or_else(|| BuildError::Engine("the built image has no id".into()))?,
    };
    if !built.tagged_all {
        for tag in &req.tags[1..] {
            let (repo, tag_part) = split_tag(tag);
            let options = TagImageOptionsBuilder::new().repo(repo).tag(tag_part).build();
            client
                .tag_image(&image_id, Some(options))
                .await
                .map_err(|e| BuildError::Engine(e.to_string()))?;
        }
    }
    log.line(LogStream::System, &format!("Built image {image_id}")).await?;
    tracing::info!(image_id = %image_id, tags = ?req.tags, builder = built.builder, "image built");
    Ok(BuiltImage { image_id, tags: req.tags })
}

struct Built {
    image_id: Option<String>,
    /// Whether the build applied every tag (BuildKit: all `t` at once).
    tagged_all: bool,
    builder: &'static str,
}

/// Chooses the builder and runs the build.
async fn run(
    client: &Docker,
    endpoint: Result<engine_http::Endpoint, String>,
    req: &BuildRequest,
    dockerfile: &str,
    context: Bytes,
    log: &mut LogWriter,
) -> Result<Built, BuildError> {
    let builder = if req.builder == BuilderPreference::Classic {
        choice::choose(req.builder, Err("not asked for"))
    } else {
        match &endpoint {
            Ok(endpoint) => {
                let ping = engine_http::ping(endpoint).await.map_err(|e| e.0);
                choice::choose(req.builder, ping.as_ref().map_err(String::as_str))
            }
            Err(why) => choice::choose(req.builder, Err(&format!("{why} is not supported"))),
        }
    };
    let reason = match (builder, endpoint) {
        (Builder::BuildKit { api_version }, Ok(endpoint)) => {
            match buildkit::build(&endpoint, &api_version, req, dockerfile, context.clone(), log).await? {
                buildkit::Outcome::Built(image_id) => {
                    return Ok(Built { image_id, tagged_all: true, builder: "buildkit" })
                }
                buildkit::Outcome::Refused(message) => {
                    Some(format!("the engine refused BuildKit: {message}"))
                }
            }
        }
        (Builder::Classic { reason }, _) => reason,
        (Builder::BuildKit { .. }, Err(why)) => Some(why),
    };
    if let Some(reason) = reason {
        log.line(LogStream::System, &format!("Building with the classic builder: {reason}")).await?;
    }
    let image_id = classic::build(client, req, dockerfile, context, log).await?;
    Ok(Built { image_id, tagged_all: false, builder: "classic" })
}

/// `repo[:tag]` split at the tag's ':' (not a registry port's).
fn split_tag(reference: &str) -> (&str, &str) {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => (&reference[..name_start + i], &reference[name_start + i + 1..]),
        None => (reference, "latest"),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_become_valid_tags() {
        let tags = image_tags("shop", "api", 12, "abc1234", "feature/Login_v2");
        assert_eq!(
            tags,
            vec![
                "slipway/shop-api:build-12",
                "slipway/shop-api:sha-abc1234",
                "slipway/shop-api:feature-Login_v2-latest",
            ]
        );
        assert_eq!(branch_tag("--x"), "x");
        assert_eq!(branch_tag("..."), "branch");
        assert_eq!(branch_tag(&"b".repeat(300)).len(), MAX_TAG - LATEST_SUFFIX.len());
        for branch in ["main", "release/1.2", "dependabot/npm_and_yarn/x-1.0", "-", "é/ü"] {
            for tag in image_tags("p", "s", 1, "abc1234", branch) {
                assert!(validate::image_ref(&tag).is_ok(), "{tag}");
            }
        }
    }

    #[test]
    fn tags_split_at_the_tag_colon_not_a_port() {
        assert_eq!(split_tag("slipway/a-b:build-1"), ("slipway/a-b", "build-1"));
        assert_eq!(split_tag("localhost:5000/app:v1"), ("localhost:5000/app", "v1"));
        assert_eq!(split_tag("localhost:5000/app"), ("localhost:5000/app", "latest"));
    }
}
