//! Configuration: `SLIPWAY_*` environment variables and `slipway serve` flags.
//! Everything has a default; an invalid value stops startup naming the setting.

use std::{net::SocketAddr, path::PathBuf};

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Directory for the database, build workspaces, logs and keys.
    #[arg(long, env = "SLIPWAY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Address the dashboard listens on.
    #[arg(long, env = "SLIPWAY_DASHBOARD_ADDR", default_value = "127.0.0.1:3000")]
    pub dashboard_addr: String,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive list.
    #[arg(long, env = "SLIPWAY_LOG", default_value = "info")]
    pub log_level: String,
    /// Directory holding the built browser assets (`pkg/slipway.{js,wasm,css}`).
    #[arg(long, env = "SLIPWAY_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    /// Address the edge router (the services' HTTP entry) listens on.
    #[arg(long, env = "SLIPWAY_EDGE_ADDR", default_value = "127.0.0.1:8080")]
    pub edge_addr: String,
    /// Jobs (builds, deploys) run at once.
    #[arg(long, env = "SLIPWAY_WORKERS", default_value = "2")]
    pub workers: String,
    /// Address of the edge's HTTPS listener, e.g. `0.0.0.0:443`. Default: off.
    #[arg(long, env = "SLIPWAY_EDGE_TLS_ADDR")]
    pub edge_tls_addr: Option<String>,
    /// Directory of certificates the HTTPS listener serves, watched for new
    /// and renewed files (`*.pem` with chain and key, or certbot's
    /// `<name>/fullchain.pem` + `privkey.pem`).
    #[arg(long, env = "SLIPWAY_EDGE_CERT_DIR")]
    pub edge_cert_dir: Option<PathBuf>,
    /// Directory whose `.well-known/acme-challenge/` the edge's plain
    /// listener serves for every host (certbot/lego/acme.sh webroot mode).
    #[arg(long, env = "SLIPWAY_EDGE_ACME_WEBROOT")]
    pub edge_acme_webroot: Option<PathBuf>,
    /// Threads of the edge router (1 to 16), or `auto`: half the CPUs, at
    /// least one (wrk, the apps and the proxy share the machine).
    #[arg(long, env = "SLIPWAY_EDGE_WORKERS", default_value = "auto")]
    pub edge_workers: String,
    /// Key for secrets at rest: 32 bytes as base64. Default: a generated
    /// key file in the data dir.
    #[arg(long, env = "SLIPWAY_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// When set, `GET /metrics` needs `Authorization: Bearer <this>`
    /// (16 to 256 visible ASCII characters). Default: open.
    #[arg(long, env = "SLIPWAY_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Allow `file://` git URLs, i.e. cloning any repository on this
    /// server's disk: true or false (also 1/0, yes/no, on/off). Default: false.
    #[arg(
        long,
        env = "SLIPWAY_ALLOW_LOCAL_REPOS",
        default_value = "false",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub allow_local_repos: String,
    /// How people reach the edge router, e.g. `http://apps.example.com:8080`
    /// (scheme and port only; a service answers on
    /// `scheme://<service host>:<port>/`). Default: `http` and the port of
    /// SLIPWAY_EDGE_ADDR.
    #[arg(long, env = "SLIPWAY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Build cache kept on the engine; retention prunes the least recently
    /// used cache beyond it. Bytes, or with a unit: `10GiB`, `500MB`, `2G`.
    #[arg(long, env = "SLIPWAY_BUILD_CACHE_BUDGET", default_value = "10GiB")]
    pub build_cache_budget: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub dashboard_addr: SocketAddr,
    pub log_level: String,
    pub site_root: PathBuf,
    pub edge_addr: SocketAddr,
    pub workers: usize,
    /// Threads of the edge runtime (SLIPWAY_EDGE_WORKERS).
    pub edge_workers: usize,
    /// The HTTPS listener (SLIPWAY_EDGE_TLS_ADDR); `None`: off.
    pub edge_tls_addr: Option<SocketAddr>,
    /// SLIPWAY_EDGE_CERT_DIR: an existing directory.
    pub edge_cert_dir: Option<PathBuf>,
    /// SLIPWAY_EDGE_ACME_WEBROOT: an existing directory.
    pub edge_acme_webroot: Option<PathBuf>,
    pub secret_key: Option<String>,
    /// `None`: `/metrics` is open.
    pub metrics_token: Option<String>,
    /// `file://` git URLs may be used (off: refused at save and at checkout).
    pub allow_local_repos: bool,
    /// `None`: derived from `edge_addr`.
    pub public_url: Option<PublicUrl>,
    /// Bytes of build cache retention keeps on the engine.
    pub build_cache_budget: u64,
}

