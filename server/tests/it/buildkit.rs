//! BuildKit builds against the real engine, through the build job: cache
//! mounts persist between builds of a service, a rebuild of an unchanged
//! commit shows `CACHED`, "build without cache", labels in the image config
//! and every tag, independent stages in parallel and the target stage, and
//! retention pruning the build cache to its budget while kept images stay.
//!
//! The tests that need the build cache (or prune it) take `CACHE_LOCK`, so
//! the prune never runs between the builds of another test of this module.

use std::time::Duration;

use app::wire::Role;
use server::{
    builds::{Build, TriggerBuild},
    docker::build::{build_image, BuildError, BuildRequest},
    jobs::JobStatus,
    logs::{LogHub, LogLine},
    projects::{ProjectStore, Service},
    testkit::{
        engine::{anyhow_of, user},
        DockerKit, GitRepo, TestDataDir, TestEngine, BASE_IMAGE, TEST_LABEL,
    },
};

const LIMIT: Duration = Duration::from_secs(180);

static CACHE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn build(t: &TestEngine, service: &Service) -> anyhow::Result<(Build, Vec<String>)> {
    let req = TriggerBuild::manual_build_only(service.id);
    let queued = t.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    let done = t.wait_build(queued.id, LIMIT).await?;
    let log = t.engine.build_log(&user(Role::Viewer), done.id, 0).await.map_err(anyhow_of)?;
    let lines: Vec<String> = log.into_iter().map(|l| l.text).collect();
    anyhow::ensure!(
        done.status == JobStatus::Succeeded,
        "build {} ended {}: {:?}\n{}",
        done.number,
        done.status,
        done.error,
        lines.join("\n")
    );
    Ok((done, lines))
}

/// `#N` of the step whose name holds `name`.
fn step<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    lines.iter().find(|l| l.starts_with('#') && l.contains(name)).and_then(|l| l.split(' ').next())
}

fn cached(lines: &[String], name: &str) -> bool {
    step(lines, name).is_some_and(|n| lines.iter().any(|l| *l == format!("{n} CACHED")))
}

/// Output lines of a step (`#N <seconds> <text>`) that end with `text`.
fn outputs(lines: &[String], text: &str) -> usize {
    lines
        .iter()
        .filter(|l| l.starts_with('#') && l.ends_with(&format!(" {text}")) && !l.contains(" RUN "))
        .count()
}

#[tokio::test]
async fn cache_mounts_persist_between_builds_and_an_unchanged_rebuild_is_cached() -> anyhow::Result<()> {
    let _cache = CACHE_LOCK.lock().await;
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::new()?;
    repo.write("stamp", &format!("one {}\n", kit.run_id))?;
    repo.write(
        "Dockerfile",
        &format!(
            "FROM {BASE_IMAGE}\nCOPY stamp /stamp\n\
             RUN --mount=type=cache,id=slipway-test-{},target=/cache cat /stamp >> /cache/lines \
             && echo \"cache-lines=$(grep -c . /cache/lines)\"\nEXPOSE 8080\n",
            kit.run_id
        ),
    )?;
    repo.commit("cache mount")?;
    let service = t.service("bk", "cache", &repo.url()).await?;

    let (first, log) = build(&t, &service).await?;
    let text = log.join("\n");
    assert_eq!(outputs(&log, "cache-lines=1"), 1, "{text}");
    assert!(step(&log, "2/3] COPY stamp /stamp").is_some(), "{text}");
    assert!(step(&log, "3/3] RUN --mount=type=cache").is_some(), "{text}");
    assert!(log.iter().any(|l| l.starts_with('#') && l.contains(" DONE ")), "{text}");
    assert_eq!(first.progress, 100);
    // Labels in the image config, not in an extra layer; every tag.
    let image_id = first.image_id.clone().unwrap_or_default();
    let image = kit.docker.inspect_image(&image_id).await?;
    let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels.get(TEST_LABEL), Some(&kit.run_id), "{labels:?}");
    assert!(labels.contains_key(server::docker::labels::INSTANCE), "{labels:?}");
    let history = kit.docker.image_history(&image_id).await?;
    assert!(!history.iter().any(|h| h.created_by.contains("LABEL")), "a LABEL layer: {history:?}");
    assert_eq!(first.tags.len(), 3, "{:?}", first.tags);
    for tag in &first.tags {
        let tagged = kit.docker.inspect_image(tag).await?;
        assert_eq!(tagged.id.as_deref(), Some(image_id.as_str()), "{tag}");
    }

    // A new commit: the RUN step runs again and finds the cache mount's file.
    repo.write("stamp", &format!("two {}\n", kit.run_id))?;
    repo.commit("second")?;
    let (second, log) = build(&t, &service).await?;
    assert_eq!(outputs(&log, "cache-lines=2"), 1, "{}", log.join("\n"));

    // The same commit again: every step from the cache.
    let (third, log) = build(&t, &service).await?;
    let text = log.join("\n");
    assert!(cached(&log, "2/3] COPY stamp /stamp"), "{text}");
    assert!(cached(&log, "3/3] RUN --mount=type=cache"), "{text}");
    let ran = log.iter().any(|l| l.starts_with('#') && l.contains(" cache-lines=") && !l.contains(" RUN "));
    assert!(!ran, "the RUN step ran again:\n{text}");
    assert_eq!(third.image_id, second.image_id);
    Ok(())
}

