//! The refresh token grant (RFC 6749 §6; OIDC Core §12), with rotation and reuse detection
//! (RFC 9700 §4.14.2).
//!
//! # When a refresh token is issued ([`offered`])
//!
//! The authorization code grant issues one when the client is registered for the
//! `refresh_token` grant and:
//! - for an OpenID request (`openid` in the scope), the user granted `offline_access`
//!   (OIDC Core §11: without it no refresh token, even for a registered client);
//! - for a plain OAuth request (no `openid`), the registration alone decides (RFC 6749 §1.5:
//!   refresh tokens are the server's choice; `offline_access` is an OpenID scope).
//!
//! `offline_access` needs the user's consent: the consent page names it ("Stay connected when
//! you are not using it"), and a remembered consent covers it only if the user agreed to it on
//! that page before (consent is remembered per scope). OIDC Core §11 asks for
//! `prompt=consent` "unless other conditions for processing the request permitting offline
//! access … are known": an explicit consent this server recorded, or the operator marking the
//! client first-party (`first_party`, which skips consent altogether), are such conditions, so
//! the prompt and consent logic needs nothing more. The authorization endpoint only issues
//! codes, so the §11 rule to ignore `offline_access` for other response types holds by itself.
//!
//! # The token
//!
//! 256 random bits, base64url; only its SHA-256 is stored (`RefreshToken` artifact, keyed like
//! codes), under its grant id (the family). The record ([`RefreshGrant`]) binds it to the
//! client, the grant's scopes, resources, `claims` request, `sub`, `auth_time`, `sid` and
//! `amr`, and, when the token request carried a DPoP proof and the client is public, to that
//! key (RFC 9449 §5: a confidential client's refresh tokens are bound by its authentication).
//! It expires after `provider.refresh_token_idle_lifetime`, and never after the family's end:
//! `auth_time + provider.refresh_token_max_lifetime`.
//!
//! # Rotation and reuse
//!
//! Every refresh consumes the presented token atomically and issues the next one in the same
//! family. Presenting a consumed token again is reuse: the family is revoked — every refresh
//! token, and every access token the grant issued (`grants.rs`) — with an audit event
//! `refresh_token_reuse`. Two requests racing with the same token are reuse too: one consumes
//! it, the other finds it consumed and revokes the family, so the winner's new tokens are
//! revoked as well (or the winner gets `invalid_grant` when the revocation came first). The
//! server cannot tell a client's retry from an attacker's replay, so it takes the safe side;
//! a client must not refresh twice in parallel with one token.

use super::TokenResponse;
use super::SignedUserToken;
use super::authorization_code::{active_user, audience};
use super::client_credentials::Jti;
use crate::jose::dpop::Proof;
use crate::model::{AuthMethod, Client, GrantType, unix_now};
use crate::oauth::authorize::code::{CodeGrant, code_id};
use crate::oauth::grants::{IssuedToken, TokenGrant};
use crate::oauth::register::metadata::is_scope_token;
use crate::oauth::{FormRequest, OAuthError, Provider};
use crate::store::{ArtifactKind, StoreError};
use serde::{Deserialize, Serialize};

/// Whether the authorization code grant issues a refresh token (module doc).
pub(super) fn offered(client: &Client, scope: &[String]) -> bool {
    offers(client.allows_grant(GrantType::RefreshToken), scope)
}

/// [`offered`] for a client registered (or not) for the `refresh_token` grant.
fn offers(registered: bool, scope: &[String]) -> bool {
    let has = |s: &str| scope.iter().any(|x| x == s);
    registered && (!has("openid") || has("offline_access"))
}

/// The stored record of a refresh token.
#[derive(Clone, Serialize, Deserialize)]
pub(in crate::oauth) struct RefreshGrant {
    /// The grant as the code carried it, without what only the code needed: no `nonce`
    /// (OIDC Core §12.2: a refreshed ID token has none), no PKCE challenge, no code DPoP key.
    pub grant: CodeGrant,
    /// The DPoP key thumbprint the token is bound to (public clients, RFC 9449 §5).
    #[serde(default)]
    pub jkt: Option<String>,
    /// The end of the family: `auth_time + refresh_token_max_lifetime`.
    pub family_expires_at: i64,
    /// This token's expiry (set when it is stored).
    #[serde(default)]
    pub expires_at: i64,
}

