//! Drives headless Chromium through chromedriver (fantoccini) against a real
//! `slipway serve` process on a fresh data dir (no users). On any failure
//! (error, panic or the overall time limit) a screenshot, the page HTML, the
//! server log and the chromedriver log are saved under
//! `<target>/e2e-artifacts/<test>/` and the path is printed. Docker objects
//! the server made are removed by its instance label when the test ends.

#![allow(dead_code)] // each test binary uses a different part

pub mod chrome;
pub mod docker;
pub mod edge;
pub mod page;

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    path::PathBuf,
    pin::Pin,
    task::Poll,
    time::{Duration, Instant},
};

use anyhow::anyhow;
use fantoccini::{Client, Locator};
use server::testkit::{profile_dir, wait::strip_ansi, ServerProcess, TestDataDir};

/// No e2e test may run longer than this (every wait inside is bounded too).
pub const TEST_LIMIT: Duration = Duration::from_secs(600);

/// Fields drop in order: the server is killed, then its Docker objects are
/// removed, then chromedriver stops, then the data dir goes.
pub struct Harness {
    pub browser: Client,
    pub server: ServerProcess,
    _cleanup: docker::InstanceCleanup,
    _driver: chrome::ChildGuard,
    data: TestDataDir,
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
    let started = Instant::now();
    let result = match tokio::time::timeout(TEST_LIMIT, catch_panic(body(&harness))).await {
        Ok(r) => r,
        Err(_) => Err(anyhow!("the test ran longer than {TEST_LIMIT:?}")),
    };
    if let Err(e) = &result {
        let dir = harness.save_artifacts(name).await;
        eprintln!(
            "{name}: failed after {:.1} s; artefacts in {}",
            started.elapsed().as_secs_f64(),
            dir.display()
        );
        let _ = harness.browser.clone().close().await;
        panic!("{name} failed: {e:#}\nartefacts: {}\nserver log:\n{}", dir.display(), harness.server.log());
    }
    eprintln!("{name}: passed in {:.1} s", started.elapsed().as_secs_f64());
    let _ = harness.browser.clone().close().await;
}

/// Turns a panic inside the test body into an error, so artefacts are saved.
async fn catch_panic(mut fut: TestFuture<'_>) -> anyhow::Result<()> {
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "(no message)".into());
                Poll::Ready(Err(anyhow!("panicked: {msg}")))
            }
        }
    })
    .await
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
        // The installation id labels every Docker object the server makes.
        let db = data.open_db().await?;
        let uid = server::db::instance_uid(&db).await?;
        db.close().await;
        let cleanup = docker::InstanceCleanup { uid };
        let server = ServerProcess::start(&bin, data.path(), &site)?;
        let (driver, port) = chrome::start_chromedriver(data.path())?;
        let browser = chrome::connect_browser(port, data.path()).await?;
        Ok(Harness { browser, server, _cleanup: cleanup, _driver: driver, data })
    }

    /// The server's data dir.
    pub fn data_path(&self) -> &std::path::Path {
        self.data.path()
    }

    /// The server's database, opened beside it (WAL), for seeding and checks.
    pub async fn open_db(&self) -> anyhow::Result<server::db::Db> {
        self.data.open_db().await
    }

    /// The one-time setup token the server prints (`setup token: <token>`).
    pub async fn setup_token(&self) -> anyhow::Result<String> {
        self.poll(Duration::from_secs(20), "`setup token: ` in the server log", || async {
            Ok(parse_setup_token(&strip_ansi(&self.server.log())))
        })
        .await
    }

    /// Creates the first admin on `/setup` with the token from the server
    /// log and waits until `#whoami` names them (signed in).
    pub async fn set_up_admin(&self, name: &str, password: &str) -> anyhow::Result<()> {
        let token = self.setup_token().await?;
        self.open("/setup").await?;
        self.fill("#setup-token", &token).await?;
        self.fill("#setup-name", name).await?;
        self.fill("#setup-password", password).await?;
        self.click("button#setup-submit").await?;
        let signed_in = self
            .poll(Duration::from_secs(30), "#whoami to name the admin", || async {
                Ok(self.text_of("#whoami").await?.filter(|w| w.contains(name)).map(|_| ()))
            })
            .await;
        match signed_in {
            Ok(()) => Ok(()),
            Err(e) => Err(anyhow!("{e:#}; #setup-error: {:?}", self.text_of("#setup-error").await?)),
        }
    }

    /// Waits until the element matching `selector` has `data-hydrated="true"`.
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
        self.poll(limit, what, || {
            let fut = check();
            async move { Ok(fut.await?.then_some(())) }
        })
        .await
    }

    async fn save_artifacts(&self, name: &str) -> PathBuf {
        let dir = profile_dir()
            .ok()
            .and_then(|p| p.parent().map(|t| t.join("e2e-artifacts").join(name)))
            .unwrap_or_else(|| PathBuf::from("e2e-artifacts").join(name));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(png) = self.browser.screenshot().await {
            let _ = std::fs::write(dir.join("screenshot.png"), png);
        }
        if let Ok(html) = self.browser.source().await {
            let _ = std::fs::write(dir.join("page.html"), html);
        }
        if let Ok(url) = self.browser.current_url().await {
            let _ = std::fs::write(dir.join("url.txt"), url.as_str());
        }
        let _ = std::fs::write(dir.join("server.log"), self.server.log());
        let _ = std::fs::copy(self.data.path().join("chromedriver.log"), dir.join("chromedriver.log"));
        dir
    }
}

/// The word after the last `setup token: ` in `log`, without quotes.
pub fn parse_setup_token(log: &str) -> Option<String> {
    let (_, rest) = log.rsplit_once("setup token: ")?;
    let word = rest.split_whitespace().next()?;
    let token = word.trim_matches(|c| matches!(c, '"' | '\'' | '`'));
    (!token.is_empty()).then(|| token.to_string())
}
