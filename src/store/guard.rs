//! Outage handling shared by both backends: every store call gets a deadline, and the store's
//! [`Health`] records when it stopped answering.
//!
//! A database that is down, black-holed (packets dropped, no reset) or locked must never make
//! a request wait longer than `database.timeout`: the backends bound what they can (pool
//! acquisition, connecting, SQLite's busy wait, PostgreSQL's `statement_timeout`), and
//! [`Guarded`] puts one deadline over the whole call, which also covers a query in flight on a
//! connection whose peer went silent. A late call ends as [`StoreError::Unavailable`].

use super::{ArtifactKind, Artifacts, Catalog, StoreError};
use crate::model::{
    Claims, Client, ClientId, InitialAccessToken, PasswordHash, Resource, SecretHash,
    SigningKeyRecord, User, UserId,
};
use async_trait::async_trait;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A cheap round trip that proves the store can serve requests, writes included.
#[async_trait]
pub(super) trait Probe: Send + Sync {
    async fn probe(&self) -> Result<(), StoreError>;
}

#[derive(Default)]
struct State {
    /// When this process first saw the store fail since it last saw it healthy.
    down_since: Option<Instant>,
}

/// Whether the store answers, as this process last saw it.
///
/// It turns *unavailable* the moment any store call or probe fails with
/// [`StoreError::Unavailable`] (a timeout, a refused or cut connection, a locked file), and
/// *available* again only when a probe succeeds: one successful read does not prove that
/// writes work (a locked SQLite file still serves reads). Reading it costs a mutex, never a
/// query; the probing loop runs in the background (`app.rs`).
pub struct Health {
    state: Mutex<State>,
    wake: tokio::sync::Notify,
    prober: Arc<dyn Probe>,
    timeout: Duration,
}

