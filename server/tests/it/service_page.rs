//! The service page's read model (`Engine::service_page`, `build_rows`,
//! `deployment_rows`: JSON built by SQLite) on a real SQLite file, checked
//! against the domain's own history reads (`list_builds`,
//! `list_deployments`, `build_durations`) row by row: same rows, same order,
//! same values, same paging.

use app::wire::{BuildRow, Caller, DeploymentRow, Role, CHART_BUILDS, RECENT_DELIVERIES};
use server::{
    engine::{Engine, EngineError},
    history::{PageRequest, DEFAULT_PAGE},
    projects::{ProjectError, ProjectStore, ServiceSpec},
    service_env::{self, EnvInput, EnvView},
    testkit::{
        app::OpenedApp,
        engine::{anyhow_of, user},
    },
    webhooks::{
        deliveries::{self, Received},
        Forge,
    },
};

const BUILDS: i64 = 60;
const DEPLOYMENTS: i64 = 30;
/// The build that has `build_steps` rows.
const PIPELINE_RUN: i64 = BUILDS - 3;

#[tokio::test]
async fn service_page_rows_equal_the_domain_histories() -> anyhow::Result<()> {
    let app = OpenedApp::new().await?;
    let engine = &app.engine;
    let service = seed(engine).await?;
    let viewer = user(Role::Viewer);

    let page = engine.service_page(&viewer, service).await.map_err(anyhow_of)?;
    assert_eq!(page.service.service.id, service);
    assert_eq!(page.service.project.name, "page-prj");

    // Builds: the first page equals the domain's first page, projected.
    let full =
        engine.list_builds(&viewer, service, PageRequest::first(DEFAULT_PAGE)).await.map_err(anyhow_of)?;
    assert_eq!(page.builds.items.len(), DEFAULT_PAGE as usize);
    assert_eq!(page.builds.next, full.next);
    let expected: Vec<BuildRow> = full
        .items
        .iter()
        .map(|b| BuildRow {
            id: b.id,
            number: b.number,
            status: b.status.as_str().to_string(),
            git_ref: b.git_ref.clone(),
            commit_sha: b.commit_sha.clone(),
            trigger: b.trigger.clone(),
            actor: b.actor.clone(),
            duration_ms: b.duration_ms,
            created_at: b.created_at.clone(),
            // The seeded pipeline run: two of three steps passed (its
            // service container is no step).
            steps_total: if b.number == PIPELINE_RUN { 3 } else { 0 },
            steps_passed: if b.number == PIPELINE_RUN { 2 } else { 0 },
        })
        .collect();
    assert_eq!(page.builds.items, expected);
    assert!(page.builds.items.iter().any(|b| b.steps_total == 3), "the pipeline run is on the first page");
    assert!(page.builds.items.iter().any(|b| b.duration_ms.is_none()), "running builds have no duration");
    assert!(page.builds.items.iter().any(|b| b.duration_ms == Some(40_500)));

    // Deployments: with their builds' number and commit; none for an image deploy.
    let full = engine
        .list_deployments(&viewer, service, PageRequest::first(DEFAULT_PAGE))
        .await
        .map_err(anyhow_of)?;
    assert_eq!(page.deployments.next, full.next);
    let refs = engine.build_refs(&full.items.iter().filter_map(|d| d.build_id).collect::<Vec<_>>()).await;
    let refs = refs.map_err(anyhow_of)?;
    let expected: Vec<DeploymentRow> = full
        .items
        .iter()
        .map(|d| {
            let build = refs.iter().find(|r| Some(r.id) == d.build_id);
            DeploymentRow {
                id: d.id,
                status: d.status.as_str().to_string(),
                build_id: d.build_id,
                build_number: build.map(|b| b.number),
                commit_sha: build.and_then(|b| b.commit_sha.clone()),
                image_id: d.image_id.clone(),
                reason: d.reason.clone(),
                actor: d.actor.clone(),
                rollback_of: d.rollback_of,
                error: d.error.clone(),
                log_tail: d.log_tail.clone(),
                created_at: d.created_at.clone(),
                duration_ms: d.duration_ms,
            }
        })
        .collect();
    assert_eq!(page.deployments.items, expected);
    assert!(page.deployments.items.iter().any(|d| d.build_id.is_none() && d.build_number.is_none()));
    assert!(page.deployments.items.iter().any(|d| d.error.is_some() && d.log_tail.is_some()));

    // The chart: the newest CHART_BUILDS builds, as `build_durations` reads them.
    let chart = engine.build_durations(&viewer, service, CHART_BUILDS).await.map_err(anyhow_of)?;
    assert_eq!(page.chart.len(), CHART_BUILDS as usize);
    assert_eq!(page.chart, chart);
    assert_eq!(page.chart[0].number, BUILDS);

    // Paging on: every row once, newest first, then no next page.
    let mut ids = page.builds.items.iter().map(|b| b.id).collect::<Vec<_>>();
    let mut before = page.builds.next;
    while let Some(b) = before {
        let next = engine.build_rows(&viewer, service, PageRequest { before: Some(b), limit: None }).await;
        let next = next.map_err(anyhow_of)?;
        ids.extend(next.items.iter().map(|b| b.id));
        before = next.next;
    }
    assert_eq!(ids.len() as i64, BUILDS);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats");
    let mut ids = page.deployments.items.iter().map(|d| d.id).collect::<Vec<_>>();
    let rest = PageRequest { before: page.deployments.next, limit: None };
    let rest = engine.deployment_rows(&viewer, service, rest).await.map_err(anyhow_of)?;
    assert_eq!(rest.next, None);
    ids.extend(rest.items.iter().map(|d| d.id));
    assert_eq!(ids.len() as i64, DEPLOYMENTS);
    assert!(ids.windows(2).all(|w| w[0] > w[1]));
    Ok(())
}

