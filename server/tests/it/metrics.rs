//! `/metrics` over real HTTP through the dashboard's router (identity
//! middleware included), with a real engine, edge router and container:
//! the exposition parses strictly, its numbers match what the test did, and
//! the token is enforced.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use app::wire::Role;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use leptos::prelude::LeptosOptions;
use server::{
    auth::{Auth, SessionSettings},
    backend::ServerBackend,
    builds::TriggerBuild,
    deploys::DeploymentStatus,
    docker::DockerEngine,
    edge::{proxy, EdgeRouter},
    http::web::{router, AppState},
    jobs::JobStatus,
    status::StatusService,
    testkit::{
        engine::{anyhow_of, user},
        wait::unique_suffix,
        DockerKit, GitRepo, TestDataDir, TestEngine,
    },
};
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(120);
const TOKEN: &str = "metrics-token-0123456789";

// ------------------------------------------------------------ the parser --

/// One sample: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Default)]
struct Family {
    kind: String,
    samples: Vec<Sample>,
}

/// A strict reader of the text format 0.0.4: every line a `# HELP`, a
/// `# TYPE` or a sample `name{labels} value`; every sample in a family
/// announced by HELP and TYPE (histogram samples by their `_bucket`,
/// `_sum`, `_count` suffixes); a family's samples together.
fn parse(text: &str) -> anyhow::Result<BTreeMap<String, Family>> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut helped: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    anyhow::ensure!(text.ends_with('\n'), "the exposition must end with a newline");
    for (n, line) in text.lines().enumerate() {
        let at = |m: &str| anyhow::anyhow!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _help) = rest.split_once(' ').ok_or_else(|| at("HELP without text"))?;
            anyhow::ensure!(valid_name(name), at("bad metric name"));
            anyhow::ensure!(!helped.contains(&name.to_string()), at("second HELP"));
            helped.push(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| at("TYPE without type"))?;
            anyhow::ensure!(
                helped.last().map(String::as_str) == Some(name),
                at("TYPE not right after its HELP")
            );
            anyhow::ensure!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                at("bad type")
            );
            anyhow::ensure!(!families.contains_key(name), at("second TYPE"));
            families.insert(name.to_string(), Family { kind: kind.to_string(), samples: Vec::new() });
            current = Some(name.to_string());
            continue;
        }
        anyhow::ensure!(!line.starts_with('#') && !line.is_empty(), at("unexpected line"));
        let sample = parse_sample(line).map_err(|e| at(&e.to_string()))?;
        let family = current.clone().ok_or_else(|| at("sample before any TYPE"))?;
        let kind = families.get(&family).map(|f| f.kind.clone()).unwrap_or_default();
        let belongs = if kind == "histogram" {
            ["_bucket", "_sum", "_count"].iter().any(|s| sample.name == format!("{family}{s}"))
        } else {
            sample.name == family
        };
        anyhow::ensure!(belongs, at("sample outside its family (no HELP/TYPE for it)"));
        if let Some(f) = families.get_mut(&family) {
            f.samples.push(sample);
        }
    }
    for (name, family) in &families {
        if family.kind == "histogram" {
            check_histogram(name, family)?;
        }
    }
    Ok(families)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_sample(line: &str) -> anyhow::Result<Sample> {
    let name_end = line.find(['{', ' ']).ok_or_else(|| anyhow::anyhow!("no value"))?;
    let name = &line[..name_end];
    anyhow::ensure!(valid_name(name), "bad metric name");
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let end;
        loop {
            // key
            let start = chars.peek().map(|(i, _)| *i).ok_or_else(|| anyhow::anyhow!("open labels"))?;
            let mut key_end = start;
            for (i, c) in chars.by_ref() {
                if c == '=' {
                    key_end = i;
                    break;
                }
                anyhow::ensure!(c.is_ascii_alphanumeric() || c == '_', "bad label name");
            }
            let key = &inner[start..key_end];
            anyhow::ensure!(!key.is_empty(), "empty label name");
            anyhow::ensure!(chars.next().map(|(_, c)| c) == Some('"'), "label value not quoted");
            let mut value = String::new();
            loop {
                match chars.next().map(|(_, c)| c) {
                    Some('\\') => match chars.next().map(|(_, c)| c) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        _ => anyhow::bail!("bad escape in a label value"),
                    },
                    Some('"') => break,
                    Some('\n') | None => anyhow::bail!("unterminated label value"),
                    Some(c) => value.push(c),
                }
            }
            anyhow::ensure!(labels.insert(key.to_string(), value).is_none(), "repeated label");
            match chars.next() {
                Some((_, ',')) => continue,
                Some((i, '}')) => {
                    end = i;
                    break;
                }
                _ => anyhow::bail!("bad label separator"),
            }
        }
        rest = &inner[end + 1..];
    }
    let value = rest.strip_prefix(' ').ok_or_else(|| anyhow::anyhow!("no space before the value"))?;
    anyhow::ensure!(!value.contains(' '), "trailing fields (timestamps are not used)");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse::<f64>().map_err(|_| anyhow::anyhow!("bad value"))?,
    };
    Ok(Sample { name: name.to_string(), labels, value })
}