/// `SLIPWAY_PUBLIC_URL`, validated: an http(s) origin without path or query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `http` or `https`.
    pub scheme: String,
    pub host: String,
    /// Explicit, or the scheme's default.
    pub port: u16,
}

impl PublicUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| ConfigError::PublicUrl(format!("{raw:?} {why}"));
        let url = reqwest::Url::parse(raw.trim())
            .map_err(|_| bad("is not a URL such as http://apps.example.com:8080"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("must start with http:// or https://"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // It may be a credential: not repeated.
            return Err(ConfigError::PublicUrl("must not hold a user name or password".into()));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must have no path, query or fragment (only scheme, host and port count)"));
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("has no host"))?;
        let port = url.port_or_known_default().ok_or_else(|| bad("has no port"))?;
        Ok(PublicUrl { scheme: url.scheme().to_string(), host: host.to_string(), port })
    }
}

/// Most workers `SLIPWAY_WORKERS` accepts.
pub const MAX_WORKERS: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "SLIPWAY_DASHBOARD_ADDR (--dashboard-addr): {0:?} is not a socket address such as 127.0.0.1:3000"
    )]
    DashboardAddr(String),
    #[error("SLIPWAY_LOG (--log-level): {0:?} is not a valid log filter ({1})")]
    LogLevel(String, String),
    #[error("SLIPWAY_DATA_DIR (--data-dir): must not be empty")]
    DataDir,
    #[error("SLIPWAY_EDGE_ADDR (--edge-addr): {0:?} is not a socket address such as 127.0.0.1:8080")]
    EdgeAddr(String),
    #[error("SLIPWAY_WORKERS (--workers): {0:?} is not a number from 1 to 64")]
    Workers(String),
    #[error("SLIPWAY_EDGE_WORKERS (--edge-workers): {0:?} is not auto or a number from 1 to 16")]
    EdgeWorkers(String),
    #[error("SLIPWAY_EDGE_TLS_ADDR (--edge-tls-addr): {0:?} is not a socket address such as 0.0.0.0:443")]
    EdgeTlsAddr(String),
    #[error("SLIPWAY_EDGE_TLS_ADDR (--edge-tls-addr): {0} is already the edge's or the dashboard's address")]
    EdgeTlsAddrTaken(SocketAddr),
    #[error("SLIPWAY_EDGE_CERT_DIR (--edge-cert-dir): {0:?} is not an existing directory")]
    EdgeCertDir(PathBuf),
    #[error("SLIPWAY_EDGE_CERT_DIR (--edge-cert-dir): set, but SLIPWAY_EDGE_TLS_ADDR is not (no HTTPS listener would serve it)")]
    EdgeCertDirWithoutTls,
    #[error("SLIPWAY_EDGE_ACME_WEBROOT (--edge-acme-webroot): {0:?} is not an existing directory")]
    EdgeAcmeWebroot(PathBuf),
    /// The value is a secret: never repeated.
    #[error(
        "SLIPWAY_METRICS_TOKEN (--metrics-token): must be 16 to 256 visible ASCII characters, without spaces"
    )]
    MetricsToken,
    #[error("SLIPWAY_PUBLIC_URL (--public-url): {0}")]
    PublicUrl(String),
    #[error("SLIPWAY_ALLOW_LOCAL_REPOS (--allow-local-repos): {0:?} is not true or false")]
    AllowLocalRepos(String),
    #[error(
        "SLIPWAY_BUILD_CACHE_BUDGET (--build-cache-budget): {0:?} is not a size such as 10GiB, 500MB or 1073741824"
    )]
    BuildCacheBudget(String),
}

