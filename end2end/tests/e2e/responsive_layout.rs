//! Every data page at a phone width (400 px) and a desktop width (1400 px):
//! the page never scrolls sideways, tables fit their cards, and the service
//! page's "Roll back to this" button is visible and on top where it is drawn.
//! The history (builds, a failed deployment, a rollback that is live) is
//! written into the server's database: no Docker build is needed to lay it
//! out. Also: the service URL and curl line, human status labels, the
//! red progress bar of a failed build, the question before deploying past a
//! rollback, and the signed-in top bar on the 404 page.

use crate::support;

use anyhow::{ensure, Context};
use server::{deploys::DeployConfig, projects::HealthCheck, testkit::wait::unique_suffix};
use support::{page::UI_LIMIT, Harness};

const ADMIN: &str = "layout-admin";
const PASSWORD: &str = "layout-correct-horse-battery";
pub(crate) const SIZES: [(u32, u32); 2] = [(400, 900), (1400, 900)];

#[tokio::test]
async fn pages_fit_phone_and_desktop_widths_and_rollback_is_clickable() {
    support::run("responsive_layout", |h| Box::pin(flow(h))).await;
}

async fn flow(h: &Harness) -> anyhow::Result<()> {
    h.set_up_admin(ADMIN, PASSWORD).await?;
    let s = seed(h, &unique_suffix()).await?;
    let pages = [
        "/".to_string(),
        format!("/services/{}", s.service),
        format!("/builds/{}", s.failed_build),
        format!("/builds/{}", s.good_build),
        format!("/projects/{}/services/new", s.project),
        format!("/projects/{}/notifications", s.project),
        format!("/projects/{}/registry", s.project),
        format!("/projects/{}", s.project),
        format!("/deployments/{}", s.live),
        format!("/deployments/{}", s.superseded),
        "/status".into(),
        "/account".into(),
        "/account/tokens".into(),
        "/admin/users".into(),
        "/admin/audit".into(),
        "/certificates".into(),
        "/no-such-page".into(),
    ];
    for (width, height) in SIZES {
        h.browser.set_window_size(width, height).await?;
        for path in &pages {
            h.open(path).await?;
            check_fits(h, path, width).await?;
            screenshot(h, path, width).await?;
        }
        check_rollback_button(h, &s, width).await?;
    }
    check_contents(h, &s).await
}

/// `document.documentElement.scrollWidth <= innerWidth`, and every
/// `.table-wrap` shows its whole table; the error names what sticks out.
pub(crate) async fn check_fits(h: &Harness, path: &str, width: u32) -> anyhow::Result<()> {
    let script = r#"
        const de = document.documentElement, inner = window.innerWidth;
        const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
            + (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\s+/).join('.') : '');
        const wide = [];
        for (const el of document.querySelectorAll('body *')) {
            const r = el.getBoundingClientRect();
            if (r.width > 0 && r.right > inner + 1) wide.push(name(el) + ' right=' + Math.round(r.right));
        }
        const tables = Array.from(document.querySelectorAll('.table-wrap'))
            .filter(w => w.scrollWidth > w.clientWidth + 1)
            .map(w => name(w.querySelector('table') || w) + ' ' + w.scrollWidth + '>' + w.clientWidth);
        return { scroll: de.scrollWidth, inner, wide: wide.slice(0, 10), tables };"#;
    let v = h.js(script, vec![]).await?;
    let (scroll, inner) = (v["scroll"].as_u64().unwrap_or(u64::MAX), v["inner"].as_u64().unwrap_or(0));
    ensure!(
        inner <= u64::from(width) && inner + 40 >= u64::from(width),
        "{path}: window.innerWidth is {inner}, the window was set to {width} px wide"
    );
    ensure!(
        scroll <= inner,
        "{path} at {width} px: the page scrolls sideways (scrollWidth {scroll} > innerWidth {inner}); \
         sticking out: {}",
        v["wide"]
    );
    ensure!(
        v["tables"].as_array().is_some_and(Vec::is_empty),
        "{path} at {width} px: tables wider than their card: {}",
        v["tables"]
    );
    Ok(())
}