impl RefreshGrant {
    /// The record of the first refresh token of a code's grant.
    pub(super) fn new(p: &Provider, client: &Client, grant: &CodeGrant, proof: Option<&Proof>) -> RefreshGrant {
        let grant = CodeGrant { nonce: None, code_challenge: String::new(), dpop_jkt: None, ..grant.clone() };
        let public = client.metadata.token_endpoint_auth_method == AuthMethod::None;
        let jkt = proof.filter(|_| public).map(|pr| pr.jkt.clone());
        let family_expires_at = grant.auth_time.saturating_add(p.cfg.refresh_token_max_lifetime.as_secs() as i64);
        RefreshGrant { grant, jkt, family_expires_at, expires_at: 0 }
    }

    /// When a token issued now expires: the idle lifetime, capped by the family's end.
    pub(super) fn expires_at(&self, p: &Provider, now: i64) -> i64 {
        now.saturating_add(p.cfg.refresh_token_idle_lifetime.as_secs() as i64).min(self.family_expires_at)
    }

    /// Stores a new token with this record, under the grant; `None` when the family has
    /// ended (nothing left to issue).
    pub(super) async fn store(&self, p: &Provider, now: i64) -> Result<Option<String>, OAuthError> {
        let expires_at = self.expires_at(p, now);
        if expires_at <= now {
            return Ok(None);
        }
        let token = crate::secrets::random_text(32).map_err(OAuthError::server_error)?;
        let payload = serde_json::to_vec(&RefreshGrant { expires_at, ..self.clone() }).map_err(OAuthError::server_error)?;
        p.store
            .artifacts
            .put(ArtifactKind::RefreshToken, &code_id(&token), &payload, expires_at, Some(&self.grant.grant_id))
            .await?;
        Ok(Some(token))
    }
}

/// A refresh token is 43 base64url characters; anything far off is not one of ours (and is
/// never hashed or looked up).
fn plausible(token: &str) -> bool {
    !token.is_empty() && token.len() <= 256 && !token.contains('.')
}

impl Provider {
    /// The live, unconsumed refresh token `token` of a family not revoked, with its expiry.
    pub(in crate::oauth) async fn active_refresh_token(&self, token: &str) -> Result<Option<RefreshGrant>, OAuthError> {
        if !plausible(token) {
            return Ok(None);
        }
        let Some(bytes) = self.store.artifacts.get(ArtifactKind::RefreshToken, &code_id(token), unix_now()).await? else {
            return Ok(None);
        };
        let rec: RefreshGrant = serde_json::from_slice(&bytes).map_err(OAuthError::server_error)?;
        if self.grant_revoked(&rec.grant.grant_id).await? {
            return Ok(None);
        }
        Ok(Some(rec))
    }
}

