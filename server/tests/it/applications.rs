//! Multi-service applications (issue 18) on the real engine: a web service
//! and a worker that share one build (`image_from`, their own commands),
//! made by one signed push to the project hook,
//! a real Redis as an `image` service with a named volume, reached by the
//! name `redis`; project isolation; the worker's deploy overlap.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use app::wire::Role;
use bollard::{query_parameters::EventsOptionsBuilder, Docker};
use futures::StreamExt;
use server::{
    builds::TriggerBuild,
    deploys::{DeployRequest, DeploymentStatus},
    docker::app_network,
    jobs::JobStatus,
    projects::{
        HealthCheck, HealthProbe, Project, ProjectStore, Service, ServiceKind, ServiceSpec, VolumeSpec,
    },
    testkit::{
        engine::{anyhow_of, user},
        ensure_debian_image,
        wait::{unique_suffix, wait_until},
        DockerKit, GitRepo, TestEngine, BASE_IMAGE,
    },
    webhooks::Forge,
};

use super::webhooks::{Delivery, Hooks};

const LIMIT: Duration = Duration::from_secs(180);
/// The first run on a machine makes the Debian image (debootstrap).
const IMAGE_LIMIT: Duration = Duration::from_secs(900);

fn command(argv: &[&str]) -> Option<Vec<String>> {
    Some(argv.iter().map(|a| a.to_string()).collect())
}

fn probe(argv: &[&str]) -> HealthCheck {
    HealthCheck {
        probe: HealthProbe::Command { argv: argv.iter().map(|a| a.to_string()).collect() },
        interval_ms: 200,
        timeout_ms: 2000,
        retries: 100,
        start_period_ms: 0,
    }
}

/// An `image` service running `image` with `argv`, no port.
fn image_service(name: &str, image: &str, argv: &[&str]) -> ServiceSpec {
    let mut spec = ServiceSpec::new(name, "", 8080);
    spec.kind = ServiceKind::Image;
    spec.port = None;
    spec.image = Some(image.to_string());
    spec.command = command(argv);
    spec.health.probe = HealthProbe::None;
    spec.settle_secs = 1;
    spec.drain_secs = 0;
    spec
}

