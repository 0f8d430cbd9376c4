//! Where rate-limit state lives: [`RateLimitStore`], and [`MemoryStore`], the in-memory one.
//!
//! The state is one TAT per bucket (`gcra.rs`). The in-memory store keeps it in shards, each
//! an LRU map behind its own mutex, so two requests contend only when their keys share a
//! shard, and memory is bounded: a full shard first drops entries whose TAT has passed (they
//! hold nothing a fresh entry would not), then its least recently used ones.

use super::gcra::{self, Gcra, Outcome};
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a bucket is keyed by, besides its limit: the caller's identifier, a client address
/// group, or nothing (one bucket for the whole limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyValue<'a> {
    /// A consumer, client id or `sub`.
    Id(&'a str),
    /// A client address group (IPv4 address, IPv6 /64).
    Ip(IpAddr),
    /// Every caller without the limit's key, together.
    Anonymous,
    /// Every caller of the route, together.
    Route,
}

/// One bucket: the limit it belongs to (`route-id/limit-name`, unique in the gateway) and
/// the value it is keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BucketKey<'a> {
    /// `route-id/limit-name`.
    pub limit: &'a str,
    /// The caller's key value.
    pub value: KeyValue<'a>,
}

/// The store cannot answer (a Redis store that is down); the policy then refuses (503),
/// never lets the request through unlimited.
#[derive(Debug, thiserror::Error)]
#[error("rate-limit store unavailable: {0}")]
pub struct StoreUnavailable(pub String);

/// Rate-limit state behind one operation.
///
/// Contract: [`check`](RateLimitStore::check) applies `gcra::check` to the bucket **atomically**
/// — read the TAT, decide, and store the new TAT with no other check of the same bucket in
/// between (a mutex here; one Lua script in Redis) — against the store's own clock (one
/// clock for every node sharing the store). A refused request changes nothing. A store may
/// forget any bucket whose TAT has passed, and under memory pressure any bucket at all
/// (which only ever lets its caller start over from a full burst).
#[async_trait::async_trait]
pub trait RateLimitStore: Send + Sync + std::fmt::Debug {
    /// Counts one request against `key` under `limit`, if it may pass.
    async fn check(&self, key: &BucketKey<'_>, limit: &Gcra) -> Result<Outcome, StoreUnavailable>;
}

/// Shards of at most this many; fewer for small capacities (each keeps at least 256 entries).
const MAX_SHARDS: usize = 64;
/// A full shard looks for passed TATs at most this often (else it drops its least recently
/// used entry at once), so a flood of new keys never makes each insert scan the shard.
const SWEEP_GAP: u64 = 50_000_000;

/// Hashes that are already uniformly distributed (our keyed SipHash) are used as they are.
#[derive(Default, Clone, Copy)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map = lru::LruCache<u64, u64, std::hash::BuildHasherDefault<Prehashed>>;

#[derive(Debug)]
struct Shard {
    /// Bucket hash → TAT (nanoseconds since the store's epoch).
    tats: Map,
    cap: usize,
    next_sweep: u64,
}

impl Shard {
    /// Stores `tat` for a new bucket, making room first.
    fn insert(&mut self, key: u64, tat: u64, now: u64) {
        if self.tats.len() >= self.cap {
            if now >= self.next_sweep {
                self.tats.retain(|_, t| *t > now);
                self.next_sweep = now.saturating_add(SWEEP_GAP);
            }
            while self.tats.len() >= self.cap {
                self.tats.pop_lru();
            }
        }
        self.tats.put(key, tat);
    }
}

/// The in-memory store: per process, sharded, at most `max_keys` buckets.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    /// Keyed with a per-process secret: nobody can craft keys that collide or pile into one
    /// shard.
    hasher: std::hash::RandomState,
    epoch: Instant,
}

impl MemoryStore {
    /// A store holding at most `max_keys` buckets (at least 1).
    pub fn new(max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        let mut shards = 1;
        while shards * 2 <= MAX_SHARDS && max_keys / (shards * 2) >= 256 {
            shards *= 2;
        }
        let cap = max_keys / shards;
        let shards = (0..shards)
            .map(|_| Mutex::new(Shard { tats: Map::unbounded_with_hasher(Default::default()), cap, next_sweep: 0 }))
            .collect();
        Self { shards, hasher: std::hash::RandomState::new(), epoch: Instant::now() }
    }

    /// Buckets held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).tats.len()).sum()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most buckets it holds.
    pub fn capacity(&self) -> usize {
        self.shards.len() * self.shards[0].lock().unwrap_or_else(|e| e.into_inner()).cap
    }

    fn now(&self) -> u64 {
        // Starts at 1 s so that a TAT of 0 ("none") is always in the past.
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX).saturating_add(1_000_000_000)
    }

    /// `check` at an explicit time (nanoseconds on the store's clock).
    fn check_at(&self, key: &BucketKey<'_>, limit: &Gcra, now: u64) -> Outcome {
        let hash = self.hasher.hash_one(key);
        // The top bits pick the shard; the map hashes all of them.
        let index = (hash >> 58) as usize % self.shards.len();
        let mut shard = self.shards[index].lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tat) = shard.tats.get_mut(&hash) {
            let (outcome, next) = gcra::check(*tat, now, limit);
            if let Some(next) = next {
                *tat = next;
            }
            return outcome;
        }
        let (outcome, next) = gcra::check(0, now, limit);
        if let Some(next) = next {
            shard.insert(hash, next, now);
        }
        outcome
    }
}

