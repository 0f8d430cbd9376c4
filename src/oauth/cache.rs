//! A small read-through cache with a TTL, for records the token endpoint reads on every
//! request (clients, resources). Unknown keys are cached too, so a burst of requests costs one
//! database read per key per TTL. Changes made by this process invalidate at once; changes
//! made by another process (the CLI, another node) show within the TTL.
//!
//! During a store outage an entry that was still fresh when the outage became visible may be
//! used for a bounded grace period ([`TtlCache::during_outage`]); sweeping keeps entries that
//! long.

use crate::store::StoreError;
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

type Entry<V> = (Instant, Option<Arc<V>>);

/// Entries kept at most; past it the least recently stored entries make room (a flood of
/// unknown ids never empties the cache of the clients in use).
const MAX_ENTRIES: usize = 50_000;

pub(super) struct TtlCache<V> {
    ttl: Duration,
    /// How long past the TTL a sweep keeps an entry (the outage grace).
    keep: Duration,
    map: RwLock<LruCache<String, Entry<V>>>,
}

impl<V> TtlCache<V> {
    pub(super) fn new(ttl: Duration, keep: Duration) -> Self {
        Self::with_capacity(ttl, keep, MAX_ENTRIES)
    }

    fn with_capacity(ttl: Duration, keep: Duration, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self { ttl, keep, map: RwLock::new(LruCache::new(capacity)) }
    }

    /// The record for `key`: fresh from the cache; else what `fetch` reads from the store
    /// (cached, a miss too); else, when the store is unavailable, the entry
    /// [`during_outage`](Self::during_outage) allows. `down_since` is asked again after a
    /// failed read, which may be what marked the store down.
    pub(super) async fn read_through<F: Future<Output = Result<Option<V>, StoreError>>>(
        &self,
        key: &str,
        down_since: impl Fn() -> Option<Instant>,
        grace: Duration,
        fetch: impl FnOnce() -> F,
    ) -> Result<Option<Arc<V>>, StoreError> {
        if let Some(hit) = self.get(key) {
            return Ok(hit);
        }
        if let Some(hit) = self.during_outage(key, down_since(), grace) {
            return Ok(hit);
        }
        match fetch().await {
            Ok(loaded) => {
                let loaded = loaded.map(Arc::new);
                self.put(key, loaded.clone());
                Ok(loaded)
            }
            Err(e @ StoreError::Unavailable(_)) => self.during_outage(key, down_since(), grace).ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// `Some(hit)` while fresh (`hit` may be a cached "does not exist").
    pub(super) fn get(&self, key: &str) -> Option<Option<Arc<V>>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let (at, v) = map.peek(key)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    /// While the store is unavailable (`down_since`: when this process saw it fail) and for
    /// less than `grace` since: the entry if it had been read less than the TTL before
    /// `down_since`, i.e. it was still fresh when the outage became visible. An entry read
    /// later (after a partial recovery) qualifies too.
    pub(super) fn during_outage(&self, key: &str, down_since: Option<Instant>, grace: Duration) -> Option<Option<Arc<V>>> {
        let since = down_since.filter(|s| s.elapsed() < grace)?;
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let (at, v) = map.peek(key)?;
        since.checked_duration_since(*at).is_none_or(|age| age < self.ttl).then(|| v.clone())
    }

    pub(super) fn put(&self, key: &str, v: Option<Arc<V>>) {
        self.map.write().unwrap_or_else(|p| p.into_inner()).put(key.to_owned(), (Instant::now(), v));
    }

    pub(super) fn invalidate(&self, key: &str) {
        self.map.write().unwrap_or_else(|p| p.into_inner()).pop(key);
    }

    pub(super) fn sweep(&self) {
        let keep = self.ttl.saturating_add(self.keep);
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        let old: Vec<String> = map.iter().filter(|(_, (at, _))| at.elapsed() >= keep).map(|(k, _)| k.clone()).collect();
        for k in old {
            map.pop(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_misses_are_cached() {
        let c: TtlCache<u32> = TtlCache::new(Duration::from_millis(30), Duration::ZERO);
        assert!(c.get("a").is_none());
        c.put("a", Some(Arc::new(1)));
        c.put("b", None);
        assert_eq!(c.get("a").unwrap().as_deref(), Some(&1));
        assert!(c.get("b").unwrap().is_none(), "a cached miss");
        c.invalidate("a");
        assert!(c.get("a").is_none());
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.get("b").is_none());
        c.sweep();
        assert!(c.map.read().unwrap().is_empty());
    }

    /// Before: at 50k entries the whole cache was cleared, so a flood of unknown client ids
    /// sent every client in use back to the database at once.
    #[test]
    fn past_its_capacity_the_least_recently_stored_entries_go() {
        let c: TtlCache<u32> = TtlCache::with_capacity(Duration::from_secs(60), Duration::ZERO, 10);
        c.put("in-use", Some(Arc::new(7)));
        for i in 0..9 {
            c.put(&format!("unknown-{i}"), None);
        }
        assert_eq!(c.get("in-use").unwrap().as_deref(), Some(&7));
        c.put("in-use", Some(Arc::new(7)));
        for i in 9..18 {
            c.put(&format!("unknown-{i}"), None);
        }
        assert_eq!(c.get("in-use").unwrap().as_deref(), Some(&7), "recently stored entries survive");
        assert!(c.get("unknown-0").is_none(), "the oldest went");
        assert_eq!(c.map.read().unwrap().len(), 10);
    }

    #[test]
    fn an_outage_serves_only_entries_fresh_when_it_became_visible() {
        let c: TtlCache<u32> = TtlCache::new(Duration::from_millis(100), Duration::from_secs(60));
        let grace = Duration::from_secs(60);
        c.put("old", Some(Arc::new(1)));
        std::thread::sleep(Duration::from_millis(120));
        c.put("fresh", Some(Arc::new(2)));
        c.put("gone", None);
        let down = Some(Instant::now());
        std::thread::sleep(Duration::from_millis(120));
        assert!(c.get("fresh").is_none(), "stale by the TTL");
        assert_eq!(c.during_outage("fresh", down, grace).unwrap().as_deref(), Some(&2));
        assert!(c.during_outage("gone", down, grace).unwrap().is_none(), "a cached miss stays a miss");
        assert!(c.during_outage("old", down, grace).is_none(), "already stale when the outage showed");
        assert!(c.during_outage("unknown", down, grace).is_none());
        assert!(c.during_outage("fresh", None, grace).is_none(), "no outage, no grace");
        assert!(c.during_outage("fresh", down, Duration::ZERO).is_none(), "grace 0 turns it off");
        assert!(c.during_outage("fresh", down, Duration::from_millis(50)).is_none(), "grace over");
        c.sweep();
        assert!(c.during_outage("fresh", down, grace).is_some(), "sweeping keeps entries for the grace");
    }
}