async fn deploy(t: &TestEngine, service: &Service, build_id: Option<i64>) -> anyhow::Result<i64> {
    let req = DeployRequest { service_id: service.id, build_id, ..DeployRequest::default() };
    let dep = t.engine.deploy(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    let dep = t.wait_deployment(dep.id, LIMIT).await?;
    assert_eq!(
        dep.status,
        DeploymentStatus::Live,
        "{}: {:?} {:?}",
        service.spec.name,
        dep.error,
        dep.log_tail
    );
    Ok(dep.id)
}

async fn live_container(t: &TestEngine, service: &Service) -> anyhow::Result<String> {
    let live = t.engine.live_of(service.id).await?.context("a live deployment")?;
    live.container_id.context("a container")
}

async fn exec(docker: &Docker, container: &str, argv: &[&str]) -> anyhow::Result<(i64, String)> {
    server::testkit::docker::exec_output(docker, container, argv).await
}

/// `redis-cli -h redis …` from `container`, retried until it answers
/// (Redis may still be loading its data right after a deploy).
async fn redis(docker: &Docker, container: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec!["redis-cli", "-h", "redis"];
    argv.extend_from_slice(args);
    wait_until(&format!("redis {args:?} from {container}"), Duration::from_secs(30), || async {
        let (code, out) = exec(docker, container, &argv).await?;
        let out = out.trim().to_string();
        Ok((code == 0 && !out.contains("LOADING") && !out.contains("Could not connect")).then_some(out))
    })
    .await
}

#[tokio::test]
async fn one_build_runs_a_web_service_and_a_worker_beside_redis_whose_volume_outlives_redeploy_and_rollback(
) -> anyhow::Result<()> {
    // The real router and webhook endpoint, and workers running.
    let hooks = Hooks::new(true).await?;
    let (kit, t) = (&hooks.kit, &hooks.t);
    let image = tokio::time::timeout(IMAGE_LIMIT, ensure_debian_image(&kit.docker))
        .await
        .map_err(|_| anyhow::anyhow!("the Debian test image was not ready within {IMAGE_LIMIT:?}"))??;
    let suffix = unique_suffix();
    let store = ProjectStore::new(t.engine.db.clone());
    let project = store.create_project(&format!("app-{suffix}")).await?;

    let repo = GitRepo::new()?;
    repo.write("www/index.html", &format!("web {suffix}"))?;
    repo.write(
        "Dockerfile",
        &format!("FROM {image}\nCOPY www /www\nCMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"),
    )?;
    let sha = repo.commit("web and worker")?;

    let mut redis_spec = image_service(
        "redis",
        image,
        &[
            "redis-server",
            "--bind",
            "0.0.0.0",
            "--protected-mode",
            "no",
            "--dir",
            "/data",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ],
    );
    redis_spec.health = probe(&["redis-cli", "ping"]);
    redis_spec.volumes = vec![VolumeSpec { name: "data".into(), path: "/data".into() }];
    let redis_svc = store.create_service(project.id, &redis_spec).await?;

    let mut web_spec = ServiceSpec::new("web", repo.url(), 8080);
    web_spec.health = server::testkit::engine::quick_http_check("/");
    web_spec.drain_secs = 0;
    let web = store.create_service(project.id, &web_spec).await?;
    let mut worker_spec = ServiceSpec::new("worker", "", 8080);
    worker_spec.kind = ServiceKind::Worker;
    worker_spec.port = None;
    worker_spec.image_from = Some("web".into());
    worker_spec.command = command(&[
        "sh",
        "-c",
        "while true; do redis-cli -h redis INCR worker:beats >/dev/null 2>&1; sleep 0.3; done",
    ]);
    worker_spec.health.probe = HealthProbe::None;
    worker_spec.settle_secs = 1;
    let worker = store.create_service(project.id, &worker_spec).await?;
    assert_eq!(worker.image_from_id, Some(web.id));
    assert_eq!(worker.spec.git_url, "");

    let first_redis = deploy(t, &redis_svc, None).await?;

    // One signed push to the project hook: one build (of `web`); it deploys
    // web and (image_from) the worker; Redis has no repository.
    let secret =
        t.engine.project_webhook_info(&user(Role::Deployer), project.id).await.map_err(anyhow_of)?.secret;
    let body = serde_json::json!({ "ref": "refs/heads/main", "after": sha, "repository": { "clone_url": repo.url() } });
    let delivery =
        Delivery::new(Forge::Github, 0, "push", body.to_string().into_bytes()).for_project(project.id);
    let reply = hooks.deliver(&delivery, &secret).await?;
    assert_eq!(reply.status, http::StatusCode::ACCEPTED, "{reply:?}");
    let ids = reply.body["build_ids"].as_array().map(Vec::len);
    assert_eq!(ids, Some(1), "{reply:?}");
    let build_id = reply.body["build_id"].as_i64().context("a build id")?;
    let build = t.wait_build(build_id, LIMIT).await?;
    assert_eq!(build.service_id, web.id);
    assert_eq!(build.status, JobStatus::Succeeded, "{:?}", build.error);
    let builds: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM builds WHERE service_id IN (SELECT id FROM services WHERE project_id = ?)",
    )
    .bind(project.id)
    .fetch_one(&t.engine.db)
    .await?;
    assert_eq!(builds, 1, "one image is built for the project");
    let deps: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT id, service_id, image_id FROM deployments WHERE build_id = ? ORDER BY service_id",
    )
    .bind(build.id)
    .fetch_all(&t.engine.db)
    .await?;
    assert_eq!(deps.iter().map(|d| d.1).collect::<Vec<_>>(), vec![web.id, worker.id], "{deps:?}");
    for (id, _, image_id) in &deps {
        assert_eq!(Some(image_id), build.image_id.as_ref(), "the same image");
        let dep = t.wait_deployment(*id, LIMIT).await?;
        assert_eq!(dep.status, DeploymentStatus::Live, "{:?} {:?}", dep.error, dep.log_tail);
    }
    // A dependent service is never built itself.
    let refused = t
        .engine
        .trigger_build(
            &user(Role::Deployer),
            TriggerBuild { service_id: worker.id, ..TriggerBuild::default() },
        )
        .await;
    assert!(refused.is_err(), "a build of a service with image_from is refused");

    // The web container reaches Redis by its name; the worker (its own
    // command, same image) does too.
    let web_box = live_container(t, &web).await?;
    assert_eq!(redis(&kit.docker, &web_box, &["SET", "before-redeploy", &suffix]).await?, "OK");
    assert_eq!(redis(&kit.docker, &web_box, &["GET", "before-redeploy"]).await?, suffix);
    wait_until("the worker to count beats", Duration::from_secs(30), || async {
        let beats = redis(&kit.docker, &web_box, &["GET", "worker:beats"]).await?;
        Ok(beats.parse::<u64>().is_ok_and(|n| n >= 2).then_some(()))
    })
    .await?;

    // A redeploy of Redis keeps the volume's data.
    let second_redis = deploy(t, &redis_svc, None).await?;
    assert_eq!(redis(&kit.docker, &web_box, &["GET", "before-redeploy"]).await?, suffix);
    let events: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM deployment_events WHERE deployment_id = ? ORDER BY id")
            .bind(second_redis)
            .fetch_all(&t.engine.db)
            .await?;
    assert_eq!(
        events.first().map(String::as_str),
        Some("old_stopped"),
        "stop-first with volumes: {events:?}"
    );

    // So does a rollback to the first deployment (data is not rolled back).
    assert_eq!(redis(&kit.docker, &web_box, &["SET", "before-rollback", "kept"]).await?, "OK");
    let rollback = t.engine.rollback(&user(Role::Deployer), first_redis, None).await.map_err(anyhow_of)?;
    let rollback = t.wait_deployment(rollback.id, LIMIT).await?;
    assert_eq!(rollback.status, DeploymentStatus::Live, "{:?}", rollback.error);
    assert_eq!(redis(&kit.docker, &web_box, &["GET", "before-redeploy"]).await?, suffix);
    assert_eq!(redis(&kit.docker, &web_box, &["GET", "before-rollback"]).await?, "kept");

    // The volume is Slipway's, named after the service id, listed with a size.
    let volume = app_network::service_volume(&t.engine.instance, redis_svc.id, "data");
    let listed = t.engine.docker.service_volumes(&t.engine.instance, redis_svc.id).await?;
    assert_eq!(
        listed.iter().map(|v| (v.engine_name.as_str(), v.name.as_str())).collect::<Vec<_>>(),
        [(volume.as_str(), "data")]
    );
    assert!(listed[0].size_bytes.is_some_and(|s| s > 0), "{listed:?}");
    Ok(())
}

