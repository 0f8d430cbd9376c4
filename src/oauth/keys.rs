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

/// Catalog setting: the longest time (seconds) a token signed by any node may stay valid —
/// `max_access_token_lifetime` + clock skew, the largest any node has run with. Rotation
/// keeps a replaced key published this long, whatever the rotating process's own config says.
const TOKEN_HORIZON: &str = "token_horizon_secs";
/// Catalog setting: the access-token algorithm nodes last started with.
const ACCESS_TOKEN_ALG: &str = "access_token_alg";
/// Catalog setting: the access-token algorithm before the last change, which signs until
/// the new algorithm's pre-published key activates (also across restarts meanwhile).
const PREVIOUS_ACCESS_TOKEN_ALG: &str = "previous_access_token_alg";

/// The longest this node's tokens stay valid: access tokens (`max_access_token_lifetime`) or
/// ID tokens (`id_token_lifetime`), whichever is longer, plus the clock skew.
fn own_horizon(cfg: &Config) -> i64 {
    (cfg.max_access_token_lifetime.max(cfg.id_token_lifetime) + cfg.clock_skew).as_secs() as i64
}

/// How long a replaced key must stay published: this process's horizon or the longest any
/// node has recorded, whichever is longer.
async fn retire_after(store: &Store, cfg: &Config) -> Result<i64, KeyError> {
    let stored = store.catalog.setting(TOKEN_HORIZON).await?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    Ok(own_horizon(cfg).max(stored))
}

