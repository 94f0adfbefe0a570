//! The stateless building blocks of a build against real git and the real
//! Docker Engine: checkout of exactly one ref or commit, the build context
//! (`.dockerignore`), image builds (BuildKit, and the classic builder it
//! falls back to), their failures and their cancellation.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bollard::query_parameters::InspectContainerOptions;
use futures::StreamExt;
use server::{
    docker::build::{build_image, context_tar, image_tags, BuildError, BuildRequest, BuilderPreference},
    git::checkout,
    logs::{LogHub, LogLine, LogWriter},
    testkit::{
        docker::{process_running, process_with},
        DockerKit, GitRepo, TestDataDir, BASE_IMAGE,
    },
};

/// A log hub in a temp dir and a writer for build 1.
async fn log_for_test(dir: &TestDataDir) -> anyhow::Result<(LogHub, LogWriter)> {
    let hub = LogHub::new(dir.path());
    let writer = hub.writer(1, vec![]).await?;
    Ok((hub, writer))
}

async fn log_text(hub: &LogHub) -> anyhow::Result<String> {
    let lines: Vec<LogLine> = hub.read_from(1, 0).await?;
    Ok(lines.into_iter().map(|l| l.text).collect::<Vec<_>>().join("\n"))
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[tokio::test]
async fn checkout_of_a_branch_or_tag_fetches_its_tip_and_files() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    repo.write("app.txt", "main v1")?;
    let main_sha = repo.commit("main v1")?;
    repo.git(&["checkout", "-q", "-b", "feature/login"])?;
    repo.write("app.txt", "feature")?;
    let feature_sha = repo.commit("feature")?;
    repo.git(&["tag", "-a", "-m", "release", "v1.0"])?;
    repo.git(&["checkout", "-q", "main"])?;
    let dir = TestDataDir::new()?;
    let (hub, mut log) = log_for_test(&dir).await?;

    let started = Instant::now();
    let dest = dir.path().join("ws-branch");
    let got = checkout(&repo.url(), "feature/login", &dest, &mut log).await?;
    eprintln!("checkout of a branch took {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(got.commit, feature_sha);
    assert_eq!(got.short, &feature_sha[..7]);
    assert_eq!(read(&dest, "app.txt"), "feature");
    // Exactly the requested commit: a shallow clone without main's history.
    let shallow = std::fs::read_to_string(dest.join(".git/shallow"))?;
    assert_eq!(shallow.trim(), feature_sha);

    let dest = dir.path().join("ws-main");
    let got = checkout(&repo.url(), "main", &dest, &mut log).await?;
    assert_eq!(got.commit, main_sha);
    assert_eq!(read(&dest, "app.txt"), "main v1");

    // An annotated tag resolves to the commit it points at.
    let dest = dir.path().join("ws-tag");
    let got = checkout(&repo.url(), "v1.0", &dest, &mut log).await?;
    assert_eq!(got.commit, feature_sha);

    let text = log_text(&hub).await?;
    assert!(text.contains(&format!("Checked out {feature_sha}")), "{text}");
    Ok(())
}

#[tokio::test]
async fn checkout_of_an_older_commit_by_sha_gets_exactly_that_commit() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    repo.write("app.txt", "first")?;
    let first = repo.commit("first")?;
    repo.write("app.txt", "second")?;
    repo.write("new.txt", "only in second")?;
    repo.commit("second")?;
    let dir = TestDataDir::new()?;
    let (_hub, mut log) = log_for_test(&dir).await?;

    let dest = dir.path().join("ws");
    let started = Instant::now();
    let got = checkout(&repo.url(), &first, &dest, &mut log).await?;
    eprintln!("checkout of a commit took {:.2} s", started.elapsed().as_secs_f64());

    assert_eq!(got.commit, first);
    assert_eq!(got.short, &first[..7]);
    assert_eq!(read(&dest, "app.txt"), "first");
    assert!(!dest.join("new.txt").exists());

    // An abbreviated id is no ref: the fallback fetches all branches and
    // finds the commit among them.
    let dest = dir.path().join("ws-short");
    let got = checkout(&repo.url(), &first[..10], &dest, &mut log).await?;
    assert_eq!(got.commit, first);
    assert_eq!(read(&dest, "app.txt"), "first");
    Ok(())
}