#[async_trait::async_trait]
impl RateLimitStore for MemoryStore {
    async fn check(&self, key: &BucketKey<'_>, limit: &Gcra) -> Result<Outcome, StoreUnavailable> {
        Ok(self.check_at(key, limit, self.now()))
    }
}

/// The unit an address is limited in: IPv4 (and IPv4-mapped IPv6) per address, IPv6 per /64
/// (one subscriber's usual allocation), as the provider's throttle counts them.
pub fn address_group(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        v4 => v4,
    }
}

/// `Duration` in whole seconds, rounded up (what `Retry-After` and `t=` carry).
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn key(id: &str) -> BucketKey<'_> {
        BucketKey { limit: "r/l", value: KeyValue::Id(id) }
    }

    #[test]
    fn shards_and_capacity_follow_max_keys() {
        assert_eq!((MemoryStore::new(100).shards.len(), MemoryStore::new(100).capacity()), (1, 100));
        assert_eq!(MemoryStore::new(0).capacity(), 1);
        let big = MemoryStore::new(100_000);
        assert_eq!(big.shards.len(), 64);
        assert!(big.capacity() <= 100_000 && big.capacity() > 99_900);
    }

    #[test]
    fn many_distinct_keys_keep_the_store_at_its_cap() {
        let store = MemoryStore::new(10_000);
        let cap = store.capacity();
        // Long-lived entries (one request per hour), all still counting.
        let limit = Gcra::new(1, Duration::from_secs(3600), 1);
        for i in 0..100_000u32 {
            let id = i.to_string();
            assert!(store.check_at(&key(&id), &limit, 10 * S).allowed);
        }
        assert_eq!(store.len(), cap, "at the cap, never above");
        // The most recent keys are still limited; the oldest were evicted and start over.
        assert!(!store.check_at(&key("99999"), &limit, 10 * S).allowed);
        assert!(store.check_at(&key("0"), &limit, 10 * S).allowed);
        assert!(store.len() <= cap);
    }

    #[test]
    fn a_full_shard_drops_passed_tats_before_the_least_recently_used() {
        let store = MemoryStore::new(4);
        let short = Gcra::new(1, Duration::from_secs(1), 1);
        let long = Gcra::new(1, Duration::from_secs(3600), 1);
        for id in ["b", "c", "d"] {
            store.check_at(&key(id), &long, 10 * S);
        }
        // "a" is the most recently used, but its TAT passes at 11 s.
        store.check_at(&key("a"), &short, 10 * S);
        assert_eq!(store.len(), 4);
        store.check_at(&key("e"), &long, 12 * S);
        assert_eq!(store.len(), 4);
        for id in ["b", "c", "d", "e"] {
            assert!(!store.check_at(&key(id), &long, 12 * S).allowed, "{id} kept its state");
        }
        // Nothing has passed now: the least recently used ("b", checked first above) goes.
        store.check_at(&key("f"), &long, 12 * S + 1);
        assert_eq!(store.len(), 4);
        assert!(store.check_at(&key("b"), &long, 12 * S + 2).allowed, "b was evicted and starts over");
    }

    #[test]
    fn buckets_of_different_limits_values_and_kinds_are_separate() {
        let store = MemoryStore::new(1000);
        let one = Gcra::new(1, Duration::from_secs(60), 1);
        let keys = [
            BucketKey { limit: "r/a", value: KeyValue::Id("x") },
            BucketKey { limit: "r/b", value: KeyValue::Id("x") },
            BucketKey { limit: "r/a", value: KeyValue::Id("y") },
            BucketKey { limit: "r/a", value: KeyValue::Anonymous },
            BucketKey { limit: "r/a", value: KeyValue::Route },
            BucketKey { limit: "r/a", value: KeyValue::Ip("192.0.2.1".parse().unwrap()) },
        ];
        for k in &keys {
            assert!(store.check_at(k, &one, 5 * S).allowed, "{k:?}");
        }
        for k in &keys {
            assert!(!store.check_at(k, &one, 5 * S).allowed, "{k:?}");
        }
    }

    #[test]
    fn concurrent_checks_on_one_key_count_exactly() {
        let store = std::sync::Arc::new(MemoryStore::new(1000));
        // 1000 at once allowed, none refilling during the test.
        let limit = Gcra::new(1000, Duration::from_secs(3600), 1000);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || (0..500).filter(|_| store.check_at(&key("k"), &limit, 20 * S).allowed).count())
            })
            .collect();
        let allowed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(allowed, 1000);
    }

    #[test]
    fn addresses_are_grouped_as_an_attacker_holds_them() {
        let g = |s: &str| address_group(s.parse().unwrap());
        assert_eq!(g("2001:db8:1:2::1"), g("2001:db8:1:2:ffff::9"));
        assert_ne!(g("2001:db8:1:2::1"), g("2001:db8:1:3::1"));
        assert_eq!(g("::ffff:192.0.2.1"), g("192.0.2.1"));
        assert_ne!(g("192.0.2.1"), g("192.0.2.2"));
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::from_millis(2001)), 3);
    }
}
