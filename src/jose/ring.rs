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
use crate::model::{Kid, SigningKeyRecord};
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

/// Whether `r` is provably one of ours: its kid is the RFC 7638 thumbprint of its public JWK
/// (as [`super::generate_key_record`] makes it) and its private key opens under `master` with
/// that kid as associated data. The seal binds the private key to the kid and the kid to the
/// public key, so a record written by someone without the master key (or with another one)
/// cannot get a public key of theirs trusted.
fn own_record(r: &SigningKeyRecord, master: &MasterKey) -> Result<(), JoseError> {
    if super::jwk_thumbprint(&r.public_jwk)? != r.kid.as_str() {
        return Err(JoseError::Key("the kid is not the thumbprint of the public key".into()));
    }
    master
        .open(&r.sealed_private, r.kid.as_str().as_bytes())
        .map(drop)
        .map_err(|e| JoseError::Key(format!("the private key does not open with this master key: {e}")))
}

/// One consistent view of the keys.
#[derive(Default)]
pub struct RingState {
    signers: HashMap<Alg, (i64, Arc<SigningKey>)>,
    verifiers: HashMap<String, Arc<VerificationKey>>,
    jwks: Arc<str>,
    /// The earliest future time at which this view changes (a key activates or expires).
    pub next_change: Option<i64>,
    /// Published records left out because they do not open or parse (wrong master key,
    /// corruption): they neither sign nor verify.
    pub skipped: Vec<Kid>,
}

impl RingState {
    /// Builds the view at `now`. Parsed keys are reused from `previous` by kid (RSA parsing is
    /// slow); private keys are parsed only for signing keys.
    ///
    /// A published record is trusted only if it is provably ours ([`own_record`]): a record
    /// that another master key sealed, or whose public key was swapped, is neither published
    /// nor trusted for verification, whether or not it would sign. Such a record, or one that
    /// does not parse, is skipped, never fatal: it is logged (once, when it first fails) and
    /// listed in `skipped`, and the next key of its algorithm in line signs instead, so one bad
    /// record cannot stop a node from issuing tokens.
    pub fn build(records: &[SigningKeyRecord], master: &MasterKey, now: i64, previous: &RingState) -> RingState {
        let mut next_change: Option<i64> = None;
        let mut note = |t: i64| {
            if t > now {
                next_change = Some(next_change.map_or(t, |n| n.min(t)));
            }
        };
        let mut skipped: Vec<Kid> = Vec::new();
        let mut skip = |r: &SigningKeyRecord, what: &str, e: &dyn std::fmt::Display| {
            if !previous.skipped.contains(&r.kid) && !skipped.contains(&r.kid) {
                tracing::error!(kid = %r.kid, alg = %r.alg, error = %e, "{what}; the key is skipped");
            }
            if !skipped.contains(&r.kid) {
                skipped.push(r.kid.clone());
            }
        };
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        for r in records.iter().filter(|r| is_published(r, now)) {
            note(r.activate_at);
            if let Some(t) = r.publish_until {
                note(t);
            }
            if Alg::parse(&r.alg).is_none() {
                continue;
            }
            let vk = match previous.verifiers.get(r.kid.as_str()) {
                Some(k) => k.clone(),
                None => match own_record(r, master).and_then(|()| VerificationKey::from_jwk(&r.public_jwk)) {
                    Ok(k) => Arc::new(k),
                    Err(e) => {
                        skip(r, "a published key is not usable", &e);
                        continue;
                    }
                },
            };
            verifiers.insert(r.kid.0.clone(), vk);
            jwks.push(r.public_jwk.clone());
        }
        let mut signers = HashMap::new();
        for alg in Alg::ALL {
            let mut candidates: Vec<&SigningKeyRecord> = records
                .iter()
                .filter(|r| r.alg == alg.as_str() && r.activate_at <= now && is_published(r, now) && verifiers.contains_key(r.kid.as_str()))
                .collect();
            candidates.sort_by(|a, b| (b.activate_at, b.created_at, &b.kid).cmp(&(a.activate_at, a.created_at, &a.kid)));
            for r in candidates {
                if let Some((_, k)) = previous.signers.get(&alg).filter(|(_, k)| k.kid == r.kid) {
                    signers.insert(alg, (r.activate_at, k.clone()));
                    break;
                }
                let opened = master
                    .open(&r.sealed_private, r.kid.as_str().as_bytes())
                    .map_err(|e| JoseError::Key(e.to_string()))
                    .and_then(|pkcs8| SigningKey::from_pkcs8(r.kid.clone(), alg, &pkcs8));
                match opened {
                    Ok(k) => {
                        signers.insert(alg, (r.activate_at, Arc::new(k)));
                        break;
                    }
                    Err(e) => skip(r, "a signing key does not open with this master key", &e),
                }
            }
        }
        // A key that cannot sign is not advertised for verification either.
        jwks.retain(|j| !skipped.iter().any(|k| j["kid"].as_str() == Some(k.as_str())));
        verifiers.retain(|kid, _| !skipped.iter().any(|k| k.as_str() == kid));
        let jwks = serde_json::json!({ "keys": jwks }).to_string();
        RingState { signers, verifiers, jwks: jwks.into(), next_change, skipped }
    }

