use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::*;

fn hub() -> (tempfile::TempDir, LogHub) {
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = LogHub::new(dir.path());
    (dir, hub)
}

async fn file_text(hub: &LogHub, build_id: BuildId) -> String {
    tokio::fs::read_to_string(hub.log_path(build_id)).await.expect("log file")
}

/// Collects a stream, failing the test instead of hanging forever.
async fn collect(stream: impl Stream<Item = LogLine>) -> Vec<LogLine> {
    tokio::time::timeout(Duration::from_secs(60), stream.collect::<Vec<_>>())
        .await
        .expect("log stream did not end")
}

fn assert_contiguous(lines: &[LogLine], first: u64, last: u64) {
    let seqs: Vec<u64> = lines.iter().map(|l| l.seq).collect();
    let want: Vec<u64> = (first..=last).collect();
    assert_eq!(seqs, want, "every line exactly once, in order");
}

#[tokio::test]
async fn lines_are_numbered_timestamped_and_stored_as_json() {
    let (_dir, hub) = hub();
    let mut w = hub.writer(7, vec![]).await.expect("writer");
    w.line(LogStream::System, "Step 1/2").await.expect("line");
    w.line(LogStream::Stdout, "a\r\nb\n").await.expect("line");
    w.line(LogStream::Stderr, "").await.expect("line");
    assert_eq!(w.last_seq(), 4);
    w.finish().await.expect("finish");

    let text = file_text(&hub, 7).await;
    let rows: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["seq"], 1);
    assert_eq!(rows[0]["stream"], "system");
    assert_eq!(rows[0]["text"], "Step 1/2");
    assert_eq!(rows[1]["text"], "a");
    assert_eq!(rows[1]["stream"], "stdout");
    assert_eq!(rows[2]["text"], "b");
    assert_eq!(rows[3]["stream"], "stderr");
    assert_eq!(rows[3]["text"], "");
    for row in &rows {
        let ts = row["ts"].as_str().expect("ts");
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        assert!(ts.ends_with('Z') && ts.len() == "2025-01-01T00:00:00.000Z".len(), "{ts}");
        let keys: Vec<&String> = row.as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), 4);
    }
}

