//! The memory of single-use proofs seen (DPoP proofs, app attestations): each key is kept
//! until the last second a replay of it would still pass its other checks.
//!
//! It is bounded (`[gateway] replay_memory` keys per node, each kind its own) and it never
//! forgets a key inside its window: a least-recently-used cache that evicted live keys under
//! load would let whoever can send enough fresh proofs of their own make a captured one
//! usable again. When every key it holds is still live it refuses new proofs instead (429
//! with `Retry-After`): under such a flood the node fails closed, never open.

use super::context::Denial;
use hyper::header::{self, HeaderValue};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Mutex;

/// Keys seen → the last second a replay would still be accepted.
pub struct ReplayMemory {
    inner: Mutex<Inner>,
}

struct Inner {
    seen: LruCache<String, i64>,
    /// When expired keys were last swept out of a full memory (at most once a second).
    swept_at: i64,
}

impl std::fmt::Debug for ReplayMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("ReplayMemory").field("held", &inner.seen.len()).field("capacity", &inner.seen.cap()).finish()
    }
}

/// What [`ReplayMemory::first_use`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstUse {
    /// Not seen inside its window: remembered now.
    Yes,
    /// Seen before, and still inside its window.
    Replayed,
    /// The memory holds only live keys: refused, retry after this many seconds.
    Full(u64),
}

impl ReplayMemory {
    /// An empty memory for `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        let seen = LruCache::new(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN));
        Self { inner: Mutex::new(Inner { seen, swept_at: i64::MIN }) }
    }

    /// Records `key` as used until `until`, unless it was used before inside its window or
    /// there is no room without forgetting a live key.
    pub fn first_use(&self, key: String, until: i64, now: i64) -> FirstUse {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Inner { seen, swept_at } = &mut *inner;
        if let Some(u) = seen.get(&key) {
            if *u >= now {
                return FirstUse::Replayed;
            }
        } else if let Some((_, &oldest)) = seen.peek_lru().filter(|(_, u)| **u >= now && seen.len() == seen.cap().get()) {
            // Full, and the least recent key is live. Recency is not expiry: expired keys may
            // sit behind it, so sweep them out (at most once a second, so that a flood cannot
            // make every request scan).
            if *swept_at < now {
                *swept_at = now;
                let expired: Vec<String> = seen.iter().filter(|(_, u)| **u < now).map(|(k, _)| k.clone()).collect();
                for k in &expired {
                    seen.pop(k);
                }
            }
            // Still full: refuse rather than evict the live least recent key.
            if seen.len() == seen.cap().get() {
                return FirstUse::Full((oldest - now + 1) as u64);
            }
        }
        seen.put(key, until);
        FirstUse::Yes
    }
}

/// The 429 for [`FirstUse::Full`].
pub fn full(retry_after: u64) -> Denial {
    let d = Denial::new(429, "urn:warden:problem:replay-memory-full", "Too Many Requests", "this node cannot take more single-use proofs right now; retry later")
        .with_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    d.with_header(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays `steps` (key, until, now, what `first_use` must say) against a memory of
    /// `capacity` keys; returns it.
    fn play(capacity: usize, steps: &[(&str, i64, i64, FirstUse)]) -> ReplayMemory {
        let m = ReplayMemory::new(capacity);
        for (i, (key, until, now, want)) in steps.iter().enumerate() {
            assert_eq!(&m.first_use((*key).into(), *until, *now), want, "step {i}: {key} at {now}");
        }
        m
    }

    #[test]
    fn a_key_is_single_use_inside_its_window_and_free_after_it() {
        play(10, &[
            ("a", 100, 50, FirstUse::Yes),
            // The last second counts.
            ("a", 100, 100, FirstUse::Replayed),
            // Past its window it may be used (other checks refuse it).
            ("a", 200, 101, FirstUse::Yes),
        ]);
    }

    #[test]
    fn a_full_memory_refuses_new_keys_rather_than_forget_a_live_one() {
        play(2, &[
            ("a", 100, 10, FirstUse::Yes),
            ("b", 120, 10, FirstUse::Yes),
            // Until the least recent key's window ends.
            ("c", 130, 11, FirstUse::Full(90)),
            // Nothing was forgotten.
            ("a", 100, 12, FirstUse::Replayed),
            ("b", 120, 12, FirstUse::Replayed),
            // Once a key's window is over, its room is free again.
            ("c", 130, 101, FirstUse::Yes),
            ("b", 120, 101, FirstUse::Replayed),
        ]);
    }

    #[test]
    fn expired_keys_behind_a_live_least_recent_one_are_swept() {
        play(3, &[
            ("long", 1000, 10, FirstUse::Yes),
            ("short1", 20, 10, FirstUse::Yes),
            ("short2", 20, 10, FirstUse::Yes),
            // "long" is the least recently used and live; the two short ones have expired.
            ("new", 1000, 30, FirstUse::Yes),
            ("long", 1000, 30, FirstUse::Replayed),
            ("new2", 1000, 30, FirstUse::Yes),
            ("new3", 1000, 30, FirstUse::Full(971)),
        ]);
    }

    #[test]
    fn a_key_in_its_last_second_is_not_swept() {
        let m = play(2, &[
            ("a", 20, 10, FirstUse::Yes),
            ("b", 100, 10, FirstUse::Yes),
            // "a" still counts at 20.
            ("c", 100, 20, FirstUse::Full(1)),
            ("a", 20, 20, FirstUse::Replayed),
        ]);
        let shown = format!("{m:?}");
        assert!(shown.contains("held: 2") && !shown.contains("\"a\""), "counts, not keys: {shown}");
    }

    #[test]
    fn the_refusal_is_a_429_with_retry_after() {
        let d = full(0);
        assert_eq!(d.problem.status, 429);
        assert!(d.headers.iter().any(|(n, v)| n == header::RETRY_AFTER && v == "1"));
    }
}