impl Health {
    pub(super) fn new(prober: Arc<dyn Probe>, timeout: Duration) -> Self {
        Self { state: Mutex::new(State::default()), wake: tokio::sync::Notify::new(), prober, timeout }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Some(when)` while the store is unavailable: the moment this process first saw it fail.
    pub fn down_since(&self) -> Option<Instant> {
        self.state().down_since
    }

    /// Whether the store answered the last probe and nothing has failed since.
    pub fn is_available(&self) -> bool {
        self.down_since().is_none()
    }

    /// Records a failed call and wakes the probing loop.
    pub(super) fn failed(&self) {
        let mut s = self.state();
        if s.down_since.is_none() {
            s.down_since = Some(Instant::now());
            drop(s);
            tracing::warn!("the store is unavailable; requests that need it get 503 until it answers again");
        }
        self.wake.notify_one();
    }

    /// Runs one probe (bounded by the store timeout) and records the outcome; returns whether
    /// the store is available.
    pub async fn probe(&self) -> bool {
        let outcome = match tokio::time::timeout(self.timeout, self.prober.probe()).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable("the store did not answer the probe in time".into())),
        };
        match outcome {
            Ok(()) => {
                let was_down = self.state().down_since.take();
                if let Some(since) = was_down {
                    tracing::warn!(after = ?since.elapsed(), "the store is available again");
                }
                true
            }
            Err(e) => {
                tracing::debug!(error = ?e, "store probe failed");
                self.failed();
                false
            }
        }
    }

    /// Resolves when a store call fails (so the probing loop can look at once).
    pub async fn failure_noticed(&self) {
        self.wake.notified().await
    }
}

/// A backend behind one deadline per call; failures feed [`Health`].
pub(super) struct Guarded<S> {
    pub(super) inner: Arc<S>,
    health: Arc<Health>,
    timeout: Duration,
}

impl<S> Guarded<S> {
    pub(super) fn new(inner: Arc<S>, health: Arc<Health>, timeout: Duration) -> Self {
        Self { inner, health, timeout }
    }

    pub(super) async fn run<T>(&self, op: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let result = match tokio::time::timeout(self.timeout, op).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable("the store did not answer in time".into())),
        };
        if let Err(StoreError::Unavailable(e)) = &result {
            tracing::debug!(error = ?e, "store call failed");
            self.health.failed();
        }
        result
    }
}

#[async_trait]
impl<S: Catalog + 'static> Catalog for Guarded<S> {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        self.run(self.inner.insert_client(client)).await
    }
    async fn update_client(&self, client: &Client) -> Result<(), StoreError> {
        self.run(self.inner.update_client(client)).await
    }
    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        self.run(self.inner.client(id)).await
    }
    async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        self.run(self.inner.clients()).await
    }
    async fn delete_client(&self, id: &ClientId) -> Result<(), StoreError> {
        self.run(self.inner.delete_client(id)).await
    }
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.run(self.inner.signing_keys()).await
    }
    async fn rotate_signing_key(&self, new: &SigningKeyRecord, retire_until: Option<i64>) -> Result<(), StoreError> {
        self.run(self.inner.rotate_signing_key(new, retire_until)).await
    }
    async fn delete_expired_keys(&self, now: i64) -> Result<u64, StoreError> {
        self.run(self.inner.delete_expired_keys(now)).await
    }
    async fn insert_initial_access_token(&self, t: &InitialAccessToken) -> Result<(), StoreError> {
        self.run(self.inner.insert_initial_access_token(t)).await
    }
    async fn initial_access_token_by_hash(&self, hash: &SecretHash) -> Result<Option<InitialAccessToken>, StoreError> {
        self.run(self.inner.initial_access_token_by_hash(hash)).await
    }
    async fn initial_access_tokens(&self) -> Result<Vec<InitialAccessToken>, StoreError> {
        self.run(self.inner.initial_access_tokens()).await
    }
    async fn revoke_initial_access_token(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.run(self.inner.revoke_initial_access_token(id, now)).await
    }
    async fn insert_resource(&self, r: &Resource) -> Result<(), StoreError> {
        self.run(self.inner.insert_resource(r)).await
    }
    async fn resource(&self, audience: &str) -> Result<Option<Resource>, StoreError> {
        self.run(self.inner.resource(audience)).await
    }
    async fn resources(&self) -> Result<Vec<Resource>, StoreError> {
        self.run(self.inner.resources()).await
    }
    async fn delete_resource(&self, audience: &str) -> Result<(), StoreError> {
        self.run(self.inner.delete_resource(audience)).await
    }
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        self.run(self.inner.insert_user(user)).await
    }
    async fn user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.run(self.inner.user(id)).await
    }
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.run(self.inner.user_by_username(username)).await
    }
    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.run(self.inner.users()).await
    }
    async fn update_user_claims(&self, id: &UserId, claims: &Claims, now: i64) -> Result<(), StoreError> {
        self.run(self.inner.update_user_claims(id, claims, now)).await
    }
    async fn set_user_disabled(&self, id: &UserId, disabled: bool, now: i64) -> Result<(), StoreError> {
        self.run(self.inner.set_user_disabled(id, disabled, now)).await
    }
    async fn set_user_password(&self, id: &UserId, hash: &PasswordHash, now: i64) -> Result<(), StoreError> {
        self.run(self.inner.set_user_password(id, hash, now)).await
    }
    async fn delete_user(&self, id: &UserId) -> Result<(), StoreError> {
        self.run(self.inner.delete_user(id)).await
    }
    async fn retire_signing_keys(&self, alg: &str, until: i64) -> Result<u64, StoreError> {
        self.run(self.inner.retire_signing_keys(alg, until)).await
    }
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.run(self.inner.setting(name)).await
    }
    async fn init_setting(&self, name: &str, value: &str) -> Result<bool, StoreError> {
        self.run(self.inner.init_setting(name, value)).await
    }
    async fn put_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.run(self.inner.put_setting(name, value)).await
    }
    async fn raise_setting(&self, name: &str, value: i64) -> Result<(), StoreError> {
        self.run(self.inner.raise_setting(name, value)).await
    }
    async fn holds_records(&self) -> Result<bool, StoreError> {
        self.run(self.inner.holds_records()).await
    }
}

#[async_trait]
impl<S: Artifacts + 'static> Artifacts for Guarded<S> {
    async fn put(
        &self,
        kind: ArtifactKind,
        id: &str,
        payload: &[u8],
        expires_at: i64,
        grant_id: Option<&str>,
    ) -> Result<(), StoreError> {
        self.run(self.inner.put(kind, id, payload, expires_at, grant_id)).await
    }
    async fn put_new(
        &self,
        kind: ArtifactKind,
        id: &str,
        payload: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.run(self.inner.put_new(kind, id, payload, expires_at, now)).await
    }
    async fn get(&self, kind: ArtifactKind, id: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(self.inner.get(kind, id, now)).await
    }
    async fn consume(&self, kind: ArtifactKind, id: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(self.inner.consume(kind, id, now)).await
    }
    async fn delete(&self, kind: ArtifactKind, id: &str) -> Result<(), StoreError> {
        self.run(self.inner.delete(kind, id)).await
    }
    async fn revoke_by_grant(&self, grant_id: &str) -> Result<u64, StoreError> {
        self.run(self.inner.revoke_by_grant(grant_id)).await
    }
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        self.run(self.inner.purge_expired(now)).await
    }
    async fn revoked_since(&self, since: i64, now: i64) -> Result<Vec<super::RevokedJti>, StoreError> {
        self.run(self.inner.revoked_since(since, now)).await
    }
}
