//! The revoked `jti`s of Warden's access tokens, in memory: checked on every request without
//! a query, fed from the store by polling [`Artifacts::revoked_since`].
//!
//! A revocation written by any process on the same store (the provider's `/revoke`) shows
//! here within one poll interval (500 ms by default) plus the query's time. The cursor is the
//! largest `changed_at` seen minus [`MARGIN`], so a write that committed a little after a
//! later one (or on a node whose clock is a little behind) is still read; entries read twice
//! are simply kept. Entries leave the set when the token they name has expired.
//!
//! Until the first poll succeeds the set is not **loaded** and Warden's tokens are refused
//! with 503: a token revoked before this process started must not pass.
//!
//! [`Artifacts::revoked_since`]: crate::store::Artifacts::revoked_since

use crate::model::unix_now;
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// How far behind the newest write seen the next poll starts, milliseconds.
pub const MARGIN: i64 = 2_000;

/// The set.
#[derive(Debug, Default)]
pub struct Revocations {
    /// `jti` → until when the entry is kept (unix seconds).
    set: RwLock<HashMap<Box<str>, i64>>,
    cursor: AtomicI64,
    loaded: AtomicBool,
}

impl Revocations {
    /// Whether `jti` is revoked.
    pub fn is_revoked(&self, jti: &str) -> bool {
        self.set.read().unwrap_or_else(|p| p.into_inner()).contains_key(jti)
    }

    /// Whether a poll has succeeded.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// One poll: reads what changed since the cursor, adds it, drops expired entries.
    pub async fn poll(&self, store: &Store) -> Result<usize, StoreError> {
        let now = unix_now();
        let since = self.cursor.load(Ordering::Acquire);
        let rows = store.artifacts.revoked_since(since, now).await?;
        let newest = rows.iter().map(|r| r.changed_at).max();
        {
            let mut set = self.set.write().unwrap_or_else(|p| p.into_inner());
            set.retain(|_, until| *until > now);
            for r in &rows {
                set.insert(r.jti.as_str().into(), r.expires_at);
            }
        }
        if let Some(newest) = newest {
            self.cursor.fetch_max(newest - MARGIN, Ordering::AcqRel);
        }
        self.loaded.store(true, Ordering::Release);
        Ok(rows.len())
    }

    /// Polls every `interval` until `shutdown`.
    pub async fn follow(&self, store: &Store, interval: std::time::Duration, shutdown: tokio_util::sync::CancellationToken) {
        let mut failing = false;
        loop {
            match self.poll(store).await {
                Ok(_) => {
                    if failing {
                        tracing::info!("revocation list: the store answers again");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "revocation list: could not read new revocations; retrying");
                    }
                    failing = true;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}
