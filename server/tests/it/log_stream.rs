//! The live build log over real HTTP (`GET /api/v1/builds/{id}/log/stream`):
//! a real build read while it runs, dropped and resumed twice (once with
//! `Last-Event-ID`, once with `?after=`), must deliver every stored line
//! exactly once and in order; and the errors before the stream starts.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use app::wire::{LogLineView, Role};
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use server::{
    builds::TriggerBuild,
    docker::DockerEngine,
    jobs::JobStatus,
    testkit::{
        app::app_router,
        engine::{anyhow_of, user},
        DockerKit, GitRepo, TestEngine, BASE_IMAGE,
    },
};
use tokio::{net::TcpStream, task::JoinHandle, time::timeout};

const PW: &str = "correct horse battery";
const LIMIT: Duration = Duration::from_secs(120);
const LINES: usize = 60;

/// A dashboard served on a real socket, with an engine whose workers run.
struct Served {
    addr: SocketAddr,
    t: TestEngine,
    server: JoinHandle<()>,
    _kit: DockerKit,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve() -> anyhow::Result<Served> {
    let kit = DockerKit::new().await?;
    let t = TestEngine::start(&kit).await?;
    let docker = DockerEngine::with_client(kit.docker.clone());
    let (app, auth) = app_router(&t.engine, docker, t.data.path()).await?;
    auth.users.create("ann", PW, Role::Viewer).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, service).await {
            eprintln!("test server failed: {e}");
        }
    });
    Ok(Served { addr, t, server, _kit: kit })
}

/// One request on a connection of its own; aborting the returned task
/// closes the connection.
async fn send(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> anyhow::Result<(Response<Incoming>, JoinHandle<()>)> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender.send_request(req).await?, conn))
}

