//! Reading a build log file incrementally, complete lines only.

use std::io::{ErrorKind, SeekFrom};
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};

use super::LogLine;

/// Lines read per batch, bounding memory while replaying big logs.
pub(super) const BATCH_LINES: usize = 1024;

/// A read position in a log file that only ever moves past complete
/// ('\n'-terminated) lines, so a line being written or torn by a crash is
/// never consumed; reading again later picks up what was appended since.
pub(super) struct Cursor {
    path: PathBuf,
    reader: Option<BufReader<tokio::fs::File>>,
    offset: u64,
    buf: Vec<u8>,
}

impl Cursor {
    pub(super) fn new(path: PathBuf) -> Self {
        Cursor { path, reader: None, offset: 0, buf: Vec::new() }
    }

    /// Byte offset just past the last complete line read.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// Up to `max` further lines; empty when there is nothing complete to
    /// read yet (or no file). Lines that do not parse (the remains of a
    /// crash) are skipped with a warning.
    pub(super) async fn next_batch(&mut self, max: usize) -> std::io::Result<Vec<LogLine>> {
        let reader = match &mut self.reader {
            Some(reader) => reader,
            None => match tokio::fs::File::open(&self.path).await {
                Ok(file) => {
                    let mut reader = BufReader::with_capacity(64 * 1024, file);
                    reader.seek(SeekFrom::Start(self.offset)).await?;
                    self.reader.insert(reader)
                }
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            },
        };
        let mut lines = Vec::new();
        while lines.len() < max {
            self.buf.clear();
            let n = reader.read_until(b'\n', &mut self.buf).await?;
            if n == 0 {
                break;
            }
            if self.buf.last() != Some(&b'\n') {
                // Incomplete: leave it for a later read.
                reader.seek(SeekFrom::Start(self.offset)).await?;
                break;
            }
            self.offset += n as u64;
            match serde_json::from_slice::<LogLine>(&self.buf[..n - 1]) {
                Ok(line) => lines.push(line),
                Err(e) => tracing::warn!(
                    path = %self.path.display(),
                    offset = self.offset - n as u64,
                    error = %e,
                    "skipping an unreadable build log line"
                ),
            }
        }
        Ok(lines)
    }
}

/// The highest sequence number in a log file and the length of its complete
/// lines; `(0, 0)` if there is no file.
pub(super) async fn scan(path: &Path) -> std::io::Result<(u64, u64)> {
    let mut cursor = Cursor::new(path.to_path_buf());
    let mut last_seq = 0;
    loop {
        let batch = cursor.next_batch(BATCH_LINES).await?;
        if batch.is_empty() {
            return Ok((last_seq, cursor.offset()));
        }
        last_seq = batch.iter().map(|l| l.seq).fold(last_seq, u64::max);
    }
}
