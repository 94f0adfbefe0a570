//! The status page (`/status`): server-rendered with its data, then hydrated
//! and refreshed through a `#[server]` function. It needs a signed-in user
//! (viewer), so the test first creates the admin through `/setup`.

use crate::support;

use std::time::Duration;

use anyhow::Context;
use fantoccini::Locator;
use server::testkit::http_get;

const ADMIN: &str = "status-admin";
const PASSWORD: &str = "status-page-password";

#[tokio::test]
async fn status_page_is_server_rendered_then_hydrated_and_refreshes() {
    support::run("status_page", |h| {
        Box::pin(async move {
            // Signed out, the page answers with the sign-in prompt (401).
            let (code, html) = http_get(&h.server.url("/status"))?;
            anyhow::ensure!(matches!(code, 200 | 401), "GET /status answered {code}");
            anyhow::ensure!(html.contains("sign-in-link"), "a signed-out GET /status lacks a#sign-in-link");
            for asset in ["/pkg/slipway.js", "/pkg/slipway_bg.wasm", "/pkg/slipway.css"] {
                let (code, _) = http_get(&h.server.url(asset))?;
                anyhow::ensure!(code == 200, "{asset} answered {code}");
            }

            h.set_up_admin(ADMIN, PASSWORD).await?;

            // Without running any JavaScript of the page: the first HTML
            // response for a signed-in user already holds the status.
            let html = h.js("return fetch('/status').then(r => r.text())", vec![]).await?;
            let html = html.as_str().context("fetch('/status') gave no text")?;
            anyhow::ensure!(html.contains(server::VERSION), "SSR HTML lacks the version");
            anyhow::ensure!(html.contains("schema up to date"), "SSR HTML lacks the database state");
            anyhow::ensure!(html.contains("Docker"), "SSR HTML lacks the Docker state");

            h.open("/status").await?;
            h.wait_hydrated("#status").await?;
            // The time is shown to the second; `datetime` holds the server's
            // full timestamp.
            let checked_at = || async {
                let el = h.browser.find(Locator::Css("#status-checked-at")).await?;
                anyhow::Ok(el.attr("datetime").await?.unwrap_or_default())
            };
            let before = checked_at().await?;
            anyhow::ensure!(!before.is_empty(), "#status-checked-at has no datetime");
            anyhow::ensure!(h.text("#status-checked-at").await?.ends_with(" UTC"));
            anyhow::ensure!(h.text("#status-docker").await?.starts_with("Docker Engine"));

            h.browser.find(Locator::Css("#refresh-status")).await?.click().await?;

            // Only a hydrated page reacts to the click, and only an answer
            // from the server function changes the check time.
            h.wait_until(Duration::from_secs(10), "a fresh status from the server", || async {
                Ok(checked_at().await? != before)
            })
            .await?;
            Ok(())
        })
    })
    .await;
}