#[tokio::test]
async fn service_page_masks_secret_env_and_shows_deliveries_to_admins_only() -> anyhow::Result<()> {
    let app = OpenedApp::new().await?;
    let engine = &app.engine;
    let service = seed(engine).await?;
    let var =
        |name: &str, value: &str, secret| EnvInput { name: name.into(), value: Some(value.into()), secret };
    let vars = [var("TOKEN", "s3cret-value", true), var("A_PLAIN", "say \"hi\"\n", false)];
    service_env::replace(&engine.db, &engine.secrets, service, &vars).await?;
    for n in 0..(RECENT_DELIVERIES + 5) {
        let received = Received {
            owner: deliveries::Owner::Service(service),
            forge: Forge::Github,
            delivery_id: Some(format!("d-{n}")),
            idempotency_key: None,
            event: Some("push".into()),
        };
        deliveries::reject(&engine.db, &received, &format!("reason {n}")).await;
    }

    let viewer = engine.service_page(&user(Role::Viewer), service).await.map_err(anyhow_of)?;
    let expected_env = vec![
        EnvView { name: "A_PLAIN".into(), value: Some("say \"hi\"\n".into()), secret: false },
        EnvView { name: "TOKEN".into(), value: None, secret: true },
    ];
    assert_eq!(viewer.service.env, expected_env, "by name; the secret's value is never read out");
    assert!(viewer.deliveries.is_none(), "deliveries are for admins");
    let deployer = engine.service_page(&user(Role::Deployer), service).await.map_err(anyhow_of)?;
    assert!(deployer.deliveries.is_none());

    let admin = user(Role::Admin);
    let page = engine.service_page(&admin, service).await.map_err(anyhow_of)?;
    let recent = page.deliveries.ok_or_else(|| anyhow::anyhow!("an admin sees deliveries"))?;
    let listed =
        engine.list_deliveries(&admin, service, None, Some(RECENT_DELIVERIES)).await.map_err(anyhow_of)?;
    assert_eq!(recent.items.len(), RECENT_DELIVERIES as usize);
    assert_eq!(recent.items, listed.items);
    assert_eq!(recent.next, listed.next);
    assert_eq!(recent.items[0].reason, format!("reason {}", RECENT_DELIVERIES + 4), "newest first");
    assert!(recent.next.is_some(), "five more are behind the first page");
    Ok(())
}

