//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3; OIDC Core §3.1.3),
//! issuing an RFC 9068 access token for the user and, with `openid`, an ID token.

use super::{SignedUserToken, TokenResponse, refresh_token};
use super::client_credentials::Jti;
use crate::model::{Client, GrantType, Origin, User, UserId, unix_now};
use crate::oauth::authorize::code::{CodeGrant, code_id};
use crate::oauth::grants::{IssuedToken, TokenGrant};
use crate::oauth::{FormRequest, OAuthError, Provider};
use crate::store::{ArtifactKind, StoreError};

/// The checks, in this order:
/// 1. client authentication (`client_auth.rs`): confidential clients with their registered
///    method; public clients (`none`) by `client_id` alone (RFC 6749 §3.2.1) — `invalid_client`;
/// 2. the client is registered for `authorization_code` (RFC 6749 §5.2) — `unauthorized_client`;
/// 3. `code` present (RFC 6749 §4.1.3) — `invalid_request`;
/// 4. the code is consumed atomically (RFC 6749 §4.1.2: single use): unknown or expired —
///    `invalid_grant`; already consumed — `invalid_grant`, and every token issued from its
///    grant is revoked (RFC 6749 §4.1.2, RFC 9700 §4.2.1; `grants.rs`);
/// 5. the code was issued to this client (RFC 6749 §4.1.3) — `invalid_grant`;
/// 6. `redirect_uri` (RFC 6749 §4.1.3): required and identical when the authorization
///    request named one; if sent anyway, identical — `invalid_grant`;
/// 7. PKCE (RFC 7636 §4.5, §4.6): `code_verifier` present, 43 to 128 unreserved characters,
///    and BASE64URL(SHA256(verifier)) equal to the challenge, compared in constant time —
///    `invalid_grant`;
/// 8. the user still exists and is not disabled — `invalid_grant`;
/// 9. RFC 8707 `resource` values ⊆ the resources chosen at the authorization endpoint (or,
///    without any, ⊆ the client's audiences) — `invalid_target`; the access token's `aud`:
///    the requested resources, else the code's, else the client's audiences, else the
///    default audience (as for client credentials);
/// 10. DPoP (RFC 9449 §5, §10): a proof is checked as for client credentials
///     (`Provider::token_dpop_proof`) and binds the tokens (`cnf.jkt`, `token_type: DPoP`);
///     a code bound to a key (`dpop_jkt`) needs a proof with that key — `invalid_dpop_proof`;
/// 11. the grant is recorded before anything is returned (`grants.rs`); a replay that
///     revoked it in between — `invalid_grant`;
/// 12. a refresh token comes along when [`refresh_token::offered`] says so (the client is
///     registered for `refresh_token`, and an OpenID request asked for `offline_access`),
///     stored under the grant before the grant's revocation marker is read again: a replay
///     that revoked the grant meanwhile — `invalid_grant`.
///
/// The access token carries `sub` (the user), `client_id`, `scope` (what the user granted),
/// `auth_time` and `jti` (RFC 9068 §2.2); with `openid` in the scope an ID token comes along
/// (`id_token.rs`).
pub(super) async fn issue(p: &Provider, req: &FormRequest) -> Result<TokenResponse, OAuthError> {
    let params = &req.params;
    let client = p.authenticate_client_or_public(req).await?;
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client("the client is not registered for authorization_code"));
    }
    let code = params.require("code")?;
    let now = unix_now();
    let grant = consume(p, code, now).await?;
    if grant.client_id != client.client_id.as_str() {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    check_redirect_uri(&grant, params.get("redirect_uri"))?;
    check_pkce(&grant.code_challenge, params.get("code_verifier"))?;
    let user = active_user(p, &grant.sub).await?;
    let aud = audience(p, &client, &grant, params.all("resource"))?;
    let proof = p.token_dpop_proof(req, &client, now).await?;
    if let Some(jkt) = &grant.dpop_jkt {
        match &proof {
            None => return Err(OAuthError::invalid_dpop_proof("this code is bound to a DPoP key: send a DPoP proof made with it")),
            Some(pr) if aws_lc_rs::constant_time::verify_slices_are_equal(pr.jkt.as_bytes(), jkt.as_bytes()).is_err() => {
                return Err(OAuthError::invalid_dpop_proof("the DPoP proof's key is not the one the code is bound to"));
            }
            Some(_) => {}
        }
    }
    let lifetime = p.token_lifetime(client.metadata.access_token_lifetime, &aud).await?;
    let exp = now + lifetime as i64;
    let jti = Jti::new()?;
    let refresh = refresh_token::offered(&client, &grant.scope).then(|| refresh_token::RefreshGrant::new(p, &client, &grant, proof.as_ref()));
    let family_until = refresh.as_ref().map_or(0, |r| r.expires_at(p, now));
    let link = TokenGrant { grant_id: grant.grant_id.clone(), userinfo_claims: crate::oauth::claims::requested_member(grant.claims.as_ref(), "userinfo").cloned() };
    if !p.record_grant(&grant.grant_id, IssuedToken { jti: jti.as_str().to_owned(), exp }, &link, family_until).await? {
        return Err(OAuthError::invalid_grant("the code was used twice; every token issued from it is revoked"));
    }
    let refresh_token = match &refresh {
        Some(r) => r.store(p, now).await?,
        None => None,
    };
    if refresh_token.is_some() && p.grant_revoked(&grant.grant_id).await? {
        return Err(OAuthError::invalid_grant("the code was used twice; every token issued from it is revoked"));
    }
    let scope = (!grant.scope.is_empty()).then(|| grant.scope.join(" "));
    let token = SignedUserToken {
        client: &client,
        user: &user,
        aud: &aud,
        scope: scope.as_deref(),
        jkt: proof.as_ref().map(|p| p.jkt.as_str()),
        auth_time: grant.auth_time,
        jti: jti.as_str(),
        exp,
        now,
    };
    let access_token = token.sign(p)?;
    let id_token = if grant.scope.iter().any(|s| s == "openid") {
        let facts = crate::oauth::id_token::IdTokenFacts {
            nonce: grant.nonce.as_deref(),
            auth_time: grant.auth_time,
            amr: &grant.amr,
            acr: grant.acr.as_deref(),
            sid: Some(&grant.sid),
            claims: grant.claims.as_ref(),
            scope_claims: &[],
        };
        Some(p.id_token(&client, &user, &facts, Some(&access_token), now)?)
    } else {
        None
    };
    tracing::debug!(target: "audit", event = "token_issued", grant = "authorization_code", client_id = %client.client_id, sub = %user.id, jti = %jti.as_str(), refresh_token = refresh_token.is_some());
    let token_type = if proof.is_some() { "DPoP" } else { "Bearer" };
    Ok(TokenResponse { access_token, token_type, expires_in: lifetime, scope, id_token, refresh_token, dpop_nonce: p.dpop_nonce(now) })
}