#[tokio::test]
async fn checkout_of_a_missing_ref_fails_and_a_used_workspace_is_refused() -> anyhow::Result<()> {
    let repo = GitRepo::http_service("x")?;
    let dir = TestDataDir::new()?;
    let (_hub, mut log) = log_for_test(&dir).await?;

    let err = checkout(&repo.url(), "no-such-branch", &dir.path().join("ws"), &mut log)
        .await
        .expect_err("a missing branch was checked out");
    assert!(format!("{err:#}").contains("git fetch"), "{err:#}");

    let used = dir.path().join("used");
    std::fs::create_dir_all(&used)?;
    std::fs::write(used.join("leftover"), "x")?;
    let err =
        checkout(&repo.url(), "main", &used, &mut log).await.expect_err("a used workspace was accepted");
    assert!(format!("{err:#}").contains("not empty"), "{err:#}");
    Ok(())
}

#[tokio::test]
async fn hostile_urls_and_refs_are_rejected_before_any_process_runs() -> anyhow::Result<()> {
    let repo = GitRepo::http_service("x")?;
    let dir = TestDataDir::new()?;
    let (hub, mut log) = log_for_test(&dir).await?;
    let marker = dir.path().join("pwned");
    let marker_s = marker.display().to_string();
    let good_url = repo.url();
    let hostile = [
        (format!("--upload-pack=touch {marker_s}"), "main".to_string()),
        (format!("ext::sh -c touch% {marker_s}"), "main".to_string()),
        ("file:///tmp/x;touch /tmp/y".to_string(), "main".to_string()),
        ("https://host/x\nmain".to_string(), "main".to_string()),
        (good_url.clone(), format!("--upload-pack=touch {marker_s}")),
        (good_url.clone(), "main;touch x".to_string()),
        (good_url.clone(), "$(touch x)".to_string()),
        (good_url.clone(), "HEAD~1".to_string()),
        (good_url.clone(), "main..dev".to_string()),
        (good_url.clone(), "-".to_string()),
    ];
    for (i, (url, git_ref)) in hostile.iter().enumerate() {
        let dest = dir.path().join(format!("ws-{i}"));
        let result = checkout(url, git_ref, &dest, &mut log).await;
        assert!(result.is_err(), "accepted {url:?} {git_ref:?}");
        // Rejected before the workspace was even made, so before git ran.
        assert!(!dest.exists(), "{url:?} {git_ref:?} got as far as creating the workspace");
    }
    assert!(!marker.exists());
    assert_eq!(log.last_seq(), 0, "nothing was logged: {}", log_text(&hub).await?);
    Ok(())
}

#[tokio::test]
async fn url_credentials_never_reach_the_log_or_the_error() -> anyhow::Result<()> {
    let dir = TestDataDir::new()?;
    let (hub, mut log) = log_for_test(&dir).await?;
    let port = server::testkit::free_port()?;
    let url = format!("https://deploy:s3cr3t-t0ken@127.0.0.1:{port}/org/repo.git");

    let err =
        checkout(&url, "main", &dir.path().join("ws"), &mut log).await.expect_err("nothing listens there");

    let text = log_text(&hub).await?;
    assert!(text.contains(&format!("https://127.0.0.1:{port}/org/repo.git")), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(!format!("{err:#}").contains("s3cr3t"), "{err:#}");
    Ok(())
}

#[test]
fn context_tar_keeps_symlinks_as_links_and_rejects_a_dockerfile_outside_the_context() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(ctx.join("sub"))?;
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n")?;
    std::fs::write(ctx.join("sub/a.txt"), "a")?;
    std::os::unix::fs::symlink("/etc/passwd", ctx.join("passwd-link"))?;
    std::fs::write(dir.path().join("Dockerfile.outside"), "FROM scratch\n")?;

    let tar = context_tar(&ctx, "Dockerfile")?;
    let mut archive = tar::Archive::new(&tar[..]);
    let mut seen = HashMap::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let path = entry.path()?.display().to_string();
        let link = entry.link_name()?.map(|l| l.display().to_string());
        seen.insert(path, (entry.header().entry_type(), link, entry.size()));
    }
    let (kind, link, _) = seen.get("passwd-link").expect("the symlink is in the context");
    assert_eq!(*kind, tar::EntryType::Symlink);
    assert_eq!(link.as_deref(), Some("/etc/passwd"));
    assert_eq!(seen.get("sub/a.txt").map(|e| e.2), Some(1));
    assert!(seen.contains_key("Dockerfile"));

    for outside in ["../Dockerfile.outside", "/etc/passwd", "sub/../../Dockerfile.outside"] {
        assert!(context_tar(&ctx, outside).is_err(), "{outside} accepted");
    }
    assert!(context_tar(&ctx, "Missing.Dockerfile").is_err());
    Ok(())
}