/// A busybox `image` service answering HTTP on 8080 with its /etc.
fn http_box(name: &str) -> ServiceSpec {
    image_service(name, BASE_IMAGE, &["httpd", "-f", "-p", "8080", "-h", "/etc"])
}

async fn project_with(
    t: &TestEngine,
    name: &str,
    specs: &[ServiceSpec],
) -> anyhow::Result<(Project, Vec<Service>)> {
    let store = ProjectStore::new(t.engine.db.clone());
    let project = store.create_project(name).await?;
    let mut out = Vec::new();
    for spec in specs {
        let service = store.create_service(project.id, spec).await?;
        deploy(t, &service, None).await?;
        out.push(service);
    }
    Ok((project, out))
}

#[tokio::test]
async fn a_project_reaches_its_services_by_name_and_never_another_projects() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let suffix = unique_suffix();
    let sleeper = || image_service("client", BASE_IMAGE, &["sleep", "3600"]);
    let (_, a) = project_with(&t, &format!("iso-a-{suffix}"), &[http_box("api"), sleeper()]).await?;
    let (_, b) = project_with(&t, &format!("iso-b-{suffix}"), &[sleeper()]).await?;
    let (a_api, a_client, b_client) = (&a[0], &a[1], &b[0]);

    // Within project A, the name resolves to api and its address answers.
    let api_ip = t
        .engine
        .docker
        .container_state(&live_container(&t, a_api).await?)
        .await?
        .and_then(|s| s.ip)
        .context("api's address")?;
    // `nc` with the address (the static busybox's wget crashes looking it up).
    let get = format!("printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {api_ip} 8080");
    let a_box = live_container(&t, a_client).await?;
    let (code, out) = exec(&kit.docker, &a_box, &["busybox", "nslookup", "api"]).await?;
    assert!(code == 0 && out.contains(&api_ip.to_string()), "project A resolves api to {api_ip}: {out}");
    let (_, out) = exec(&kit.docker, &a_box, &["sh", "-c", &get]).await?;
    assert!(out.contains("200 OK"), "project A reaches api at {api_ip}: {out}");

    // From project B, neither the name resolves nor the address answers.
    let b_box = live_container(&t, b_client).await?;
    let (code, out) = exec(&kit.docker, &b_box, &["busybox", "nslookup", "api"]).await?;
    assert!(code != 0 || !out.contains(&api_ip.to_string()), "project B resolved A's api: {out}");
    let (_, out) = exec(&kit.docker, &b_box, &["sh", "-c", &get]).await?;
    assert!(!out.contains("HTTP/1"), "project B reached A's api at {api_ip}: {out}");
    Ok(())
}

