//! The key ring: which stored key signs now, which are published, built from the catalog.
//!
//! The state is a pure function of the stored records and the clock, so every node (and the
//! CLI) agrees on it without coordination:
//! - a key is **published** (in JWKS, trusted for verification) while `publish_until` is
//!   unset or in the future — including keys whose `activate_at` has not come yet, so clients
//!   can fetch a new key before anything is signed with it;
//! - for each algorithm, the published key with the latest `activate_at <= now` **signs**.

use super::keys::{Alg, SigningKey};
use super::verify::{KeyLookup, VerificationKey};
use super::JoseError;
use crate::model::SigningKeyRecord;
use crate::secrets::MasterKey;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// One consistent view of the keys.
#[derive(Default)]
pub struct RingState {
    signers: HashMap<Alg, Arc<SigningKey>>,
    verifiers: HashMap<String, Arc<VerificationKey>>,
    jwks: Arc<str>,
    /// The earliest future time at which this view changes (a key activates or expires).
    pub next_change: Option<i64>,
}

impl RingState {
    /// Builds the view at `now`. Private keys are unsealed only for signing keys, and parsed
    /// keys are reused from `previous` by kid (RSA parsing is slow).
    pub fn build(
        records: &[SigningKeyRecord],
        master: &MasterKey,
        now: i64,
        previous: &RingState,
    ) -> Result<RingState, JoseError> {
        let published: Vec<&SigningKeyRecord> =
            records.iter().filter(|r| r.publish_until.is_none_or(|t| t > now)).collect();
        let mut next_change: Option<i64> = None;
        let mut note = |t: i64| {
            if t > now {
                next_change = Some(next_change.map_or(t, |n| n.min(t)));
            }
        };
        let mut current: HashMap<Alg, &SigningKeyRecord> = HashMap::new();
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        for r in &published {
            note(r.activate_at);
            if let Some(t) = r.publish_until {
                note(t);
            }
            let Some(alg) = Alg::parse(&r.alg) else { continue };
            let vk = previous
                .verifiers
                .get(r.kid.as_str())
                .cloned()
                .map(Ok)
                .unwrap_or_else(|| VerificationKey::from_jwk(&r.public_jwk).map(Arc::new))?;
            verifiers.insert(r.kid.0.clone(), vk);
            jwks.push(r.public_jwk.clone());
            if r.activate_at <= now {
                let newer = current.get(&alg).is_none_or(|c| {
                    (r.activate_at, r.created_at) > (c.activate_at, c.created_at)
                });
                if newer {
                    current.insert(alg, r);
                }
            }
        }
        let mut signers = HashMap::new();
        for (alg, r) in current {
            let key = match previous.signers.get(&alg).filter(|k| k.kid == r.kid) {
                Some(k) => k.clone(),
                None => {
                    let pkcs8 = master
                        .open(&r.sealed_private, r.kid.as_str().as_bytes())
                        .map_err(|e| JoseError::Key(format!("signing key {}: {e}", r.kid)))?;
                    Arc::new(SigningKey::from_pkcs8(r.kid.clone(), alg, &pkcs8)?)
                }
            };
            signers.insert(alg, key);
        }
        let jwks = serde_json::json!({ "keys": jwks }).to_string();
        Ok(RingState { signers, verifiers, jwks: jwks.into(), next_change })
    }

    /// The published JWK Set, pre-rendered.
    pub fn jwks(&self) -> Arc<str> {
        self.jwks.clone()
    }

    /// The key that signs for `alg` now.
    pub fn signer(&self, alg: Alg) -> Option<Arc<SigningKey>> {
        self.signers.get(&alg).cloned()
    }
}

impl KeyLookup for RingState {
    /// Our own tokens always carry a `kid`; without one there is nothing to look up.
    fn find(&self, kid: Option<&str>, _alg: Alg) -> Option<Arc<VerificationKey>> {
        self.verifiers.get(kid?).cloned()
    }
}

/// The live key ring shared by every handler; swapped whole on refresh.
#[derive(Default)]
pub struct KeyRing {
    state: RwLock<Arc<RingState>>,
}

impl KeyRing {
    /// The current view.
    pub fn current(&self) -> Arc<RingState> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rebuilds the view from `records` at `now` and swaps it in.
    pub fn reload(
        &self,
        records: &[SigningKeyRecord],
        master: &MasterKey,
        now: i64,
    ) -> Result<Arc<RingState>, JoseError> {
        let next = Arc::new(RingState::build(records, master, now, &self.current())?);
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = next.clone();
        Ok(next)
    }
}