/// A build request with the kit's labels (so cleanup removes the image) and
/// tags unique to this test run.
fn request(kit: &DockerKit, context: &Path, service: &str) -> BuildRequest {
    let service = format!("{service}-{}", kit.run_id);
    BuildRequest {
        context_dir: context.to_path_buf(),
        dockerfile: "Dockerfile".into(),
        tags: image_tags("test", &service, 1, "abc1234", "feature/x"),
        build_args: HashMap::new(),
        labels: kit.labels(),
        ..BuildRequest::default()
    }
}

/// The same with the classic builder.
fn classic(kit: &DockerKit, context: &Path, service: &str) -> BuildRequest {
    BuildRequest { builder: BuilderPreference::Classic, ..request(kit, context, service) }
}

#[tokio::test]
async fn dockerignored_files_are_absent_from_the_build_context() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let repo = GitRepo::new()?;
    repo.write("secret.txt", "do not ship")?;
    repo.write("logs/today.log", "noise")?;
    // The run id keeps BuildKit from answering a rerun from its cache.
    repo.write("keep.txt", &format!("shipped {}", kit.run_id))?;
    // Ignoring the Dockerfile itself must not stop it being sent.
    repo.write(".dockerignore", "# test\nsecret.txt\nlogs\nDockerfile\n")?;
    repo.write(
        "Dockerfile",
        &format!(
            "FROM {BASE_IMAGE}\nCOPY . /ctx\n\
             RUN test ! -e /ctx/secret.txt && test ! -e /ctx/logs && test -e /ctx/keep.txt \
             && echo context-ok\n"
        ),
    )?;
    repo.commit("ignore")?;
    let dir = TestDataDir::new()?;
    let (hub, mut log) = log_for_test(&dir).await?;
    let ws = dir.path().join("ws");
    checkout(&repo.url(), "main", &ws, &mut log).await?;

    let built = build_image(&kit.docker, request(&kit, &ws, "ignore"), &mut log).await;

    let text = log_text(&hub).await?;
    let built = built.map_err(|e| anyhow::anyhow!("{e}\n{text}"))?;
    assert!(built.image_id.starts_with("sha256:"));
    assert!(text.contains("context-ok"), "{text}");
    Ok(())
}

