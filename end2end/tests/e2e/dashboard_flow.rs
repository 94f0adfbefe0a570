//! The whole dashboard in one browser session, against the real server, git
//! and Docker: first-run setup with the token from the server log, logout and
//! login, a project and a service (env GREETING=v1), a build watched live, a
//! deploy answered through the edge router, an env change deployed (v2), and
//! a rollback from the deployments table that brings v1 back.
//! Element ids and routes: docs/UI_CONTRACT.md.

use crate::support;

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use fantoccini::Locator;
use server::testkit::{wait::unique_suffix, GitRepo, BASE_IMAGE};
use support::{edge, page::fill_element, page::UI_LIMIT, Harness};

const BUILD_LIMIT: Duration = Duration::from_secs(120);
const DEPLOY_LIMIT: Duration = Duration::from_secs(60);
/// Setup and login hash a password (argon2id, debug build).
const SIGN_IN_LIMIT: Duration = Duration::from_secs(30);
const ADMIN: &str = "admin";
const PASSWORD: &str = "e2e-correct-horse-battery";

#[tokio::test]
async fn dashboard_setup_login_build_deploy_change_env_and_roll_back() {
    support::run("dashboard_flow", |h| Box::pin(flow(h))).await;
}

async fn flow(h: &Harness) -> anyhow::Result<()> {
    let t = Instant::now();
    let step = |name: &str| eprintln!("[{:6.1} s] {name}", t.elapsed().as_secs_f64());
    support::docker::ensure_base_image().await?;
    let suffix = unique_suffix();
    let (project, service) = (format!("e2e-{suffix}"), format!("web-{suffix}"));
    let host = format!("{service}.{project}.localhost");
    let repo = greeting_repo(&suffix)?;

    h.set_up_admin(ADMIN, PASSWORD).await?;
    step("setup page: admin created and signed in");
    log_out_and_in(h).await?;
    step("logout, then login");
    two_field_errors(h).await?;
    step("a form with two bad fields shows both messages at their fields");
    let service_id = create_service(h, &project, &service, &repo.url()).await?;
    step("project and service created");
    let build_id = build_and_watch(h).await?;
    step("build succeeded, live log and progress seen");

    h.click("button#deploy-this").await?;
    edge::wait_for_body(h.server.edge_addr, &host, "greeting=v1", DEPLOY_LIMIT)
        .await
        .context("deploy of v1")?;
    step("v1 answers through the edge");
    h.open(&format!("/services/{service_id}")).await?;
    let build_status = h.text_of(&format!(r#"table#builds tr[data-build-id="{build_id}"] .status"#)).await?;
    ensure!(
        build_status.as_deref().map(norm).as_deref() == Some("succeeded"),
        "table#builds should list build {build_id} as succeeded, shows {build_status:?}"
    );
    let v1 = wait_live_row(h, &[]).await.context("table#deployments after the v1 deploy")?;

    // v2: the same image with GREETING changed in the settings form.
    set_env_value(h, "GREETING", "v2").await?;
    h.fill("#deploy-reason", "e2e: greeting v2").await?;
    h.click("button#deploy-latest").await?;
    if let Err(e) = edge::wait_for_body(h.server.edge_addr, &host, "greeting=v2", DEPLOY_LIMIT).await {
        bail!("deploy of v2: {e:#}; #action-error: {:?}", h.text_of("#action-error").await?);
    }
    step("v2 answers through the edge");
    h.open(&format!("/services/{service_id}")).await?;
    let v2 = wait_live_row(h, &[v1]).await.context("table#deployments after the v2 deploy")?;
    ensure!(row_status(h, v1).await? == "superseded", "deployment {v1} (v1) should be superseded by {v2}");

    roll_back(h, v1, &host).await?;
    step("rollback: v1 answers through the edge again");
    // Without a reload: the table follows the new deployment until it is live.
    let v3 =
        wait_live_row(h, &[v1, v2]).await.context("table#deployments updating live after the rollback")?;
    ensure!(v3 > v2, "the rollback's deployment {v3} should be newer than v2's {v2}");
    h.open(&format!("/services/{service_id}")).await?;
    ensure!(row_status(h, v2).await? == "rolled back", "deployment {v2} (v2) should be rolled back");
    let reason = h.text_of(&format!(r#"tr[data-deployment-id="{v3}"] .reason"#)).await?.unwrap_or_default();
    ensure!(
        reason.contains("e2e: back to v1"),
        "the rollback row's .reason should hold the reason, is {reason:?}"
    );
    step("deployments table: v1 superseded, v2 rolled back, rollback live");
    tokens_and_audit(h).await?;
    step("API token created (shown once) and revoked; audit log lists and filters the flow's actions");
    Ok(())
}

/// `/admin/users`: a new user with a bad name and a short password gets
/// both messages from one submission, each under its input.
async fn two_field_errors(h: &Harness) -> anyhow::Result<()> {
    h.open("/admin/users").await?;
    h.wait_main_hydrated().await?;
    h.fill("#new-user-name", "Not A Slug").await?;
    h.fill("#new-user-password", "short").await?;
    h.click("button#new-user-submit").await?;
    let script = "const t = s => document.querySelector(s)?.textContent.trim() || ''; \
                  const inv = s => document.querySelector(s)?.getAttribute('aria-invalid'); \
                  return [t('#new-user-name-error'), t('#new-user-password-error'), \
                          inv('#new-user-name'), inv('#new-user-password')];";
    let (name, password) = h
        .poll(UI_LIMIT, "#new-user-name-error and #new-user-password-error", || async {
            let v = h.js(script, vec![]).await?;
            let s = |i: usize| v[i].as_str().unwrap_or_default().to_string();
            let both = !s(0).is_empty() && !s(1).is_empty() && s(2) == "true" && s(3) == "true";
            Ok(both.then(|| (s(0), s(1))))
        })
        .await?;
    ensure!(password.contains("at least 12 characters"), "#new-user-password-error says {password:?}");
    ensure!(
        !name.starts_with("name:") && !password.starts_with("password:"),
        "prefixed: {name:?} {password:?}"
    );
    Ok(())
}

/// `/account/tokens`: create a token (shown once), revoke it; `/admin/audit`:
/// the flow's actions are listed and the action filter narrows them.
async fn tokens_and_audit(h: &Harness) -> anyhow::Result<()> {
    h.open("/account/tokens").await?;
    h.wait_main_hydrated().await?;
    h.fill("#token-name", "e2e token").await?;
    h.click("button#token-create").await?;
    let token = h
        .poll(UI_LIMIT, "code#new-token after button#token-create", || async {
            h.text_of("code#new-token").await
        })
        .await?;
    ensure!(token.trim().starts_with("slp_") && token.trim().len() > 40, "token text {token:?}");
    h.click("table#tokens tr[data-token-id] button").await?;
    h.poll(UI_LIMIT, "the token row to say revoked", || async {
        Ok(h.text_of("table#tokens tr[data-token-id]").await?.filter(|t| t.contains("revoked")).map(|_| ()))
    })
    .await?;
    h.open("/admin/audit").await?;
    let table = h.text_of("table#audit").await?.unwrap_or_default();
    for action in
        ["login", "service.create", "build.trigger", "deploy.rollback", "token.create", "token.revoke"]
    {
        ensure!(table.contains(action), "table#audit (first HTML) should list {action}: {table}");
    }
    h.wait_main_hydrated().await?;
    h.fill("#audit-action", "deploy").await?;
    h.click("button#audit-search").await?;
    h.poll(UI_LIMIT, "table#audit to hold only deploy actions after filtering", || async {
        let rows = h.find_all("table#audit tr[data-audit-id] code").await?;
        let mut actions = Vec::new();
        for row in rows {
            actions.push(row.text().await?);
        }
        Ok((!actions.is_empty() && actions.iter().all(|a| a.starts_with("deploy."))).then_some(()))
    })
    .await
}

/// A service printing `greeting=$GREETING` (the deployment's env) on `/`.
/// Three slow build steps make the live log and the progress bar observable;
/// `suffix` in them defeats the builder cache of earlier runs.
fn greeting_repo(suffix: &str) -> anyhow::Result<GitRepo> {
    let repo = GitRepo::new()?;
    let mut dockerfile = format!("FROM {BASE_IMAGE}\n");
    for n in 1..=3 {
        dockerfile += &format!(
            "RUN [\"sh\", \"-c\", \"echo e2e {suffix} slow step {n}; sleep 2; echo slow step {n} done\"]\n"
        );
    }
    dockerfile += "EXPOSE 8080\n\
        CMD [\"sh\", \"-c\", \"echo \\\"greeting=$GREETING\\\" > /www/index.html && exec httpd -f -p 8080 -h /www\"]\n";
    repo.write("Dockerfile", &dockerfile)?;
    repo.commit("greeting service")?;
    Ok(repo)
}

async fn log_out_and_in(h: &Harness) -> anyhow::Result<()> {
    h.click("button#logout").await?;
    h.poll(UI_LIMIT, "#whoami to drop the user after button#logout", || async {
        Ok((!h.text_of("#whoami").await?.unwrap_or_default().contains(ADMIN)).then_some(()))
    })
    .await?;
    h.open("/").await?;
    h.click("a#sign-in-link").await.context("a signed-out visitor of / should get a#sign-in-link")?;
    h.poll(UI_LIMIT, "a#sign-in-link to lead to /login", || async {
        Ok((h.path().await? == "/login").then_some(()))
    })
    .await?;
    h.wait_main_hydrated().await?;
    h.fill("#login-name", ADMIN).await?;
    h.fill("#login-password", PASSWORD).await?;
    h.click("button#login-submit").await?;
    wait_signed_in(h, "#login-error").await.context("signing in through /login")
}

/// Waits until `#whoami` names the admin; the error quotes `error_sel`.
async fn wait_signed_in(h: &Harness, error_sel: &str) -> anyhow::Result<()> {
    let signed_in = h
        .poll(SIGN_IN_LIMIT, "#whoami to contain the admin's name", || async {
            Ok(h.text_of("#whoami").await?.filter(|w| w.contains(ADMIN)).map(|_| ()))
        })
        .await;
    match signed_in {
        Ok(()) => Ok(()),
        Err(e) => bail!("{e:#}; {error_sel}: {:?}", h.text_of(error_sel).await?),
    }
}

/// Creates the project on `/`, then the service through `a.new-service`;
/// returns the service id from the page saving lands on.
async fn create_service(h: &Harness, project: &str, service: &str, git_url: &str) -> anyhow::Result<i64> {
    h.open("/").await?;
    h.fill("#new-project-name", project).await?;
    h.click("button#new-project-submit").await?;
    let section = format!(r#"section.project[data-project="{project}"]"#);
    if let Err(e) = h.find(&section).await {
        bail!("{e:#}; #new-project-error: {:?}", h.text_of("#new-project-error").await?);
    }
    h.click(&format!("{section} a.new-service")).await?;
    h.wait_path_id("/projects/", "/services/new", UI_LIMIT).await.context("a.new-service")?;
    h.find("form#service-form").await?;
    h.fill("#svc-name", service).await?;
    h.fill("#svc-git-url", git_url).await?;
    h.fill("#svc-port", "8080").await?;
    let kind = h.find("#svc-health-kind").await?;
    if kind.prop("value").await?.as_deref() != Some("http") {
        kind.select_by_value("http").await?;
    }
    h.fill("#svc-health-path", "/").await?;
    h.fill("#svc-health-interval", "200").await?;
    h.fill("#svc-drain", "0").await?;
    // Builds and deploys are started by hand in this test.
    h.set_checkbox("#svc-auto-deploy", false).await?;
    h.click("button#env-add").await?;
    let rows = h
        .poll(UI_LIMIT, "an .env-row after button#env-add", || async {
            let rows = h.find_all(".env-row").await?;
            Ok((!rows.is_empty()).then_some(rows))
        })
        .await?;
    let row = rows.last().context("no .env-row")?;
    fill_element(&row.find(Locator::Css("input.env-name")).await?, "GREETING").await?;
    fill_element(&row.find(Locator::Css("input.env-value")).await?, "v1").await?;
    h.click("button#svc-save").await?;
    match h.wait_path_id("/services/", "", UI_LIMIT).await {
        Ok(id) => Ok(id),
        Err(e) => bail!("saving the new service: {e:#}; form errors: {}", form_errors(h).await?),
    }
}

/// `#svc-error` and every `.field-error`, for failure messages.
async fn form_errors(h: &Harness) -> anyhow::Result<String> {
    let script = "return Array.from(document.querySelectorAll('#svc-error, .field-error'))\
                  .map(e => (e.dataset.field || 'form') + ': ' + e.textContent.trim()).join('; ')";
    Ok(h.js(script, vec![]).await?.as_str().unwrap_or_default().to_string())
}

/// Clicks `#build-only` on the service page (the service deploys
/// automatically; this flow deploys with `#deploy-this`), follows the build
/// page while the build runs, and checks the live log and the progress bar.
/// Returns the id.
async fn build_and_watch(h: &Harness) -> anyhow::Result<i64> {
    h.click("button#build-only").await?;
    let build_id =
        h.wait_path_id("/builds/", "", UI_LIMIT).await.context("button#build-only opens the build page")?;
    let samples = sample_build_page(h).await?;
    let last = samples.last().context("no sample of the build page")?;
    if last.status != "succeeded" {
        let log = h.js("return document.querySelector('#build-log')?.innerText.slice(-2000)", vec![]).await?;
        bail!(
            "#build-status of build {build_id} should end succeeded, is {:?}; #build-error: {:?}; log tail: {}",
            last.status,
            h.text_of("#build-error").await?,
            log.as_str().unwrap_or_default()
        );
    }
    let running: Vec<&Sample> = samples.iter().filter(|s| s.status == "running").collect();
    let grew = running.windows(2).any(|w| w[1].lines > w[0].lines);
    ensure!(grew, "the count of .log-line should grow while #build-status is running; samples: {samples:?}");
    let progress: Vec<f64> = samples.iter().filter_map(|s| s.progress).collect();
    let rose = progress.windows(2).any(|w| w[0] < w[1] && w[1] < 100.0);
    ensure!(rose, "progress#build-progress should rise at least once before 100; values: {progress:?}");
    ensure!(
        progress.last() == Some(&100.0),
        "progress#build-progress should end at 100; values: {progress:?}"
    );
    let lines = check_log_lines(h).await?;
    let mut seen = progress.clone();
    seen.dedup();
    eprintln!("build page: {} samples, {lines} log lines, progress {seen:?}", samples.len());
    Ok(build_id)
}

#[derive(Debug)]
#[allow(dead_code)] // `at` is read through Debug in failure messages
struct Sample {
    at: u128,
    status: String,
    lines: u64,
    progress: Option<f64>,
}

/// Samples `#build-status`, the `.log-line` count and the progress value
/// every 100 ms until the status is final or [`BUILD_LIMIT`] passes.
async fn sample_build_page(h: &Harness) -> anyhow::Result<Vec<Sample>> {
    let script = "const s = document.querySelector('#build-status'); \
                  const p = document.querySelector('progress#build-progress'); \
                  return { status: s ? s.textContent.trim() : '', \
                           lines: document.querySelectorAll('#build-log .log-line').length, \
                           progress: p ? p.value : null };";
    let start = Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < BUILD_LIMIT {
        let v = h.js(script, vec![]).await?;
        let sample = Sample {
            at: start.elapsed().as_millis(),
            status: norm(v["status"].as_str().unwrap_or_default()),
            lines: v["lines"].as_u64().unwrap_or(0),
            progress: v["progress"].as_f64(),
        };
        let done = !matches!(sample.status.as_str(), "" | "queued" | "running");
        samples.push(sample);
        if done {
            return Ok(samples);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("#build-status still not final after {BUILD_LIMIT:?}; last sample: {:?}", samples.last())
}

/// Every line of the finished build's log: `data-seq` without gap or
/// duplicate, and the Dockerfile's own output among them.
async fn check_log_lines(h: &Harness) -> anyhow::Result<usize> {
    let script = "return Array.from(document.querySelectorAll('#build-log .log-line'))\
                  .map(l => [Number(l.dataset.seq), l.textContent]);";
    let lines = h.js(script, vec![]).await?;
    let lines: Vec<(i64, String)> =
        serde_json::from_value(lines).context(".log-line with a numeric data-seq")?;
    let seqs: Vec<i64> = lines.iter().map(|l| l.0).collect();
    ensure!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "data-seq of .log-line should count up by one: {seqs:?}"
    );
    ensure!(
        lines.iter().any(|l| l.1.contains("slow step 3 done")),
        "#build-log should show the Dockerfile's RUN output (\"slow step 3 done\")"
    );
    Ok(lines.len())
}

/// Rows of `table#deployments`: id and normalised `.status`.
async fn deployments(h: &Harness) -> anyhow::Result<Vec<(i64, String)>> {
    let script = "return Array.from(document.querySelectorAll('table#deployments tr[data-deployment-id]'))\
                  .map(r => [Number(r.dataset.deploymentId), (r.querySelector('.status') || {}).textContent || '']);";
    let rows: Vec<(i64, String)> = serde_json::from_value(h.js(script, vec![]).await?)
        .context("table#deployments rows with a numeric data-deployment-id")?;
    Ok(rows.into_iter().map(|(id, s)| (id, norm(&s))).collect())
}

/// Waits until a row not in `known` shows `live`; returns its id.
async fn wait_live_row(h: &Harness, known: &[i64]) -> anyhow::Result<i64> {
    let seen = std::cell::RefCell::new(Vec::new());
    let found = h
        .poll(DEPLOY_LIMIT, "a new live row in table#deployments", || async {
            let rows = deployments(h).await?;
            let live = rows.iter().find(|(id, s)| s == "live" && !known.contains(id)).map(|r| r.0);
            *seen.borrow_mut() = rows;
            Ok(live)
        })
        .await;
    found.with_context(|| format!("rows (id, status): {:?}", seen.borrow()))
}

async fn row_status(h: &Harness, id: i64) -> anyhow::Result<String> {
    let rows = deployments(h).await?;
    Ok(rows.into_iter().find(|r| r.0 == id).with_context(|| format!("no row for deployment {id}"))?.1)
}

/// Sets the value of the env row named `name` in the settings form and saves.
async fn set_env_value(h: &Harness, name: &str, value: &str) -> anyhow::Result<()> {
    h.find(".env-row").await?;
    let mut target = None;
    for row in h.find_all(".env-row").await? {
        if row.find(Locator::Css("input.env-name")).await?.prop("value").await?.as_deref() == Some(name) {
            target = Some(row);
        }
    }
    let row = target.with_context(|| format!("no .env-row whose input.env-name is {name}"))?;
    fill_element(&row.find(Locator::Css("input.env-value")).await?, value).await?;
    h.click("button#svc-save").await?;
    let saved = h
        .poll(UI_LIMIT, "#svc-saved after saving", || async {
            Ok(h.text_of("#svc-saved").await?.filter(|t| !t.is_empty()).map(|_| ()))
        })
        .await;
    match saved {
        Ok(()) => Ok(()),
        Err(e) => bail!("{e:#}; form errors: {}", form_errors(h).await?),
    }
}

/// Opens the rollback dialog on `target`'s row, checks the preview, confirms
/// with a reason, and waits until the edge serves v1 again.
async fn roll_back(h: &Harness, target: i64, host: &str) -> anyhow::Result<()> {
    h.click(&format!(r#"table#deployments tr[data-deployment-id="{target}"] button.rollback"#)).await?;
    h.find("dialog#rollback-dialog[open]")
        .await
        .context("button.rollback should open dialog#rollback-dialog")?;
    h.poll(UI_LIMIT, "#rollback-changes to mention GREETING", || async {
        Ok(h.text_of("#rollback-changes").await?.filter(|t| t.contains("GREETING")).map(|_| ()))
    })
    .await?;
    h.fill("#rollback-reason", "e2e: back to v1").await?;
    h.click("button#rollback-confirm").await?;
    if let Err(e) = edge::wait_for_body(h.server.edge_addr, host, "greeting=v1", DEPLOY_LIMIT).await {
        bail!("rollback to {target}: {e:#}; #rollback-error: {:?}", h.text_of("#rollback-error").await?);
    }
    Ok(())
}

/// Status text as compared here: lower case, `_`/`-` as spaces.
fn norm(s: &str) -> String {
    s.trim().to_lowercase().replace(['_', '-'], " ")
}
