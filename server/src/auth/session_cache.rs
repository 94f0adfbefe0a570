//! A bounded in-memory cache in front of the SQLite session store, so a
//! signed-in request does not read its session record from the database.
//!
//! Write-through: `create`, `save` and `delete` go to SQLite first, then the
//! cache. Only this process writes sessions (the data dir's lock file keeps
//! a second server out), so a cached record is never stale. An expired
//! record is never answered; when the cache is full, expired records are
//! dropped first, then the whole cache (the store still has every record).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tower_sessions::{
    cookie::time::OffsetDateTime,
    session::{Id, Record},
    session_store::Result,
    ExpiredDeletion, SessionStore,
};
use tower_sessions_sqlx_store::SqliteStore;

/// Records kept at most (a record is a few hundred bytes).
pub const CACHED_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct CachedSessions {
    store: SqliteStore,
    cache: Arc<Mutex<HashMap<Id, Record>>>,
    capacity: usize,
}

impl CachedSessions {
    pub fn new(store: SqliteStore, capacity: usize) -> Self {
        CachedSessions { store, cache: Arc::default(), capacity }
    }

    fn cached(&self, id: &Id) -> Option<Record> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(id).filter(|r| r.expiry_date > OffsetDateTime::now_utc()).cloned()
    }

    fn keep(&self, record: &Record) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.capacity && !cache.contains_key(&record.id) {
            let now = OffsetDateTime::now_utc();
            cache.retain(|_, r| r.expiry_date > now);
            if cache.len() >= self.capacity {
                cache.clear();
            }
        }
        cache.insert(record.id, record.clone());
    }

    fn forget(&self, id: &Id) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Deletes expired records from the store and the cache.
    pub async fn delete_expired(&self) -> Result<()> {
        self.store.delete_expired().await?;
        let now = OffsetDateTime::now_utc();
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, r| r.expiry_date > now);
        Ok(())
    }

    /// How many records the cache holds (tests).
    pub fn cached_len(&self) -> usize {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[async_trait::async_trait]
impl SessionStore for CachedSessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // The store may pick another id on a collision.
        self.store.create(record).await?;
        self.keep(record);
        Ok(())
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.store.save(record).await?;
        self.keep(record);
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        if let Some(record) = self.cached(id) {
            return Ok(Some(record));
        }
        let record = self.store.load(id).await?;
        if let Some(record) = &record {
            self.keep(record);
        }
        Ok(record)
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.forget(id);
        self.store.delete(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_sessions::cookie::time::Duration;

    async fn store(capacity: usize) -> anyhow::Result<(CachedSessions, sqlx::SqlitePool)> {
        let db = sqlx::SqlitePool::connect("sqlite::memory:").await?;
        let sqlite = SqliteStore::new(db.clone());
        sqlite.migrate().await?;
        Ok((CachedSessions::new(sqlite, capacity), db))
    }

    fn record(expires_in: Duration) -> Record {
        let mut data = HashMap::new();
        data.insert("k".to_string(), serde_json::json!(1));
        Record { id: Id(rand::random()), data, expiry_date: OffsetDateTime::now_utc() + expires_in }
    }

    #[tokio::test]
    async fn writes_through_and_answers_from_memory() -> anyhow::Result<()> {
        let (sessions, db) = store(10).await?;
        let mut r = record(Duration::hours(1));
        sessions.create(&mut r).await?;
        assert_eq!(sessions.store.load(&r.id).await?.as_ref(), Some(&r), "written to SQLite");
        // Gone from SQLite behind the cache's back: the cache still answers,
        // so the read did not touch the database.
        sqlx::query("DELETE FROM tower_sessions").execute(&db).await?;
        assert_eq!(sessions.load(&r.id).await?.as_ref(), Some(&r));
        sessions.delete(&r.id).await?;
        assert_eq!(sessions.load(&r.id).await?, None);
        Ok(())
    }

    #[tokio::test]
    async fn reads_misses_from_the_store_and_never_answers_expired() -> anyhow::Result<()> {
        let (sessions, _db) = store(10).await?;
        let r = record(Duration::hours(1));
        sessions.store.save(&r).await?;
        assert_eq!(sessions.cached_len(), 0);
        assert_eq!(sessions.load(&r.id).await?.as_ref(), Some(&r));
        assert_eq!(sessions.cached_len(), 1);
        let old = record(Duration::seconds(-1));
        sessions.save(&old).await?;
        assert_eq!(sessions.load(&old.id).await?, None);
        sessions.delete_expired().await?;
        assert_eq!(sessions.cached_len(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn stays_within_its_capacity() -> anyhow::Result<()> {
        let (sessions, _db) = store(3).await?;
        let mut ids = Vec::new();
        for _ in 0..7 {
            let mut r = record(Duration::hours(1));
            sessions.create(&mut r).await?;
            ids.push(r.id);
            assert!(sessions.cached_len() <= 3);
        }
        for id in &ids {
            assert!(sessions.load(id).await?.is_some(), "every record is still in the store");
        }
        Ok(())
    }
}
