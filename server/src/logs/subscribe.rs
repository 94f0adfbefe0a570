//! Replay-then-follow subscriptions.

use std::collections::VecDeque;

use futures::Stream;
use tokio::sync::broadcast::{self, error::RecvError};

use super::read::{Cursor, BATCH_LINES};
use super::{BuildId, LogLine};

/// Reads the file from the cursor, then follows `rx` (already subscribed
/// before any read, so nothing written in between is missed).
pub(super) fn follow(
    build_id: BuildId,
    cursor: Cursor,
    rx: Option<broadcast::Receiver<LogLine>>,
    from_seq: u64,
) -> impl Stream<Item = LogLine> + Send + 'static {
    let state = Follow {
        build_id,
        cursor,
        rx,
        next_seq: from_seq.max(1),
        pending: VecDeque::new(),
        reading_file: true,
        held: None,
    };
    futures::stream::unfold(state, |mut state| async move {
        let line = state.next().await?;
        Some((line, state))
    })
}

struct Follow {
    build_id: BuildId,
    cursor: Cursor,
    /// `None` once the build is not (or no longer) live.
    rx: Option<broadcast::Receiver<LogLine>>,
    /// Lines below this were yielded (or were not asked for).
    next_seq: u64,
    pending: VecDeque<LogLine>,
    /// Reading the file: the first replay, after a lag, after a gap, at the end.
    reading_file: bool,
    /// A live line that arrived ahead of the file; yielded after the read.
    held: Option<LogLine>,
}

impl Follow {
    fn accept(&mut self, line: LogLine) {
        if line.seq >= self.next_seq {
            self.next_seq = line.seq + 1;
            self.pending.push_back(line);
        }
    }

    async fn next(&mut self) -> Option<LogLine> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some(line);
            }
            if self.reading_file {
                match self.cursor.next_batch(BATCH_LINES).await {
                    Ok(batch) if !batch.is_empty() => {
                        for line in batch {
                            self.accept(line);
                        }
                    }
                    Ok(_) => {
                        self.reading_file = false;
                        if let Some(line) = self.held.take() {
                            self.accept(line);
                        }
                    }
                    Err(e) => {
                        tracing::error!(build_id = self.build_id, error = %e, "cannot read build log");
                        // Without the file there is no gap-free stream to offer.
                        return None;
                    }
                }
                continue;
            }
            let rx = self.rx.as_mut()?;
            match rx.recv().await {
                Ok(line) if line.seq < self.next_seq => {}
                Ok(line) if line.seq == self.next_seq => self.accept(line),
                Ok(line) => {
                    // Ahead of what we have: the missing lines are in the file.
                    self.held = Some(line);
                    self.reading_file = true;
                }
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(
                        build_id = self.build_id,
                        skipped,
                        "log subscriber lagged; catching up from the file"
                    );
                    self.reading_file = true;
                }
                Err(RecvError::Closed) => {
                    self.rx = None;
                    self.reading_file = true;
                }
            }
        }
    }
}
