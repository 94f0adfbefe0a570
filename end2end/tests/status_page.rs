//! The status page: server-rendered, hydrated, and refreshed through a
//! `#[server]` function.

mod support;

use std::time::Duration;

use fantoccini::Locator;
use server::testkit::http_get;

#[tokio::test]
async fn status_page_is_server_rendered_then_hydrated_and_refreshes() {
    support::run("status_page", |h| {
        Box::pin(async move {
            // Without any JavaScript: the first HTML response already holds the status.
            let (code, html) = http_get(&h.server.url("/"))?;
            anyhow::ensure!(code == 200, "GET / answered {code}");
            anyhow::ensure!(html.contains(server::VERSION), "SSR HTML lacks the version");
            anyhow::ensure!(html.contains("migrations applied"), "SSR HTML lacks the database state");
            anyhow::ensure!(html.contains("Docker"), "SSR HTML lacks the Docker state");
            for asset in ["/pkg/slipway.js", "/pkg/slipway_bg.wasm", "/pkg/slipway.css"] {
                let (code, _) = http_get(&h.server.url(asset))?;
                anyhow::ensure!(code == 200, "{asset} answered {code}");
            }

            h.browser.goto(&h.server.url("/")).await?;
            h.wait_hydrated("#status").await?;
            let before = h.text("#status-checked-at").await?;
            anyhow::ensure!(h.text("#refresh-count").await? == "0");
            anyhow::ensure!(h.text("#status-docker").await?.starts_with("Docker Engine"));

            h.browser.find(Locator::Css("#refresh-status")).await?.click().await?;

            // Only a hydrated page reacts to the click, and only an answer
            // from the server function changes the check time.
            h.wait_until(Duration::from_secs(10), "a fresh status from the server", || async {
                let now = h.text("#status-checked-at").await?;
                Ok(now != before && h.text("#refresh-count").await? == "1")
            })
            .await?;
            Ok(())
        })
    })
    .await;
}