#[tokio::test]
async fn successful_build_logs_each_step_and_returns_an_image_id_carrying_every_tag() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let repo = GitRepo::http_service("hello from build")?;
    let dir = TestDataDir::new()?;
    let (hub, mut log) = log_for_test(&dir).await?;
    let ws = dir.path().join("ws");
    let started = Instant::now();
    let co = checkout(&repo.url(), "main", &ws, &mut log).await?;
    let checkout_secs = started.elapsed().as_secs_f64();
    let mut req = request(&kit, &ws, "ok");
    req.tags = image_tags("test", &format!("ok-{}", kit.run_id), 7, &co.short, "main");
    req.build_args.insert("UNUSED_ARG".into(), "x".into());
    let tags = req.tags.clone();

    let started = Instant::now();
    let built = build_image(&kit.docker, req, &mut log).await;
    eprintln!("checkout {checkout_secs:.2} s, build {:.2} s", started.elapsed().as_secs_f64());

    let text = log_text(&hub).await?;
    let built = built.map_err(|e| anyhow::anyhow!("{e}\n{text}"))?;
    assert_eq!(built.tags, tags);
    assert!(tags[1].ends_with(&format!(":sha-{}", co.short)));
    assert!(tags[2].ends_with(":main-latest"));
    // BuildKit's steps (FROM, COPY: EXPOSE and CMD are image config; this
    // engine names them `[stage-0 1/2]`, newer ones `[1/2]`), and the labels
    // in the image config, not in a `LABEL` step.
    assert!(text.lines().any(|l| l.contains("1/2] FROM ") && l.contains(BASE_IMAGE)), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with('#') && l.ends_with("2/2] COPY index.html /www/index.html")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with('#') && l.contains(" DONE ")), "{text}");
    assert!(!text.contains("LABEL"), "{text}");
    assert!(built.image_id.starts_with("sha256:") && built.image_id.len() == 71, "{}", built.image_id);
    for tag in &tags {
        let image = kit.docker.inspect_image(tag).await?;
        assert_eq!(image.id.as_deref(), Some(built.image_id.as_str()), "{tag}");
    }
    let image = kit.docker.inspect_image(&built.image_id).await?;
    let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels.get(server::testkit::TEST_LABEL), Some(&kit.run_id));
    Ok(())
}

#[tokio::test]
async fn failing_run_step_gives_step_failed_naming_that_step() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let ctx = tempfile::tempdir()?;
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {BASE_IMAGE}\nRUN echo before-the-failure && false\nRUN echo after\n"),
    )?;
    let dir = TestDataDir::new()?;
    let (hub, mut log) = log_for_test(&dir).await?;

    let err = build_image(&kit.docker, request(&kit, ctx.path(), "fail"), &mut log)
        .await
        .expect_err("RUN false built");

    let text = log_text(&hub).await?;
    match &err {
        BuildError::StepFailed { step, message } => {
            assert!(step.ends_with("2/3] RUN echo before-the-failure && false"), "{step}\n{text}");
            assert!(step.starts_with('['), "{step}");
            assert!(message.contains("exit code: 1"), "{message}");
        }
        other => panic!("expected StepFailed, got {other:?}\n{text}"),
    }
    assert!(err.to_string().contains("2/3] RUN echo before-the-failure && false failed: "), "{err}");
    // The step's output and its error are in the log; the next step never ran.
    assert!(text.lines().any(|l| l.starts_with('#') && l.ends_with(" before-the-failure")), "{text}");
    assert!(text.lines().any(|l| l.starts_with('#') && l.contains(" ERROR: ")), "{text}");
    assert!(!text.contains("3/3] RUN echo after"), "{text}");
    Ok(())
}

#[tokio::test]
async fn the_classic_builder_still_builds_names_steps_and_failures() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let repo = GitRepo::http_service("hello from the classic builder")?;
    let dir = TestDataDir::new()?;
    let (hub, mut log) = log_for_test(&dir).await?;
    let ws = dir.path().join("ws");
    checkout(&repo.url(), "main", &ws, &mut log).await?;
    let req = classic(&kit, &ws, "classic-ok");
    let tags = req.tags.clone();

    let built = build_image(&kit.docker, req, &mut log).await;

    let text = log_text(&hub).await?;
    let built = built.map_err(|e| anyhow::anyhow!("{e}\n{text}"))?;
    // Labels add a last `LABEL` step with the classic builder: 4 + 1 steps.
    assert!(text.contains(&format!("Step 1/5 : FROM {BASE_IMAGE}")), "{text}");
    assert!(text.contains("Step 2/5 : COPY index.html /www/index.html"), "{text}");
    for tag in &tags {
        let image = kit.docker.inspect_image(tag).await?;
        assert_eq!(image.id.as_deref(), Some(built.image_id.as_str()), "{tag}");
    }

    let ctx = tempfile::tempdir()?;
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {BASE_IMAGE}\nRUN false\nRUN echo after\n"))?;
    // `RUN false` right after `FROM`: a failed build keeps the layers of the
    // steps before it as unlabelled build cache, which cleanup would miss.
    let err = build_image(&kit.docker, classic(&kit, ctx.path(), "classic-fail"), &mut log)
        .await
        .expect_err("RUN false built");
    let text = log_text(&hub).await?;
    match &err {
        BuildError::StepFailed { step, message } => {
            assert_eq!(step, "Step 2/4 : RUN false", "{text}");
            assert!(message.contains("non-zero code: 1"), "{message}");
        }
        other => panic!("expected StepFailed, got {other:?}\n{text}"),
    }
    assert!(!text.contains("Step 3/4"), "{text}");
    Ok(())
}

