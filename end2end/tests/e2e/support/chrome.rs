//! chromedriver and a headless Chromium session (flags from ENVIRONMENT.md:
//! no network access beyond the servers under test).

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use fantoccini::{Client, ClientBuilder};
use server::testkit::free_port;

/// Kills and reaps the child when dropped.
pub struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts chromedriver on a free port, logging to `<dir>/chromedriver.log`.
pub fn start_chromedriver(dir: &Path) -> anyhow::Result<(ChildGuard, u16)> {
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("chromedriver.log"))?;
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

/// Opens a headless Chromium session with a fresh profile under `dir`.
pub async fn connect_browser(port: u16, dir: &Path) -> anyhow::Result<Client> {
    let profile = dir.join("chromium-profile");
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
