//! A bounded in-memory copy of the users that signed-in requests resolve,
//! so a page request does not read its user row from the database.
//!
//! Coherence: every change to a user row goes through [`super::UserStore`],
//! which calls [`UserCache::forget`] after its write is committed. The only
//! other writer is `slipway admin create`, which inserts new rows and so
//! never makes a cached row stale (the data dir's lock file keeps a second
//! server out). A read that raced a write is not kept: `forget` bumps a
//! generation, and [`UserCache::keep`] drops a row read before the bump.
//! Entries also expire after [`USER_TTL`], a backstop for rows edited by
//! hand in the database.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::User;

/// Users kept at most.
pub const CACHED_USERS: usize = 10_000;
/// How long a cached row is answered before it is read again.
pub const USER_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct UserCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    users: HashMap<i64, (User, Instant)>,
    generation: u64,
}

impl UserCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached user `id`, if read less than [`USER_TTL`] ago.
    pub fn get(&self, id: i64) -> Option<User> {
        let inner = self.lock();
        inner.users.get(&id).filter(|(_, at)| at.elapsed() < USER_TTL).map(|(u, _)| u.clone())
    }

    /// The generation to pass to [`UserCache::keep`] for a read started now.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps `user`, read when the generation was `read_at`, unless a
    /// write was committed since.
    pub fn keep(&self, user: &User, read_at: u64) {
        let mut inner = self.lock();
        if inner.generation != read_at {
            return;
        }
        if inner.users.len() >= CACHED_USERS && !inner.users.contains_key(&user.id) {
            inner.users.clear();
        }
        inner.users.insert(user.id, (user.clone(), Instant::now()));
    }

    /// Drops user `id` after a committed change to its row.
    pub fn forget(&self, id: i64) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.users.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use app::wire::Role;

    use super::*;

    fn user(id: i64, role: Role) -> User {
        User {
            id,
            name: format!("u{id}"),
            role,
            disabled: false,
            session_epoch: 0,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn answers_kept_users_and_forgets_changed_ones() {
        let cache = UserCache::default();
        assert_eq!(cache.get(1), None);
        cache.keep(&user(1, Role::Admin), cache.generation());
        assert_eq!(cache.get(1), Some(user(1, Role::Admin)));
        cache.forget(1);
        assert_eq!(cache.get(1), None, "a changed user is read again");
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let cache = UserCache::default();
        let read_at = cache.generation();
        cache.forget(2); // a write to any user commits while the read runs
        cache.keep(&user(1, Role::Admin), read_at);
        assert_eq!(cache.get(1), None);
        cache.keep(&user(1, Role::Viewer), cache.generation());
        assert_eq!(cache.get(1).map(|u| u.role), Some(Role::Viewer));
    }

    #[test]
    fn stays_bounded() {
        let cache = UserCache::default();
        for id in 0..=CACHED_USERS as i64 {
            cache.keep(&user(id, Role::Viewer), cache.generation());
        }
        assert!(cache.lock().users.len() <= CACHED_USERS);
        assert!(cache.get(CACHED_USERS as i64).is_some(), "the newest is kept");
    }
}