#[tokio::test]
async fn the_no_cache_setting_runs_every_step_again() -> anyhow::Result<()> {
    let _cache = CACHE_LOCK.lock().await;
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::new()?;
    let marker = format!("ran-{}", kit.run_id);
    repo.write("stamp", &marker)?;
    repo.write("Dockerfile", &format!("FROM {BASE_IMAGE}\nCOPY stamp /stamp\nRUN echo {marker}\n"))?;
    repo.commit("no cache")?;
    let service = t.service("bk", "nocache", &repo.url()).await?;
    let store = ProjectStore::new(t.engine.db.clone());
    let mut spec = service.spec.clone();
    spec.no_cache = true;
    let service = store.update_service(service.id, &spec).await?;
    assert!(service.spec.no_cache);

    build(&t, &service).await?;
    let (_, log) = build(&t, &service).await?;
    let text = log.join("\n");
    assert!(text.contains("Building without the build cache"), "{text}");
    assert!(!cached(&log, "3/3] RUN echo") && !cached(&log, "2/3] COPY"), "{text}");
    assert_eq!(outputs(&log, &marker), 1, "{text}");

    // With the setting off, the same commit comes from the cache.
    spec.no_cache = false;
    let service = store.update_service(service.id, &spec).await?;
    let (_, log) = build(&t, &service).await?;
    let text = log.join("\n");
    assert!(cached(&log, "3/3] RUN echo"), "{text}");
    assert_eq!(outputs(&log, &marker), 0, "{text}");
    Ok(())
}

async fn log_text(hub: &LogHub) -> anyhow::Result<Vec<String>> {
    let lines: Vec<LogLine> = hub.read_from(1, 0).await?;
    Ok(lines.into_iter().map(|l| l.text).collect())
}

