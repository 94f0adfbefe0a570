//! The build page's Pipeline section, in Chromium against the real server:
//! a run of a two-step pipeline with a service shows its steps (status,
//! dependencies), the service's health and the progress of finished steps;
//! a click on a step shows only that step's log lines, "All steps" shows
//! them all again.

use crate::support;

use std::{sync::Arc, time::Duration};

use anyhow::ensure;
use app::wire::Role;
use server::{
    builds::TriggerBuild,
    deploys::switch::RouteTable,
    docker::DockerEngine,
    engine::{Engine, EngineSettings},
    projects::{ProjectStore, ServiceSpec},
    testkit::{
        engine::{anyhow_of, user},
        wait::{unique_suffix, wait_until},
        GitRepo, BASE_IMAGE,
    },
};
use support::{page::UI_LIMIT, Harness};

const LIMIT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn the_build_page_shows_the_pipeline_and_filters_the_log_by_step() {
    support::run("pipeline_page", |h| Box::pin(flow(h))).await;
}

/// The texts of the log lines the reader can see.
const VISIBLE_LINES: &str = "return [...document.querySelectorAll('#build-log .log-line')]\
    .filter(e => e.offsetParent !== null).map(e => e.textContent);";

async fn visible_lines(h: &Harness) -> anyhow::Result<Vec<String>> {
    Ok(serde_json::from_value(h.js(VISIBLE_LINES, vec![]).await?)?)
}

async fn flow(h: &Harness) -> anyhow::Result<()> {
    support::docker::ensure_base_image().await?;
    let suffix = unique_suffix();
    let repo = GitRepo::http_service("piped")?;
    repo.write(
        ".slipway.yml",
        &format!(
            "services:\n  cache:\n    image: {BASE_IMAGE}\n    command: [\"httpd\", \"-f\", \"-p\", \"8081\", \"-h\", \"/etc\"]\n    \
             healthcheck:\n      cmd: [\"wget\", \"-qO-\", \"http://127.0.0.1:8081/passwd\"]\n      interval: 1s\n\
             steps:\n\
             \x20 - name: lint\n    image: {BASE_IMAGE}\n    commands: [\"echo lint-says-hi\"]\n\
             \x20 - name: unit\n    image: {BASE_IMAGE}\n    depends_on: [lint]\n    commands: [\"echo unit-says-hi\"]\n"
        ),
    )?;
    repo.commit("pipeline")?;
    h.set_up_admin("admin", "e2e-correct-horse-battery").await?;

    let db = h.open_db().await?;
    let engine = Engine::open(
        db.clone(),
        DockerEngine::from_env(),
        Arc::new(RouteTable::new()),
        EngineSettings { allow_local_repos: true, ..EngineSettings::new(h.data_path()) },
        None,
    )
    .await?;
    let store = ProjectStore::new(db.clone());
    let p = store.create_project(&format!("pipe-{suffix}")).await?;
    let service_id = store.create_service(p.id, &ServiceSpec::new("web", repo.url(), 8080)).await?.id;
    let queued = engine
        .trigger_build(&user(Role::Deployer), TriggerBuild::manual_build_only(service_id))
        .await
        .map_err(anyhow_of)?;
    wait_until("the pipeline run to end", LIMIT, || {
        let engine = engine.clone();
        async move { Ok(engine.build(queued.id).await.map_err(anyhow_of)?.status.is_terminal().then_some(())) }
    })
    .await?;

    h.open(&format!("/builds/{}", queued.id)).await?;
    h.wait_main_hydrated().await?;
    let steps = h.find_all("#pipeline li.step").await?;
    ensure!(steps.len() == 2, "{} steps shown", steps.len());
    let unit = h.text_of("#pipeline li.step[data-step='unit']").await?.unwrap_or_default();
    ensure!(unit.contains("success") && unit.contains("after lint"), "unit: {unit:?}");
    let services = h.text_of("#pipeline-services").await?.unwrap_or_default();
    ensure!(services.contains("cache") && services.contains("healthy after"), "services: {services:?}");
    let progress = h.find("#pipeline-progress").await?;
    ensure!(progress.attr("value").await?.as_deref() == Some("2"), "progress value");
    ensure!(progress.attr("max").await?.as_deref() == Some("2"), "progress max");

    let all = visible_lines(h).await?;
    ensure!(all.iter().any(|l| l.contains("unit-says-hi")), "every line first: {all:?}");
    h.click("#pipeline li.step[data-step='lint'] button.step-name").await?;
    let shown = h
        .poll(UI_LIMIT, "only lint's lines", || async {
            let lines = visible_lines(h).await?;
            Ok((!lines.is_empty() && !lines.iter().any(|l| l.contains("unit-says-hi"))).then_some(lines))
        })
        .await?;
    ensure!(shown.iter().any(|l| l.contains("lint-says-hi")), "lint's lines: {shown:?}");
    ensure!(shown.len() < all.len(), "{} of {} lines shown", shown.len(), all.len());
    h.click("button#step-all").await?;
    h.poll(UI_LIMIT, "every line again", || async {
        Ok((visible_lines(h).await?.len() == all.len()).then_some(()))
    })
    .await?;
    Ok(())
}