#[tokio::test]
async fn a_worker_deploy_starts_the_new_worker_before_stopping_the_old_and_overlaps_briefly(
) -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let suffix = unique_suffix();
    let repo = GitRepo::new()?;
    repo.write(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 0.2; done\"]\n"),
    )?;
    repo.commit("a worker")?;
    let store = ProjectStore::new(t.engine.db.clone());
    let project = store.create_project(&format!("wk-{suffix}")).await?;
    let mut spec = ServiceSpec::new("jobs", repo.url(), 8080);
    spec.kind = ServiceKind::Worker;
    spec.port = None;
    spec.health.probe = HealthProbe::None;
    spec.settle_secs = 2;
    spec.auto_deploy = false;
    let worker = store.create_service(project.id, &spec).await?;
    let build = t
        .engine
        .trigger_build(
            &user(Role::Deployer),
            TriggerBuild { service_id: worker.id, ..TriggerBuild::default() },
        )
        .await
        .map_err(anyhow_of)?;
    let build = t.wait_build(build.id, LIMIT).await?;
    assert_eq!(build.status, JobStatus::Succeeded, "{:?}", build.error);
    let first = deploy(&t, &worker, Some(build.id)).await?;
    let old_box = live_container(&t, &worker).await?;

    // The engine's own start/die times of this service's containers.
    let filters = HashMap::from([
        ("type", vec!["container".to_string()]),
        // Service ids repeat across test engines: the installation too.
        (
            "label",
            vec![
                format!("{}={}", server::docker::labels::SERVICE_ID, worker.id),
                format!("{}={}", server::docker::labels::INSTANCE, t.engine.instance),
            ],
        ),
    ]);
    let mut events = kit.docker.events(Some(EventsOptionsBuilder::new().filters(&filters).build()));
    let watcher = tokio::spawn(async move {
        let mut seen: Vec<(String, String, i64)> = Vec::new();
        while let Some(Ok(e)) = events.next().await {
            let action = e.action.unwrap_or_default();
            if action == "start" || action == "die" {
                let id = e.actor.and_then(|a| a.id).unwrap_or_default();
                seen.push((action, id, e.time_nano.unwrap_or_default()));
            }
            if seen.iter().filter(|s| s.0 == "die").count() >= 1 && seen.iter().any(|s| s.0 == "start") {
                break;
            }
        }
        seen
    });
    let started = Instant::now();
    let second = deploy(&t, &worker, Some(build.id)).await?;
    assert_ne!(first, second);
    let new_box = live_container(&t, &worker).await?;
    let seen = tokio::time::timeout(Duration::from_secs(30), watcher).await??;
    let at = |action: &str, id: &str| seen.iter().find(|s| s.0 == action && s.1 == id).map(|s| s.2);
    let new_start = at("start", &new_box).with_context(|| format!("no start of the new worker: {seen:?}"))?;
    let old_die = at("die", &old_box).with_context(|| format!("no end of the old worker: {seen:?}"))?;
    assert!(new_start < old_die, "the new worker ran before the old one stopped: {seen:?}");
    let overlap = Duration::from_nanos(u64::try_from(old_die - new_start)?);
    let bound = Duration::from_secs(2) + server::deploys::STOP_GRACE + Duration::from_secs(2);
    assert!(overlap <= bound, "two workers for {overlap:?} (settle 2 s + grace, bound {bound:?})");
    eprintln!("worker overlap {overlap:?}; deploy took {:?}", started.elapsed());
    // No route for a worker.
    assert!(t.engine.switch.route(worker.id).is_none());
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind(("0.0.0.0", 0))?.local_addr()?.port())
}