/// With `SLIPWAY_E2E_SCREENSHOTS=<dir>`, saves the window as
/// `<dir>/<width>-<path>.png` for a look at the layout.
async fn screenshot(h: &Harness, path: &str, width: u32) -> anyhow::Result<()> {
    let Some(dir) = std::env::var_os("SLIPWAY_E2E_SCREENSHOTS") else { return Ok(()) };
    let name: String = path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    std::fs::create_dir_all(&dir)?;
    let png = h.browser.screenshot().await?;
    std::fs::write(std::path::Path::new(&dir).join(format!("{width}-{name}.png")), png)?;
    Ok(())
}

/// The superseded deployment's "Roll back to this": after `scrollIntoView`,
/// `elementFromPoint` at its centre is the button; clicking it opens the
/// dialog, which fits too.
async fn check_rollback_button(h: &Harness, s: &Seeded, width: u32) -> anyhow::Result<()> {
    h.open(&format!("/services/{}", s.service)).await?;
    let selector = format!(r#"table#deployments tr[data-deployment-id="{}"] button.rollback"#, s.superseded);
    let script = r#"
        const b = document.querySelector(arguments[0]);
        if (!b) return 'missing';
        b.scrollIntoView({ block: 'center', inline: 'center' });
        const r = b.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) return 'not drawn';
        const x = r.left + r.width / 2, y = r.top + r.height / 2;
        if (x < 0 || y < 0 || x > window.innerWidth || y > window.innerHeight) return 'centre outside the window: ' + x + ',' + y;
        const hit = document.elementFromPoint(x, y);
        return hit === b || b.contains(hit) ? 'ok' : 'covered by ' + (hit ? hit.outerHTML.slice(0, 160) : 'nothing');"#;
    let seen = h.js(script, vec![selector.clone().into()]).await?;
    ensure!(seen.as_str() == Some("ok"), "{selector} at {width} px: {seen}");
    h.click(&selector).await?;
    h.find("dialog#rollback-dialog[open]").await.context("the rollback button should open the dialog")?;
    h.poll(UI_LIMIT, "the rollback preview (#rollback-image or #rollback-error)", || async {
        let image = h.text_of("#rollback-image").await?.filter(|t| !t.is_empty());
        Ok(image.or(h.text_of("#rollback-error").await?))
    })
    .await?;
    let fits = h
        .js(
            "const d = document.querySelector('dialog#rollback-dialog'); \
             return [d.scrollWidth, d.clientWidth, d.getBoundingClientRect().right, window.innerWidth];",
            vec![],
        )
        .await?;
    let n = |i: usize| fits[i].as_f64().unwrap_or(f64::MAX);
    ensure!(n(0) <= n(1) + 1.0, "the rollback dialog scrolls sideways at {width} px: {fits}");
    ensure!(n(2) <= n(3), "the rollback dialog sticks out of the window at {width} px: {fits}");
    check_fits(h, "the service page with the rollback dialog", width).await?;
    h.click("button#rollback-cancel").await
}

