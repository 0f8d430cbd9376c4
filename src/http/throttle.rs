//! Fixed-window counters per (client id, source address) and per source address: failed
//! client authentications, logins and registration requests at the provider, failed Basic
//! authentications at the gateway (the "client id" is then the consumer name).
//!
//! The counters never stand between a valid credential and its token: client authentication
//! verifies first and counts only failures, so a stranger who floods bogus attempts from the
//! same address (or, behind a proxy, the same forwarded address) as a real client can slow
//! down only their own guessing. The client id is never a key on its own: client ids are
//! public (every token carries one), and a per-id lockout would let anyone lock a client out.
//!
//! Addresses are grouped as an attacker holds them: IPv4 per address, IPv6 per /64 (one
//! subscriber's usual allocation), IPv4-mapped IPv6 as IPv4. Memory is bounded by an LRU: a
//! flood of new addresses evicts the least recently counted entries, never everyone's at
//! once. In-memory per node; a shared counter over Redis comes with multi-node rate limits.

use lru::LruCache;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Key {
    ClientAt(String, IpAddr),
    Ip(IpAddr),
}

/// Most keys tracked at once.
const MAX_KEYS: usize = 100_000;

/// The counters (the module doc says what they count and why).
pub struct Throttle {
    window: Duration,
    per_client: u32,
    per_ip: u32,
    counts: Mutex<LruCache<Key, (Instant, u32)>>,
}

/// The unit an address is counted in: IPv6 by /64, everything else by address.
fn group(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        v4 => v4,
    }
}

impl Throttle {
    /// `per_client` failures per (client, address) and `per_ip` per address in each `window`.
    pub fn new(window: Duration, per_client: u32, per_ip: u32) -> Self {
        Self::with_capacity(window, per_client, per_ip, MAX_KEYS)
    }

    fn with_capacity(window: Duration, per_client: u32, per_ip: u32, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self { window, per_client, per_ip, counts: Mutex::new(LruCache::new(capacity)) }
    }

    fn keys(client: Option<&str>, ip: IpAddr) -> impl Iterator<Item = Key> {
        let ip = group(ip);
        client.map(|c| Key::ClientAt(c.to_owned(), ip)).into_iter().chain([Key::Ip(ip)])
    }

    fn limit(&self, key: &Key) -> u32 {
        match key {
            Key::ClientAt(..) => self.per_client,
            Key::Ip(_) => self.per_ip,
        }
    }

    /// `Some(retry_after)` when the client id at this address, or the address, has used up
    /// its allowance in the current window. Does not count. (Client authentication never
    /// asks: a valid generated secret is never refused. The login page asks first: a human
    /// password can be guessed, so a throttled attempt must not get to try it.)
    pub fn blocked(&self, client: Option<&str>, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        Self::keys(client, ip).find_map(|key| {
            let (start, n) = counts.peek(&key)?;
            let elapsed = now.duration_since(*start);
            (elapsed < self.window && *n >= self.limit(&key)).then(|| self.window - elapsed)
        })
    }

    /// Counts one event against the client id at this address and the address; then
    /// `Err(retry_after)` if either is over its allowance.
    pub fn count(&self, client: Option<&str>, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut over = None;
        for key in Self::keys(client, ip) {
            let limit = self.limit(&key);
            let entry = counts.get_or_insert_mut(key, || (now, 0));
            if now.duration_since(entry.0) >= self.window {
                *entry = (now, 0);
            }
            entry.1 = entry.1.saturating_add(1);
            if entry.1 > limit {
                let retry = self.window.saturating_sub(now.duration_since(entry.0));
                over = Some(over.map_or(retry, |o: Duration| o.max(retry)));
            }
        }
        over.map_or(Ok(()), Err)
    }

    /// How many events the client id at this address has had in the current window.
    pub fn failures(&self, client: Option<&str>, ip: IpAddr) -> u32 {
        let now = Instant::now();
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let key = Self::keys(client, ip).next();
        key.and_then(|k| counts.peek(&k).filter(|(start, _)| now.duration_since(*start) < self.window).map(|(_, n)| *n)).unwrap_or(0)
    }

