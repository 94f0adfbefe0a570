//! Image registries against a real one (Debian's `docker-registry`, htpasswd
//! auth, on a loopback port): a build pushes every tag; a deploy on an
//! engine that lacks the image pulls it by digest; wrong credentials are a
//! clear build error; the password never reaches the log, the API or the
//! database files. And multi-arch: a linux/arm64 build under QEMU, pushed as
//! a manifest list.

use std::time::Duration;

use app::wire::{RegistryForm, Role};
use bollard::query_parameters::RemoveImageOptionsBuilder;
use server::{
    builds::{Build, TriggerBuild},
    deploys::{DeployRequest, DeploymentStatus},
    docker::registry::Credentials,
    jobs::JobStatus,
    projects::{ProjectStore, Service},
    registry::manifest::Repository,
    testkit::{
        engine::{anyhow_of, user},
        registry::{ensure_arm64_base_image, require_arm64_emulation, LocalRegistry, ARM64_BASE_IMAGE},
        DockerKit, GitRepo, TestEngine,
    },
};

const LIMIT: Duration = Duration::from_secs(240);
const USER: &str = "pusher";

fn password(kit: &DockerKit) -> String {
    format!("pw-{}-secret", kit.run_id)
}

async fn set_registry(t: &TestEngine, service: &Service, host: &str, password: &str) -> anyhow::Result<()> {
    let form = RegistryForm {
        host: host.into(),
        image: "team/app".into(),
        username: Some(USER.into()),
        password: Some(password.into()),
    };
    let view = t
        .engine
        .set_project_registry(&user(Role::Admin), service.project_id, form)
        .await
        .map_err(anyhow_of)?;
    assert!(view.password_set);
    let json = serde_json::to_string(&view)?;
    assert!(!json.contains(password), "the password in the API answer: {json}");
    Ok(())
}

async fn build(t: &TestEngine, service: &Service) -> anyhow::Result<(Build, String)> {
    let queued = t
        .engine
        .trigger_build(&user(Role::Deployer), TriggerBuild::manual_build_only(service.id))
        .await
        .map_err(anyhow_of)?;
    let done = t.wait_build(queued.id, LIMIT).await?;
    let log = t.engine.build_log(&user(Role::Viewer), done.id, 0).await.map_err(anyhow_of)?;
    Ok((done, log.into_iter().map(|l| l.text).collect::<Vec<_>>().join("\n")))
}

/// Every file of the data dir (database, WAL, logs) as bytes.
pub(crate) fn data_dir_bytes(dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let mut all = Vec::new();
    for entry in walk(dir)? {
        all.extend(std::fs::read(entry)?);
    }
    Ok(all)
}