/// Per label set: buckets with increasing `le`, non-decreasing counts,
/// ending in `+Inf` equal to `_count`, and a `_sum`.
fn check_histogram(name: &str, family: &Family) -> anyhow::Result<()> {
    /// Buckets (le, count), sum and count of one label set.
    type Series = (Vec<(f64, f64)>, Option<f64>, Option<f64>);
    let mut series: HashMap<BTreeMap<String, String>, Series> = HashMap::new();
    for s in &family.samples {
        let mut labels = s.labels.clone();
        let le = labels.remove("le");
        let entry = series.entry(labels).or_default();
        if s.name.ends_with("_bucket") {
            let le = le.ok_or_else(|| anyhow::anyhow!("{name}: bucket without le"))?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse::<f64>()? };
            entry.0.push((le, s.value));
        } else if s.name.ends_with("_sum") {
            entry.1 = Some(s.value);
        } else {
            entry.2 = Some(s.value);
        }
    }
    for (labels, (buckets, sum, count)) in series {
        anyhow::ensure!(!buckets.is_empty(), "{name}{labels:?}: no buckets");
        for w in buckets.windows(2) {
            anyhow::ensure!(w[0].0 < w[1].0, "{name}{labels:?}: le not increasing");
            anyhow::ensure!(w[0].1 <= w[1].1, "{name}{labels:?}: buckets not cumulative");
        }
        let last = buckets[buckets.len() - 1];
        anyhow::ensure!(last.0 == f64::INFINITY, "{name}{labels:?}: no +Inf bucket");
        let count = count.ok_or_else(|| anyhow::anyhow!("{name}{labels:?}: no _count"))?;
        anyhow::ensure!(last.1 == count, "{name}{labels:?}: +Inf bucket {} ≠ _count {count}", last.1);
        anyhow::ensure!(sum.is_some_and(|s| s >= 0.0), "{name}{labels:?}: no _sum");
    }
    Ok(())
}

