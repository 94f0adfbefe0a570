//! In-memory login rate limit per (user name, client IP): at most
//! [`MAX_FAILURES`] attempts that did not succeed within [`WINDOW`].
//!
//! An attempt is counted when it starts (so parallel guesses cannot slip
//! past the check) and the count is cleared when it succeeds. The table is
//! bounded: expired entries are pruned when it grows, and past
//! [`MAX_KEYS`] the least recently used entry goes.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Most (name, IP) pairs tracked at once.
pub const MAX_KEYS: usize = 50_000;
/// Longest name kept as a key (longer names are invalid anyway).
const MAX_KEY_NAME: usize = 64;

type Key = (String, Option<IpAddr>);

/// Refused: too many failed attempts; the next one is allowed after this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, rounded up (never 0).
    pub fn secs(&self) -> u64 {
        let d = self.0;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

#[derive(Default)]
pub struct LoginLimiter {
    attempts: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

fn key(name: &str, ip: Option<IpAddr>) -> Key {
    let name = name.trim().to_lowercase();
    let cut = name.char_indices().nth(MAX_KEY_NAME).map_or(name.len(), |(i, _)| i);
    (name[..cut].to_string(), ip)
}

fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW) {
        times.pop_front();
    }
}

impl LoginLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts an attempt, or refuses it when the window is full.
    pub fn begin(&self, name: &str, ip: Option<IpAddr>, now: Instant) -> Result<(), RetryAfter> {
        let mut map = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| {
                prune(times, now);
                !times.is_empty()
            });
            if map.len() >= MAX_KEYS {
                let oldest = map.iter().min_by_key(|(_, t)| t.back().copied()).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
        }
        let times = map.entry(key(name, ip)).or_default();
        prune(times, now);
        if times.len() >= MAX_FAILURES {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(RetryAfter((oldest + WINDOW).saturating_duration_since(now)));
        }
        times.push_back(now);
        Ok(())
    }

    /// Forgets the attempts of a successful sign-in.
    pub fn succeeded(&self, name: &str, ip: Option<IpAddr>) {
        let mut map = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&key(name, ip));
    }

    /// Pairs currently tracked.
    pub fn tracked(&self) -> usize {
        self.attempts.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn five_attempts_then_wait_for_the_oldest_to_expire() {
        let limiter = LoginLimiter::new();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES as u64 {
            assert!(limiter.begin("ann", IP, t0 + Duration::from_secs(i)).is_ok());
        }
        let refused = limiter.begin("ann", IP, t0 + Duration::from_secs(10)).expect_err("sixth refused");
        assert_eq!(refused.secs(), WINDOW.as_secs() - 10);
        // Another IP, another name: separate budgets.
        assert!(limiter.begin("ann", None, t0).is_ok());
        assert!(limiter.begin("bob", IP, t0).is_ok());
        // Names are compared as the login form normalises them.
        assert!(limiter.begin(" ANN ", IP, t0 + Duration::from_secs(10)).is_err());
        // The oldest attempt leaves the window: one more is allowed.
        assert!(limiter.begin("ann", IP, t0 + WINDOW).is_ok());
        assert!(limiter.begin("ann", IP, t0 + WINDOW).is_err());
    }

    #[test]
    fn success_clears_the_count() {
        let limiter = LoginLimiter::new();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            limiter.begin("ann", IP, t0).expect("allowed");
        }
        limiter.succeeded("ann", IP);
        assert!(limiter.begin("ann", IP, t0).is_ok());
    }

    #[test]
    fn the_table_stays_bounded() {
        let limiter = LoginLimiter::new();
        let t0 = Instant::now();
        for i in 0..MAX_KEYS + 10 {
            let _ = limiter.begin(&format!("user{i}"), IP, t0);
        }
        assert!(limiter.tracked() <= MAX_KEYS);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1500)).secs(), 2);
        assert_eq!(RetryAfter(Duration::ZERO).secs(), 1);
    }
}