fn walk(dir: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(walk(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

/// Whether `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_build_pushes_every_tag_and_a_deploy_pulls_it_by_digest_after_rmi() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let secret = password(&kit);
    let registry = LocalRegistry::start(USER, &secret).await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service(&format!("pushed {}", kit.run_id))?;
    let service = t.service("reg", "web", &repo.url()).await?;
    set_registry(&t, &service, &registry.host, &secret).await?;

    let (built, log) = build(&t, &service).await?;
    assert_eq!(built.status, JobStatus::Succeeded, "{:?}\n{log}", built.error);
    let repository = format!("{}/team/app/web", registry.host);
    let pushed = built.pushed_ref.clone().unwrap_or_default();
    assert!(pushed.starts_with(&format!("{repository}@sha256:")), "{pushed}");
    // Every tag is in the registry, all naming the pushed manifest.
    let credentials = Credentials {
        server: registry.host.clone(),
        username: Some(USER.into()),
        password: Some(secret.clone()),
    };
    let mut client = Repository::new(&repository, &credentials)?;
    let digest = pushed.split_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
    assert_eq!(built.tags.len(), 3, "{:?}", built.tags);
    for tag in &built.tags {
        let tag = tag.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
        let platform = server::registry::manifest::Platform::parse("linux/amd64").expect("platform");
        let entry = client.entry(tag, platform).await?;
        assert_eq!(entry.digest, digest, "{tag}");
        assert!(log.contains(&format!("Pushed {repository}:{tag} (")), "{tag}:\n{log}");
    }

    // The engine loses the image; the deploy pulls it by digest.
    let image_id = built.image_id.clone().unwrap_or_default();
    kit.docker
        .remove_image(&image_id, Some(RemoveImageOptionsBuilder::new().force(true).build()), None)
        .await?;
    assert!(kit.docker.inspect_image(&image_id).await.is_err(), "the image is still there");
    let request =
        DeployRequest { service_id: service.id, build_id: Some(built.id), image: None, reason: None };
    let dep = t.engine.deploy(&user(Role::Deployer), request).await.map_err(anyhow_of)?;
    let dep = t.wait_deployment(dep.id, LIMIT).await?;
    assert_eq!(dep.status, DeploymentStatus::Live, "{:?}", dep.error);
    let pulled = kit.docker.inspect_image(&image_id).await?;
    assert_eq!(pulled.id.as_deref(), Some(image_id.as_str()));
    assert!(
        pulled.repo_digests.unwrap_or_default().contains(&pushed),
        "the image did not come from {pushed}"
    );

    // The password: never in the log, the views or the data dir.
    assert!(!log.contains(&secret), "the password in the build log");
    let view = t.engine.project_registry(&user(Role::Viewer), service.project_id).await.map_err(anyhow_of)?;
    assert!(!serde_json::to_string(&view)?.contains(&secret));
    let bytes = data_dir_bytes(t.data.path())?;
    assert!(!contains(&bytes, &secret), "the password in clear in the data dir");
    Ok(())
}

#[tokio::test]
async fn wrong_credentials_fail_the_build_with_the_registrys_refusal() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let registry = LocalRegistry::start(USER, &password(&kit)).await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::http_service("refused")?;
    let service = t.service("reg", "refused", &repo.url()).await?;
    let wrong = format!("wrong-{}", kit.run_id);
    set_registry(&t, &service, &registry.host, &wrong).await?;

    let (built, log) = build(&t, &service).await?;
    assert_eq!(built.status, JobStatus::Failed, "{log}");
    let error = built.error.clone().unwrap_or_default();
    let repository = format!("{}/team/app/refused", registry.host);
    assert!(error.contains(&format!("push to {repository}:")) && error.contains("refused"), "{error}");
    assert!(error.contains("unauthorized") || error.contains("authentication required"), "{error}");
    assert!(log.contains("Push failed: push to"), "{log}");
    assert!(!log.contains(&wrong) && !error.contains(&wrong), "the password in the log or error");
    assert!(built.pushed_ref.is_none());
    Ok(())
}

#[tokio::test]
async fn an_arm64_build_runs_under_qemu_and_is_pushed_as_a_manifest_list() -> anyhow::Result<()> {
    require_arm64_emulation()?;
    let kit = DockerKit::new().await?;
    ensure_arm64_base_image(&kit.docker).await?;
    let secret = password(&kit);
    let registry = LocalRegistry::start(USER, &secret).await?;
    let t = TestEngine::start(&kit).await?;
    let repo = GitRepo::new()?;
    repo.write("stamp", &kit.run_id)?;
    repo.write("Dockerfile", &format!("FROM {ARM64_BASE_IMAGE}\nCOPY stamp /stamp\nRUN uname -m\n"))?;
    repo.commit("arm64")?;
    let service = t.service("reg", "multi", &repo.url()).await?;
    let store = ProjectStore::new(t.engine.db.clone());
    let mut spec = service.spec.clone();
    spec.platforms = vec!["linux/arm64".into()];
    let service = store.update_service(service.id, &spec).await?;

    // Without a registry: one image per platform, tagged `<tag>-arm64`.
    let (local, log) = build(&t, &service).await?;
    assert_eq!(local.status, JobStatus::Succeeded, "{:?}\n{log}", local.error);
    assert!(log.lines().any(|l| l.starts_with('#') && l.ends_with(" aarch64")), "no aarch64 in:\n{log}");
    let arm_tag = local.tags.iter().find(|t| t.ends_with("-arm64")).cloned().unwrap_or_default();
    let image = kit.docker.inspect_image(&arm_tag).await?;
    assert_eq!(image.architecture.as_deref(), Some("arm64"), "{arm_tag}");

    // With one: each platform's tags, and a manifest list under the plain tags.
    set_registry(&t, &service, &registry.host, &secret).await?;
    let (pushed, log) = build(&t, &service).await?;
    assert_eq!(pushed.status, JobStatus::Succeeded, "{:?}\n{log}", pushed.error);
    let repository = format!("{}/team/app/multi", registry.host);
    let reference = pushed.pushed_ref.clone().unwrap_or_default();
    assert!(reference.starts_with(&format!("{repository}@sha256:")), "{reference}");
    let credentials =
        Credentials { server: registry.host.clone(), username: Some(USER.into()), password: Some(secret) };
    let mut client = Repository::new(&repository, &credentials)?;
    let build_tag = format!("build-{}", pushed.number);
    let list = client.list(&build_tag).await?;
    assert_eq!(list.media_type, server::registry::manifest::LIST_TYPE);
    let platforms: Vec<_> =
        list.manifests.iter().map(|m| (m.platform.os.as_str(), m.platform.architecture.as_str())).collect();
    assert_eq!(platforms, [("linux", "arm64")], "{list:?}");
    assert!(log.contains(&format!("Pushed manifest list {repository}:{build_tag} (linux/arm64)")), "{log}");
    Ok(())
}
