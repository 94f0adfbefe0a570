//! Moving around the dashboard stays client-side: from a service page to its
//! project, to a second service, straight from one service page to another
//! (the same route with a new id) and back through the browser's history,
//! the document is never loaded again (a marker set on `window` survives)
//! and each page shows the service its URL names.

use crate::support;

use anyhow::ensure;
use server::testkit::wait::unique_suffix;
use support::{page::UI_LIMIT, Harness};

const ADMIN: &str = "nav-admin";
const PASSWORD: &str = "nav-correct-horse-battery";

#[tokio::test]
async fn moves_between_pages_and_services_without_reloading() {
    support::run("navigation", |h| Box::pin(flow(h))).await;
}

async fn flow(h: &Harness) -> anyhow::Result<()> {
    h.set_up_admin(ADMIN, PASSWORD).await?;
    let suffix = unique_suffix();
    let (project, first, second) = seed(h, &suffix).await?;
    let (first_name, second_name) = (format!("alpha-{suffix}"), format!("beta-{suffix}"));

    h.open(&format!("/services/{first}")).await?;
    expect_title(h, &first_name).await?;
    h.js("window.__slipwayNavMarker = 'kept'; return null;", vec![]).await?;

    h.click(&format!(r#"p.crumbs a[href="/projects/{project}"]"#)).await?;
    expect_path(h, &format!("/projects/{project}")).await?;
    h.click(&format!(r#"main a[href="/services/{second}"]"#)).await?;
    expect_path(h, &format!("/services/{second}")).await?;
    expect_title(h, &second_name).await?;
    expect_same_document(h, "project page, then the second service").await?;

    // The same route with another id: a link inside the dashboard (the
    // router handles every same-origin link) from one service to the other.
    let script = "const a = document.createElement('a'); a.id = 'nav-probe'; a.href = arguments[0]; \
                  a.textContent = 'probe'; document.querySelector('main').appendChild(a); return null;";
    h.js(script, vec![format!("/services/{first}").into()]).await?;
    h.click("a#nav-probe").await?;
    expect_path(h, &format!("/services/{first}")).await?;
    expect_title(h, &first_name).await?;
    let host = h.text_of("a#service-url").await?.unwrap_or_default();
    ensure!(host.contains(&first_name), "a#service-url should be the first service's, reads {host:?}");
    expect_same_document(h, "a link from one service page to another").await?;

    h.browser.back().await?;
    expect_path(h, &format!("/services/{second}")).await?;
    expect_title(h, &second_name).await?;
    expect_same_document(h, "the browser's Back button").await
}

async fn expect_path(h: &Harness, want: &str) -> anyhow::Result<()> {
    h.poll(UI_LIMIT, &format!("the path {want}"), || async { Ok((h.path().await? == want).then_some(())) })
        .await
}

async fn expect_title(h: &Harness, want: &str) -> anyhow::Result<()> {
    h.poll(UI_LIMIT, &format!("the heading {want:?}"), || async {
        Ok((h.text_of("main h1").await?.as_deref() == Some(want)).then_some(()))
    })
    .await
}

async fn expect_same_document(h: &Harness, how: &str) -> anyhow::Result<()> {
    let marker = h.js("return window.__slipwayNavMarker || null;", vec![]).await?;
    ensure!(marker.as_str() == Some("kept"), "{how} reloaded the whole page (the window marker is gone)");
    Ok(())
}

/// A project with two services (no builds needed: the pages show their
/// settings and empty histories).
async fn seed(h: &Harness, suffix: &str) -> anyhow::Result<(i64, i64, i64)> {
    let db = h.open_db().await?;
    let now = server::db::now_rfc3339();
    let project: i64 =
        sqlx::query_scalar("INSERT INTO projects (name, created_at) VALUES (?, ?) RETURNING id")
            .bind(format!("nav-{suffix}"))
            .bind(&now)
            .fetch_one(&db)
            .await?;
    let mut ids = Vec::new();
    for name in [format!("alpha-{suffix}"), format!("beta-{suffix}")] {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO services (project_id, name, git_url, port, auto_deploy, next_build_number, \
             created_at, updated_at) VALUES (?, ?, 'file:///nonexistent/repo', 8080, 0, 1, ?, ?) RETURNING id",
        )
        .bind(project)
        .bind(&name)
        .bind(&now)
        .bind(&now)
        .fetch_one(&db)
        .await?;
        ids.push(id);
    }
    Ok((project, ids[0], ids[1]))
}