/// At server start: records this node's token horizon, makes sure a key signs access tokens
/// and one signs ID tokens for each of `keys.id_token_algs`, then loads the ring.
/// - first start (no key of any algorithm signs): a key for `keys.access_token_alg` that signs
///   at once;
/// - `keys.access_token_alg` changed (another algorithm was in use): the new algorithm's key is
///   published now and signs after `keys.rotation_delay`, so relying parties see it before any
///   token carries it; until then the old key goes on signing. When the new algorithm is also
///   an ID-token algorithm, its key signs at once instead: ID tokens have no previous
///   algorithm to fall back on;
/// - an algorithm back in use whose keys all retire (it was out of use for less than the
///   token horizon): a new key, published now and signing after `keys.rotation_delay`, while
///   the retiring key signs until then (a retiring key is about to go, so it never counts as
///   the algorithm's key);
/// - every other algorithm that must sign now and has no key that does — an ID-token
///   algorithm without a key, or whose keys do not open (corrupt records): a key that signs at
///   once (no token names it yet; relying parties fetch the JWKS again on an unknown `kid`,
///   OIDC Core §10.1.1);
/// - every algorithm no setting uses any more (the previous access-token algorithm, one taken
///   out of `keys.id_token_algs`): its keys retire — they stay published for verification,
///   and the old access-token key goes on signing until the new one takes over, for the token
///   horizon after the configured access-token key takes over; then the purge deletes them.
///
/// Returns the algorithm whose key signs access tokens while the configured one's key is not
/// active yet (the `previous` of [`jose::RingState::signer_or`]).
pub async fn ensure(store: &Store, master: &MasterKey, cfg: &Config, ring: &KeyRing) -> Result<Option<Alg>, KeyError> {
    store.catalog.raise_setting(TOKEN_HORIZON, own_horizon(cfg)).await?;
    let now = unix_now();
    let alg = cfg.keys.access_token_alg;
    let delay = cfg.keys.rotation_delay.as_secs() as i64;
    let records = store.catalog.signing_keys().await?;
    let previous = store.catalog.setting(ACCESS_TOKEN_ALG).await?.and_then(|a| Alg::parse(&a));
    let others: Vec<Alg> = Alg::ALL.into_iter().filter(|a| *a != alg && jose::signing_record(&records, *a, now).is_some()).collect();
    // A store from before the setting: the one other algorithm that signs was in use.
    let previous = previous.or_else(|| (others.len() == 1).then(|| others[0]));
    let used = cfg.keys.signing_algs();
    for &a in &used {
        if records.iter().any(|r| r.alg == a.as_str() && r.publish_until.is_none()) {
            continue;
        }
        // A retiring key of `a` (the algorithm was out of use for a while) signs until the
        // new one takes over.
        let retiring = jose::signing_record(&records, a, now).and_then(|r| r.publish_until).is_some_and(|u| u > now + delay);
        let changed_from = previous.filter(|p| a == alg && !retiring && *p != alg && others.contains(p));
        let pre_publish = retiring || (changed_from.is_some() && !cfg.keys.id_token_algs.contains(&a));
        let activate_at = if pre_publish { now + delay } else { now };
        let rec = jose::generate_key_record(a, master, now, activate_at)?;
        store.catalog.rotate_signing_key(&rec, None).await?;
        if let Some(old) = changed_from {
            store.catalog.put_setting(PREVIOUS_ACCESS_TOKEN_ALG, old.as_str()).await?;
            tracing::info!(from = old.as_str(), to = alg.as_str(), signs_from = activate_at, "access-token algorithm changed: new key published, signing after keys.rotation_delay");
        } else if retiring {
            tracing::info!(alg = a.as_str(), signs_from = activate_at, "algorithm back in use: new key published, its retiring key signs until then");
        }
    }
    store.catalog.put_setting(ACCESS_TOKEN_ALG, alg.as_str()).await?;
    let fallback = store.catalog.setting(PREVIOUS_ACCESS_TOKEN_ALG).await?.and_then(|a| Alg::parse(&a)).filter(|a| *a != alg);
    let records = store.catalog.signing_keys().await?;
    let state = ring.reload(&records, master, now);
    // ID tokens sign with their own algorithm only; access tokens may use the fallback.
    let mut missing: Vec<Alg> = cfg.keys.id_token_algs.iter().copied().filter(|a| state.signer(*a).is_none()).collect();
    if state.signer_or(alg, fallback).is_none() && !missing.contains(&alg) {
        missing.push(alg);
    }
    for a in &missing {
        let rec = jose::generate_key_record(*a, master, now, now)?;
        store.catalog.rotate_signing_key(&rec, None).await?;
    }
    // When the configured access-token key signs: now, or when its pre-published key activates.
    let takes_over = records.iter().filter(|r| r.alg == alg.as_str() && r.publish_until.is_none()).map(|r| r.activate_at.max(now)).min().unwrap_or(now);
    let mut retired = false;
    for old in Alg::ALL.into_iter().filter(|a| !used.contains(a)) {
        if records.iter().any(|r| r.alg == old.as_str() && r.publish_until.is_none()) {
            let until = takes_over + retire_after(store, cfg).await?;
            store.catalog.retire_signing_keys(old.as_str(), until).await?;
            tracing::info!(alg = old.as_str(), publish_until = until, "no setting signs with this algorithm any more: its keys retire after the token horizon");
            retired = true;
        }
    }
    if !missing.is_empty() || retired {
        ring.reload(&store.catalog.signing_keys().await?, master, now);
    }
    Ok(fallback)
}

/// Creates the next key for `alg`; returns it. Nodes pick it up on their next refresh. The
/// replaced key stays published for the token horizon recorded in the store (not only this
/// process's configuration) after the new key takes over.
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
    let horizon = retire_after(store, cfg).await?;
    let rec = jose::generate_key_record(alg, master, now, activate_at)?;
    store.catalog.rotate_signing_key(&rec, Some(activate_at + horizon)).await?;
    Ok(rec)
}

/// Re-reads the keys from the store into `ring`.
pub async fn refresh(store: &Store, master: &MasterKey, ring: &KeyRing) -> Result<(), KeyError> {
    let records = store.catalog.signing_keys().await?;
    ring.reload(&records, master, unix_now());
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
