//! A small read-through cache with a TTL, for records the token endpoint reads on every
//! request (clients, resources). Unknown keys are cached too, so a burst of requests costs one
//! database read per key per TTL. Changes made by this process invalidate at once; changes
//! made by another process (the CLI, another node) show within the TTL.
//!
//! During a store outage an entry that was still fresh when the outage became visible may be
//! used for a bounded grace period ([`TtlCache::during_outage`]); sweeping keeps entries that
//! long.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

type Entry<V> = (Instant, Option<Arc<V>>);

/// Entries kept at most; past it the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 50_000;

pub(super) struct TtlCache<V> {
    ttl: Duration,
    /// How long past the TTL a sweep keeps an entry (the outage grace).
    keep: Duration,
    map: RwLock<HashMap<String, Entry<V>>>,
}

impl<V> TtlCache<V> {
    pub(super) fn new(ttl: Duration, keep: Duration) -> Self {
        Self { ttl, keep, map: RwLock::new(HashMap::new()) }
    }

    /// `Some(hit)` while fresh (`hit` may be a cached "does not exist").
    pub(super) fn get(&self, key: &str) -> Option<Option<Arc<V>>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let (at, v) = map.get(key)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    /// While the store is unavailable (`down_since`: when this process saw it fail) and for
    /// less than `grace` since: the entry if it had been read less than the TTL before
    /// `down_since`, i.e. it was still fresh when the outage became visible. An entry read
    /// later (after a partial recovery) qualifies too.
    pub(super) fn during_outage(&self, key: &str, down_since: Option<Instant>, grace: Duration) -> Option<Option<Arc<V>>> {
        let since = down_since.filter(|s| s.elapsed() < grace)?;
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let (at, v) = map.get(key)?;
        since.checked_duration_since(*at).is_none_or(|age| age < self.ttl).then(|| v.clone())
    }

    pub(super) fn put(&self, key: &str, v: Option<Arc<V>>) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key.to_owned(), (Instant::now(), v));
    }

    pub(super) fn invalidate(&self, key: &str) {
        self.map.write().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    pub(super) fn sweep(&self) {
        let keep = self.ttl.saturating_add(self.keep);
        self.map.write().unwrap_or_else(|p| p.into_inner()).retain(|_, (at, _)| at.elapsed() < keep);
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