/// The checks, in this order:
/// 1. client authentication (`client_auth.rs`): confidential clients with their registered
///    method, public clients by `client_id` alone (RFC 6749 §6) — `invalid_client`;
/// 2. the client is registered for `refresh_token` — `unauthorized_client`;
/// 3. `refresh_token` present — `invalid_request`;
/// 4. the token is live and unconsumed, its family not revoked — else `invalid_grant`; a
///    consumed token is reuse: the family is revoked (module doc) — `invalid_grant`;
/// 5. the token was issued to this client (RFC 6749 §6) — `invalid_grant` (not consumed: the
///    owner's token keeps working);
/// 6. `scope`, if sent, ⊆ the granted scopes (RFC 6749 §6) — `invalid_scope`; the access
///    token gets the narrowed scope, the next refresh token keeps the grant's;
/// 7. `resource` values ⊆ the grant's (RFC 8707 §2, as for the code) — `invalid_target`;
/// 8. DPoP (RFC 9449 §5): a proof is checked as for the code grant; a token bound to a key
///    needs a proof with that key — `invalid_dpop_proof` (not consumed);
/// 9. the token is consumed atomically: lost to a concurrent request — reuse, as in 4;
/// 10. the family's absolute end (`auth_time + refresh_token_max_lifetime`) not passed —
///     `invalid_grant`; the idle lifetime is the token's expiry, checked in 4 and 9;
/// 11. the user still exists and is not disabled — `invalid_grant`;
/// 12. the new access token's `jti` is added to the grant, which must not have been revoked
///     meanwhile (`grants.rs`) — `invalid_grant`; then the next refresh token of the family.
///
/// The response: an access token for the user (`auth_time` of the original sign-in), the next
/// refresh token, and with `openid` in the (narrowed) scope an ID token with the same `sub`
/// and `auth_time`, no `nonce` (OIDC Core §12.2).
pub(super) async fn issue(p: &Provider, req: &FormRequest) -> Result<TokenResponse, OAuthError> {
    let params = &req.params;
    let client = p.authenticate_client_or_public(req).await?;
    if !client.allows_grant(GrantType::RefreshToken) {
        return Err(OAuthError::unauthorized_client("the client is not registered for refresh_token"));
    }
    let token = params.require("refresh_token")?;
    let now = unix_now();
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    if !plausible(token) {
        return Err(invalid());
    }
    let id = code_id(token);
    let rec = match p.active_refresh_token(token).await? {
        Some(rec) => rec,
        // Unknown, expired, of a revoked family — or consumed: consuming tells which.
        None => {
            consume(p, &client, &id, now).await?;
            return Err(invalid());
        }
    };
    if rec.grant.client_id != client.client_id.as_str() {
        return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
    }
    let scope = narrowed_scope(params.get("scope"), &rec.grant.scope)?;
    let aud = audience(p, &client, &rec.grant, params.all("resource"))?;
    let proof = p.token_dpop_proof(req, &client, now).await?;
    if let Some(jkt) = &rec.jkt {
        match &proof {
            None => return Err(OAuthError::invalid_dpop_proof("this refresh token is bound to a DPoP key: send a DPoP proof made with it")),
            Some(pr) if aws_lc_rs::constant_time::verify_slices_are_equal(pr.jkt.as_bytes(), jkt.as_bytes()).is_err() => {
                return Err(OAuthError::invalid_dpop_proof("the DPoP proof's key is not the one the refresh token is bound to"));
            }
            Some(_) => {}
        }
    }
    let rec = consume(p, &client, &id, now).await?.ok_or_else(invalid)?;
    if now >= rec.family_expires_at {
        return Err(OAuthError::invalid_grant("the refresh token's grant reached its maximum lifetime; sign the user in again"));
    }
    let user = active_user(p, &rec.grant.sub).await?;

    let lifetime = p.token_lifetime(client.metadata.access_token_lifetime, &aud).await?;
    let exp = now + lifetime as i64;
    let jti = Jti::new()?;
    // The next token of the family: bound to the same key, or, for a public client proving a
    // key now, to that key.
    let public = client.metadata.token_endpoint_auth_method == AuthMethod::None;
    let next = RefreshGrant { jkt: rec.jkt.clone().or_else(|| proof.as_ref().filter(|_| public).map(|pr| pr.jkt.clone())), ..rec.clone() };
    let grant_id = &rec.grant.grant_id;
    let link = TokenGrant { grant_id: grant_id.clone(), userinfo_claims: crate::oauth::claims::requested_member(rec.grant.claims.as_ref(), "userinfo").cloned() };
    let revoked = || OAuthError::invalid_grant("the refresh token's grant was revoked");
    if !p.extend_grant(grant_id, IssuedToken { jti: jti.as_str().to_owned(), exp }, &link, next.expires_at(p, now)).await? {
        return Err(revoked());
    }
    let refresh_token = next.store(p, now).await?;
    if p.grant_revoked(grant_id).await? {
        p.revoke_jti(jti.as_str(), exp).await?;
        return Err(revoked());
    }
    let scope_text = (!scope.is_empty()).then(|| scope.join(" "));
    let token = SignedUserToken {
        client: &client,
        user: &user,
        aud: &aud,
        scope: scope_text.as_deref(),
        jkt: proof.as_ref().map(|p| p.jkt.as_str()),
        auth_time: rec.grant.auth_time,
        jti: jti.as_str(),
        exp,
        now,
    };
    let access_token = token.sign(p)?;
    let id_token = if scope.iter().any(|s| s == "openid") {
        // OIDC Core §12.2: the same sub and auth_time, and no nonce.
        let facts = crate::oauth::id_token::IdTokenFacts {
            nonce: None,
            auth_time: rec.grant.auth_time,
            amr: &rec.grant.amr,
            acr: rec.grant.acr.as_deref(),
            sid: Some(&rec.grant.sid),
            claims: rec.grant.claims.as_ref(),
            scope_claims: &[],
        };
        Some(p.id_token(&client, &user, &facts, Some(&access_token), now)?)
    } else {
        None
    };
    tracing::debug!(target: "audit", event = "token_issued", grant = "refresh_token", client_id = %client.client_id, sub = %user.id, jti = %jti.as_str());
    let token_type = if proof.is_some() { "DPoP" } else { "Bearer" };
    Ok(TokenResponse { access_token, token_type, expires_in: lifetime, scope: scope_text, id_token, refresh_token, dpop_nonce: p.dpop_nonce(now) })
}