#[tokio::test]
async fn service_page_checks_the_caller_and_the_service() -> anyhow::Result<()> {
    let app = OpenedApp::new().await?;
    let engine = &app.engine;
    let service = seed(engine).await?;
    let first = PageRequest::first(DEFAULT_PAGE);
    let anonymous = Caller::Anonymous;
    assert!(matches!(engine.service_page(&anonymous, service).await, Err(EngineError::Access(_))));
    assert!(matches!(engine.build_rows(&anonymous, service, first).await, Err(EngineError::Access(_))));
    assert!(matches!(engine.deployment_rows(&anonymous, service, first).await, Err(EngineError::Access(_))));
    let missing = engine.service_page(&user(Role::Viewer), service + 1000).await;
    assert!(
        matches!(missing, Err(EngineError::Project(ProjectError::NotFound { what: "service" }))),
        "{:?}",
        missing.err()
    );
    Ok(())
}

/// A service with BUILDS builds (every 7th failed, the newest two running
/// and queued, some without commit or actor; PIPELINE_RUN with three steps
/// and a service container) and DEPLOYMENTS deployments
/// (every 5th of an image, every 4th failed with a log tail, every 6th a
/// rollback).
async fn seed(engine: &Engine) -> anyhow::Result<i64> {
    let store = ProjectStore::new(engine.db.clone());
    let project = store.create_project("page-prj").await?;
    let service =
        store.create_service(project.id, &ServiceSpec::new("page-svc", "file:///x/repo", 8080)).await?;
    let mut tx = engine.db.begin().await?;
    for n in 1..=BUILDS {
        let (status, finished) = match n {
            BUILDS => ("queued", None),
            n if n == BUILDS - 1 => ("running", None),
            n if n % 7 == 0 => ("failed", Some("2026-11-01T10:00:41.500Z")),
            _ => ("succeeded", Some("2026-11-01T10:00:41.500Z")),
        };
        sqlx::query(
            "INSERT INTO builds (service_id, number, commit_sha, git_ref, trigger, actor, status, image_id, \
             tags, phase, progress, created_at, started_at, finished_at) \
             VALUES (?, ?, ?, 'main', 'webhook', ?, ?, ?, '[]', 'done', 100, ?, \
             CASE WHEN ? = 'queued' THEN NULL ELSE '2026-11-01T10:00:01.000Z' END, ?)",
        )
        .bind(service.id)
        .bind(n)
        .bind((n % 3 != 0).then(|| format!("{n:040x}")))
        .bind((n % 4 != 0).then_some("alice"))
        .bind(status)
        .bind(format!("sha256:{n:064x}"))
        .bind(format!("2026-11-01T10:{:02}:00.000Z", n % 60))
        .bind(status)
        .bind(finished)
        .execute(&mut *tx)
        .await?;
    }
    for (name, kind, status) in [
        ("lint", "commands", "success"),
        ("test", "commands", "failure"),
        ("build", "build", "success"),
        ("db", "service", "success"),
    ] {
        sqlx::query(
            "INSERT INTO build_steps (build_id, name, kind, status) \
             VALUES ((SELECT id FROM builds WHERE service_id = ? AND number = ?), ?, ?, ?)",
        )
        .bind(service.id)
        .bind(PIPELINE_RUN)
        .bind(name)
        .bind(kind)
        .bind(status)
        .execute(&mut *tx)
        .await?;
    }
    let config = r#"{"env":[],"port":8080,"health":{"probe":{"kind":"http","path":"/"},"interval_ms":2000,"timeout_ms":2000,"retries":15,"start_period_ms":0},"memory_bytes":536870912,"cpu_millis":1000,"drain_secs":30}"#;
    for n in 1..=DEPLOYMENTS {
        let failed = n % 4 == 0;
        sqlx::query(
            "INSERT INTO deployments (service_id, build_id, image_id, config, status, reason, actor, rollback_of, \
             error, log_tail, created_at, started_at, finished_at) \
             VALUES (?, (SELECT id FROM builds WHERE service_id = ? AND number = ?), ?, ?, ?, ?, 'bob', ?, ?, ?, \
             '2026-11-01T11:00:00.000Z', '2026-11-01T11:00:00.000Z', '2026-11-01T11:00:02.250Z')",
        )
        .bind(service.id)
        .bind(service.id)
        .bind((n % 5 != 0).then_some(n))
        .bind(format!("sha256:{n:064x}"))
        .bind(config)
        .bind(if failed { "failed" } else { "superseded" })
        .bind((n % 2 == 0).then(|| format!("reason {n}")))
        .bind((n % 6 == 0).then_some(n - 1))
        .bind(failed.then_some("health check failed"))
        .bind(failed.then_some("line one\nline \"two\""))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(service.id)
}

/// The history rows and chart bars are markup written as a string
/// (`app::components::html`): values a user chose (a ref, a deploy reason,
/// a failure's log tail) reach the server-rendered page escaped, never as
/// markup, and each row keeps its id and Rollback button.
#[tokio::test]
async fn service_page_html_escapes_every_history_value() -> anyhow::Result<()> {
    use axum::body::Body;
    use http::{header, Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let app = OpenedApp::new().await?;
    let engine = &app.engine;
    let service = seed(engine).await?;
    let hostile = r#"<img src=x onerror="alert(1)">&'"#;
    sqlx::query("UPDATE builds SET git_ref = ?1 WHERE service_id = ?2 AND number = ?3")
        .bind(hostile)
        .bind(service)
        .bind(BUILDS - 2)
        .execute(&engine.db)
        .await?;
    sqlx::query(
        "UPDATE deployments SET reason = ?1, log_tail = ?1 WHERE service_id = ?2 AND status = 'failed'",
    )
    .bind(hostile)
    .bind(service)
    .execute(&engine.db)
    .await?;
    let deployer = app.auth.users.create("page-deployer", "correct horse battery", Role::Deployer).await?;
    let (_, token) = app.auth.tokens.create(&deployer.caller(), "page", Some(1)).await?;
    let req = Request::get(format!("/services/{service}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())?;
    let res = app.router.clone().oneshot(req).await?;
    assert_eq!(res.status(), 200);
    let html = String::from_utf8(res.into_body().collect().await?.to_bytes().to_vec())?;

    assert!(!html.contains("<img src=x"), "a history value became markup");
    let escaped = "&lt;img src=x onerror=\"alert(1)\"&gt;&amp;'";
    assert!(html.contains(&format!(r#"<td class="ref">{escaped}</td>"#)), "the ref is shown escaped");
    assert!(html.contains(&format!(r#"<td class="reason">{escaped}</td>"#)), "the reason is shown escaped");
    assert!(
        html.contains(&format!("<pre>health check failed\n{escaped}</pre>")),
        "the log tail is shown escaped"
    );
    for n in [1, BUILDS] {
        let id: i64 = sqlx::query_scalar("SELECT id FROM builds WHERE service_id = ? AND number = ?")
            .bind(service)
            .bind(n)
            .fetch_one(&engine.db)
            .await?;
        let in_table =
            html.contains(&format!(r#"<tr data-build-id="{id}"><td><a href="/builds/{id}">#{n}</a></td>"#));
        assert_eq!(in_table, n == BUILDS, "build #{n}: only the first page is in the table");
        let in_chart = html.contains(&format!(r#" data-build-id="{id}" x=""#));
        assert_eq!(in_chart, n == BUILDS, "build #{n}: only the newest {CHART_BUILDS} are in the chart");
    }
    let deployments = html.split_once(r#"<table id="deployments">"#).map(|(_, t)| t).unwrap_or_default();
    let deployments = deployments.split_once("</table>").map(|(t, _)| t).unwrap_or_default();
    let rows = deployments.matches("<tr data-deployment-id=").count();
    assert_eq!(rows, DEFAULT_PAGE as usize, "one page of deployments");
    let failed = deployments.matches(r#"<span class="badge badge-bad ">failed</span>"#).count();
    assert!(failed > 0, "the first page holds failed deployments");
    assert_eq!(
        deployments.matches(r#"<button type="button" class="rollback secondary">"#).count(),
        rows - failed,
        "a deployer gets Rollback on every deployment that served"
    );
    Ok(())
}
