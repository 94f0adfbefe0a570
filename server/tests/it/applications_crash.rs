//! "Deploy all" (issue 18) against the real `slipway serve`, killed with
//! SIGKILL while the second service of the order deploys, then started
//! again: every service is live on its old or its new deployment, each live
//! container runs, no other container and no network but the project's is
//! left, and the database service's volume kept its data.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{ensure, Context};
use app::wire::Role;
use bollard::query_parameters::ListNetworksOptionsBuilder;
use server::{
    db::Db,
    deploys::{DeployRequest, DeploymentStatus},
    docker::labels,
    engine::Engine,
    projects::{HealthCheck, HealthProbe, ProjectStore, ServiceKind, ServiceSpec, VolumeSpec},
    testkit::{
        engine::{anyhow_of, user},
        wait::{unique_suffix, wait_until},
        Installation, BASE_IMAGE,
    },
};

const LIMIT: Duration = Duration::from_secs(120);

fn image_service(name: &str, argv: &[&str]) -> ServiceSpec {
    let mut spec = ServiceSpec::new(name, "", 8080);
    spec.kind = ServiceKind::Image;
    spec.port = None;
    spec.image = Some(BASE_IMAGE.to_string());
    spec.command = Some(argv.iter().map(|a| a.to_string()).collect());
    spec.health.probe = HealthProbe::None;
    spec.settle_secs = 1;
    spec.drain_secs = 0;
    spec
}

async fn job_status(db: &Db, id: i64) -> anyhow::Result<String> {
    Ok(sqlx::query_scalar("SELECT status FROM jobs WHERE id = ?").bind(id).fetch_one(db).await?)
}

async fn live_of(engine: &Engine, service: i64) -> anyhow::Result<i64> {
    wait_until("a live deployment", LIMIT, || async move { Ok(engine.live_of(service).await?.map(|d| d.id)) })
        .await
}