fn value(families: &BTreeMap<String, Family>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let family = ["_bucket", "_count", "_sum"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .filter(|f| families.get(*f).is_some_and(|f| f.kind == "histogram"))
        .unwrap_or(name);
    let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    families.get(family)?.samples.iter().find(|s| s.name == name && s.labels == want).map(|s| s.value)
}

#[test]
fn the_parser_refuses_malformed_expositions() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{s=\"x\\\"y\"} 1\n";
    assert!(parse(good).is_ok());
    for bad in [
        "a_total 1\n",                                                      // no HELP/TYPE
        "# HELP a A.\n# TYPE a gauge\na{s=\"x} 1\n",                        // unterminated
        "# HELP a A.\n# TYPE a gauge\na 1 2\n",                             // timestamp
        "# HELP a A.\n# TYPE a gauge\nb 1\n",                               // other family
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", // no +Inf
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}

// -------------------------------------------------------------- the rig --

/// One request on a fresh connection: status, content type, body.
async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    auth: Option<&str>,
) -> anyhow::Result<(u16, String, String)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = http::Request::get(path).header(http::header::HOST, host);
    if let Some(auth) = auth {
        req = req.header(http::header::AUTHORIZATION, auth);
    }
    let res = sender.send_request(req.body(Empty::<Bytes>::new())?).await?;
    let status = res.status().as_u16();
    let content_type =
        res.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, content_type, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn metrics_count_builds_deploys_jobs_and_edge_traffic_behind_a_token() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let data = TestDataDir::new()?;
    let settings = TestEngine::settings(&kit, &data);
    let edge = Arc::new(EdgeRouter::new());
    let docker = DockerEngine::with_client(kit.docker.clone());
    let t = TestEngine::start_with_switch(data, settings, docker, edge.clone()).await?;
    let edge_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let edge_addr = edge_listener.local_addr()?;
    let stop = CancellationToken::new();
    tokio::spawn(proxy::serve(edge_listener, edge.clone(), proxy::EdgeConfig::default(), stop.clone()));
    let _stop = stop.drop_guard();

    // The dashboard's router, as `serve` builds it, with a metrics token.
    let db = t.engine.db.clone();
    let auth = Auth::open(db.clone(), SessionSettings::default()).await?;
    let status = StatusService::new(db.clone(), Arc::new(DockerEngine::with_client(kit.docker.clone())));
    let backend = Arc::new(ServerBackend::new(status).with_auth(auth.clone()).with_engine(t.engine.clone()));
    let leptos_options = LeptosOptions::builder()
        .output_name("slipway")
        .site_root(t.data.path().join("site").to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .build();
    let app = router(AppState {
        backend,
        leptos_options,
        auth,
        engine: Some(t.engine.clone()),
        edge: Some(edge.clone()),
        metrics_token: Some(TOKEN.into()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let dash = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    let dash_host = dash.to_string();

    // Token: none, wrong, wrong scheme → 401; right → 200.
    for auth in
        [None, Some("Bearer wrong-token-0123456789"), Some(&*format!("Basic {TOKEN}")), Some("Bearer ")]
    {
        let (status, _, body) = get(dash, &dash_host, "/metrics", auth).await?;
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(!body.contains("slipway_builds"), "{auth:?}");
    }
    let bearer = format!("Bearer {TOKEN}");
    let (status, content_type, _) = get(dash, &dash_host, "/metrics", Some(&bearer)).await?;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");

    // One build, deployed; then traffic through the edge: 5 × 200, 2 × 404.
    let repo = GitRepo::http_service("metrics")?;
    let name = format!("mx{}", unique_suffix());
    let service = t.service("shop", &name, &repo.url()).await?;
    let req = TriggerBuild {
        service_id: service.id,
        git_ref: None,
        trigger: "manual".into(),
        deploy: true,
        build_only: false,
        no_cache: false,
        group: None,
    };
    let queued = t.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    let built = t.wait_build(queued.id, LIMIT).await?;
    assert_eq!(built.status, JobStatus::Succeeded, "{:?}", built.error);
    let dep = t.wait_deployment(t.deployment_of_build(built.id).await?, LIMIT).await?;
    assert_eq!(dep.status, DeploymentStatus::Live, "{:?}", dep.error);
    let host = format!("{name}.shop.localhost");
    for _ in 0..5 {
        assert_eq!(get(edge_addr, &host, "/", None).await?.0, 200);
    }
    for _ in 0..2 {
        assert_eq!(get(edge_addr, &host, "/missing.html", None).await?.0, 404);
    }

    // Scrape until the queue counts agree with the database read right
    // after (the retention timer may queue a job at any moment).
    let mut attempt = 0;
    let (text, families, queued_db, started_db) = loop {
        let (status, _, text) = get(dash, &dash_host, "/metrics", Some(&bearer)).await?;
        assert_eq!(status, 200, "{text}");
        let families = parse(&text)?;
        let queued_db: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetch_one(&db).await?;
        let started_db: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE started_at IS NOT NULL")
            .fetch_one(&db)
            .await?;
        let agree = value(&families, "slipway_jobs_queued", &[]) == Some(queued_db as f64)
            && value(&families, "slipway_job_pickup_latency_seconds_count", &[]) == Some(started_db as f64);
        attempt += 1;
        if agree || attempt == 5 {
            break (text, families, queued_db, started_db);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("{text}");
    let v = |name: &str, labels: &[(&str, &str)]| {
        value(&families, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"))
    };

    // Builds and deployments, from the database.
    assert_eq!(v("slipway_builds", &[("status", "succeeded")]), 1.0);
    for status in ["queued", "running", "failed", "cancelled", "timed_out", "interrupted"] {
        assert_eq!(v("slipway_builds", &[("status", status)]), 0.0, "{status}");
    }
    assert_eq!(v("slipway_build_duration_seconds_count", &[]), 1.0);
    let run_s = built.duration_ms.expect("a finished build has a duration") as f64 / 1000.0;
    let sum = v("slipway_build_duration_seconds_sum", &[]);
    assert!((sum - run_s).abs() < 0.01, "duration sum {sum} vs the build's {run_s}");
    assert_eq!(v("slipway_deployments", &[("status", "live")]), 1.0);
    assert_eq!(v("slipway_deployments", &[("status", "failed")]), 0.0);

    // The queue: build and deploy jobs (and perhaps retention) started.
    assert_eq!(v("slipway_jobs_queued", &[]), queued_db as f64);
    assert!(started_db >= 2);
    assert_eq!(v("slipway_job_pickup_latency_seconds_count", &[]), started_db as f64);
    assert!(v("slipway_job_pickup_latency_seconds_sum", &[]) >= 0.0);

    // The edge, per service by name.
    let service_label = format!("shop/{name}");
    let s = [("service", service_label.as_str())];
    assert_eq!(v("slipway_edge_requests_total", &s), 7.0);
    assert_eq!(v("slipway_edge_upstream_errors_total", &[s[0], ("class", "4xx")]), 2.0);
    assert_eq!(v("slipway_edge_upstream_errors_total", &[s[0], ("class", "5xx")]), 0.0);
    assert_eq!(v("slipway_edge_proxy_errors_total", &s), 0.0);
    assert_eq!(v("slipway_edge_request_duration_seconds_count", &s), 7.0);
    assert_eq!(v("slipway_edge_request_duration_seconds_bucket", &[s[0], ("le", "+Inf")]), 7.0);
    assert_eq!(v("slipway_edge_in_flight", &s), 0.0);

    assert!(v("process_resident_memory_bytes", &[]) > 1_000_000.0);
    for family in ["slipway_builds", "slipway_edge_requests_total", "process_resident_memory_bytes"] {
        assert!(families.contains_key(family), "{family}");
    }
    server.abort();
    Ok(())
}
