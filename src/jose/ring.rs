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

/// Whether a stored key is published (in JWKS, trusted) at `now`.
pub fn is_published(r: &SigningKeyRecord, now: i64) -> bool {
    r.publish_until.is_none_or(|t| t > now)
}

/// The record that signs for `alg` at `now`: the published key with the latest
/// `activate_at <= now`; ties (same second) go to the later `created_at`, then the greater
/// kid, so every node and the CLI pick the same key.
pub fn signing_record(records: &[SigningKeyRecord], alg: Alg, now: i64) -> Option<&SigningKeyRecord> {
    records
        .iter()
        .filter(|r| r.alg == alg.as_str() && r.activate_at <= now && is_published(r, now))
        .max_by(|a, b| (a.activate_at, a.created_at, &a.kid).cmp(&(b.activate_at, b.created_at, &b.kid)))
}

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
        let published: Vec<&SigningKeyRecord> = records.iter().filter(|r| is_published(r, now)).collect();
        let mut next_change: Option<i64> = None;
        let mut note = |t: i64| {
            if t > now {
                next_change = Some(next_change.map_or(t, |n| n.min(t)));
            }
        };
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        for r in &published {
            note(r.activate_at);
            if let Some(t) = r.publish_until {
                note(t);
            }
            if Alg::parse(&r.alg).is_none() {
                continue;
            }
            let vk = previous
                .verifiers
                .get(r.kid.as_str())
                .cloned()
                .map(Ok)
                .unwrap_or_else(|| VerificationKey::from_jwk(&r.public_jwk).map(Arc::new))?;
            verifiers.insert(r.kid.0.clone(), vk);
            jwks.push(r.public_jwk.clone());
        }
        let mut signers = HashMap::new();
        let current = Alg::ALL.into_iter().filter_map(|alg| signing_record(records, alg, now).map(|r| (alg, r)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::generate_key_record;

    #[test]
    fn the_ring_and_the_listing_rule_agree_on_ties() {
        let master = MasterKey::from_bytes(&[3; 32]);
        let a = generate_key_record(Alg::ES256, &master, 100, 100).unwrap();
        let b = generate_key_record(Alg::ES256, &master, 100, 100).unwrap();
        for records in [vec![a.clone(), b.clone()], vec![b.clone(), a.clone()]] {
            let expected = if a.kid > b.kid { &a.kid } else { &b.kid };
            assert_eq!(&signing_record(&records, Alg::ES256, 100).unwrap().kid, expected);
            let ring = RingState::build(&records, &master, 100, &RingState::default()).unwrap();
            assert_eq!(&ring.signer(Alg::ES256).unwrap().kid, expected, "order of records does not matter");
        }
    }

    #[test]
    fn future_keys_are_published_but_do_not_sign_and_expired_keys_vanish() {
        let master = MasterKey::from_bytes(&[3; 32]);
        let mut old = generate_key_record(Alg::ES256, &master, 10, 10).unwrap();
        old.publish_until = Some(200);
        let next = generate_key_record(Alg::ES256, &master, 50, 100).unwrap();
        let records = vec![old.clone(), next.clone()];
        let at_60 = RingState::build(&records, &master, 60, &RingState::default()).unwrap();
        assert_eq!(at_60.signer(Alg::ES256).unwrap().kid, old.kid);
        assert!(at_60.find(Some(next.kid.as_str()), Alg::ES256).is_some(), "published early");
        assert_eq!(at_60.next_change, Some(100));
        let at_150 = RingState::build(&records, &master, 150, &at_60).unwrap();
        assert_eq!(at_150.signer(Alg::ES256).unwrap().kid, next.kid);
        assert!(at_150.find(Some(old.kid.as_str()), Alg::ES256).is_some(), "old key still verifies");
        let at_200 = RingState::build(&records, &master, 200, &at_150).unwrap();
        assert!(at_200.find(Some(old.kid.as_str()), Alg::ES256).is_none());
        assert!(!at_200.jwks().contains(old.kid.as_str()));
    }
}
