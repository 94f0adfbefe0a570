//! Formatting of stored times, durations and ids. Pure functions: the same
//! text on the server and in the browser (no clock, no locale).

/// `2026-11-23T14:02:11.123Z` → `2026-11-23 14:02:11`. Anything that does not
/// look like RFC 3339 comes back unchanged.
pub fn short_time(rfc3339: &str) -> String {
    let bytes = rfc3339.as_bytes();
    let looks_right = bytes.len() >= 19
        && rfc3339.is_char_boundary(19)
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[4] == b'-'
        && bytes[13] == b':';
    if !looks_right {
        return rfc3339.to_string();
    }
    format!("{} {}", &rfc3339[..10], &rfc3339[11..19])
}

/// Like [`short_time`] for an optional time; `—` when absent.
pub fn short_time_opt(rfc3339: Option<&str>) -> String {
    rfc3339.map(short_time).unwrap_or_else(|| "—".into())
}

/// Milliseconds as `850 ms`, `1.2 s`, `3 m 4 s` or `2 h 5 m`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        let tenths = (ms + 50) / 100;
        if tenths >= 600 {
            return "1 m 0 s".into();
        }
        return format!("{}.{} s", tenths / 10, tenths % 10);
    }
    let secs = (ms + 500) / 1_000;
    if secs < 3_600 {
        return format!("{} m {} s", secs / 60, secs % 60);
    }
    let mins = secs / 60;
    format!("{} h {} m", mins / 60, mins % 60)
}

/// Like [`duration`] for an optional value; `—` when absent.
pub fn duration_opt(ms: Option<i64>) -> String {
    ms.map(duration).unwrap_or_else(|| "—".into())
}

/// `sha256:0123456789ab…` → `0123456789ab` (the short image id Docker shows).
pub fn short_image(image_id: &str) -> String {
    let hex = image_id.strip_prefix("sha256:").unwrap_or(image_id);
    hex.chars().take(12).collect()
}

/// A commit id shortened to 8 characters; `—` when absent.
pub fn short_commit(sha: Option<&str>) -> String {
    match sha {
        Some(s) if !s.is_empty() => s.chars().take(8).collect(),
        _ => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shortened() {
        assert_eq!(short_time("2026-11-23T14:02:11.123Z"), "2026-11-23 14:02:11");
        assert_eq!(short_time("2026-11-23T14:02:11Z"), "2026-11-23 14:02:11");
        assert_eq!(short_time("2026-11-23T14:02:11+02:00"), "2026-11-23 14:02:11");
        assert_eq!(short_time("yesterday"), "yesterday");
        assert_eq!(short_time("2026-11-23T14:02:1é"), "2026-11-23T14:02:1é");
        assert_eq!(short_time_opt(None), "—");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(0), "0 ms");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(1_200), "1.2 s");
        assert_eq!(duration(1_249), "1.2 s");
        assert_eq!(duration(59_960), "1 m 0 s");
        assert_eq!(duration(184_000), "3 m 4 s");
        assert_eq!(duration(7_500_000), "2 h 5 m");
        assert_eq!(duration(-5), "0 ms");
        assert_eq!(duration_opt(None), "—");
    }

    #[test]
    fn ids_are_shortened() {
        assert_eq!(short_image("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_image("abc"), "abc");
        assert_eq!(short_commit(Some("0123456789abcdef")), "01234567");
        assert_eq!(short_commit(None), "—");
    }
}
