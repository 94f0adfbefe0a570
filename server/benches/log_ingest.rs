//! Build-log ingest: a simulated build prints 100,000 lines (80-120 bytes of
//! typical build output each) into a `LogHub`, in chunks of several lines per
//! `LogWriter::line` call as a Docker build stream delivers them, while one
//! live subscriber (joined before the first line) follows the stream.
//!
//! Reports the ingest rate into the store and the lag seen by the live
//! subscriber (from the `line()` call to receipt), and checks that the
//! subscriber got every line exactly once, in order, unchanged. Exits
//! non-zero if it did not.
//!
//! `cargo bench -p server --bench log_ingest`

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use server::logs::{LogHub, LogLine, LogStream};

const LINES: u64 = 100_000;
const BUILD_ID: i64 = 1;
/// Slipway's own phase messages, one per this many lines, each its own call.
const SYSTEM_EVERY: u64 = 10_000;
/// Most lines a build-output chunk carries.
const MAX_CHUNK_LINES: u64 = 64;
const GOAL_MB_PER_S: f64 = 20.0;
const GOAL_P99_LAG: Duration = Duration::from_millis(250);

/// SplitMix64: a deterministic stand-in for the randomness of build output.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn is_system(seq: u64) -> bool {
    seq % SYSTEM_EVERY == 1
}

const CRATES: &[&str] = &[
    "serde",
    "tokio",
    "hyper",
    "syn",
    "quote",
    "proc-macro2",
    "regex",
    "sqlx-core",
    "axum",
    "tower-http",
    "futures-util",
    "libc",
    "rustls",
    "ring",
    "chrono",
    "tracing-subscriber",
];
const NPM: &[&str] =
    &["inflight", "glob", "rimraf", "querystring", "uuid", "request", "har-validator", "core-js"];
const DEBS: &[&str] =
    &["libssl3", "ca-certificates", "libpq5", "openssl", "libsqlite3-0", "tzdata", "git-man"];
const FILES: &[&str] = &["src/main.c", "src/parser.c", "lib/hash.c", "vendor/zlib/inflate.c", "src/net/io.c"];
const TAIL: &[&str] = &[
    "-Wall",
    "-Wextra",
    "-O2",
    "-fPIC",
    "-DNDEBUG",
    "-Iinclude",
    "-pipe",
    "--release",
    "--locked",
    "[cached]",
    "(vendored)",
    "done",
    "ok",
];

