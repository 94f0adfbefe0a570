//! Drives headless Chromium through chromedriver (fantoccini) against a real
//! `slipway serve` process. On failure a screenshot and the page HTML are
//! saved under `<target>/e2e-artifacts/<test>/`.

use std::{
    future::Future,
    path::PathBuf,
    pin::Pin,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use fantoccini::{Client, ClientBuilder, Locator};
use server::testkit::{free_port, profile_dir, ServerProcess, TestDataDir};

pub struct Harness {
    pub browser: Client,
    pub server: ServerProcess,
    _driver: ChildGuard,
    _data: TestDataDir,
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub type TestFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

/// Starts the server and the browser, runs `body`, saves artefacts if it
/// fails, and always shuts the browser down.
pub async fn run<F>(name: &str, body: F)
where
    F: for<'a> FnOnce(&'a Harness) -> TestFuture<'a>,
{
    let harness = match Harness::start().await {
        Ok(h) => h,
        Err(e) => panic!("{name}: cannot start the harness: {e:#}"),
    };
    let result = body(&harness).await;
    if let Err(e) = &result {
        let dir = harness.save_artifacts(name).await;
        let _ = harness.browser.clone().close().await;
        panic!("{name} failed: {e:#}\nartefacts: {}\nserver log:\n{}", dir.display(), harness.server.log());
    }
    let _ = harness.browser.clone().close().await;
}

impl Harness {
    async fn start() -> anyhow::Result<Self> {
        let profile = profile_dir()?;
        let bin = profile.join("slipway");
        anyhow::ensure!(
            bin.is_file(),
            "{} is missing: build the server first (make test does)",
            bin.display()
        );
        let site = std::env::var_os("SLIPWAY_SITE_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| profile.parent().map(|t| t.join("site")).unwrap_or_default());
        anyhow::ensure!(
            site.join("pkg/slipway_bg.wasm").is_file(),
            "no WASM bundle under {}: build the site first (make site)",
            site.display()
        );
        let data = TestDataDir::new()?;
        let server = ServerProcess::start(&bin, data.path(), &site)?;
        let (driver, port) = start_chromedriver(&data)?;
        let browser = connect_browser(port, &data).await?;
        Ok(Harness { browser, server, _driver: driver, _data: data })
    }

    /// Waits until the page's WASM has hydrated (the root sets `data-hydrated`).
    pub async fn wait_hydrated(&self, selector: &str) -> anyhow::Result<()> {
        self.wait_until(Duration::from_secs(20), "the page to hydrate", || async {
            let el = self.browser.find(Locator::Css(selector)).await?;
            Ok(el.attr("data-hydrated").await?.as_deref() == Some("true"))
        })
        .await
    }

    pub async fn text(&self, selector: &str) -> anyhow::Result<String> {
        Ok(self.browser.find(Locator::Css(selector)).await?.text().await?)
    }

    /// Polls `check` every 100 ms until it returns true or `limit` passes.
    pub async fn wait_until<F, Fut>(&self, limit: Duration, what: &str, mut check: F) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<bool>>,
    {
        let start = Instant::now();
        let mut last_err = None;
        while start.elapsed() < limit {
            match check().await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last_err = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match last_err {
            Some(e) => bail!("timed out after {limit:?} waiting for {what}: {e:#}"),
            None => bail!("timed out after {limit:?} waiting for {what}"),
        }
    }

    async fn save_artifacts(&self, name: &str) -> PathBuf {
        let dir = profile_dir()
            .ok()
            .and_then(|p| p.parent().map(|t| t.join("e2e-artifacts").join(name)))
            .unwrap_or_else(|| PathBuf::from("e2e-artifacts").join(name));
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(png) = self.browser.screenshot().await {
            let _ = std::fs::write(dir.join("screenshot.png"), png);
        }
        if let Ok(html) = self.browser.source().await {
            let _ = std::fs::write(dir.join("page.html"), html);
        }
        let _ = std::fs::write(dir.join("server.log"), self.server.log());
        dir
    }
}

fn start_chromedriver(data: &TestDataDir) -> anyhow::Result<(ChildGuard, u16)> {
    let port = free_port()?;
    let log = std::fs::File::create(data.path().join("chromedriver.log"))?;
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start chromedriver (scripts/setup.sh installs it)")?;
    let guard = ChildGuard(child);
    let addr = format!("127.0.0.1:{port}").parse()?;
    let start = Instant::now();
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("chromedriver did not listen on {addr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((guard, port))
}

async fn connect_browser(port: u16, data: &TestDataDir) -> anyhow::Result<Client> {
    let profile = data.path().join("chromium-profile");
    let args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1280,900".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .context("cannot open a Chromium session through chromedriver")
}