    /// The published JWK Set, pre-rendered.
    pub fn jwks(&self) -> Arc<str> {
        self.jwks.clone()
    }

    /// The key that signs for `alg` now.
    pub fn signer(&self, alg: Alg) -> Option<Arc<SigningKey>> {
        self.signers.get(&alg).map(|(_, k)| k.clone())
    }

    /// The key that signs for `alg`, or — while a newly configured algorithm's first key is
    /// still pre-published and not yet active — the key of the algorithm used before
    /// (`previous`), so tokens are issued throughout an algorithm change.
    pub fn signer_or(&self, alg: Alg, previous: Option<Alg>) -> Option<Arc<SigningKey>> {
        self.signer(alg).or_else(|| previous.and_then(|p| self.signer(p)))
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
    skipped_total: std::sync::atomic::AtomicU64,
}

impl KeyRing {
    /// The current view.
    pub fn current(&self) -> Arc<RingState> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rebuilds the view from `records` at `now` and swaps it in.
    pub fn reload(&self, records: &[SigningKeyRecord], master: &MasterKey, now: i64) -> Arc<RingState> {
        let next = Arc::new(RingState::build(records, master, now, &self.current()));
        self.skipped_total.fetch_add(next.skipped.len() as u64, std::sync::atomic::Ordering::Relaxed);
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = next.clone();
        next
    }

    /// How many times a rebuild has skipped a record that does not open (a counter, for
    /// metrics: it keeps rising while a bad record is published).
    pub fn skipped_total(&self) -> u64 {
        self.skipped_total.load(std::sync::atomic::Ordering::Relaxed)
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
            let ring = RingState::build(&records, &master, 100, &RingState::default());
            assert_eq!(&ring.signer(Alg::ES256).unwrap().kid, expected, "order of records does not matter");
        }
    }

    #[test]
    fn the_signing_record_is_the_active_key_of_that_algorithm_only() {
        let master = MasterKey::from_bytes(&[3; 32]);
        let active = generate_key_record(Alg::ES256, &master, 10, 10).unwrap();
        let next = generate_key_record(Alg::ES256, &master, 50, 200).unwrap();
        let other_alg = generate_key_record(Alg::EdDSA, &master, 60, 60).unwrap();
        let records = vec![active.clone(), next, other_alg.clone()];
        assert_eq!(signing_record(&records, Alg::ES256, 100).unwrap().kid, active.kid, "not the pre-published one, nor another algorithm's");
        assert_eq!(signing_record(&records, Alg::EdDSA, 100).unwrap().kid, other_alg.kid);
        assert!(signing_record(&records, Alg::RS256, 100).is_none(), "no RS256 key at all");
    }

    #[test]
    fn future_keys_are_published_but_do_not_sign_and_expired_keys_vanish() {
        let master = MasterKey::from_bytes(&[3; 32]);
        let mut old = generate_key_record(Alg::ES256, &master, 10, 10).unwrap();
        old.publish_until = Some(200);
        let next = generate_key_record(Alg::ES256, &master, 50, 100).unwrap();
        let records = vec![old.clone(), next.clone()];
        let at_60 = RingState::build(&records, &master, 60, &RingState::default());
        assert_eq!(at_60.signer(Alg::ES256).unwrap().kid, old.kid);
        assert!(at_60.find(Some(next.kid.as_str()), Alg::ES256).is_some(), "published early");
        assert_eq!(at_60.next_change, Some(100));
        let at_150 = RingState::build(&records, &master, 150, &at_60);
        assert_eq!(at_150.signer(Alg::ES256).unwrap().kid, next.kid);
        assert!(at_150.find(Some(old.kid.as_str()), Alg::ES256).is_some(), "old key still verifies");
        let at_200 = RingState::build(&records, &master, 200, &at_150);
        assert!(at_200.find(Some(old.kid.as_str()), Alg::ES256).is_none());
        assert!(!at_200.jwks().contains(old.kid.as_str()));
    }