/// The text of line `seq`: 80-120 bytes, no secrets, no '\n' or '\r'.
fn line_text(seq: u64) -> String {
    let r = mix(seq);
    let step = 2 + seq * 14 / LINES;
    let t = seq as f64 * 0.0041;
    if is_system(seq) {
        return pad(
            format!("Build step {step}/16 started: RUN cargo build --release --locked (line {seq})"),
            r,
        );
    }
    let pick = |list: &[&'static str], salt: u64| list[(mix(r ^ salt) % list.len() as u64) as usize];
    let (a, b, c) = (r % 3, (r >> 8) % 40, (r >> 16) % 300);
    let base = match (r >> 24) % 5 {
        0 => format!("#{step} {t:.3}    Compiling {} v{a}.{b}.{c}", pick(CRATES, 1)),
        1 => format!(
            "#{step} {t:.3} npm WARN deprecated {}@{a}.{b}.{c}: this package is no longer supported",
            pick(NPM, 2)
        ),
        2 => format!(
            "#{step} {t:.3} Get:{} http://deb.debian.org/debian bookworm/main amd64 {} amd64 {a}.{b}-{c} [{} kB]",
            seq % 97,
            pick(DEBS, 3),
            (r >> 32) % 4000
        ),
        3 => format!("#{step} {t:.3} cc -c {} -o build/obj_{c}.o", pick(FILES, 4)),
        _ => format!("#{step} {t:.3}   Downloaded {} v{a}.{b}.{c} ({} KB)", pick(CRATES, 5), (r >> 40) % 900),
    };
    pad(base, r)
}

/// Extends with flag-like words to a length in 80..=120 bytes (ASCII only).
fn pad(mut text: String, r: u64) -> String {
    let target = 80 + (r >> 48) as usize % 41;
    let mut k = 0;
    while text.len() < target {
        text.push(' ');
        text.push_str(TAIL[(mix(r ^ k) % TAIL.len() as u64) as usize]);
        k += 1;
    }
    text.truncate(target);
    text
}

/// One `line()` call: consecutive lines from `first`, as one chunk.
struct Chunk {
    stream: LogStream,
    first: u64,
    count: u64,
    text: String,
}

/// The whole build's output, cut into chunks of 1 to 64 lines (a system
/// message always alone), each ending in '\n' like a Docker stream chunk.
fn chunks() -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut seq = 1;
    while seq <= LINES {
        if is_system(seq) {
            out.push(Chunk { stream: LogStream::System, first: seq, count: 1, text: line_text(seq) });
            seq += 1;
            continue;
        }
        let want = 1 + mix(seq ^ 0xc4u64) % MAX_CHUNK_LINES;
        let mut text = String::new();
        let first = seq;
        while seq <= LINES && seq - first < want && !is_system(seq) {
            text.push_str(&line_text(seq));
            text.push('\n');
            seq += 1;
        }
        out.push(Chunk { stream: LogStream::Stdout, first, count: seq - first, text });
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

/// Every line exactly once, in order, with the text and stream written.
fn verify(received: &[(LogLine, u64)]) -> Result<(), String> {
    if received.len() as u64 != LINES {
        return Err(format!("subscriber received {} lines, want {LINES}", received.len()));
    }
    for (i, (line, _)) in received.iter().enumerate() {
        let want = i as u64 + 1;
        if line.seq != want {
            return Err(format!("line #{want} received has seq {}", line.seq));
        }
        let stream = if is_system(want) { LogStream::System } else { LogStream::Stdout };
        if line.stream != stream || line.text != line_text(want) {
            return Err(format!("line {want} differs: {:?} {:?}", line.stream, line.text));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(run()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("log_ingest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<bool> {
    let chunks = chunks();
    let text_bytes: usize = (1..=LINES).map(|seq| line_text(seq).len()).sum();
    let calls = chunks.len();

    let dir = tempfile::tempdir()?;
    let hub = LogHub::new(dir.path());
    let redactions = vec!["ghp_benchSecretToken0123456789".to_string(), "s3cr3t-db-password".to_string()];
    let mut writer = hub.writer(BUILD_ID, redactions).await?;

    // Send instants by seq, as nanoseconds since `base`.
    let base = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..=LINES).map(|_| AtomicU64::new(0)).collect());

    // The live subscriber joins before the first line is written.
    let live = hub.subscribe(BUILD_ID, 1);
    let subscriber = tokio::spawn(async move {
        let mut live = std::pin::pin!(live);
        let mut received = Vec::with_capacity(LINES as usize);
        while let Some(line) = live.next().await {
            received.push((line, base.elapsed().as_nanos() as u64));
        }
        received
    });

    let sent_w = sent.clone();
    let producer = tokio::spawn(async move {
        let started = Instant::now();
        for chunk in &chunks {
            let now = base.elapsed().as_nanos() as u64;
            for seq in chunk.first..chunk.first + chunk.count {
                sent_w[seq as usize].store(now, Ordering::Release);
            }
            writer.line(chunk.stream, &chunk.text).await?;
        }
        let written = started.elapsed();
        writer.finish().await?;
        anyhow::Ok((written, started.elapsed()))
    });

    let (written, finished) = producer.await??;
    let received = tokio::time::timeout(Duration::from_secs(120), subscriber).await??;
    let drained = base.elapsed();
    let file_bytes = tokio::fs::metadata(hub.log_path(BUILD_ID)).await?.len();

    let secs = finished.as_secs_f64();
    let lines_per_s = LINES as f64 / secs;
    let mb_per_s = text_bytes as f64 / secs / 1e6;
    let file_mb_per_s = file_bytes as f64 / secs / 1e6;
    println!(
        "log_ingest: {LINES} lines, {:.2} MB of text (avg {:.1} B/line) in {calls} line() calls (avg {:.1} lines/call)",
        text_bytes as f64 / 1e6,
        text_bytes as f64 / LINES as f64,
        LINES as f64 / calls as f64
    );
    println!(
        "  store:  {:.3} s to write + finish ({:.3} s before finish): {lines_per_s:.0} lines/s, {mb_per_s:.1} MB/s of text, \
         {file_mb_per_s:.1} MB/s of JSON file ({:.2} MB)   goal >= {GOAL_MB_PER_S} MB/s: {}",
        secs,
        written.as_secs_f64(),
        file_bytes as f64 / 1e6,
        verdict(mb_per_s >= GOAL_MB_PER_S)
    );

    let correct = verify(&received);
    let mut lags: Vec<Duration> = received
        .iter()
        .map(|(line, at)| {
            let sent_at = sent.get(line.seq as usize).map_or(0, |s| s.load(Ordering::Acquire));
            Duration::from_nanos(at.saturating_sub(sent_at))
        })
        .collect();
    lags.sort_unstable();
    if let Some(max) = lags.last().copied() {
        let p99 = percentile(&lags, 99.0);
        println!(
            "  live subscriber lag (line() call -> received): p50 {:?}, p99 {:?}, max {:?}   goal p99 <= {:?}: {}",
            percentile(&lags, 50.0),
            p99,
            max,
            GOAL_P99_LAG,
            verdict(p99 <= GOAL_P99_LAG)
        );
    }
    println!("  live subscriber drained {:.3} s after start", drained.as_secs_f64());
    match correct {
        Ok(()) => {
            println!("  live subscriber: all {LINES} lines exactly once, in order, unchanged");
            Ok(true)
        }
        Err(e) => {
            println!("  live subscriber: FAILED: {e}");
            Ok(false)
        }
    }
}