#[tokio::test]
async fn secrets_never_reach_the_file_or_subscribers() {
    let (_dir, hub) = hub();
    let secrets = vec![
        "hunter2-token".to_string(),
        String::new(),
        "tok".to_string(),
        "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\r\nAbCdEfGh\n-----END KEY-----".to_string(),
    ];
    let mut w = hub.writer(1, secrets).await.expect("writer");
    let live = hub.subscribe(1, 1);
    w.line(LogStream::Stdout, "login with hunter2-token ok").await.expect("line");
    w.line(LogStream::Stdout, "hunter2-\rtoken after CR removal").await.expect("line");
    w.line(LogStream::Stderr, "x hunter2-tokenhunter2-token y\nsecond tok line").await.expect("line");
    w.line(LogStream::Stdout, "key: -----BEGIN KEY-----\nMIIEvQIBADANBgkq\nAbCdEfGh\n-----END KEY----- done")
        .await
        .expect("line");
    w.line(LogStream::Stdout, "echo MIIEvQIBADANBgkq").await.expect("line");
    w.line(LogStream::Stdout, "nothing to hide").await.expect("line");
    w.finish().await.expect("finish");

    let received = collect(live).await;
    let stored = file_text(&hub, 1).await;
    let broadcast: String = received.iter().map(|l| format!("{}\n", l.text)).collect();
    for haystack in [&stored, &broadcast] {
        for secret in ["hunter2", "tok\"", "tok ", "MIIEvQIBADANBgkq", "AbCdEfGh"] {
            assert!(!haystack.contains(secret), "{secret:?} leaked in {haystack}");
        }
    }
    let texts: Vec<&str> = received.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "login with ******** ok",
            "******** after CR removal",
            "x **************** y",
            "second ******** line",
            "key: ******** done",
            "echo ********",
            "nothing to hide",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_subscriber_gets_every_line_once_in_order() {
    const LINES: u64 = 5_000;
    // A small channel forces the lag-recovery path as well.
    for capacity in [DEFAULT_CHANNEL_CAPACITY, 8] {
        let dir = tempfile::tempdir().expect("temp dir");
        let hub = LogHub::with_capacity(dir.path(), capacity);
        let mut w = hub.writer(42, vec![]).await.expect("writer");
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let writer = tokio::spawn(async move {
            let mut started_tx = Some(started_tx);
            for i in 1..=LINES {
                w.line(LogStream::Stdout, &format!("line {i}")).await.expect("line");
                if i == 1_000 {
                    if let Some(tx) = started_tx.take() {
                        let _ = tx.send(());
                    }
                }
                if i % 97 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            w.finish().await.expect("finish");
        });
        started_rx.await.expect("writer started");
        // Join at several moments while the writer runs, each one consumed
        // concurrently.
        let mut early = Vec::new();
        for _ in 0..8 {
            early.push(tokio::spawn(collect(hub.subscribe(42, 1))));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mid = collect(hub.subscribe(42, 2_500)).await;
        writer.await.expect("writer task");
        for task in early {
            let lines = task.await.expect("subscriber task");
            assert_contiguous(&lines, 1, LINES);
            for line in &lines {
                assert_eq!(line.text, format!("line {}", line.seq));
            }
        }
        assert_contiguous(&mid, 2_500, LINES);
        assert!(!hub.is_live(42));
    }
}

#[tokio::test]
async fn subscriber_after_finish_replays_everything_and_ends() {
    let (_dir, hub) = hub();
    let mut w = hub.writer(3, vec![]).await.expect("writer");
    for i in 1..=50 {
        w.line(LogStream::Stdout, &format!("l{i}")).await.expect("line");
    }
    w.finish().await.expect("finish");
    assert!(!hub.is_live(3));
    let all = collect(hub.subscribe(3, 0)).await;
    assert_contiguous(&all, 1, 50);
    let tail = collect(hub.subscribe(3, 45)).await;
    assert_contiguous(&tail, 45, 50);
    assert!(collect(hub.subscribe(3, 51)).await.is_empty());
    assert!(collect(hub.subscribe(999, 1)).await.is_empty());
}

#[tokio::test]
async fn dropping_a_writer_ends_live_subscriptions() {
    let (_dir, hub) = hub();
    let mut w = hub.writer(4, vec![]).await.expect("writer");
    w.line(LogStream::Stdout, "one\ntwo").await.expect("line");
    let sub = hub.subscribe(4, 1);
    drop(w);
    let all = collect(sub).await;
    assert_contiguous(&all, 1, 2);
    assert!(!hub.is_live(4));
}

#[tokio::test]
async fn only_one_writer_per_build() {
    let (_dir, hub) = hub();
    let w = hub.writer(5, vec![]).await.expect("writer");
    assert!(matches!(hub.writer(5, vec![]).await, Err(LogError::AlreadyLive(5))));
    assert!(hub.writer(6, vec![]).await.is_ok());
    w.finish().await.expect("finish");
    assert!(hub.writer(5, vec![]).await.is_ok());
}

#[tokio::test]
async fn read_from_returns_lines_from_a_sequence_number() {
    let (_dir, hub) = hub();
    assert!(hub.read_from(8, 1).await.expect("missing file").is_empty());
    let mut w = hub.writer(8, vec![]).await.expect("writer");
    let chunk: String = (1..=3000).map(|i| format!("row {i}\n")).collect();
    w.line(LogStream::Stdout, &chunk).await.expect("line");
    // Readable while the writer is still live.
    assert_eq!(hub.read_from(8, 2999).await.expect("read").len(), 2);
    w.finish().await.expect("finish");
    let all = hub.read_from(8, 0).await.expect("read");
    assert_contiguous(&all, 1, 3000);
    let tail = hub.read_from(8, 2990).await.expect("read");
    assert_contiguous(&tail, 2990, 3000);
    assert_eq!(tail[0].text, "row 2990");
    assert!(hub.read_from(8, 3001).await.expect("read").is_empty());
}

#[tokio::test]
async fn torn_last_line_is_tolerated_and_cut_on_reopen() {
    let (_dir, hub) = hub();
    let mut w = hub.writer(9, vec![]).await.expect("writer");
    w.line(LogStream::Stdout, "a\nb").await.expect("line");
    w.finish().await.expect("finish");
    // A crash in the middle of the third line.
    let mut file = tokio::fs::OpenOptions::new().append(true).open(hub.log_path(9)).await.expect("open");
    file.write_all(br#"{"seq":3,"ts":"2025-01-01T00:00:00.000Z","stream":"std"#).await.expect("write");
    file.flush().await.expect("flush");
    drop(file);

    assert_contiguous(&hub.read_from(9, 1).await.expect("read"), 1, 2);
    assert_contiguous(&collect(hub.subscribe(9, 1)).await, 1, 2);

    // The retried build continues the numbering after the torn line.
    let mut w = hub.writer(9, vec![]).await.expect("writer");
    assert_eq!(w.last_seq(), 2);
    w.line(LogStream::System, "retry").await.expect("line");
    w.finish().await.expect("finish");
    let all = hub.read_from(9, 1).await.expect("read");
    assert_contiguous(&all, 1, 3);
    assert_eq!(all[2].text, "retry");
    assert!(!file_text(&hub, 9).await.contains("\"std\n"));
}

#[tokio::test]
async fn garbage_lines_in_the_middle_are_skipped() {
    let (_dir, hub) = hub();
    let path = hub.log_path(10);
    tokio::fs::create_dir_all(path.parent().expect("parent")).await.expect("mkdir");
    let body = concat!(
        r#"{"seq":1,"ts":"t","stream":"stdout","text":"a"}"#,
        "\n\u{0}\u{0}garbage\n\n",
        r#"{"seq":2,"ts":"t","stream":"stderr","text":"b"}"#,
        "\n"
    );
    tokio::fs::write(&path, body).await.expect("write");
    let lines = hub.read_from(10, 1).await.expect("read");
    assert_contiguous(&lines, 1, 2);
    assert_eq!(lines[1].stream, LogStream::Stderr);
}

#[tokio::test]
async fn overlong_lines_are_truncated_on_a_char_boundary() {
    let (_dir, hub) = hub();
    let mut w = hub.writer(11, vec![]).await.expect("writer");
    let long = "\u{e9}".repeat(MAX_LINE_BYTES); // 2 bytes each
    w.line(LogStream::Stdout, &long).await.expect("line");
    w.finish().await.expect("finish");
    let lines = hub.read_from(11, 1).await.expect("read");
    assert_eq!(lines.len(), 1);
    let text = &lines[0].text;
    assert!(text.ends_with(TRUNCATED_MARK));
    assert_eq!(text.len(), MAX_LINE_BYTES + TRUNCATED_MARK.len());
}
