//! Refusals of a pipeline file: each names the line, the column and the
//! field (`steps[2].depends_on[0]`, `services.db.healthcheck.retries`).

use std::fmt;

/// A place in the file: 1-based line and column (0, 0 for a pipeline that
/// has no file, such as [`super::Spec::implicit`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

/// One refusal of the pipeline file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("line {line}, column {column}: {field}: {message}")]
pub struct SpecError {
    pub line: u32,
    pub column: u32,
    /// Path of the refused value, `(file)` for the file as a whole.
    pub field: String,
    pub message: String,
}

impl SpecError {
    pub fn new(at: Position, field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError { line: at.line, column: at.column, field: field.into(), message: message.into() }
    }

    pub fn position(&self) -> Position {
        Position { line: self.line, column: self.column }
    }
}

/// Every refusal found in one file (never empty), in file order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    pub fn errors(&self) -> &[SpecError] {
        &self.0
    }

    /// The refusal of `field`, if there is one (for tests and the UI).
    pub fn for_field(&self, field: &str) -> Option<&SpecError> {
        self.0.iter().find(|e| e.field == field)
    }
}

impl fmt::Display for SpecErrors {
    /// One refusal per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// At most this many refusals are kept: a hostile or garbled file gets a
/// bounded answer.
pub const MAX_ERRORS: usize = 50;

/// Collects refusals while the file is walked.
#[derive(Debug, Default)]
pub(super) struct Errors {
    list: Vec<SpecError>,
    dropped: usize,
}

impl Errors {
    pub(super) fn add(&mut self, at: Position, field: &str, message: impl Into<String>) {
        if self.list.len() < MAX_ERRORS {
            self.list.push(SpecError::new(at, field, message));
        } else {
            self.dropped += 1;
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Sorted by position (the walk and the cross-checks interleave).
    pub(super) fn finish(mut self) -> SpecErrors {
        self.list.sort_by_key(SpecError::position);
        if self.dropped > 0 {
            let last = self.list.last().map(SpecError::position).unwrap_or_default();
            self.list.push(SpecError::new(
                last,
                "(file)",
                format!("{} more problems not shown", self.dropped),
            ));
        }
        SpecErrors(self.list)
    }
}