#[tokio::test]
async fn deploy_all_killed_midway_leaves_every_service_on_its_old_or_new_deployment() -> anyhow::Result<()> {
    let inst = &Installation::open(env!("CARGO_BIN_EXE_slipway")).await?;
    let (engine, db) = (&inst.engine, &inst.db);
    let unique = unique_suffix();
    let store = ProjectStore::new(db.clone());
    let project = store.create_project(&format!("all-{unique}")).await?;
    // db (a volume: stop-first) → web (slow to answer: the kill window) → worker.
    let mut db_spec =
        image_service("db", &["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]);
    db_spec.volumes = vec![VolumeSpec { name: "data".into(), path: "/data".into() }];
    let db_svc = store.create_service(project.id, &db_spec).await?;
    let mut web_spec = image_service("web", &["sh", "-c", "sleep 6; exec httpd -f -p 8080 -h /etc"]);
    web_spec.port = Some(8080);
    web_spec.health = HealthCheck {
        probe: HealthProbe::Http { path: "/hostname".into() },
        interval_ms: 200,
        timeout_ms: 1000,
        retries: 200,
        start_period_ms: 0,
    };
    web_spec.deploy_after = vec!["db".into()];
    let web = store.create_service(project.id, &web_spec).await?;
    // An image service without a port runs like a worker (no build needed).
    let mut worker_spec =
        image_service("worker", &["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]);
    worker_spec.deploy_after = vec!["web".into()];
    let worker = store.create_service(project.id, &worker_spec).await?;
    let services = [db_svc.id, web.id, worker.id];

    let mut server = inst.start_server().await?;
    let deployer = user(Role::Deployer);
    let mut old = HashMap::new();
    for id in services {
        let dep = engine
            .deploy(&deployer, DeployRequest { service_id: id, ..DeployRequest::default() })
            .await
            .map_err(anyhow_of)?;
        old.insert(id, dep.id);
    }
    for id in services {
        let live = live_of(engine, id).await.map_err(|e| e.context(server.log()))?;
        ensure!(live == old[&id], "service {id}: {live} is live, not {}", old[&id]);
    }
    let db_box = engine.live_of(db_svc.id).await?.and_then(|d| d.container_id).context("db's container")?;
    let (code, _) = exec(inst, &db_box, &["sh", "-c", "echo kept > /data/marker"]).await?;
    ensure!(code == 0, "wrote the marker");

    // Deploy all; killed while web's new container sleeps before serving.
    let job = engine.deploy_all(&deployer, project.id).await.map_err(anyhow_of)?;
    wait_until("web's new deployment to start", LIMIT, || async move {
        let starting: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM deployments WHERE service_id = ? AND status = 'starting' AND container_id IS NOT NULL",
        )
        .bind(web.id)
        .fetch_optional(db)
        .await?;
        Ok(starting)
    })
    .await
    .map_err(|e| e.context(server.log()))?;
    server.kill();
    ensure!(job_status(db, job).await? == "running", "killed mid deploy-all");

    server = inst.start_server().await?;
    let status = wait_until("deploy all to end", LIMIT, || async move {
        let s = job_status(db, job).await?;
        Ok((s != "queued" && s != "running").then_some(s))
    })
    .await?;
    ensure!(status != "succeeded", "an interrupted deploy all is given up: {status}");
    wait_until("no deployment in progress", LIMIT, || async move {
        let busy: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM deployments WHERE status IN ('pending', 'starting')")
                .fetch_one(db)
                .await?;
        Ok((busy == 0).then_some(()))
    })
    .await
    .map_err(|e| e.context(server.log()))?;

    // Every service is live on its old or its new deployment, and runs.
    let mut live_boxes = Vec::new();
    for id in services {
        let live = engine.live_of(id).await?.with_context(|| format!("service {id} has nothing live"))?;
        ensure!(live.status == DeploymentStatus::Live);
        ensure!(live.id >= old[&id], "service {id}: an older deployment than before is live");
        let container = live.container_id.context("a live container")?;
        let state = engine.docker.container_state(&container).await?.context("the live container exists")?;
        let running =
            wait_until("the live container to run", LIMIT, || {
                let container = container.clone();
                async move {
                    Ok(engine.docker.container_state(&container).await?.filter(|s| s.running).map(|_| ()))
                }
            })
            .await;
        ensure!(running.is_ok(), "service {id}'s live container is not running: {state:?}\n{}", server.log());
        live_boxes.push(container);
    }
    // db's deployment of the deploy all went live before the kill.
    ensure!(engine.live_of(db_svc.id).await?.map(|d| d.id) != Some(old[&db_svc.id]), "db was redeployed");

    // Nothing else: the live containers, and one network (the project's).
    let mut left = inst.containers(&[]).await?;
    left.sort();
    live_boxes.sort();
    ensure!(left == live_boxes, "orphan containers: {left:?} vs live {live_boxes:?}");
    let filters = HashMap::from([("label".to_string(), vec![format!("{}={}", labels::INSTANCE, inst.uid)])]);
    let networks = engine
        .docker
        .client()?
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await?;
    let names: Vec<String> = networks.into_iter().filter_map(|n| n.name).collect();
    ensure!(
        names == [server::docker::app_network::project_network(&inst.uid, project.id)],
        "networks left: {names:?}"
    );
    // The volume kept its data across the stop-first redeploy and the crash.
    let db_box = engine.live_of(db_svc.id).await?.and_then(|d| d.container_id).context("db's container")?;
    let (code, out) = exec(inst, &db_box, &["cat", "/data/marker"]).await?;
    ensure!(code == 0 && out.trim() == "kept", "the volume lost its data: {code} {out}");
    drop(server);
    Ok(())
}

async fn exec(inst: &Installation, container: &str, argv: &[&str]) -> anyhow::Result<(i64, String)> {
    server::testkit::docker::exec_output(inst.engine.docker.client()?, container, argv).await
}