/// Step 4: consume the code once; a replay revokes the grant.
async fn consume(p: &Provider, code: &str, now: i64) -> Result<CodeGrant, OAuthError> {
    let invalid = || OAuthError::invalid_grant("the code is invalid, expired or already used");
    // A code is 43 base64url characters; anything far off is not one of ours.
    if code.len() > 256 {
        return Err(invalid());
    }
    match p.store.artifacts.consume(ArtifactKind::AuthorizationCode, &code_id(code), now).await {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).map_err(OAuthError::server_error),
        Ok(None) => Err(invalid()),
        Err(StoreError::AlreadyConsumed { grant_id }) => {
            if let Some(g) = grant_id {
                let revoked_tokens = p.revoke_grant(&g).await?;
                tracing::warn!(target: "audit", event = "code_replayed", grant_id = %g, revoked_tokens);
            }
            Err(OAuthError::invalid_grant("the code was already used; every token issued from it is revoked"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Step 6.
fn check_redirect_uri(grant: &CodeGrant, sent: Option<&str>) -> Result<(), OAuthError> {
    match sent {
        None if grant.redirect_uri_sent => {
            Err(OAuthError::invalid_grant("redirect_uri is required: the authorization request named one"))
        }
        Some(uri) if uri != grant.redirect_uri => {
            Err(OAuthError::invalid_grant("redirect_uri is not the one of the authorization request"))
        }
        _ => Ok(()),
    }
}

/// Step 7 (RFC 7636 §4.1, §4.6).
fn check_pkce(challenge: &str, verifier: Option<&str>) -> Result<(), OAuthError> {
    let verifier = verifier.ok_or_else(|| OAuthError::invalid_grant("code_verifier is required (PKCE, RFC 7636)"))?;
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(unreserved) {
        return Err(OAuthError::invalid_grant(
            "code_verifier must be 43 to 128 characters from A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)",
        ));
    }
    let computed = crate::jose::sha256_b64url(verifier.as_bytes());
    if aws_lc_rs::constant_time::verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes()).is_err() {
        return Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge"));
    }
    Ok(())
}

/// Step 8.
pub(super) async fn active_user(p: &Provider, sub: &str) -> Result<User, OAuthError> {
    match p.store.catalog.user(&UserId(sub.to_owned())).await? {
        Some(u) if !u.disabled => Ok(u),
        _ => Err(OAuthError::invalid_grant("the user who granted the code no longer exists or is disabled")),
    }
}

/// Step 9 (RFC 8707 §2).
pub(super) fn audience(p: &Provider, client: &Client, grant: &CodeGrant, requested: Vec<&str>) -> Result<Vec<String>, OAuthError> {
    let default = match client.origin {
        Origin::Dynamic if !p.cfg.registration.issuer_audience => None,
        _ => Some(&p.cfg.default_audience),
    };
    let allowed: &[String] = if !grant.resource.is_empty() {
        &grant.resource
    } else if !client.metadata.audience.is_empty() {
        &client.metadata.audience
    } else {
        match default {
            Some(d) => std::slice::from_ref(d),
            None => {
                return Err(OAuthError::invalid_target(
                    "the client is registered without an audience; register the APIs it calls (\"audience\")",
                ));
            }
        }
    };
    if requested.is_empty() {
        return Ok(allowed.to_vec());
    }
    let mut out: Vec<String> = Vec::new();
    for r in requested {
        if !allowed.iter().any(|a| a == r) {
            return Err(OAuthError::invalid_target(format!(
                "\"{}\" is not among the resources this grant may obtain tokens for",
                r.chars().take(200).collect::<String>()
            )));
        }
        if !out.iter().any(|o| o == r) {
            out.push(r.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_accepts_only_the_verifier_of_the_challenge() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(check_pkce(challenge, Some(verifier)).is_ok());
        assert!(check_pkce(challenge, None).is_err());
        assert!(check_pkce(challenge, Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK")).is_err());
        assert!(check_pkce(challenge, Some("short")).is_err());
        assert!(check_pkce(challenge, Some(&"a".repeat(129))).is_err());
        assert!(check_pkce(challenge, Some(&format!("{}+", &verifier[..43]))).is_err());
        // A verifier outside the RFC's shape is refused even when its challenge matches.
        for bad in [format!("{}+", "a".repeat(42)), "a".repeat(42), "a".repeat(129), format!("{}é", "a".repeat(41))] {
            let own = crate::jose::sha256_b64url(bad.as_bytes());
            assert!(check_pkce(&own, Some(&bad)).is_err(), "{bad:?} is refused");
        }
        for good in ["a".repeat(43), "a".repeat(128), format!("{}-._~", "A9".repeat(20))] {
            assert!(check_pkce(&crate::jose::sha256_b64url(good.as_bytes()), Some(&good)).is_ok(), "{good:?} is accepted");
        }
    }
}