/// Steps 4 and 9: consumes the token once. `Ok(None)`: unknown or expired. A consumed token
/// is reuse: its family is revoked, with an audit event, and the answer is `invalid_grant`.
async fn consume(p: &Provider, client: &Client, id: &str, now: i64) -> Result<Option<RefreshGrant>, OAuthError> {
    match p.store.artifacts.consume(ArtifactKind::RefreshToken, id, now).await {
        Ok(Some(bytes)) => {
            let rec: RefreshGrant = serde_json::from_slice(&bytes).map_err(OAuthError::server_error)?;
            // A revocation between the check and the consume.
            if p.grant_revoked(&rec.grant.grant_id).await? {
                return Ok(None);
            }
            Ok(Some(rec))
        }
        Ok(None) => Ok(None),
        Err(StoreError::AlreadyConsumed { grant_id }) => {
            if let Some(g) = grant_id {
                let revoked_tokens = p.revoke_grant(&g).await?;
                tracing::info!(target: "audit", event = "refresh_token_reuse", grant_id = %g, client_id = %client.client_id, revoked_tokens);
            }
            Err(OAuthError::invalid_grant("the refresh token was already used; its grant is revoked"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Step 6 (RFC 6749 §6): no `scope` means the granted one; otherwise a subset of it.
fn narrowed_scope(requested: Option<&str>, granted: &[String]) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else { return Ok(granted.to_vec()) };
    let mut out: Vec<String> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !is_scope_token(s) {
            return Err(OAuthError::invalid_scope("the scope parameter is malformed"));
        }
        if !granted.iter().any(|g| g == s) {
            return Err(OAuthError::invalid_scope(format!(
                "scope \"{s}\" was not granted; a refresh may narrow the scope, never widen it"
            )));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    if out.is_empty() {
        return Err(OAuthError::invalid_scope("scope is empty; leave it out to keep the granted scope"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_token_is_offered_by_registration_and_offline_access_for_openid() {
        let scope = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(offers(true, &scope("openid offline_access")));
        assert!(!offers(true, &scope("openid profile")), "OIDC Core §11");
        assert!(offers(true, &scope("api")), "plain OAuth: the registration decides");
        assert!(offers(true, &scope("offline_access api")));
        assert!(!offers(false, &scope("openid offline_access")));
        assert!(!offers(false, &scope("api")));
    }

    fn granted() -> Vec<String> {
        ["openid", "offline_access", "api"].map(String::from).to_vec()
    }

    #[test]
    fn scope_may_be_narrowed_but_not_widened() {
        assert_eq!(narrowed_scope(None, &granted()).unwrap(), granted());
        assert_eq!(narrowed_scope(Some("api api"), &granted()).unwrap(), vec!["api".to_owned()]);
        assert_eq!(narrowed_scope(Some("api email"), &granted()).unwrap_err().code.as_str(), "invalid_scope");
        assert_eq!(narrowed_scope(Some(" "), &granted()).unwrap_err().code.as_str(), "invalid_scope");
        assert_eq!(narrowed_scope(Some("a\"b"), &granted()).unwrap_err().code.as_str(), "invalid_scope");
    }

    #[test]
    fn only_token_shaped_strings_are_looked_up() {
        assert!(plausible(&"a".repeat(43)));
        assert!(!plausible(""));
        assert!(!plausible("a.b.c"));
        assert!(!plausible(&"a".repeat(257)));
    }
}