#[tokio::test]
async fn dropping_a_build_future_stops_the_running_step() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let ctx = tempfile::tempdir()?;
    let marker = format!("cancel-me-{}", kit.run_id);
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {BASE_IMAGE}\nRUN sleep 60 && echo {marker}\n"),
    )?;
    let dir = TestDataDir::new()?;
    let (_hub, mut log) = log_for_test(&dir).await?;
    let req = request(&kit, ctx.path(), "cancel");
    let tag = req.tags[0].clone();

    // Drive the build until its RUN step's process runs, then a bit more,
    // then drop it.
    let pid = {
        let build = build_image(&kit.docker, req, &mut log);
        tokio::pin!(build);
        let watch = async {
            loop {
                if let Some(pid) = process_with(&marker) {
                    return pid;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let pid = tokio::select! {
            result = &mut build => panic!("the build ended before being dropped: {result:?}"),
            pid = tokio::time::timeout(Duration::from_secs(60), watch) => pid,
        };
        let pid = pid.expect("the RUN step started a process");
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut build).await;
        pid
    }; // <- the build future is dropped here
    let dropped_at = Instant::now();

    let deadline = dropped_at + Duration::from_secs(10);
    while process_running(pid) {
        assert!(Instant::now() < deadline, "the step (pid {pid}) still runs 10 s after the drop");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("the step stopped {:.2} s after the drop", dropped_at.elapsed().as_secs_f64());
    assert!(kit.docker.inspect_image(&tag).await.is_err(), "a cancelled build produced {tag}");
    Ok(())
}

#[tokio::test]
async fn dropping_a_classic_build_future_stops_the_running_step_container() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let ctx = tempfile::tempdir()?;
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {BASE_IMAGE}\nRUN sleep 60\n"))?;
    let dir = TestDataDir::new()?;
    let (hub, mut log) = log_for_test(&dir).await?;
    let mut live = Box::pin(hub.subscribe(1, 0));
    let req = classic(&kit, ctx.path(), "cancel-classic");
    let tag = req.tags[0].clone();

    // Drive the build until its RUN container is running, then a bit more,
    // then drop it.
    let container = {
        let build = build_image(&kit.docker, req, &mut log);
        tokio::pin!(build);
        let watch = async {
            while let Some(line) = live.next().await {
                if let Some(id) = line.text.trim().strip_prefix("---> Running in ") {
                    return Some(id.to_string());
                }
            }
            None
        };
        let found = tokio::select! {
            result = &mut build => panic!("the build ended before being dropped: {result:?}"),
            found = tokio::time::timeout(Duration::from_secs(60), watch) => found,
        };
        let container = found.ok().flatten().expect("the RUN step started a container");
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut build).await;
        container
    }; // <- the build future is dropped here
    let dropped_at = Instant::now();

    let deadline = dropped_at + Duration::from_secs(10);
    loop {
        let running = match kit.docker.inspect_container(&container, None::<InspectContainerOptions>).await {
            Ok(c) => c.state.and_then(|s| s.running).unwrap_or(false),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => false,
            Err(e) => return Err(e.into()),
        };
        if !running {
            break;
        }
        assert!(Instant::now() < deadline, "container {container} still runs 10 s after the drop");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("the step container stopped {:.2} s after the drop", dropped_at.elapsed().as_secs_f64());
    assert!(kit.docker.inspect_image(&tag).await.is_err(), "a cancelled build produced {tag}");
    Ok(())
}
