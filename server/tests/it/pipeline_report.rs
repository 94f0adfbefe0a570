//! The pipeline report and the log's step filter, through the real router
//! on a started engine: a real pipeline (busybox steps, a service container
//! with a health check) run by the build job, then
//! `GET /api/v1/builds/{id}/report`, `GET /api/v1/builds/{id}/log?step=`
//! and the SSE stream with `?step=`.

use std::time::Duration;

use app::wire::{BuildReport, LogLineView, Role};
use axum::{body::Body, Router};
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use server::{
    builds::TriggerBuild,
    docker::DockerEngine,
    testkit::{
        app::app_router,
        engine::{anyhow_of, user},
        DockerKit, GitRepo, TestEngine, BASE_IMAGE,
    },
};
use tower::ServiceExt;

const LIMIT: Duration = Duration::from_secs(240);

async fn get(router: &Router, token: &str, uri: &str) -> anyhow::Result<(StatusCode, Vec<u8>)> {
    let req =
        Request::get(uri).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty())?;
    let res = router.clone().oneshot(req).await?;
    let status = res.status();
    let body = tokio::time::timeout(Duration::from_secs(30), res.into_body().collect()).await??.to_bytes();
    Ok((status, body.to_vec()))
}

#[tokio::test]
async fn the_report_shows_steps_services_and_the_log_filters_by_step() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let (router, auth) =
        app_router(&t.engine, DockerEngine::with_client(kit.docker.clone()), t.data.path()).await?;
    let viewer = auth
        .users
        .create(&format!("rv-{}", kit.run_id.to_lowercase()), "correct horse battery", Role::Viewer)
        .await?;
    let (_, token) = auth.tokens.create(&viewer.caller(), "report", Some(1)).await?;

    let repo = GitRepo::http_service(&format!("report {}", kit.run_id))?;
    repo.write(
        ".slipway.yml",
        &format!(
            "services:\n  cache:\n    image: {BASE_IMAGE}\n    command: [\"httpd\", \"-f\", \"-p\", \"8081\", \"-h\", \"/etc\"]\n    \
             healthcheck:\n      cmd: [\"wget\", \"-qO-\", \"http://127.0.0.1:8081/passwd\"]\n      interval: 1s\n\
             steps:\n\
             \x20 - name: lint\n    image: {BASE_IMAGE}\n    commands: [\"echo lint-says-hi\"]\n\
             \x20 - name: unit\n    image: {BASE_IMAGE}\n    depends_on: [lint]\n    \
             commands: [\"sleep 1\", \"wget -qO- http://cache:8081/passwd | head -n 1\", \"echo unit-says-hi\"]\n\
             \x20 - name: flaky\n    image: {BASE_IMAGE}\n    depends_on: [lint]\n    failure: ignore\n    commands: [\"exit 4\"]\n"
        ),
    )?;
    repo.commit("pipeline")?;
    let service = t.service("rep", "web", &repo.url()).await?;
    let queued = t
        .engine
        .trigger_build(&user(Role::Deployer), TriggerBuild::manual_build_only(service.id))
        .await
        .map_err(anyhow_of)?;
    let done = t.wait_build(queued.id, LIMIT).await?;

    let (status, body) = get(&router, &token, &format!("/api/v1/builds/{}/report", done.id)).await?;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let report: BuildReport = serde_json::from_slice(&body)?;
    assert_eq!(report.status, "succeeded", "{report:#?}");
    assert_eq!(report.pipeline.as_deref(), Some(".slipway.yml"));
    assert_eq!(report.event.as_deref(), Some("manual"));
    assert_eq!(report.commit, done.commit_sha);
    assert!(report.pipeline_errors.is_empty());
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["lint", "unit", "flaky"]);
    let step = |n: &str| report.steps.iter().find(|s| s.name == n).expect("the step");
    assert_eq!(step("lint").status, "success");
    assert_eq!(step("unit").status, "success");
    assert_eq!(step("unit").depends_on, ["lint"]);
    assert_eq!(step("unit").exit_code, Some(0));
    // Its container's own run time (the engine's, to the millisecond): the
    // 1 s sleep, less at most a rounding.
    assert!(step("unit").duration_ms.is_some_and(|ms| ms >= 990), "{:?}", step("unit"));
    assert!(step("lint").duration_ms.is_some());
    assert_eq!(
        (step("flaky").status.as_str(), step("flaky").exit_code, step("flaky").ignored),
        ("failure", Some(4), true)
    );
    assert_eq!(report.services.len(), 1, "{report:#?}");
    assert_eq!(report.services[0].name, "cache");
    assert_eq!(report.services[0].kind, "service");
    assert!(report.services[0].healthy_ms.is_some(), "{:?}", report.services[0]);
    assert_eq!(report.variants.len(), 1);
    let v = &report.variants[0];
    assert_eq!((v.status.as_str(), v.steps_total, v.steps_passed), ("success", 3, 2));

    // The stored log, filtered by step.
    let (status, body) = get(&router, &token, &format!("/api/v1/builds/{}/log?step=lint", done.id)).await?;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<LogLineView> = serde_json::from_slice(&body)?;
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l.step.as_deref() == Some("lint")), "{lines:?}");
    assert!(lines.iter().any(|l| l.text == "lint-says-hi"), "{lines:?}");
    // A bad step name is a 422 naming the field.
    let (status, body) =
        get(&router, &token, &format!("/api/v1/builds/{}/log?step=no%20such!", done.id)).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(String::from_utf8_lossy(&body).contains("step"), "{}", String::from_utf8_lossy(&body));
    let long = "a".repeat(64);
    let (status, _) = get(&router, &token, &format!("/api/v1/builds/{}/log?step={long}", done.id)).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The live stream of the finished run, filtered: only unit's lines, then `end`.
    let (status, body) =
        get(&router, &token, &format!("/api/v1/builds/{}/log/stream?step=unit", done.id)).await?;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("unit-says-hi") && text.contains("root:x:0:0"), "{text}");
    assert!(!text.contains("lint-says-hi"), "{text}");
    assert!(text.contains("event: end"), "{text}");
    let (status, _) = get(&router, &token, &format!("/api/v1/builds/{}/log/stream?step=", done.id)).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    Ok(())
}