    /// Drops finished windows.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let done: Vec<Key> = counts
            .iter()
            .filter(|(_, (start, _))| now.duration_since(*start) >= self.window)
            .map(|(k, _)| k.clone())
            .collect();
        for k in done {
            counts.pop(&k);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.counts.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_after_the_limit_per_client_and_address_and_per_address() {
        let t = Throttle::new(Duration::from_secs(60), 2, 3);
        let (here, elsewhere) = (ip("10.0.0.1"), ip("10.0.0.2"));
        assert!(t.count(Some("a"), here).is_ok());
        assert!(t.blocked(Some("a"), here).is_none());
        assert!(t.count(Some("a"), here).is_ok(), "the second failure is still within 2");
        assert!(t.blocked(Some("a"), here).is_some(), "client a from this address is blocked");
        assert!(t.blocked(Some("a"), elsewhere).is_none(), "client a from elsewhere is not locked out");
        assert!(t.count(Some("b"), here).is_ok(), "b's first failure is the address's third");
        assert!(t.blocked(Some("c"), here).is_some(), "the address is blocked after 3");
        assert!(t.count(Some("c"), here).is_err(), "a fourth failure is over the address's limit");
        assert!(t.blocked(Some("c"), elsewhere).is_none());
        let retry = t.blocked(None, here).unwrap();
        assert!(retry <= Duration::from_secs(60) && retry > Duration::from_secs(55));
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let t = Throttle::new(Duration::from_secs(60), 100, 2);
        t.count(None, ip("2001:db8:1:2::1")).unwrap();
        t.count(None, ip("2001:db8:1:2:ffff::9")).unwrap();
        assert!(t.blocked(None, ip("2001:db8:1:2::abcd")).is_some(), "same /64");
        assert!(t.blocked(None, ip("2001:db8:1:3::1")).is_none(), "another /64");
        t.count(None, ip("::ffff:192.0.2.1")).unwrap();
        t.count(None, ip("192.0.2.1")).unwrap();
        assert!(t.blocked(None, ip("192.0.2.1")).is_some());
    }

    #[test]
    fn windows_end() {
        let t = Throttle::new(Duration::from_millis(20), 1, 100);
        let here = ip("10.0.0.1");
        t.count(Some("a"), here).unwrap();
        assert!(t.blocked(Some("a"), here).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(t.blocked(Some("a"), here).is_none());
        assert!(t.count(Some("a"), here).is_ok(), "a new window starts from zero");
        std::thread::sleep(Duration::from_millis(30));
        t.sweep();
        assert_eq!(t.len(), 0);
    }

    /// Before: at 100k keys the whole map was cleared, so a flood of new addresses reset the
    /// count of an attacker already being throttled.
    #[test]
    fn a_flood_of_new_addresses_evicts_the_oldest_entries_not_everyone() {
        let t = Throttle::with_capacity(Duration::from_secs(60), 100, 2, 50);
        let attacker = ip("198.51.100.7");
        t.count(None, attacker).unwrap();
        t.count(None, attacker).unwrap();
        for i in 0..40u8 {
            let _ = t.count(None, IpAddr::from([203, 0, 113, i]));
        }
        assert!(t.blocked(None, attacker).is_some(), "the blocked address keeps its count");
        assert_eq!(t.len(), 41);
        for i in 0..100u8 {
            let _ = t.count(None, IpAddr::from([192, 0, 2, i]));
        }
        assert_eq!(t.len(), 50, "memory stays bounded");
        assert!(t.blocked(None, IpAddr::from([192, 0, 2, 99])).is_none());
        assert!(t.count(None, IpAddr::from([192, 0, 2, 99])).is_ok(), "its second event");
        assert!(t.count(None, IpAddr::from([192, 0, 2, 99])).is_err(), "recent entries survive eviction");
    }
}
