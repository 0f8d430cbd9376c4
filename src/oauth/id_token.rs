//! ID tokens (OIDC Core §2, §3.1.3.6, §3.2.2.10), issued by the token endpoint with an
//! access token, and by the authorization endpoint in the implicit flow (legacy, operator
//! registered clients only).
//!
//! - signed with the client's `id_token_signed_response_alg`, else the first of
//!   `keys.id_token_algs` (RS256 by default); the ring holds a key for each, `typ` is `JWT`;
//! - `iss`, `sub`, `aud` (the client id), `azp` (the client id: OIDC Core §2 allows it and
//!   libraries check it), `exp` (`provider.id_token_lifetime`), `iat`, `auth_time`, `nonce`
//!   (only when the authorization request had one), `amr`, `sid` (when there is a browser
//!   session), `at_hash` (when an access token comes along);
//! - claims by scope only when no access token is issued (§5.4: otherwise they go to
//!   userinfo: implicit `response_type=id_token` is the one case), and those the `claims`
//!   request's `id_token` member names ([`super::claims`]).

use super::claims::{requested_member, user_claims};
use super::{OAuthError, Provider};
use crate::jose::Alg;
use crate::model::{Client, User};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// OIDC Core §3.1.3.6 `at_hash`: the left half of the hash of the access token's ASCII
/// octets, base64url; the hash is the one of the ID token's `alg` (SHA-256 for *256
/// algorithms, SHA-512 for EdDSA with Ed25519, as OpenID Connect's errata and every
/// certified library use).
pub fn at_hash(alg: Alg, access_token: &str) -> String {
    let algorithm = match alg {
        Alg::EdDSA => &digest::SHA512,
        Alg::ES256 | Alg::RS256 | Alg::PS256 => &digest::SHA256,
    };
    let d = digest::digest(algorithm, access_token.as_bytes());
    let bytes = d.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// What an ID token says about the authentication beyond the user and the client.
pub(super) struct IdTokenFacts<'a> {
    /// The authorization request's `nonce`.
    pub nonce: Option<&'a str>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// How (RFC 8176).
    pub amr: &'a [String],
    /// `acr`: `"1"` when the user entered their credentials for this very request, `"0"` when
    /// an existing session answered it (the convention Keycloak uses; no ISO 29115 claim).
    pub acr: Option<&'a str>,
    /// The browser session, if the user signed in through one.
    pub sid: Option<&'a str>,
    /// The `claims` request parameter.
    pub claims: Option<&'a Value>,
    /// Scopes whose claims go into the ID token (empty when an access token is issued).
    pub scope_claims: &'a [&'a str],
}

impl Provider {
    /// The algorithm of `client`'s ID tokens.
    fn id_token_alg(&self, client: &Client) -> Result<Alg, OAuthError> {
        match client.metadata.id_token_signed_response_alg.as_deref() {
            Some(name) => Alg::parse(name)
                .ok_or_else(|| OAuthError::server_error(format!("client registered an unknown id_token_signed_response_alg {name}"))),
            None => self
                .cfg
                .keys
                .id_token_algs
                .first()
                .copied()
                .ok_or_else(|| OAuthError::server_error("no ID-token algorithm is configured")),
        }
    }

    /// Signs an ID token for `user` and `client`, next to `access_token` when one is issued.
    pub(super) fn id_token(&self, client: &Client, user: &User, facts: &IdTokenFacts<'_>, access_token: Option<&str>, now: i64) -> Result<String, OAuthError> {
        let alg = self.id_token_alg(client)?;
        let key = self.ring.current().signer(alg).ok_or_else(|| {
            OAuthError::server_error(format!("no active signing key for {} (keys.id_token_algs or the access-token algorithm must include it)", alg.as_str()))
        })?;
        let mut claims: Map<String, Value> = user_claims(user, facts.scope_claims, requested_member(facts.claims, "id_token"));
        let client_id = client.client_id.as_str();
        let mut set = |k: &str, v: Value| {
            claims.insert(k.to_owned(), v);
        };
        set("iss", self.cfg.issuer.clone().into());
        set("sub", user.id.as_str().into());
        set("aud", client_id.into());
        set("azp", client_id.into());
        set("exp", (now + self.cfg.id_token_lifetime.as_secs() as i64).into());
        set("iat", now.into());
        set("auth_time", facts.auth_time.into());
        if let Some(nonce) = facts.nonce {
            set("nonce", nonce.into());
        }
        if !facts.amr.is_empty() {
            set("amr", facts.amr.to_vec().into());
        }
        if let Some(acr) = facts.acr {
            set("acr", acr.into());
        }
        if let Some(sid) = facts.sid {
            set("sid", sid.into());
        }
        if let Some(token) = access_token {
            set("at_hash", at_hash(alg, token).into());
        }
        key.sign_jwt("JWT", &claims).map_err(OAuthError::server_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // OIDC Core Appendix A.3 example: access token and at_hash of an RS256 ID token.
        assert_eq!(at_hash(Alg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(at_hash(Alg::EdDSA, "a.b.c").len(), 43, "32 of SHA-512's 64 bytes");
        assert_eq!(at_hash(Alg::ES256, "a.b.c").len(), 22, "16 of SHA-256's 32 bytes");
    }
}
