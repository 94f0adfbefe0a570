//! A real `slipway serve` process on a free port with its own data dir.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    /// The edge router's address (a free port too).
    pub edge_addr: SocketAddr,
    pub log_path: PathBuf,
}

impl ServerProcess {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `bin serve` and waits (up to 30 s) until the dashboard accepts
    /// connections. stdout and stderr go to `<data_dir>/server.log`.
    pub fn start(bin: &Path, data_dir: &Path, site_root: &Path) -> anyhow::Result<Self> {
        ServerProcess::start_with(bin, data_dir, site_root, &[])
    }

    /// [`start`](Self::start) with more environment variables (e.g.
    /// `SLIPWAY_EDGE_TLS_ADDR`).
    pub fn start_with(
        bin: &Path,
        data_dir: &Path,
        site_root: &Path,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let edge_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut command = serve_command(bin, data_dir, site_root, addr, edge_addr)?;
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().with_context(|| format!("cannot start {}", bin.display()))?;
        let log_path = server_log_path(data_dir);
        let mut server = ServerProcess { child, addr, edge_addr, log_path };
        server.wait_ready(Duration::from_secs(30))?;
        Ok(server)
    }

    fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                bail!("slipway exited early with {status}; log:\n{}", self.log());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("slipway did not listen on {} within {limit:?}; log:\n{}", self.addr, self.log())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `bin serve` on `data_dir` with the dashboard on `dashboard` and the edge
/// router on `edge`; stdout and stderr appended to [`server_log_path`].
pub fn serve_command(
    bin: &Path,
    data_dir: &Path,
    site_root: &Path,
    dashboard: SocketAddr,
    edge: SocketAddr,
) -> anyhow::Result<Command> {
    std::fs::create_dir_all(data_dir)?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(server_log_path(data_dir))?;
    let mut command = Command::new(bin);
    command
        .arg("serve")
        .env("SLIPWAY_DATA_DIR", data_dir)
        .env("SLIPWAY_DASHBOARD_ADDR", dashboard.to_string())
        .env("SLIPWAY_EDGE_ADDR", edge.to_string())
        .env("SLIPWAY_SITE_ROOT", site_root)
        .env("SLIPWAY_LOG", "info")
        // Every test repository is a local `file://` one.
        .env("SLIPWAY_ALLOW_LOCAL_REPOS", "true")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    Ok(command)
}

/// Where a test server on `data_dir` writes its log.
pub fn server_log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("server.log")
}

/// The log's length now: where the next run's part of it begins.
pub fn server_log_len(data_dir: &Path) -> usize {
    std::fs::metadata(server_log_path(data_dir)).map(|m| m.len() as usize).unwrap_or(0)
}

/// The log from byte `from` on, without colour codes.
pub fn server_log_since(data_dir: &Path, from: usize) -> String {
    let raw = std::fs::read(server_log_path(data_dir)).unwrap_or_default();
    super::wait::strip_ansi(&String::from_utf8_lossy(raw.get(from..).unwrap_or_default()))
}

/// Directory of the cargo profile the calling test binary was built in
/// (`<target>/debug`), where the `slipway` binary and `site/` are found.
pub fn profile_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // <target>/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .context("cannot locate the cargo target dir from the test binary")
}

/// A minimal blocking HTTP/1.1 GET for tests: returns the status code and the
/// raw body (chunk framing left in place, which is fine for `contains`).
pub fn http_get(url: &str) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("malformed HTTP response")?;
    let code =
        head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("malformed HTTP status line")?;
    Ok((code, body.to_string()))
}
