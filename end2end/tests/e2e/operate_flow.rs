//! Operating a deployed service from the dashboard, in Chromium against the
//! real server, git and Docker: the Logs tab shows a line the container
//! printed after the page was opened; the State tab reads "running"; Restart
//! keeps the app answering (a load client on the edge sees no failure);
//! Stop gives 503 and Start brings it back; Delete (typing the name)
//! removes the service and its containers.
//!
//! The admin is made through /setup; the project, service and first deploy
//! are seeded through the database and the server's own job queue, which
//! the dashboard flow test already covers through the pages.

use crate::support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use app::wire::Role;
use server::{
    builds::TriggerBuild,
    deploys::switch::RouteTable,
    docker::{labels, DockerEngine},
    engine::{Engine, EngineSettings},
    projects::{ProjectStore, ServiceSpec},
    testkit::{
        engine::{anyhow_of, quick_http_check, user},
        wait::{unique_suffix, wait_until},
        GitRepo,
    },
};
use support::{edge, page::UI_LIMIT, Harness};

const LIMIT: Duration = Duration::from_secs(120);
const ADMIN: &str = "admin";
const PASSWORD: &str = "e2e-correct-horse-battery";

#[tokio::test]
async fn logs_restart_stop_start_and_delete_from_the_dashboard() {
    support::run("operate_flow", |h| Box::pin(flow(h))).await;
}

/// Ticks a counter on stdout every 200 ms beside its httpd.
fn ticking_repo() -> anyhow::Result<GitRepo> {
    GitRepo::script_service(
        "#!/bin/sh\necho ok > /www/index.html\n\
         (i=0; while true; do i=$((i+1)); echo \"tick $i\"; sleep 0.2; done) &\n\
         exec httpd -f -p 8080 -h /www\n",
        &[],
    )
}

/// The highest `tick N` in `text`.
fn last_tick(text: &str) -> u64 {
    text.lines().filter_map(|l| l.trim().strip_prefix("tick ")?.trim().parse().ok()).max().unwrap_or(0)
}

async fn flow(h: &Harness) -> anyhow::Result<()> {
    support::docker::ensure_base_image().await?;
    let suffix = unique_suffix();
    let (project, name) = (format!("ops-{suffix}"), format!("tick-{suffix}"));
    let host = format!("{name}.{project}.localhost");
    let repo = ticking_repo()?;

    h.set_up_admin(ADMIN, PASSWORD).await?;

    // Seed the service and deploy it through the server's queue.
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
    let p = store.create_project(&project).await?;
    let mut spec = ServiceSpec::new(&name, repo.url(), 8080);
    spec.health = quick_http_check("/");
    spec.drain_secs = 5;
    let service_id = store.create_service(p.id, &spec).await?.id;
    let req = TriggerBuild {
        service_id,
        git_ref: None,
        trigger: "manual".into(),
        deploy: true,
        build_only: false,
        no_cache: false,
        group: None,
    };
    engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    edge::wait_for_body(h.server.edge_addr, &host, "ok", LIMIT).await.context("first deploy")?;

    // Logs: a tick printed after the tab opened.
    h.open(&format!("/services/{service_id}")).await?;
    h.wait_main_hydrated().await?;
    h.click("button#tab-logs").await?;
    let first = h
        .poll(UI_LIMIT, "#container-log to show ticks", || async {
            let n = last_tick(&h.text_of("#container-log").await?.unwrap_or_default());
            Ok((n > 0).then_some(n))
        })
        .await?;
    h.poll(UI_LIMIT, "a tick printed after the tab opened", || async {
        let n = last_tick(&h.text_of("#container-log").await?.unwrap_or_default());
        Ok((n >= first + 5).then_some(()))
    })
    .await?;

    // State, then Restart under load.
    h.click("button#tab-runtime").await?;
    h.poll(UI_LIMIT, "#runtime-state to read running", || async {
        Ok(h.text_of("#runtime-state").await?.filter(|s| s == "running").map(|_| ()))
    })
    .await?;
    let load = Load::start(h.server.edge_addr, host.clone());
    h.click("button#restart").await?;
    h.browser.accept_alert().await.context("the restart confirmation")?;
    h.poll(LIMIT, "#runtime-actions to list the restart", || async {
        Ok(h.text_of("#runtime-actions").await?.filter(|t| t.contains("restarted")).map(|_| ()))
    })
    .await?;
    let (ok, failed) = load.stop().await;
    ensure!(failed == 0 && ok > 10, "restart under load: {ok} answered, {failed} failed");

    // Stop: 503; Start: answering again.
    h.click("button#stop").await?;
    h.browser.accept_alert().await.context("the stop confirmation")?;
    wait_status(h, &host, 503).await?;
    h.poll(UI_LIMIT, "button#start after the stop", || async { Ok(h.find("button#start").await.ok()) })
        .await?;
    h.click("button#start").await?;
    wait_status(h, &host, 200).await?;

    // Delete after typing the name.
    h.fill("#delete-confirm", &name).await?;
    h.click("button#delete-service").await?;
    wait_until("the service row to go", LIMIT, || {
        let store = store.clone();
        async move { Ok(store.get_service(service_id).await.is_err().then_some(())) }
    })
    .await?;
    let uid = server::db::instance_uid(&db).await?;
    let left = engine
        .docker
        .containers_labelled(&[(labels::INSTANCE, &uid), (labels::SERVICE_ID, &service_id.to_string())])
        .await?;
    ensure!(left.is_empty(), "containers left after the delete: {left:?}");
    wait_status(h, &host, 404).await
}

async fn wait_status(h: &Harness, host: &str, want: u16) -> anyhow::Result<()> {
    let edge = h.server.edge_addr;
    wait_until(&format!("{host} to answer {want}"), LIMIT, || {
        let host = host.to_string();
        async move {
            let got = tokio::task::spawn_blocking(move || edge::get(edge, &host)).await?;
            Ok(matches!(got, Ok((code, _)) if code == want).then_some(()))
        }
    })
    .await
}

/// GETs through the edge on a blocking thread until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Load {
    fn start(edge: std::net::SocketAddr, host: String) -> Load {
        let (stop, ok, failed) =
            (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match edge::get(edge, &host) {
                    Ok((200, body)) if body.trim() == "ok" => o.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("load: {other:?}");
                        f.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        });
        Load { stop, ok, failed, thread }
    }

    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        (self.ok.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}
