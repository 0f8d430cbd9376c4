//! The provider's signing-key lifecycle: create on first start, rotate, reload.
//!
//! Rotation writes a new key that is published at once but signs only after
//! `keys.rotation_delay`, so relying parties that cache the JWKS learn it before they meet a
//! token signed with it. The replaced key stays published until every token it signed has
//! expired (`max_access_token_lifetime` + clock skew after the new key takes over), then the
//! purge deletes it.

use super::Config;
use crate::jose::{self, Alg, JoseError, KeyRing};
use crate::model::{Kid, SigningKeyRecord, unix_now};
use crate::secrets::MasterKey;
use crate::store::{Store, StoreError};
use serde::Serialize;

/// Errors of key management.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key could not be generated or opened (a wrong master key shows here).
    #[error(transparent)]
    Jose(#[from] JoseError),
}

fn retire_after(cfg: &Config) -> i64 {
    (cfg.max_access_token_lifetime + cfg.clock_skew).as_secs() as i64
}

/// Makes sure a key exists for the access-token algorithm, then loads the ring.
pub async fn ensure(store: &Store, master: &MasterKey, cfg: &Config, ring: &KeyRing) -> Result<(), KeyError> {
    let now = unix_now();
    let mut records = store.catalog.signing_keys().await?;
    let alg = cfg.keys.access_token_alg;
    // A key that only activates later does not count: tokens must be signable now.
    if jose::signing_record(&records, alg, now).is_none() {
        // Nothing signs for this algorithm: add a key that signs now, retiring nothing (a key
        // scheduled for later, if any, still takes over when it activates).
        let rec = jose::generate_key_record(alg, master, now, now)?;
        store.catalog.rotate_signing_key(&rec, None).await?;
        records = store.catalog.signing_keys().await?;
    }
    ring.reload(&records, master, now)?;
    Ok(())
}

/// Creates the next key for `alg`; returns it. Nodes pick it up on their next refresh.
pub async fn rotate(store: &Store, master: &MasterKey, cfg: &Config, alg: Alg) -> Result<SigningKeyRecord, KeyError> {
    let now = unix_now();
    // Strictly after every existing key of the algorithm, so the newest key always wins
    // even when two rotations fall in the same second.
    let latest = store
        .catalog
        .signing_keys()
        .await?
        .iter()
        .filter(|r| r.alg == alg.as_str())
        .map(|r| r.activate_at)
        .max();
    let activate_at = (now + cfg.keys.rotation_delay.as_secs() as i64).max(latest.map_or(now, |l| l + 1));
    let rec = jose::generate_key_record(alg, master, now, activate_at)?;
    store.catalog.rotate_signing_key(&rec, Some(activate_at + retire_after(cfg))).await?;
    Ok(rec)
}

/// Re-reads the keys from the store into `ring`.
pub async fn refresh(store: &Store, master: &MasterKey, ring: &KeyRing) -> Result<(), KeyError> {
    let records = store.catalog.signing_keys().await?;
    ring.reload(&records, master, unix_now())?;
    Ok(())
}

/// One key as `warden keys list` shows it.
#[derive(Debug, Serialize)]
pub struct KeyInfo {
    /// Key id.
    pub kid: Kid,
    /// Algorithm.
    pub alg: String,
    /// `next` (published, signs from `activate_at`), `active` (signs now), `retiring`
    /// (published for verification only), `expired` (about to be purged).
    pub state: &'static str,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// When it starts signing.
    pub activate_at: i64,
    /// When it stops being published, if scheduled.
    pub publish_until: Option<i64>,
}

/// Describes stored keys at `now`, using the same rule the ring applies.
pub fn describe(records: &[SigningKeyRecord], now: i64) -> Vec<KeyInfo> {
    records
        .iter()
        .map(|r| {
            let published = jose::is_published(r, now);
            let signs = Alg::parse(&r.alg)
                .and_then(|alg| jose::signing_record(records, alg, now))
                .is_some_and(|s| s.kid == r.kid);
            let state = if !published {
                "expired"
            } else if r.activate_at > now {
                "next"
            } else if signs {
                "active"
            } else {
                "retiring"
            };
            KeyInfo {
                kid: r.kid.clone(),
                alg: r.alg.clone(),
                state,
                created_at: r.created_at,
                activate_at: r.activate_at,
                publish_until: r.publish_until,
            }
        })
        .collect()
}