#[tokio::test]
async fn independent_stages_run_in_parallel_and_the_target_stage_is_built() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let ctx = tempfile::tempdir()?;
    let run = &kit.run_id;
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {BASE_IMAGE} AS left\nRUN sleep 2 && echo left-{run} > /left\n\
             FROM {BASE_IMAGE} AS right\nRUN sleep 2 && echo right-{run} > /right\n\
             FROM {BASE_IMAGE}\nCOPY --from=left /left /left\nCOPY --from=right /right /right\n"
        ),
    )?;
    let dir = TestDataDir::new()?;
    let hub = LogHub::new(dir.path());
    let mut log = hub.writer(1, vec![]).await?;
    let tags = server::docker::build::image_tags("test", &format!("stages-{run}"), 1, "abc1234", "main");
    let req = BuildRequest {
        context_dir: ctx.path().to_path_buf(),
        dockerfile: "Dockerfile".into(),
        tags: tags.clone(),
        labels: kit.labels(),
        ..BuildRequest::default()
    };
    build_image(&kit.docker, req.clone(), &mut log).await?;
    let lines = log_text(&hub).await?;
    let text = lines.join("\n");
    // Both RUN steps started before either finished.
    let left = step(&lines, "[left 2/2] RUN").expect("the left stage ran");
    let right = step(&lines, "[right 2/2] RUN").expect("the right stage ran");
    let position = |needle: &str| lines.iter().position(|l| l.starts_with(needle));
    let starts = [position(&format!("{left} [")), position(&format!("{right} ["))];
    let first_done = [position(&format!("{left} DONE")), position(&format!("{right} DONE"))]
        .into_iter()
        .flatten()
        .min()
        .expect("the stages finished");
    assert!(starts.iter().all(|s| s.is_some_and(|s| s < first_done)), "not in parallel:\n{text}");

    // The target stage: only what it needs is built.
    let mut log = hub.writer(2, vec![]).await?;
    let target_tags =
        server::docker::build::image_tags("test", &format!("target-{run}"), 1, "abc1234", "main");
    let built = build_image(
        &kit.docker,
        BuildRequest { target: Some("left".into()), tags: target_tags, ..req.clone() },
        &mut log,
    )
    .await?;
    let lines: Vec<String> = hub.read_from(2, 0).await?.into_iter().map(|l| l.text).collect();
    let text = lines.join("\n");
    assert!(step(&lines, "[left 2/2] RUN").is_some(), "{text}");
    assert!(step(&lines, "[right").is_none() && step(&lines, "COPY --from").is_none(), "{text}");
    assert!(built.image_id.starts_with("sha256:"));

    // A bad target stage is refused before the engine is asked.
    let mut log = hub.writer(3, vec![]).await?;
    let bad = build_image(&kit.docker, BuildRequest { target: Some("-x".into()), ..req }, &mut log).await;
    assert!(matches!(bad, Err(BuildError::Invalid(ref m)) if m.contains("target")), "{bad:?}");
    Ok(())
}

#[tokio::test]
async fn retention_prunes_the_build_cache_to_its_budget_and_keeps_images() -> anyhow::Result<()> {
    let _cache = CACHE_LOCK.lock().await;
    let kit = DockerKit::new().await?;
    let data = TestDataDir::new()?;
    let mut settings = TestEngine::settings(&kit, &data);
    settings.retention.build_cache_budget = 1;
    let docker = server::docker::DockerEngine::with_client(kit.docker.clone());
    let t = TestEngine::start_with(data, settings, docker).await?;
    let repo = GitRepo::new()?;
    let run = &kit.run_id;
    // 4 MB in a stage the image does not keep, 2 MB in a cache mount.
    repo.write(
        "Dockerfile",
        &format!(
            "FROM {BASE_IMAGE} AS fill\n\
             RUN echo {run} && yes cache-filler | head -c 4000000 > /fill && echo small > /small\n\
             FROM {BASE_IMAGE}\nCOPY --from=fill /small /small\n\
             RUN --mount=type=cache,id=prune-{run},target=/cache yes x | head -c 2000000 > /cache/blob\n"
        ),
    )?;
    repo.commit("cache filler")?;
    let service = t.service("bk", "prune", &repo.url()).await?;
    let (built, _) = build(&t, &service).await?;
    let image_id = built.image_id.clone().unwrap_or_default();

    let before = t.engine.docker.build_cache_bytes().await?;
    assert!(before >= 4_000_000, "build cache of {before} bytes after the build");
    let report = server::retention::run(&t.engine).await?;
    let after = t.engine.docker.build_cache_bytes().await?;
    eprintln!("build cache: {before} bytes before the prune, {after} after; {:?}", report.build_cache);
    let pruned = report.build_cache.expect("the build cache was pruned");
    assert!(pruned.records_deleted > 0 && pruned.bytes_reclaimed > 0, "{pruned:?}");
    assert!(after < before, "the cache did not shrink: {before} → {after}");
    assert!(report.images_removed.is_empty(), "{:?}", report.images_removed);
    // The kept image and its tags are intact.
    let image = kit.docker.inspect_image(&image_id).await?;
    assert_eq!(image.id.as_deref(), Some(image_id.as_str()));
    for tag in &built.tags {
        assert_eq!(kit.docker.inspect_image(tag).await?.id.as_deref(), Some(image_id.as_str()), "{tag}");
    }
    assert!(!kit.docker.image_history(&image_id).await?.is_empty());
    Ok(())
}