#[tokio::test]
async fn a_run_without_a_pipeline_file_reports_its_build_and_deploy_steps() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let (router, auth) =
        app_router(&t.engine, DockerEngine::with_client(kit.docker.clone()), t.data.path()).await?;
    let viewer = auth
        .users
        .create(&format!("rw-{}", kit.run_id.to_lowercase()), "correct horse battery", Role::Viewer)
        .await?;
    let (_, token) = auth.tokens.create(&viewer.caller(), "report", Some(1)).await?;
    let repo = GitRepo::http_service(&format!("plain {}", kit.run_id))?;
    let service = t.service("rep", "plain", &repo.url()).await?;
    let queued = t
        .engine
        .trigger_build(&user(Role::Deployer), TriggerBuild::manual_build_only(service.id))
        .await
        .map_err(anyhow_of)?;
    let done = t.wait_build(queued.id, LIMIT).await?;
    let (status, body) = get(&router, &token, &format!("/api/v1/builds/{}/report", done.id)).await?;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let report: BuildReport = serde_json::from_slice(&body)?;
    assert_eq!(report.status, "succeeded");
    assert_eq!(report.steps.len(), 1, "{report:#?}");
    assert_eq!((report.steps[0].name.as_str(), report.steps[0].status.as_str()), ("build", "success"));
    assert!(report.steps[0].duration_ms.is_some());
    assert!(report.services.is_empty());
    // An implicit run that deploys: two steps, build then deploy (the
    // deployment it queued), as the design's implicit pipeline says.
    let queued = t
        .engine
        .trigger_build(
            &user(Role::Deployer),
            TriggerBuild { deploy: true, build_only: false, ..TriggerBuild::manual_build_only(service.id) },
        )
        .await
        .map_err(anyhow_of)?;
    let done = t.wait_build(queued.id, LIMIT).await?;
    let deployment = t.deployment_of_build(done.id).await?;
    let live = t.wait_deployment(deployment, LIMIT).await?;
    assert!(live.status.was_live(), "{live:?}");
    let (_, body) = get(&router, &token, &format!("/api/v1/builds/{}/report", done.id)).await?;
    let report: BuildReport = serde_json::from_slice(&body)?;
    let steps: Vec<(&str, &str)> =
        report.steps.iter().map(|s| (s.name.as_str(), s.status.as_str())).collect();
    assert_eq!(steps, vec![("build", "success"), ("deploy", "success")], "{report:#?}");
    assert_eq!(report.steps[1].depends_on, vec!["build".to_string()]);
    // Another user's missing build: 404.
    let (status, _) = get(&router, &token, "/api/v1/builds/999999/report").await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}