#[tokio::test]
async fn a_published_port_serves_and_a_second_claim_or_a_busy_port_is_refused_by_name() -> anyhow::Result<()>
{
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let suffix = unique_suffix();
    let store = ProjectStore::new(t.engine.db.clone());
    let port = free_port()?;
    let mut spec = http_box("files");
    spec.ports =
        vec![server::projects::PortSpec { host: u32::from(port), container: 8080, protocol: "tcp".into() }];
    let (_, held) = project_with(&t, &format!("ports-a-{suffix}"), &[spec.clone()]).await?;
    // The published port reaches the container's 8080 from the host.
    let url = format!("http://127.0.0.1:{port}/hostname");
    let body = wait_until("the published port to answer", Duration::from_secs(20), || async {
        Ok(reqwest::get(&url).await.ok().filter(|r| r.status().is_success()).map(|_| ()))
    })
    .await;
    assert!(body.is_ok(), "{body:?}");

    // Another service claiming the same host port is refused, naming the holder.
    let other = store.create_project(&format!("ports-b-{suffix}")).await?;
    let mut copy = http_box("copy");
    copy.ports = spec.ports.clone();
    let refused = store.create_service(other.id, &copy).await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains(&format!("host port {port}/tcp"))
            && message.contains(&format!("ports-a-{suffix}/files")),
        "{message}"
    );
    // A port something else on this machine listens on is refused too.
    let busy = std::net::TcpListener::bind(("0.0.0.0", 0))?;
    let busy_port = busy.local_addr()?.port();
    let mut busy_spec = http_box("busy");
    busy_spec.ports = vec![server::projects::PortSpec {
        host: u32::from(busy_port),
        container: 8080,
        protocol: "tcp".into(),
    }];
    let refused =
        store.create_service(other.id, &busy_spec).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.contains(&format!("host port {busy_port}/tcp is in use")), "{refused}");
    assert!(store.list_services(other.id).await?.is_empty(), "nothing refused was stored");
    // The holder may save its settings again (it holds the port itself).
    store.update_service(held[0].id, &spec).await?;
    Ok(())
}

#[tokio::test]
async fn in_a_monorepo_a_push_builds_only_the_services_whose_watch_paths_changed() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let suffix = unique_suffix();
    let repo = GitRepo::new()?;
    for dir in ["api", "web"] {
        repo.write(&format!("{dir}/index.html"), &format!("{dir} {suffix}"))?;
        repo.write(
            &format!("{dir}/Dockerfile"),
            &format!("FROM {BASE_IMAGE}\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"),
        )?;
    }
    repo.write("README", "monorepo")?;
    repo.commit("two services")?;
    let store = ProjectStore::new(t.engine.db.clone());
    let project = store.create_project(&format!("mono-{suffix}")).await?;
    let mut services = Vec::new();
    for dir in ["api", "web"] {
        let mut spec = ServiceSpec::new(dir, repo.url(), 8080);
        spec.context_path = dir.into();
        spec.watch_paths = vec![format!("{dir}/**")];
        spec.auto_deploy = false;
        services.push(store.create_service(project.id, &spec).await?);
    }
    // A push: what the webhook queues (the pushed commit, trigger webhook).
    let t = &t;
    let push = |service: i64, sha: String| async move {
        let req = TriggerBuild {
            service_id: service,
            git_ref: Some(sha),
            trigger: "webhook".into(),
            ..TriggerBuild::default()
        };
        let build = t.engine.enqueue_build("webhook:github", req).await.map_err(anyhow_of)?;
        t.wait_build(build.id, LIMIT).await
    };
    // The first push builds both (nothing built before: changes unknown).
    let first = repo.head()?;
    for s in &services {
        let b = push(s.id, first.clone()).await?;
        assert_eq!(b.status, JobStatus::Succeeded, "{}: {:?}", s.spec.name, b.error);
    }
    // A push touching api/ only builds api; web's run is skipped.
    repo.write("api/index.html", "api changed")?;
    let second = repo.commit("api only")?;
    let api = push(services[0].id, second.clone()).await?;
    assert_eq!(api.status, JobStatus::Succeeded, "{:?}", api.error);
    let web = push(services[1].id, second.clone()).await?;
    assert_eq!(web.status, JobStatus::Skipped, "web was built for a change in api/: {:?}", web.error);
    assert!(web.image_id.is_none());
    let log: Vec<String> = t.engine.logs.read_from(web.id, 0).await?.into_iter().map(|l| l.text).collect();
    assert!(log.iter().any(|l| l.contains("no changed file matches watch_paths (web/**)")), "{log:?}");
    // A click always builds.
    let manual = t
        .engine
        .trigger_build(
            &user(Role::Deployer),
            TriggerBuild { service_id: services[1].id, ..TriggerBuild::default() },
        )
        .await
        .map_err(anyhow_of)?;
    assert_eq!(t.wait_build(manual.id, LIMIT).await?.status, JobStatus::Succeeded);
    Ok(())
}
