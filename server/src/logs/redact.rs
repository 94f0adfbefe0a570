//! Masking secret values in log text.

use std::borrow::Cow;

/// What a secret value is replaced with.
pub const MASK: &str = "********";

/// Shortest line of a multi-line secret that is also masked on its own.
const MIN_PART: usize = 4;

/// The secret values of one build, longest first so that a secret containing
/// another one is masked whole.
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// Empty values are ignored. '\r' is removed from values, as it is from
    /// log text. A multi-line value (a key file) is masked whole and, in
    /// case the output splits it, line by line (lines of at least 4
    /// characters, surrounding whitespace ignored).
    pub fn new(secrets: Vec<String>) -> Self {
        let mut needles = Vec::new();
        for secret in secrets {
            let secret = secret.replace('\r', "");
            if secret.is_empty() {
                continue;
            }
            if secret.contains('\n') {
                needles.extend(
                    secret
                        .split('\n')
                        .map(str::trim)
                        .filter(|part| part.len() >= MIN_PART)
                        .map(str::to_string),
                );
            }
            needles.push(secret);
        }
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    pub fn apply<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), MASK));
            }
        }
        out
    }
}