async fn sign_in(addr: SocketAddr, name: &str) -> anyhow::Result<String> {
    let req = Request::post("/rpc/login")
        .header(header::HOST, addr.to_string())
        .header(header::ORIGIN, format!("http://{addr}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::from(format!("name={name}&password={}", PW.replace(' ', "+"))))?;
    let (res, _conn) = send(addr, req).await?;
    anyhow::ensure!(res.status() == StatusCode::OK, "sign-in: {}", res.status());
    let cookie = res.headers().get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("");
    Ok(cookie.split(';').next().unwrap_or("").to_string())
}

fn stream_request(
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
    last_id: Option<u64>,
) -> Request<Full<Bytes>> {
    let mut req =
        Request::get(path).header(header::HOST, addr.to_string()).header(header::ACCEPT, "text/event-stream");
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    if let Some(id) = last_id {
        req = req.header("last-event-id", id.to_string());
    }
    req.body(Full::new(Bytes::new())).expect("request")
}

#[derive(Debug)]
struct Event {
    event: String,
    id: Option<String>,
    data: String,
}

/// Reads server-sent events from a response body.
struct Events {
    body: Incoming,
    buf: Vec<u8>,
    conn: JoinHandle<()>,
}

impl Drop for Events {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

impl Events {
    async fn open(
        addr: SocketAddr,
        path: &str,
        cookie: &str,
        last_id: Option<u64>,
    ) -> anyhow::Result<Events> {
        let (res, conn) = send(addr, stream_request(addr, path, Some(cookie), last_id)).await?;
        anyhow::ensure!(res.status() == StatusCode::OK, "{path}: {}", res.status());
        Ok(Events { body: res.into_body(), buf: Vec::new(), conn })
    }

    /// The next event (keep-alive comments skipped); `None` at the end.
    async fn next(&mut self) -> anyhow::Result<Option<Event>> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block = String::from_utf8(self.buf.drain(..end + 2).collect())?;
                let mut event = Event { event: "message".into(), id: None, data: String::new() };
                let mut fields = 0;
                for line in block.lines() {
                    let (name, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value).to_string();
                    match name {
                        "event" => event.event = value,
                        "id" => event.id = Some(value),
                        "data" => event.data.push_str(&value),
                        _ => continue,
                    }
                    fields += 1;
                }
                if fields > 0 {
                    return Ok(Some(event));
                }
                continue;
            }
            match timeout(LIMIT, self.body.frame()).await? {
                None => return Ok(None),
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// Lines received so far, with the arrival time of the first.
#[derive(Default)]
struct Received {
    lines: Vec<LogLineView>,
    first_at: Option<chrono::DateTime<chrono::Utc>>,
    end: Option<Value>,
}

impl Received {
    fn last_seq(&self) -> u64 {
        self.lines.last().map_or(0, |l| l.seq)
    }

    /// Reads until `stop` says so after a line, or the `end` event.
    async fn read(&mut self, events: &mut Events, stop: impl Fn(&LogLineView) -> bool) -> anyhow::Result<()> {
        while let Some(event) = events.next().await? {
            match event.event.as_str() {
                "line" => {
                    let line: LogLineView = serde_json::from_str(&event.data)?;
                    assert_eq!(event.id, Some(line.seq.to_string()), "the event id is the sequence number");
                    self.first_at.get_or_insert_with(chrono::Utc::now);
                    self.lines.push(line);
                    if stop(self.lines.last().expect("pushed")) {
                        return Ok(());
                    }
                }
                "end" => {
                    self.end = Some(serde_json::from_str(&event.data)?);
                    return Ok(());
                }
                other => anyhow::bail!("unexpected event {other}: {event:?}"),
            }
        }
        anyhow::bail!("the stream closed without an end event")
    }
}

/// A build whose one RUN step prints `count 1` … `count 60`, a tenth of a
/// second apart (a script file run by argv: no command string).
fn counting_repo() -> anyhow::Result<GitRepo> {
    let repo = GitRepo::new()?;
    // A unique first line keeps BuildKit from answering a rerun from its cache.
    repo.write(
        "count.sh",
        &format!(
            "# {}\ni=1\nwhile [ $i -le {LINES} ]; do\n  echo \"count $i\"\n  i=$((i + 1))\n  sleep 0.1\ndone\n",
            server::testkit::wait::unique_suffix()
        ),
    )?;
    repo.write(
        "Dockerfile",
        &format!("FROM {BASE_IMAGE}\nCOPY count.sh /count.sh\nRUN [\"sh\", \"/count.sh\"]\n"),
    )?;
    repo.commit("count")?;
    Ok(repo)
}

/// Whether `line` is the step's output `count n` (BuildKit's `#N <seconds> count n`).
fn counted(line: &LogLineView, n: usize) -> bool {
    let text = line.text.trim();
    text == format!("count {n}") || (text.starts_with('#') && text.ends_with(&format!(" count {n}")))
}

#[tokio::test]
async fn a_resumed_stream_delivers_every_line_once_in_order() -> anyhow::Result<()> {
    let s = serve().await?;
    let repo = counting_repo()?;
    let service = s.t.service("logs", "counter", &repo.url()).await?;
    let cookie = sign_in(s.addr, "ann").await?;
    let req = TriggerBuild::manual_build_only(service.id);
    let triggered = Instant::now();
    let build = s.t.engine.trigger_build(&user(Role::Deployer), req).await.map_err(anyhow_of)?;
    let path = format!("/api/v1/builds/{}/log/stream", build.id);
    let mut got = Received::default();

    // 1: from the start, dropped after `count 5`.
    let mut first = Events::open(s.addr, &path, &cookie, None).await?;
    got.read(&mut first, |l| counted(l, 5)).await?;
    drop(first);
    let first_wait = triggered.elapsed();
    assert!(got.end.is_none(), "the build must still run: {:?}", got.end);

    // 2: resumed with Last-Event-ID, dropped after `count 20`.
    let mut second = Events::open(s.addr, &path, &cookie, Some(got.last_seq())).await?;
    got.read(&mut second, |l| counted(l, 20)).await?;
    drop(second);
    assert!(got.end.is_none(), "the build must still run: {:?}", got.end);
    let mid = s.t.engine.build(build.id).await.map_err(anyhow_of)?;
    assert_eq!(mid.status, JobStatus::Running, "resumed mid-build");

    // 3: resumed with ?after=, read to the end.
    let mut third = Events::open(s.addr, &format!("{path}?after={}", got.last_seq()), &cookie, None).await?;
    got.read(&mut third, |_| false).await?;
    assert_eq!(got.end, Some(serde_json::json!({ "status": "succeeded" })));

    let stored: Vec<LogLineView> =
        s.t.engine.logs.read_from(build.id, 1).await?.into_iter().map(server::backend::log_line).collect();
    let seqs: Vec<u64> = got.lines.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "no gap, no duplicate, in order");
    assert_eq!(got.lines, stored, "every stored line arrived exactly once");
    let counts = (1..=LINES).filter(|n| got.lines.iter().any(|l| counted(l, *n))).count();
    assert_eq!(counts, LINES, "the RUN step's output is in the log");

    // The first line arrived within 1 s of the build starting (its worker claim).
    let done = s.t.engine.build(build.id).await.map_err(anyhow_of)?;
    let started = chrono::DateTime::parse_from_rfc3339(done.started_at.as_deref().unwrap_or_default())?;
    let latency = got.first_at.expect("a first line") - started.with_timezone(&chrono::Utc);
    eprintln!(
        "log stream: {} lines; first line {} ms after the build started; first drop {:?} after the trigger",
        got.lines.len(),
        latency.num_milliseconds(),
        first_wait
    );
    assert!(latency < chrono::Duration::seconds(1), "first line after {} ms", latency.num_milliseconds());
    Ok(())
}

#[tokio::test]
async fn refusals_before_the_stream_are_json_errors() -> anyhow::Result<()> {
    let s = serve().await?;
    let cookie = sign_in(s.addr, "ann").await?;
    let missing = "/api/v1/builds/999999/log/stream";
    let cases = [(None, 401, "unauthenticated"), (Some(cookie.as_str()), 404, "not_found")];
    for (cookie, status, code) in cases {
        let (res, _conn) = send(s.addr, stream_request(s.addr, missing, cookie, None)).await?;
        assert_eq!(res.status().as_u16(), status);
        let content_type =
            res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(content_type.starts_with("application/json"), "{content_type}");
        let body: Value = serde_json::from_slice(&res.into_body().collect().await?.to_bytes())?;
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "the contract says {{ \"error\": {{ \"code\", \"message\" }} }}: {body}"
        );
    }
    Ok(())
}
