//! The image part of a build: the Docker build request from the service's
//! settings (and a pipeline `build:` step's overrides), one build per
//! platform with its progress, the group's shared image when the build
//! belongs to one (`super::group`), and the registry push.

use std::path::Path;

use super::{
    images::{self, Images},
    job::{BuildHandler, Running},
};
use crate::{
    docker::{
        build::{build_image_on, image_tags, BuildRequest, BuiltImage},
        labels,
    },
    git,
    jobs::JobContext,
    logs::{LogStream, LogWriter},
    registry::publish,
    validate,
};

impl BuildHandler {
    /// Builds the image (or per-platform images) of the checkout, with a
    /// pipeline `build:` step's overrides, and pushes it when the project
    /// has a registry.
    pub(super) async fn images(
        &self,
        run: &Running<'_>,
        checkout: &git::Checkout,
        overrides: Option<&crate::pipeline::spec::BuildStep>,
        log: &mut LogWriter,
    ) -> anyhow::Result<(Images, Option<String>)> {
        let (ctx, build, service) = (run.ctx, run.build, run.service);
        self.progress(ctx, build.id, "build", 15).await?;
        let workspace = self.engine.workspace(build.id);
        let context_path =
            overrides.and_then(|o| o.context.clone()).unwrap_or_else(|| service.spec.context_path.clone());
        let context_dir = workspace.join(&context_path);
        ensure_dir(&context_dir, &context_path).await?;
        // `<branch>-latest`: the ref built, or the service's branch for a commit id.
        let branch =
            if validate::commit_sha(&build.git_ref).is_ok() { &service.spec.branch } else { &build.git_ref };
        let number = u64::try_from(build.number).unwrap_or(0);
        // Images carry the instance label (plus the configured extra ones);
        // the build row links image and build. BuildKit writes labels into
        // the image config; the classic builder (fallback) adds one LABEL
        // step for them.
        let mut labels = self.engine.settings.extra_labels.clone();
        labels.insert(labels::INSTANCE.into(), self.engine.instance.clone());
        let mut build_args: std::collections::HashMap<String, String> =
            service.spec.build_args.clone().into_iter().collect();
        build_args.extend(overrides.map(|o| o.args.clone()).unwrap_or_default());
        let request = BuildRequest {
            context_dir,
            dockerfile: overrides
                .and_then(|o| o.dockerfile.clone())
                .unwrap_or_else(|| service.spec.dockerfile_path.clone()),
            tags: image_tags(&run.project.name, &service.spec.name, number, &checkout.short, branch),
            build_args,
            labels,
            target: overrides.and_then(|o| o.target.clone()).or_else(|| service.spec.target.clone()),
            no_cache: service.spec.no_cache || run.no_cache,
            ..Default::default()
        };
        let slot = match &build.push_group {
            Some(group) => {
                let key = super::group::image_key(
                    &checkout.commit,
                    &context_path,
                    &request,
                    &service.spec.platforms,
                );
                Some(self.group_image(group, &key, request.tags.clone(), log).await?)
            }
            None => None,
        };
        let images = match slot {
            Some(super::group::ImageSlot::Shared(images)) => images,
            Some(slot) => {
                let built = self.build_images(ctx, build.id, request, &service.spec.platforms, log).await;
                slot.fill(&built, (build.number, &service.spec.name));
                built?
            }
            None => self.build_images(ctx, build.id, request, &service.spec.platforms, log).await?,
        };
        let pushed = match run.registry {
            Some((registry, credentials)) => {
                self.progress(ctx, build.id, "push", 96).await?;
                let target = publish::Target { registry, credentials, service: &service.spec.name };
                Some(publish::push_build(&self.engine.docker, &target, &images, log).await?)
            }
            None => None,
        };
        Ok((images, pushed))
    }

    /// The image (or per-platform images) of `request`, built.
    async fn build_images(
        &self,
        ctx: &JobContext,
        build_id: i64,
        request: BuildRequest,
        platforms: &[String],
        log: &mut LogWriter,
    ) -> anyhow::Result<Images> {
        if request.no_cache {
            log.line(LogStream::System, "Building without the build cache").await?;
        }
        let requests = images::requests(&request, platforms);
        let count = requests.len();
        let mut built = Vec::with_capacity(count);
        for (i, one) in requests.into_iter().enumerate() {
            if let Some(platform) = &one.platform {
                log.line(LogStream::System, &format!("Building for {platform}")).await?;
            }
            let platform = one.platform.clone();
            built.push((platform, self.build_one(ctx, build_id, one, (i, count), log).await?));
        }
        images::assemble(&self.engine.docker, request.tags, built, log).await
    }

    /// One image build, its Dockerfile steps moving the progress across
    /// this build's share (`index` of `count`) of 15% → 95%.
    async fn build_one(
        &self,
        ctx: &JobContext,
        build_id: i64,
        mut request: BuildRequest,
        (index, count): (usize, usize),
        log: &mut LogWriter,
    ) -> anyhow::Result<BuiltImage> {
        let (steps_tx, mut steps_rx) = tokio::sync::mpsc::unbounded_channel();
        request.steps = Some(steps_tx);
        let docker = self.engine.docker.client()?.clone();
        let built = build_image_on(&docker, self.engine.docker.endpoint(), request, log);
        tokio::pin!(built);
        let (share, base) = (80 / count.max(1), 15 + 80 * index / count.max(1));
        loop {
            tokio::select! {
                result = &mut built => return Ok(result?),
                Some((n, m)) = steps_rx.recv() => {
                    let within = (share * usize::try_from(n.saturating_sub(1)).unwrap_or(0))
                        / usize::try_from(m.max(1)).unwrap_or(1);
                    let percent = (base + within.min(share)).min(95);
                    self.progress(ctx, build_id, "build", u8::try_from(percent).unwrap_or(95)).await?;
                }
            }
        }
    }
}

async fn ensure_dir(dir: &Path, shown: &str) -> anyhow::Result<()> {
    match tokio::fs::metadata(dir).await {
        Ok(m) if m.is_dir() => Ok(()),
        _ => anyhow::bail!("the context path {shown:?} is not a directory in this commit"),
    }
}
