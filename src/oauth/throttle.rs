//! Throttling of failed client authentication, per (client id, source address) and per
//! source address.
//!
//! A fixed window per key counts failures only: a client that authenticates correctly never
//! notices it, a guesser is stopped after a few attempts. The client id is never a key on its
//! own: client ids are public (every token carries one), and a per-id lockout would let
//! anyone lock a client out. In-memory per node; a shared counter over Redis comes with
//! multi-node rate limits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    ClientAt(String, IpAddr),
    Ip(IpAddr),
}

pub(super) struct Throttle {
    window: Duration,
    per_client: u32,
    per_ip: u32,
    counts: Mutex<HashMap<Key, (Instant, u32)>>,
}

/// Most keys tracked at once. Past it, finished windows are dropped, and if that is not
/// enough the map starts over: memory stays bounded under a flood of new addresses.
const MAX_KEYS: usize = 100_000;

impl Throttle {
    pub(super) fn new(window: Duration, per_client: u32, per_ip: u32) -> Self {
        Self { window, per_client, per_ip, counts: Mutex::new(HashMap::new()) }
    }

    fn keys(client: Option<&str>, ip: IpAddr) -> impl Iterator<Item = Key> {
        client.map(|c| Key::ClientAt(c.to_owned(), ip)).into_iter().chain([Key::Ip(ip)])
    }

    fn limit(&self, key: &Key) -> u32 {
        match key {
            Key::ClientAt(..) => self.per_client,
            Key::Ip(_) => self.per_ip,
        }
    }

    /// `Err(retry_after)` when the client id or the address has used up its failures.
    pub(super) fn check(&self, client: Option<&str>, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for key in Self::keys(client, ip) {
            if let Some((start, n)) = counts.get(&key) {
                let elapsed = now.duration_since(*start);
                if elapsed < self.window && *n >= self.limit(&key) {
                    return Err(self.window - elapsed);
                }
            }
        }
        Ok(())
    }

    /// Counts one failure against the client id and the address.
    pub(super) fn failure(&self, client: Option<&str>, ip: IpAddr) {
        let now = Instant::now();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() >= MAX_KEYS {
            let window = self.window;
            counts.retain(|_, (start, _)| now.duration_since(*start) < window);
            if counts.len() >= MAX_KEYS {
                counts.clear();
            }
        }
        for key in Self::keys(client, ip) {
            let entry = counts.entry(key).or_insert((now, 0));
            if now.duration_since(entry.0) >= self.window {
                *entry = (now, 0);
            }
            entry.1 = entry.1.saturating_add(1);
        }
    }

    /// Drops finished windows.
    pub(super) fn sweep(&self) {
        let now = Instant::now();
        let window = self.window;
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (start, _)| now.duration_since(*start) < window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_per_client_and_address_and_per_address() {
        let t = Throttle::new(Duration::from_secs(60), 2, 3);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let elsewhere: IpAddr = [10, 0, 0, 2].into();
        t.failure(Some("a"), ip);
        assert!(t.check(Some("a"), ip).is_ok());
        t.failure(Some("a"), ip);
        assert!(t.check(Some("a"), ip).is_err(), "client a from this address is blocked");
        assert!(t.check(Some("a"), elsewhere).is_ok(), "client a from elsewhere is not locked out");
        t.failure(Some("b"), ip);
        assert!(t.check(Some("c"), ip).is_err(), "the address is blocked after 3");
        assert!(t.check(Some("c"), elsewhere).is_ok());
    }

    #[test]
    fn windows_end() {
        let t = Throttle::new(Duration::from_millis(20), 1, 100);
        let ip: IpAddr = [10, 0, 0, 1].into();
        t.failure(Some("a"), ip);
        assert!(t.check(Some("a"), ip).is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(t.check(Some("a"), ip).is_ok());
        t.sweep();
        assert!(t.counts.lock().unwrap().is_empty());
    }
}
