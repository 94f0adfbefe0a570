//! The build page's Pipeline section, in Chromium against the real server:
//! a run of a two-step pipeline with a service shows its steps (status,
//! dependencies), the service's health and the progress of finished steps;
//! a click on a step shows only that step's log lines, "All steps" shows
//! them all again. A matrix run shows its variants as tabs, a step's ANSI
//! colours as spans, and the service page's history counts passed steps.

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

#[tokio::test]
async fn matrix_variants_are_tabs_and_step_logs_keep_their_colours() {
    support::run("pipeline_page_matrix", |h| Box::pin(matrix_flow(h))).await;
}

/// The `data-variant` of the variant panels the reader can see.
const VISIBLE_VARIANTS: &str = "return [...document.querySelectorAll('#pipeline .pipeline-variant')]\
    .filter(e => e.offsetParent !== null).map(e => e.dataset.variant);";

async fn visible_variants(h: &Harness) -> anyhow::Result<Vec<String>> {
    Ok(serde_json::from_value(h.js(VISIBLE_VARIANTS, vec![]).await?)?)
}

async fn flow(h: &Harness) -> anyhow::Result<()> {
    let pipeline = format!(
        "services:\n  cache:\n    image: {BASE_IMAGE}\n    command: [\"httpd\", \"-f\", \"-p\", \"8081\", \"-h\", \"/etc\"]\n    \
         healthcheck:\n      cmd: [\"wget\", \"-qO-\", \"http://127.0.0.1:8081/passwd\"]\n      interval: 1s\n\
         steps:\n\
         \x20 - name: lint\n    image: {BASE_IMAGE}\n    commands: [\"echo lint-says-hi\"]\n\
         \x20 - name: unit\n    image: {BASE_IMAGE}\n    depends_on: [lint]\n    commands: [\"echo unit-says-hi\"]\n"
    );
    let (_, build_id) = run_pipeline(h, &pipeline).await?;

    h.open(&format!("/builds/{build_id}")).await?;
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

/// Sets up the admin, runs `pipeline` (the repository's `.slipway.yml`) as a
/// build-only run to its end and answers the service's and the build's id.
async fn run_pipeline(h: &Harness, pipeline: &str) -> anyhow::Result<(i64, i64)> {
    support::docker::ensure_base_image().await?;
    let suffix = unique_suffix();
    let repo = GitRepo::http_service("piped")?;
    repo.write(".slipway.yml", pipeline)?;
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
    Ok((service_id, queued.id))
}

/// Two variants of two steps; `colour` prints red text with ANSI codes
/// (`\033` is printf's own escape, inside the step's container).
const MATRIX: &str = r#"matrix:
  FLAVOUR: [plain, spicy]
steps:
  - name: colour
    image: BASE
    commands:
      - printf '\033[31mred\033[0m-%s\n' "$FLAVOUR"
  - name: after
    image: BASE
    depends_on: [colour]
    commands: ["echo after-$FLAVOUR"]
"#;

async fn matrix_flow(h: &Harness) -> anyhow::Result<()> {
    let (service_id, build_id) = run_pipeline(h, &MATRIX.replace("BASE", BASE_IMAGE)).await?;
    h.open(&format!("/builds/{build_id}")).await?;
    h.wait_main_hydrated().await?;

    // One tab per variant, the first one open.
    let tabs = h.find_all("#variant-tabs label.variant-tab").await?;
    ensure!(tabs.len() == 2, "{} tabs", tabs.len());
    let spicy = h.text_of("label.variant-tab[data-variant='1']").await?.unwrap_or_default();
    ensure!(spicy.contains("FLAVOUR=spicy") && spicy.contains("2/2 passed"), "tab: {spicy:?}");
    ensure!(visible_variants(h).await? == ["0"], "first tab open: {:?}", visible_variants(h).await?);
    h.click("label.variant-tab[data-variant='1']").await?;
    h.poll(UI_LIMIT, "the second tab open", || async {
        Ok((visible_variants(h).await? == ["1"]).then_some(()))
    })
    .await?;
    // Choosing a step re-renders the section: the open tab stays.
    h.click("#pipeline .pipeline-variant[data-variant='1'] li.step[data-step='colour'] button.step-name")
        .await?;
    h.poll(UI_LIMIT, "colour's lines only", || async { Ok(h.text_of("#log-step").await?.map(|_| ())) })
        .await?;
    let pressed = h.find_all("#pipeline li.step[data-step='colour'] button[aria-pressed='true']").await?;
    ensure!(pressed.len() == 2, "re-rendered with colour chosen: {}", pressed.len());
    ensure!(visible_variants(h).await? == ["1"], "tab kept: {:?}", visible_variants(h).await?);

    // The step's red text is a coloured span; no escape code is shown.
    let red: Vec<String> = serde_json::from_value(
        h.js(
            "return [...document.querySelectorAll('#build-log .log-line span.ansi-fg-1')].map(e => e.textContent);",
            vec![],
        )
        .await?,
    )?;
    ensure!(red.len() == 2 && red.iter().all(|t| t == "red"), "red spans: {red:?}");
    let lines = visible_lines(h).await?;
    ensure!(lines.iter().any(|l| l == "red-spicy"), "colour's lines: {lines:?}");
    // (The echoed command line shows `\033[31m` as typed: text, no ESC.)
    ensure!(!lines.iter().any(|l| l.contains('\u{1b}')), "escape codes shown: {lines:?}");

    // The service page's history: how many of the run's steps passed.
    h.open(&format!("/services/{service_id}")).await?;
    h.wait_main_hydrated().await?;
    let steps = h.text_of(&format!("table#builds tr[data-build-id='{build_id}'] td.steps")).await?;
    ensure!(steps.as_deref() == Some("4/4 steps"), "history steps cell: {steps:?}");
    Ok(())
}
