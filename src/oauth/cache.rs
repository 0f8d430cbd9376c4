//! A small read-through cache with a TTL, for records the token endpoint reads on every
//! request (clients, resources). Unknown keys are cached too, so a burst of requests costs one
//! database read per key per TTL. Changes made by this process invalidate at once; changes
//! made by another process (the CLI, another node) show within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

type Entry<V> = (Instant, Option<Arc<V>>);

/// Entries kept at most; past it the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 50_000;

pub(super) struct TtlCache<V> {
    ttl: Duration,
    map: RwLock<HashMap<String, Entry<V>>>,
}

impl<V> TtlCache<V> {
    pub(super) fn new(ttl: Duration) -> Self {
        Self { ttl, map: RwLock::new(HashMap::new()) }
    }

    /// `Some(hit)` while fresh (`hit` may be a cached "does not exist").
    pub(super) fn get(&self, key: &str) -> Option<Option<Arc<V>>> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let (at, v) = map.get(key)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
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
        let ttl = self.ttl;
        self.map.write().unwrap_or_else(|p| p.into_inner()).retain(|_, (at, _)| at.elapsed() < ttl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_misses_are_cached() {
        let c: TtlCache<u32> = TtlCache::new(Duration::from_millis(30));
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
}