/// What the pages say: the service's URL and curl line, human labels, a
/// failed build's bar, the question before deploying past a rollback, the
/// 404 page's top bar.
async fn check_contents(h: &Harness, s: &Seeded) -> anyhow::Result<()> {
    let edge = h.server.edge_addr;
    h.open(&format!("/services/{}", s.service)).await?;
    let href = h.find("a#service-url").await?.attr("href").await?.unwrap_or_default();
    ensure!(href == format!("http://{}:{}/", s.host, edge.port()), "a#service-url href {href:?}");
    let curl = h.text_of("#service-curl").await?.unwrap_or_default();
    let want = format!("curl -H 'Host: {}' http://{edge}/", s.host);
    ensure!(curl == want, "#service-curl should read {want:?}, reads {curl:?}");
    let builds = h.text_of("table#builds").await?.unwrap_or_default();
    ensure!(builds.contains("timed out") && !builds.contains("timed_out"), "table#builds: {builds}");
    let deployments = h.text_of("table#deployments").await?.unwrap_or_default();
    ensure!(deployments.contains("rolled back") && !deployments.contains("rolled_back"), "{deployments}");

    // The live deployment is a rollback and build #3 is newer: ask first.
    h.click("button#deploy-latest").await?;
    let question = h
        .poll(UI_LIMIT, "a confirmation after button#deploy-latest", || async {
            Ok(h.browser.get_alert_text().await.ok())
        })
        .await?;
    let want = format!("Deployment #{} rolled back from build #3; deploy build #3 again?", s.live);
    ensure!(question == want, "the question should be {want:?}, is {question:?}");
    // Declining returns from the submit handler before any call is made.
    h.browser.dismiss_alert().await?;
    ensure!(h.text_of("#action-message").await?.is_none(), "declining must not deploy");

    h.open(&format!("/builds/{}", s.failed_build)).await?;
    let bar = h.find("progress#build-progress").await?;
    ensure!(bar.attr("class").await?.unwrap_or_default().contains("failed"), "a failed build's bar is red");
    let value = h.js("return document.querySelector('progress#build-progress').value", vec![]).await?;
    ensure!(value.as_f64() == Some(100.0), "a failed build's bar is full, its value is {value}");

    // The notifications page names its project and lists the deliveries.
    h.open(&format!("/projects/{}/notifications", s.project)).await?;
    let title = h.text_of("#notify-title").await?.unwrap_or_default();
    ensure!(title.starts_with("Notifications — lay-"), "#notify-title reads {title:?}");
    let back = h.find("a#notify-project-link").await?.attr("href").await?.unwrap_or_default();
    ensure!(back == format!("/projects/{}", s.project), "a#notify-project-link href {back:?}");
    let results = h.find_all("section.target-deliveries tr[data-delivery-id] td.result").await?;
    let mut texts = Vec::new();
    for cell in results {
        texts.push(cell.text().await?);
    }
    ensure!(texts.len() == 3, "three deliveries should be listed, found {texts:?}");
    ensure!(texts.iter().any(|t| t == "ok (HTTP 200)"), "{texts:?}");
    ensure!(texts.iter().any(|t| t == "failed: HTTP 500"), "{texts:?}");
    ensure!(texts.iter().any(|t| t.starts_with("failed: the request failed")), "{texts:?}");

    // The registry page: an admin sets it; the password is never shown.
    h.open(&format!("/projects/{}/registry", s.project)).await?;
    let state = h.text_of("#registry-state").await?.unwrap_or_default();
    ensure!(state.contains("No registry"), "#registry-state reads {state:?}");
    h.fill("#registry-host", "127.0.0.1:5999").await?;
    h.fill("#registry-image", "Bad/Path").await?;
    h.fill("#registry-username", "ci").await?;
    h.fill("#registry-password", "e2e-registry-secret").await?;
    h.click("#registry-save").await?;
    let refused = h
        .poll(UI_LIMIT, "the image path refused", || async {
            Ok(h.text_of("#registry-image-error").await?.filter(|t| !t.is_empty()))
        })
        .await?;
    ensure!(refused.contains("lowercase"), "#registry-image-error reads {refused:?}");
    h.fill("#registry-image", "team/app").await?;
    h.click("#registry-save").await?;
    let saved = h
        .poll(UI_LIMIT, "the registry saved", || async {
            Ok(h.text_of("#registry-state").await?.filter(|t| t.contains("team/app")))
        })
        .await?;
    ensure!(
        saved.contains("127.0.0.1:5999/team/app/<service>") && saved.contains("ci (password set)"),
        "{saved:?}"
    );
    let html = h.js("return document.documentElement.outerHTML", vec![]).await?;
    ensure!(!html.to_string().contains("e2e-registry-secret"), "the password is in the page");
    let typed = h.js("return document.querySelector('#registry-password').value", vec![]).await?;
    ensure!(typed.as_str() == Some(""), "the password input keeps {typed}");
    h.open(&format!("/projects/{}", s.project)).await?;
    let href = h.find("a.registry-link").await?.attr("href").await?.unwrap_or_default();
    ensure!(href == format!("/projects/{}/registry", s.project), "a.registry-link href {href:?}");

    h.open("/no-such-page").await?;
    let who = h.text_of("#whoami").await?.unwrap_or_default();
    ensure!(who.contains(ADMIN), "the 404 page should show the signed-in top bar, #whoami is {who:?}");
    h.open("/status").await?;
    let shown = h.text_of("#status-edge").await?.unwrap_or_default();
    ensure!(shown == edge.to_string(), "#status-edge should show {edge}, shows {shown:?}");
    Ok(())
}

