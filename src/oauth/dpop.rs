//! DPoP at the token endpoint (RFC 9449 §5): the proof is checked by [`jose::dpop`] (shared
//! with userinfo and the gateway), and its `jti` recorded once in the store, so a proof is
//! single-use across every node.

use super::{DpopHeader, FormRequest, OAuthError, Provider};
use crate::jose::dpop::{self, DpopError, Proof, ProofCheck};
use crate::model::Client;
use crate::store::ArtifactKind;

/// The period of server-provided nonces: each is accepted for the rest of its period and the
/// next (5 to 10 minutes).
pub(super) const NONCE_PERIOD_SECS: u64 = 300;

impl Provider {
    /// The DPoP proof of a token request, checked, for `client` (already authenticated, so
    /// strangers cannot fill the replay store):
    /// 1. no `DPoP` header: fine, unless the client registered `dpop_bound_access_tokens`
    ///    (RFC 9449 §5.2) — `invalid_dpop_proof`;
    /// 2. more than one `DPoP` header — `invalid_dpop_proof` (§4.3 step 1);
    /// 3. [`dpop::check_proof`] against `POST` and the token endpoint's published URL (not the
    ///    `Host` header: behind a proxy the issuer is what clients see) — `invalid_dpop_proof`
    ///    naming the check, or `use_dpop_nonce` with a `DPoP-Nonce` header when nonces are on;
    /// 4. the proof's key + `jti` never seen before, kept until the proof could no longer pass
    ///    step 3 — `invalid_dpop_proof`.
    pub(super) async fn token_dpop_proof(&self, req: &FormRequest, client: &Client, now: i64) -> Result<Option<Proof>, OAuthError> {
        let proof = match &req.dpop {
            DpopHeader::Absent if client.metadata.dpop_bound_access_tokens => {
                return Err(OAuthError::invalid_dpop_proof(
                    "this client is registered for DPoP-bound access tokens: send a DPoP proof",
                ));
            }
            DpopHeader::Absent => return Ok(None),
            DpopHeader::Many => return Err(OAuthError::invalid_dpop_proof("send exactly one DPoP header")),
            DpopHeader::One(proof) => proof,
        };
        let uri = self.cfg.endpoint("/token");
        let (max_age, leeway) = (self.cfg.dpop_proof_max_age.as_secs(), self.cfg.clock_skew.as_secs());
        let check = ProofCheck { method: "POST", uri: &uri, now, max_age, leeway, access_token: None, nonces: self.dpop_nonces.as_ref() };
        let proof = dpop::check_proof(proof, &check).map_err(|e| self.dpop_error(e, now))?;
        if !self.first_use_of(&proof, now).await? {
            return Err(OAuthError::invalid_dpop_proof("this DPoP proof was already used; make a new one per request"));
        }
        Ok(Some(proof))
    }

    /// Records a checked proof's key + `jti` in the store, shared by every node (RFC 9449
    /// §11.1), for as long as the age check could still accept the proof (while iat >= now -
    /// max_age - leeway). `false`: it was used before.
    pub(super) async fn first_use_of(&self, proof: &Proof, now: i64) -> Result<bool, OAuthError> {
        let (max_age, leeway) = (self.cfg.dpop_proof_max_age.as_secs(), self.cfg.clock_skew.as_secs());
        let keep_until = proof.iat.saturating_add((max_age + leeway + 1) as i64);
        Ok(self.store.artifacts.put_new(ArtifactKind::DpopJti, &proof.replay_key(), b"", keep_until, now).await?)
    }

    /// The wire error for a refused proof.
    pub(super) fn dpop_error(&self, e: DpopError, now: i64) -> OAuthError {
        match e {
            DpopError::Invalid(why) => OAuthError::invalid_dpop_proof(why),
            DpopError::UseNonce => {
                let mut err = OAuthError::new(super::ErrorCode::UseDpopNonce, "the DPoP proof must carry the nonce in the DPoP-Nonce header");
                err.dpop_nonce = self.dpop_nonce(now);
                err
            }
        }
    }

    /// The nonce to hand out now, when nonces are on.
    pub(super) fn dpop_nonce(&self, now: i64) -> Option<String> {
        self.dpop_nonces.as_ref().map(|n| n.current(now))
    }
}
