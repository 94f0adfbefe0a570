//! Build logs: an append-only file per build plus live fan-out.
//!
//! Every line gets a per-build sequence number (from 1) and an RFC 3339 UTC
//! timestamp, is appended to `<data_dir>/logs/builds/<build_id>.log` as one
//! JSON object per line, and only then broadcast to live subscribers. Since a
//! line is in the file before anyone can receive it, a reader that subscribes
//! to the channel *before* replaying the file misses nothing; it drops live
//! lines it already replayed by their sequence number.
//!
//! Secret values are redacted in [`LogWriter::line`] before anything is
//! written or sent.

mod read;
mod redact;
mod subscribe;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::broadcast;

use self::read::Cursor;
pub use self::redact::Redactor;

/// A build's database id.
pub type BuildId = i64;

/// Live lines buffered per build for slow subscribers; one that falls further
/// behind catches up from the file.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 4096;
/// Longest line text kept, in bytes; the rest is cut and marked.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Appended to a line cut at [`MAX_LINE_BYTES`].
pub const TRUNCATED_MARK: &str = " [line truncated]";
const FILE_BUFFER: usize = 64 * 1024;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Slipway's own messages (phase changes, errors).
    System,
}

/// One stored log line; also its JSON form in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: u64,
    pub ts: String,
    pub stream: LogStream,
    pub text: String,
    /// The pipeline step that wrote it (`None`: the run itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("build {0} already has an active log writer")]
    AlreadyLive(BuildId),
    #[error("log file of build {build_id}: {source}")]
    Io {
        build_id: BuildId,
        #[source]
        source: std::io::Error,
    },
}

/// The log store and its live channels. Cheap to clone; share one per server.
#[derive(Clone)]
pub struct LogHub {
    inner: Arc<HubInner>,
}

impl std::fmt::Debug for LogHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHub").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

struct HubInner {
    dir: PathBuf,
    capacity: usize,
    live: Mutex<HashMap<BuildId, broadcast::Sender<LogLine>>>,
}