struct Seeded {
    project: i64,
    service: i64,
    host: String,
    good_build: i64,
    failed_build: i64,
    superseded: i64,
    live: i64,
}

/// A project and service with builds #1 (succeeded), #2 (failed at
/// checkout), #3 (succeeded), #4 (timed out) and deployments: #1's build
/// superseded, #3's build rolled back, a failed one, and a live rollback to
/// the first. Long refs, reasons and errors, as real ones can be.
async fn seed(h: &Harness, suffix: &str) -> anyhow::Result<Seeded> {
    let db = h.open_db().await?;
    let now = server::db::now_rfc3339();
    let (project_name, service_name) = (format!("lay-{suffix}"), format!("web-{suffix}"));
    let project: i64 =
        sqlx::query_scalar("INSERT INTO projects (name, created_at) VALUES (?, ?) RETURNING id")
            .bind(&project_name)
            .bind(&now)
            .fetch_one(&db)
            .await?;
    let service: i64 = sqlx::query_scalar(
        "INSERT INTO services (project_id, name, git_url, port, auto_deploy, next_build_number, \
         created_at, updated_at) VALUES (?, ?, 'file:///nonexistent/repo', 8080, 0, 5, ?, ?) RETURNING id",
    )
    .bind(project)
    .bind(&service_name)
    .bind(&now)
    .bind(&now)
    .fetch_one(&db)
    .await?;
    let git_ref = "feature/a-rather-long-branch-name-for-the-layout-test";
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let image = format!("sha256:{}", "0a1b2c3d".repeat(8));
    let checkout_error = format!(
        "git fetch failed: git fetch exited with exit status: 128: fatal: could not read from \
         file:///nonexistent/repo/{}",
        "very-long-path-segment-".repeat(6)
    );
    let mut builds = Vec::new();
    for (number, status, error, progress) in [
        (1, "succeeded", None, 100),
        (2, "failed", Some(checkout_error.as_str()), 5),
        (3, "succeeded", None, 100),
        (4, "timed_out", Some("the build ran longer than its timeout (1800 s)"), 40),
    ] {
        let ok = status == "succeeded";
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO builds (service_id, number, commit_sha, git_ref, trigger, actor, status, image_id, \
             tags, phase, progress, error, created_at, started_at, finished_at) \
             VALUES (?, ?, ?, ?, 'manual', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(service)
        .bind(number)
        .bind(sha)
        .bind(git_ref)
        .bind(ADMIN)
        .bind(status)
        .bind(ok.then_some(image.as_str()))
        .bind(if ok {
            format!(r#"["slipway/{project_name}-{service_name}:build-{number}"]"#)
        } else {
            "[]".into()
        })
        .bind(if ok { "done" } else { "checkout" })
        .bind(progress)
        .bind(error)
        .bind(&now)
        .bind(&now)
        .bind(&now)
        .fetch_one(&db)
        .await?;
        builds.push(id);
    }
    let config = serde_json::to_string(&DeployConfig {
        env: Vec::new(),
        kind: Default::default(),
        port: Some(8080),
        health: HealthCheck::default(),
        settle_secs: 5,
        command: None,
        volumes: Vec::new(),
        ports: Vec::new(),
        memory_bytes: 512 << 20,
        cpu_millis: 1000,
        drain_secs: 0,
    })?;
    let reason = "a long reason: ".to_string() + &"the release that the marketing team asked for ".repeat(4);
    let log_tail = "Error: listen EADDRINUSE: address already in use 0.0.0.0:8080 ".repeat(6);
    let rows = DeploymentRows {
        db: &db,
        service,
        image: &image,
        config: &config,
        now: &now,
        reason: &reason,
        log_tail: &log_tail,
    };
    let superseded = rows.insert(builds[0], "superseded", None, None).await?;
    rows.insert(builds[2], "rolled_back", None, None).await?;
    let unhealthy = format!("the container never became healthy: {image} exited with code 1");
    rows.insert(builds[2], "failed", Some(&unhealthy), None).await?;
    let live = rows.insert(builds[0], "live", None, Some(superseded)).await?;
    seed_notifications(&db, project, &now).await?;
    db.close().await;
    Ok(Seeded {
        project,
        service,
        host: format!("{service_name}.{project_name}.localhost"),
        good_build: builds[0],
        failed_build: builds[1],
        superseded,
        live,
    })
}

/// A notification target with deliveries, one of them failed with a long
/// error, so the notifications page shows its deliveries table. The URL is
/// not sealed with this installation's key: the page shows it as "…".
async fn seed_notifications(db: &server::db::Db, project: i64, now: &str) -> anyhow::Result<()> {
    let target: i64 = sqlx::query_scalar(
        "INSERT INTO notification_targets (project_id, name, kind, url_sealed, events, created_at) \
         VALUES (?, 'a-rather-long-target-name-for-the-layout', 'webhook', 'x', \
         'build.succeeded,build.failed,deploy.succeeded,deploy.failed,deploy.rolled_back', ?) RETURNING id",
    )
    .bind(project)
    .bind(now)
    .fetch_one(db)
    .await?;
    let error = "the request failed: error sending request: client error (Connect): tcp connect error: \
                 Connection refused (os error 111) "
        .repeat(2);
    for (event, ok, status, error) in [
        ("test", true, Some(200), None),
        ("build.failed", false, Some(500), None),
        ("deploy.rolled_back", false, None, Some(error.as_str())),
    ] {
        sqlx::query(
            "INSERT INTO notification_deliveries (target_id, event, attempt, ok, http_status, error, at) \
             VALUES (?, ?, 1, ?, ?, ?, ?)",
        )
        .bind(target)
        .bind(event)
        .bind(ok)
        .bind(status)
        .bind(error)
        .bind(now)
        .execute(db)
        .await?;
    }
    Ok(())
}

/// Writes deployment rows of one service, sharing image, config and texts.
struct DeploymentRows<'a> {
    db: &'a server::db::Db,
    service: i64,
    image: &'a str,
    config: &'a str,
    now: &'a str,
    reason: &'a str,
    log_tail: &'a str,
}

impl DeploymentRows<'_> {
    async fn insert(
        &self,
        build: i64,
        status: &str,
        error: Option<&str>,
        rollback_of: Option<i64>,
    ) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO deployments (service_id, build_id, image_id, config, status, reason, actor, \
             rollback_of, error, log_tail, created_at, started_at, finished_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(self.service)
        .bind(build)
        .bind(self.image)
        .bind(self.config)
        .bind(status)
        .bind(self.reason)
        .bind(ADMIN)
        .bind(rollback_of)
        .bind(error)
        .bind(error.is_some().then_some(self.log_tail))
        .bind(self.now)
        .bind(self.now)
        .bind(self.now)
        .fetch_one(self.db)
        .await?)
    }
}