/// A size: bytes, or a number with a unit (`k`, `m`, `g`, `t` with an
/// optional `b` are powers of 1000, `ki`, `mi`, `gi`, `ti` with an optional
/// `b` powers of 1024; any case). At most 1 PiB.
pub fn parse_size(raw: &str) -> Option<u64> {
    let text = raw.trim().to_ascii_lowercase();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let unit = unit.trim();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let scale: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "ki" => 1024.0,
        "mi" => 1024.0 * 1024.0,
        "gi" => 1024.0 * 1024.0 * 1024.0,
        "ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (number * scale).round();
    (bytes <= (1u64 << 50) as f64).then_some(bytes as u64)
}

/// A boolean setting: true/false, 1/0, yes/no, on/off (any case); empty is
/// the default.
fn parse_bool(raw: &str, default: bool) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" => Some(default),
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Token length bounds of `SLIPWAY_METRICS_TOKEN`.
const METRICS_TOKEN_LEN: std::ops::RangeInclusive<usize> = 16..=256;

impl Config {
    pub fn from_args(args: ServeArgs) -> Result<Self, ConfigError> {
        let dashboard_addr = args
            .dashboard_addr
            .trim()
            .parse()
            .map_err(|_| ConfigError::DashboardAddr(args.dashboard_addr.clone()))?;
        tracing_subscriber::EnvFilter::try_new(&args.log_level)
            .map_err(|e| ConfigError::LogLevel(args.log_level.clone(), e.to_string()))?;
        if args.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::DataDir);
        }
        let edge_addr =
            args.edge_addr.trim().parse().map_err(|_| ConfigError::EdgeAddr(args.edge_addr.clone()))?;
        let workers = args
            .workers
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_WORKERS).contains(n))
            .ok_or_else(|| ConfigError::Workers(args.workers.clone()))?;
        let edge_workers = match args.edge_workers.trim() {
            "auto" | "" => crate::edge::runtime::default_workers(),
            n => n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=crate::edge::runtime::MAX_WORKERS).contains(n))
                .ok_or_else(|| ConfigError::EdgeWorkers(args.edge_workers.clone()))?,
        };
        // Empty means unset.
        let edge_tls_addr = match args.edge_tls_addr.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            Some(raw) => {
                let addr: SocketAddr = raw.parse().map_err(|_| ConfigError::EdgeTlsAddr(raw.to_string()))?;
                if addr == edge_addr || addr == dashboard_addr {
                    return Err(ConfigError::EdgeTlsAddrTaken(addr));
                }
                Some(addr)
            }
            None => None,
        };
        let edge_cert_dir = match args.edge_cert_dir.filter(|d| !d.as_os_str().is_empty()) {
            Some(_) if edge_tls_addr.is_none() => return Err(ConfigError::EdgeCertDirWithoutTls),
            Some(dir) if !dir.is_dir() => return Err(ConfigError::EdgeCertDir(dir)),
            dir => dir,
        };
        let edge_acme_webroot = match args.edge_acme_webroot.filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => return Err(ConfigError::EdgeAcmeWebroot(dir)),
            dir => dir,
        };
        // Empty means unset (as for SLIPWAY_SECRET_KEY).
        let metrics_token = match args.metrics_token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) if METRICS_TOKEN_LEN.contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()) => {
                Some(t.to_string())
            }
            Some(_) => return Err(ConfigError::MetricsToken),
            None => None,
        };
        let allow_local_repos = parse_bool(&args.allow_local_repos, false)
            .ok_or_else(|| ConfigError::AllowLocalRepos(args.allow_local_repos.clone()))?;
        // Empty means unset.
        let public_url = match args.public_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(raw) => Some(PublicUrl::parse(raw)?),
            None => None,
        };
        let build_cache_budget = parse_size(&args.build_cache_budget)
            .ok_or_else(|| ConfigError::BuildCacheBudget(args.build_cache_budget.clone()))?;
        Ok(Config {
            data_dir: args.data_dir,
            dashboard_addr,
            log_level: args.log_level,
            site_root: args.site_root,
            edge_addr,
            workers,
            edge_workers,
            edge_tls_addr,
            edge_cert_dir,
            edge_acme_webroot,
            secret_key: args.secret_key,
            metrics_token,
            allow_local_repos,
            public_url,
            build_cache_budget,
        })
    }
}

#[cfg(test)]
mod tests;