impl LogHub {
    /// A hub storing logs under `<data_dir>/logs/builds/`.
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        Self::with_capacity(data_dir, DEFAULT_CHANNEL_CAPACITY)
    }

    /// Like [`LogHub::new`], with `capacity` live lines buffered per build.
    pub fn with_capacity(data_dir: impl AsRef<Path>, capacity: usize) -> Self {
        LogHub {
            inner: Arc::new(HubInner {
                dir: data_dir.as_ref().join("logs").join("builds"),
                capacity: capacity.max(1),
                live: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The log file of a build (for retention and export).
    pub fn log_path(&self, build_id: BuildId) -> PathBuf {
        self.inner.dir.join(format!("{build_id}.log"))
    }

    /// Whether a writer is currently active for the build.
    pub fn is_live(&self, build_id: BuildId) -> bool {
        self.live().contains_key(&build_id)
    }

    fn live(&self) -> MutexGuard<'_, HashMap<BuildId, broadcast::Sender<LogLine>>> {
        // The map stays consistent even if a holder panicked: every update is
        // a single insert or remove.
        self.inner.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the build's log for writing and makes it live. `redactions` are
    /// the secret values to mask (empty ones are ignored).
    ///
    /// If the file already exists (a retried build), numbering continues
    /// after its last complete line and a torn last line is cut off.
    pub async fn writer(&self, build_id: BuildId, redactions: Vec<String>) -> Result<LogWriter, LogError> {
        let registration = self.register(build_id)?;
        let io = |source| LogError::Io { build_id, source };
        tokio::fs::create_dir_all(&self.inner.dir).await.map_err(io)?;
        let path = self.log_path(build_id);
        let (last_seq, valid_len) = read::scan(&path).await.map_err(io)?;
        let file = tokio::fs::OpenOptions::new().create(true).append(true).open(&path).await.map_err(io)?;
        let len = file.metadata().await.map_err(io)?.len();
        if len > valid_len {
            tracing::warn!(build_id, cut = len - valid_len, "cutting a torn line off a build log");
            file.set_len(valid_len).await.map_err(io)?;
        }
        Ok(LogWriter {
            registration,
            file: BufWriter::with_capacity(FILE_BUFFER, file),
            next_seq: last_seq + 1,
            redactor: Redactor::new(redactions),
            scratch: Vec::with_capacity(256),
            step: None,
        })
    }

    fn register(&self, build_id: BuildId) -> Result<Registration, LogError> {
        let mut live = self.live();
        if live.contains_key(&build_id) {
            return Err(LogError::AlreadyLive(build_id));
        }
        let (tx, _) = broadcast::channel(self.inner.capacity);
        live.insert(build_id, tx.clone());
        Ok(Registration { hub: self.clone(), build_id, tx })
    }

    /// The stored lines with `seq >= from_seq`, in order. A missing file is
    /// an empty log; a torn last line (crash mid-write) is ignored.
    pub async fn read_from(&self, build_id: BuildId, from_seq: u64) -> Result<Vec<LogLine>, LogError> {
        let mut cursor = Cursor::new(self.log_path(build_id));
        let mut out = Vec::new();
        loop {
            let batch = cursor
                .next_batch(read::BATCH_LINES)
                .await
                .map_err(|source| LogError::Io { build_id, source })?;
            if batch.is_empty() {
                return Ok(out);
            }
            out.extend(batch.into_iter().filter(|line| line.seq >= from_seq));
        }
    }

    /// Every line from `from_seq` on: the file first, then live lines as they
    /// are written, each exactly once and in order. The stream ends when the
    /// writer finishes, or after the replay if the build is not live.
    pub fn subscribe(
        &self,
        build_id: BuildId,
        from_seq: u64,
    ) -> impl Stream<Item = LogLine> + Send + 'static {
        // Join the channel now, before the file is read on first poll.
        let rx = self.live().get(&build_id).map(broadcast::Sender::subscribe);
        subscribe::follow(build_id, Cursor::new(self.log_path(build_id)), rx, from_seq)
    }
}

/// A build's entry in the live map; removing it (on drop) closes the channel
/// once the writer's sender goes too.
struct Registration {
    hub: LogHub,
    build_id: BuildId,
    tx: broadcast::Sender<LogLine>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut live = self.hub.live();
        if live.get(&self.build_id).is_some_and(|tx| tx.same_channel(&self.tx)) {
            live.remove(&self.build_id);
        }
    }
}

/// Appends a build's lines. Dropping it without [`LogWriter::finish`] (a
/// cancelled task) still ends the live subscriptions.
pub struct LogWriter {
    registration: Registration,
    file: BufWriter<tokio::fs::File>,
    next_seq: u64,
    redactor: Redactor,
    scratch: Vec<u8>,
    /// The step the following lines belong to ([`LogWriter::set_step`]).
    step: Option<String>,
}

impl LogWriter {
    /// Tags the following lines with `step` (`None`: the run itself).
    pub fn set_step(&mut self, step: Option<&str>) {
        self.step = step.map(str::to_string);
    }

    pub fn build_id(&self) -> BuildId {
        self.registration.build_id
    }

    /// Sequence number of the last line written (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// `text` with this build's secret values masked, for whatever leaves
    /// the log by another way (the error stored on the build and the job,
    /// logged by the worker, sent in notifications).
    pub fn redact(&self, text: &str) -> String {
        self.redactor.apply(text).into_owned()
    }

    /// Writes `text` as one line per '\n' (a final '\n' ends the last line,
    /// '\r' is dropped), after redacting secrets. The lines are flushed to
    /// the OS before being broadcast. Pass whole chunks of output at once:
    /// each call is one flush.
    pub async fn line(&mut self, stream: LogStream, text: &str) -> Result<(), LogError> {
        let build_id = self.build_id();
        let without_cr = if text.contains('\r') {
            std::borrow::Cow::Owned(text.replace('\r', ""))
        } else {
            std::borrow::Cow::Borrowed(text)
        };
        let redacted = self.redactor.apply(&without_cr);
        let body = redacted.strip_suffix('\n').unwrap_or(&redacted);
        let ts = crate::db::now_rfc3339();
        let mut lines = Vec::new();
        self.scratch.clear();
        for piece in body.split('\n') {
            let line = LogLine {
                seq: self.next_seq,
                ts: ts.clone(),
                stream,
                text: truncate(piece),
                step: self.step.clone(),
            };
            self.next_seq += 1;
            serde_json::to_writer(&mut self.scratch, &line)
                .map_err(|e| LogError::Io { build_id, source: e.into() })?;
            self.scratch.push(b'\n');
            lines.push(line);
            if self.scratch.len() >= FILE_BUFFER {
                self.write_scratch().await?;
            }
        }
        self.write_scratch().await?;
        if let Err(source) = self.file.flush().await {
            tracing::error!(build_id, error = %source, "cannot flush build log");
            return Err(LogError::Io { build_id, source });
        }
        for line in lines {
            // No receiver is fine: nobody is watching.
            let _ = self.registration.tx.send(line);
        }
        Ok(())
    }

    async fn write_scratch(&mut self) -> Result<(), LogError> {
        if let Err(source) = self.file.write_all(&self.scratch).await {
            let build_id = self.build_id();
            tracing::error!(build_id, error = %source, "cannot write build log");
            return Err(LogError::Io { build_id, source });
        }
        self.scratch.clear();
        Ok(())
    }

    /// Syncs the file and ends the live channel; subscribers see the end of
    /// their streams after the last line.
    pub async fn finish(mut self) -> Result<(), LogError> {
        let build_id = self.build_id();
        let result = async {
            self.file.flush().await?;
            self.file.get_ref().sync_data().await
        }
        .await;
        if let Err(source) = &result {
            tracing::error!(build_id, error = %source, "cannot sync build log");
        }
        drop(self);
        result.map_err(|source| LogError::Io { build_id, source })
    }
}

/// Cuts text longer than [`MAX_LINE_BYTES`] at a character boundary.
fn truncate(piece: &str) -> String {
    if piece.len() <= MAX_LINE_BYTES {
        return piece.to_string();
    }
    let mut end = MAX_LINE_BYTES;
    while !piece.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + TRUNCATED_MARK.len());
    out.push_str(&piece[..end]);
    out.push_str(TRUNCATED_MARK);
    out
}
