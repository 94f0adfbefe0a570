//! Keyset pagination for history lists (newest first, by id) and durations.

use serde::{Deserialize, Serialize};

/// Default and largest page sizes.
pub const DEFAULT_PAGE: u32 = 25;
pub const MAX_PAGE: u32 = 200;

/// Which page: rows with `id < before` (all when `None`), at most `limit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub before: Option<i64>,
    pub limit: Option<u32>,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        PageRequest { before: None, limit: Some(limit) }
    }

    /// The limit, clamped to 1..=MAX_PAGE.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
    }

    /// The `before` bound for SQL (`id < ?`).
    pub fn before(&self) -> i64 {
        self.before.unwrap_or(i64::MAX)
    }
}

/// One page, newest first; `next` is the `before` of the following page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched newest first.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> i64) -> Page<T> {
        let limit = limit as usize;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&id)
        } else {
            None
        };
        Page { items: rows, next }
    }
}

/// Milliseconds from `start` to `end` (stored RFC 3339 times).
pub fn duration_ms(start: Option<&str>, end: Option<&str>) -> Option<i64> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    Some((parse(end?)? - parse(start?)?).num_milliseconds())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cut_at_limit_and_point_at_the_next() {
        let page = Page::from_rows(vec![9, 8, 7], 2, |x| *x);
        assert_eq!(page, Page { items: vec![9, 8], next: Some(8) });
        let last = Page::from_rows(vec![7], 2, |x| *x);
        assert_eq!(last, Page { items: vec![7], next: None });
        assert_eq!(PageRequest { before: None, limit: Some(0) }.limit(), 1);
        assert_eq!(PageRequest { before: None, limit: Some(10_000) }.limit(), MAX_PAGE);
    }

    #[test]
    fn durations_between_stored_times() {
        assert_eq!(
            duration_ms(Some("2026-01-01T00:00:00.000Z"), Some("2026-01-01T00:00:01.500Z")),
            Some(1500)
        );
        assert_eq!(duration_ms(Some("2026-01-01T00:00:00.000Z"), None), None);
    }
}
