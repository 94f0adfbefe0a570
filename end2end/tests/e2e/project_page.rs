//! The project page of a multi-service application (issue 18) in Chromium
//! against the real server, git and Docker: a web service, a worker that
//! takes the web service's image, and an `image` service with a volume.
//! "Deploy all" deploys the image service (the others have no build yet),
//! "Build all" builds the web service once and deploys both; the page then
//! shows the three services with their kinds, where the image comes from,
//! a link only for the routed one, and each one live. The project hook's
//! URL and secret are shown to the deployer.

use crate::support;

use std::time::Duration;

use anyhow::ensure;
use server::{
    projects::{HealthProbe, ProjectStore, ServiceKind, ServiceSpec, VolumeSpec},
    testkit::{engine::quick_http_check, wait::unique_suffix, GitRepo, BASE_IMAGE},
};
use support::{page::UI_LIMIT, Harness};

const LIMIT: Duration = Duration::from_secs(180);
const ADMIN: &str = "apps-admin";
const PASSWORD: &str = "apps-correct-horse-battery";

#[tokio::test]
async fn the_project_page_shows_each_kind_and_deploys_and_builds_all() {
    support::run("project_page", |h| Box::pin(flow(h))).await;
}

async fn flow(h: &Harness) -> anyhow::Result<()> {
    support::docker::ensure_base_image().await?;
    let suffix = unique_suffix();
    h.set_up_admin(ADMIN, PASSWORD).await?;
    let repo = GitRepo::http_service("web")?;
    let store = ProjectStore::new(h.open_db().await?);
    let project = store.create_project(&format!("apps-{suffix}")).await?;
    let mut web = ServiceSpec::new("web", repo.url(), 8080);
    web.health = quick_http_check("/");
    web.drain_secs = 0;
    store.create_service(project.id, &web).await?;
    let mut worker = ServiceSpec::new("worker", "", 8080);
    worker.kind = ServiceKind::Worker;
    worker.port = None;
    worker.image_from = Some("web".into());
    worker.command = Some(vec!["sh".into(), "-c".into(), "while true; do sleep 1; done".into()]);
    worker.health.probe = HealthProbe::None;
    worker.settle_secs = 1;
    store.create_service(project.id, &worker).await?;
    let mut cache = ServiceSpec::new("cache", "", 8080);
    cache.kind = ServiceKind::Image;
    cache.port = None;
    cache.image = Some(BASE_IMAGE.into());
    cache.command = Some(vec!["sh".into(), "-c".into(), "while true; do sleep 1; done".into()]);
    cache.health.probe = HealthProbe::None;
    cache.settle_secs = 1;
    cache.volumes = vec![VolumeSpec { name: "data".into(), path: "/data".into() }];
    store.create_service(project.id, &cache).await?;

    h.open(&format!("/projects/{}", project.id)).await?;
    h.wait_main_hydrated().await?;
    let row = |name: &str| format!(r#"li.service[data-service="{name}"]"#);
    for (name, kind) in [("web", "web"), ("worker", "worker"), ("cache", "image")] {
        let badge = h.text_of(&format!("{} .kind-badge", row(name))).await?;
        ensure!(badge.as_deref() == Some(kind), "{name}: kind badge {badge:?}");
    }
    let origin = h.text_of(&format!("{} .image-origin", row("worker"))).await?;
    ensure!(origin.as_deref() == Some("image from web"), "worker origin {origin:?}");
    ensure!(
        h.text_of(&format!("{} a.service-url", row("cache"))).await?.is_none(),
        "no route, no link for cache"
    );
    ensure!(h.text_of(&format!("{} a.service-url", row("web"))).await?.is_some(), "web has its link");

    // The project hook: one URL per forge, fanned out to the services.
    h.click("button#webhook-show").await?;
    let hook =
        h.poll(UI_LIMIT, "the project hook's URL", || async { h.text_of("#webhook-github").await }).await?;
    let path = format!("/hooks/github/projects/{}", project.id);
    ensure!(hook.ends_with(&path), "project hook {hook:?}, not …{path}");
    ensure!(h.text_of("#webhook-secret").await?.is_some_and(|s| s.len() == 64), "the secret is shown");

    h.click("button#deploy-all").await?;
    h.poll(UI_LIMIT, "the deploy-all notice", || async {
        Ok(h.text_of("#project-message").await?.filter(|t| t.contains("Deploying every service")))
    })
    .await?;
    live(h, &row("cache")).await?;
    h.click("button#build-all").await?;
    h.poll(UI_LIMIT, "the build-all notice", || async {
        Ok(h.text_of("#project-message").await?.filter(|t| t.starts_with("1 build(s) queued")))
    })
    .await?;
    for name in ["web", "worker", "cache"] {
        live(h, &row(name)).await?;
    }
    Ok(())
}

/// Reloads the page until the row says its service is live.
async fn live(h: &Harness, row: &str) -> anyhow::Result<()> {
    h.poll(LIMIT, &format!("{row} to be live"), || async {
        tokio::time::sleep(Duration::from_millis(900)).await;
        h.js("location.reload(); return null;", vec![]).await?;
        h.wait_main_hydrated().await?;
        let text = h.text_of(&format!("{row} .live-deployment")).await?.unwrap_or_default();
        Ok(text.starts_with("Live: #").then_some(()))
    })
    .await
}