    #[test]
    fn a_record_that_does_not_open_is_skipped_and_the_next_key_signs() {
        let master = MasterKey::from_bytes(&[3; 32]);
        let stranger = MasterKey::from_bytes(&[4; 32]);
        let good = generate_key_record(Alg::ES256, &master, 10, 10).unwrap();
        // Sealed under another master key (a CLI run with the wrong key, before check values).
        let bad = generate_key_record(Alg::ES256, &stranger, 20, 20).unwrap();
        let mut broken = generate_key_record(Alg::EdDSA, &master, 5, 5).unwrap();
        broken.public_jwk["x"] = "not base64!".into();
        let records = vec![good.clone(), bad.clone(), broken.clone()];
        let ring = KeyRing::default();
        let state = ring.reload(&records, &master, 30);
        assert_eq!(state.signer(Alg::ES256).unwrap().kid, good.kid, "the older good key signs");
        assert_eq!(state.skipped, vec![bad.kid.clone(), broken.kid.clone()]);
        assert!(state.find(Some(bad.kid.as_str()), Alg::ES256).is_none(), "a key that cannot sign is not trusted");
        assert!(!state.jwks().contains(bad.kid.as_str()) && !state.jwks().contains(broken.kid.as_str()));
        assert!(state.jwks().contains(good.kid.as_str()), "the good key stays published");
        assert!(state.find(Some(good.kid.as_str()), Alg::ES256).is_some(), "and trusted");
        assert!(state.signer(Alg::EdDSA).is_none());
        assert_eq!(ring.skipped_total(), 2);
        ring.reload(&records, &master, 31);
        assert_eq!(ring.skipped_total(), 4, "the counter keeps rising while the record is there");
    }

    /// The error lines a closure logs, one string per line.
    fn errors_logged(f: impl FnOnce()) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::ERROR).with_ansi(false).with_writer(move || writer.clone()).finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_record_that_does_not_open_is_logged_when_it_first_fails_and_not_on_every_rebuild() {
        let master = MasterKey::from_bytes(&[3; 32]);
        let good = generate_key_record(Alg::ES256, &master, 10, 10).unwrap();
        let bad = generate_key_record(Alg::ES256, &MasterKey::from_bytes(&[4; 32]), 20, 20).unwrap();
        let records = vec![good, bad.clone()];
        let mut first = RingState::default();
        let logged = errors_logged(|| first = RingState::build(&records, &master, 30, &RingState::default()));
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert!(logged[0].contains(bad.kid.as_str()) && logged[0].contains("skipped"), "{logged:?}");
        let again = errors_logged(|| drop(RingState::build(&records, &master, 31, &first)));
        assert!(again.is_empty(), "already reported: {again:?}");
    }

    #[test]
    fn the_next_change_is_strictly_later_than_the_build() {
        let master = MasterKey::from_bytes(&[3; 32]);
        let mut now_active = generate_key_record(Alg::ES256, &master, 10, 100).unwrap();
        now_active.publish_until = Some(500);
        let ring = RingState::build(&[now_active], &master, 100, &RingState::default());
        assert_eq!(ring.next_change, Some(500), "a key activating at this very second is no change to wait for");
    }

    /// Before: only the key in line to sign was opened, so a record sealed under another
    /// master key (or written without one) was published and trusted for verification as long
    /// as a newer key signed.
    #[test]
    fn a_record_that_is_not_ours_is_not_trusted_even_when_another_key_signs() {
        let master = MasterKey::from_bytes(&[3; 32]);
        let foreign = generate_key_record(Alg::ES256, &MasterKey::from_bytes(&[4; 32]), 10, 10).unwrap();
        let good = generate_key_record(Alg::ES256, &master, 20, 20).unwrap();
        let mut swapped = generate_key_record(Alg::EdDSA, &master, 10, 10).unwrap();
        swapped.public_jwk = generate_key_record(Alg::EdDSA, &master, 10, 10).unwrap().public_jwk;
        swapped.public_jwk["kid"] = swapped.kid.as_str().into();
        let records = vec![foreign.clone(), good.clone(), swapped.clone()];
        let state = RingState::build(&records, &master, 30, &RingState::default());
        assert_eq!(state.signer(Alg::ES256).unwrap().kid, good.kid);
        for kid in [&foreign.kid, &swapped.kid] {
            assert!(state.find(Some(kid.as_str()), Alg::ES256).is_none(), "{kid} trusted");
            assert!(!state.jwks().contains(kid.as_str()), "{kid} published");
        }
        assert_eq!(state.skipped, vec![foreign.kid.clone(), swapped.kid.clone()]);
        assert!(state.signer(Alg::EdDSA).is_none(), "a swapped public key does not sign either");
    }

    #[test]
    fn while_a_new_algorithm_waits_the_previous_algorithms_signer_signs() {
        let master = MasterKey::from_bytes(&[3; 32]);
        let es = generate_key_record(Alg::ES256, &master, 10, 10).unwrap();
        let rs = generate_key_record(Alg::RS256, &master, 30, 30).unwrap();
        let ed = generate_key_record(Alg::EdDSA, &master, 20, 100).unwrap();
        let records = [es.clone(), rs, ed.clone()];
        let state = RingState::build(&records, &master, 50, &RingState::default());
        assert!(state.signer(Alg::EdDSA).is_none());
        assert_eq!(state.signer_or(Alg::EdDSA, Some(Alg::ES256)).unwrap().kid, es.kid, "the previous one, not the latest");
        assert!(state.signer_or(Alg::EdDSA, None).is_none());
        let later = RingState::build(&records, &master, 100, &state);
        assert_eq!(later.signer_or(Alg::EdDSA, Some(Alg::ES256)).unwrap().kid, ed.kid);
    }
}
