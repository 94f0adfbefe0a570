//! Page helpers on the harness: navigate and wait for hydration, find with
//! a deadline, fill inputs, click, read values through JavaScript.

use std::{future::Future, time::Duration};

use anyhow::{bail, Context};
use fantoccini::{elements::Element, Locator};

use super::Harness;

/// How long an element or a page may take to appear.
pub const UI_LIMIT: Duration = Duration::from_secs(20);

impl Harness {
    /// Polls `probe` every 100 ms until it yields a value or `limit` passes.
    /// The error names `what` and the probe's last error.
    pub async fn poll<T, F, Fut>(&self, limit: Duration, what: &str, mut probe: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<T>>>,
    {
        let start = std::time::Instant::now();
        let mut last_err = None;
        while start.elapsed() < limit {
            match probe().await {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) => last_err = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match last_err {
            Some(e) => bail!("timed out after {limit:?} waiting for {what}: {e:#}"),
            None => bail!("timed out after {limit:?} waiting for {what}"),
        }
    }

    /// Loads `path` of the dashboard and waits for `main[data-hydrated="true"]`.
    pub async fn open(&self, path: &str) -> anyhow::Result<()> {
        self.browser.goto(&self.server.url(path)).await.with_context(|| format!("loading {path}"))?;
        self.wait_main_hydrated().await
    }

    /// Waits until `<main>` carries `data-hydrated="true"` (UI_CONTRACT.md).
    pub async fn wait_main_hydrated(&self) -> anyhow::Result<()> {
        self.find(r#"main[data-hydrated="true"]"#).await.map(|_| ()).context("the page did not hydrate")
    }

    /// The first element matching `selector`, waiting up to [`UI_LIMIT`].
    pub async fn find(&self, selector: &str) -> anyhow::Result<Element> {
        self.poll(UI_LIMIT, &format!("element {selector}"), || async {
            Ok(self.browser.find_all(Locator::Css(selector)).await?.into_iter().next())
        })
        .await
    }

    /// Every element matching `selector` now (no waiting).
    pub async fn find_all(&self, selector: &str) -> anyhow::Result<Vec<Element>> {
        Ok(self.browser.find_all(Locator::Css(selector)).await?)
    }

    /// Waits for `selector`, then clicks it.
    pub async fn click(&self, selector: &str) -> anyhow::Result<()> {
        let el = self.find(selector).await?;
        el.click().await.with_context(|| format!("clicking {selector}"))
    }

    /// Replaces the text of the input matching `selector` by typing `text`.
    pub async fn fill(&self, selector: &str, text: &str) -> anyhow::Result<()> {
        let el = self.find(selector).await?;
        fill_element(&el, text).await.with_context(|| format!("filling {selector}"))
    }

    /// Trimmed text of the first element matching `selector` now, if any.
    pub async fn text_of(&self, selector: &str) -> anyhow::Result<Option<String>> {
        match self.find_all(selector).await?.into_iter().next() {
            Some(el) => Ok(Some(el.text().await?.trim().to_string())),
            None => Ok(None),
        }
    }

    /// Runs `script` in the page (arguments as `arguments[i]`).
    pub async fn js(&self, script: &str, args: Vec<serde_json::Value>) -> anyhow::Result<serde_json::Value> {
        Ok(self.browser.execute(script, args).await?)
    }

    /// The path of the current URL.
    pub async fn path(&self) -> anyhow::Result<String> {
        Ok(self.browser.current_url().await?.path().to_string())
    }

    /// Waits until the current path is `<prefix><number>` (optionally
    /// followed by `suffix`), then for hydration; returns the number.
    pub async fn wait_path_id(&self, prefix: &str, suffix: &str, limit: Duration) -> anyhow::Result<i64> {
        let id = self
            .poll(limit, &format!("the page {prefix}<id>{suffix}"), || async {
                let path = self.path().await?;
                Ok(path
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix(suffix))
                    .and_then(|n| n.parse().ok()))
            })
            .await?;
        self.wait_main_hydrated().await?;
        Ok(id)
    }

    /// Sets a checkbox to `on` by clicking it when needed.
    pub async fn set_checkbox(&self, selector: &str, on: bool) -> anyhow::Result<()> {
        let el = self.find(selector).await?;
        if (el.prop("checked").await?.as_deref() == Some("true")) != on {
            el.click().await?;
        }
        let now = el.prop("checked").await?.as_deref() == Some("true");
        anyhow::ensure!(now == on, "checkbox {selector} should be {on} after clicking it, is {now}");
        Ok(())
    }
}

/// Clears the input and types `text`; checks the value took.
pub async fn fill_element(el: &Element, text: &str) -> anyhow::Result<()> {
    el.clear().await?;
    el.send_keys(text).await?;
    let value = el.prop("value").await?.unwrap_or_default();
    anyhow::ensure!(value == text, "input value after typing {text:?} is {value:?}");
    Ok(())
}
