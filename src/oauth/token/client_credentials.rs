//! The client credentials grant (RFC 6749 §4.4) issuing RFC 9068 JWT access tokens.

use super::TokenResponse;
use crate::model::{AccessTokenClaimsRef, AudienceRef, Client, ConfirmationRef, GrantType, Origin, unix_now};
use crate::oauth::register::metadata::is_scope_token;
use crate::oauth::{FormRequest, OAuthError, Params, Provider};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::borrow::Cow;

/// - the client is registered for `client_credentials`;
/// - scope: requested ⊆ registered (`invalid_scope`); none requested → all registered;
/// - audience: `resource` (RFC 8707) / `audience` values ⊆ the client's audiences
///   (`invalid_target`); none requested → the client's audiences; a client registered
///   without any gets the default audience if an operator registered it, and a dynamically
///   registered one only if `registration.issuer_audience` allows (else `invalid_target`);
/// - lifetime: the client's (or the default), shortened by any registered resource in the
///   audience, capped by the maximum;
/// - DPoP (RFC 9449 §5): with a valid proof the token is bound to its key (`cnf.jkt`) and its
///   type is `DPoP` (`Provider::token_dpop_proof` lists the checks).
pub(super) async fn issue(p: &Provider, client: &Client, req: &FormRequest) -> Result<TokenResponse, OAuthError> {
    let params = &req.params;
    if !client.allows_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::unauthorized_client("the client is not registered for client_credentials"));
    }
    let scope = check_requested_scope(params.get("scope"), &client.metadata.scope)?;
    let default = match client.origin {
        Origin::Dynamic if !p.cfg.registration.issuer_audience => None,
        _ => Some(&p.cfg.default_audience),
    };
    let aud = check_requested_audience(params, &client.metadata.audience, default)?;
    let lifetime = p.token_lifetime(client.metadata.access_token_lifetime, &aud).await?;
    let now = unix_now();
    let proof = p.token_dpop_proof(req, client, now).await?;
    let jti = Jti::new()?;
    let scope = (!scope.is_empty()).then(|| scope.join(" "));
    let claims = AccessTokenClaimsRef {
        iss: &p.cfg.issuer,
        sub: client.client_id.as_str(),
        aud: AudienceRef::from_list(&aud),
        exp: now + lifetime as i64,
        iat: now,
        jti: jti.as_str(),
        client_id: client.client_id.as_str(),
        scope: scope.as_deref(),
        cnf: proof.as_ref().map(|p| ConfirmationRef { jkt: &p.jkt }),
    };
    let key = p
        .ring
        .current()
        .signer_or(p.cfg.keys.access_token_alg, p.access_token_fallback)
        .ok_or_else(|| OAuthError::server_error("no active signing key for the access-token algorithm"))?;
    let access_token = key.sign_jwt("at+jwt", &claims).map_err(OAuthError::server_error)?;
    tracing::debug!(target: "audit", event = "token_issued", grant = "client_credentials", client_id = %client.client_id, jti = %claims.jti);
    let token_type = if proof.is_some() { "DPoP" } else { "Bearer" };
    Ok(TokenResponse { access_token, token_type, expires_in: lifetime, scope, id_token: None, dpop_nonce: p.dpop_nonce(now) })
}

/// A token id: 128 random bits, base64url (22 characters), on the stack.
pub(super) struct Jti([u8; 22]);

impl Jti {
    pub(super) fn new() -> Result<Jti, OAuthError> {
        let mut bits = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bits).map_err(|_| OAuthError::server_error("the random number generator failed"))?;
        let mut text = [0u8; 22];
        URL_SAFE_NO_PAD.encode_slice(bits, &mut text).map_err(OAuthError::server_error)?;
        Ok(Jti(text))
    }

    pub(super) fn as_str(&self) -> &str {
        // base64url output is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// RFC 6749 §3.3.
fn check_requested_scope<'a>(requested: Option<&'a str>, registered: &'a [String]) -> Result<Vec<&'a str>, OAuthError> {
    let Some(requested) = requested else { return Ok(registered.iter().map(String::as_str).collect()) };
    let mut out: Vec<&str> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !is_scope_token(s) {
            return Err(OAuthError::invalid_scope("the scope parameter is malformed"));
        }
        if !registered.iter().any(|r| r == s) {
            return Err(OAuthError::invalid_scope(format!(
                "scope \"{s}\" is not allowed for this client"
            )));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// RFC 8707 §2: each `resource` must be one the client may get tokens for. Borrows the
/// registered list (or the default) when nothing is requested; `default` is `None` for a
/// client that may not fall back on the default audience.
fn check_requested_audience<'a>(params: &Params, registered: &'a [String], default: Option<&'a String>) -> Result<Cow<'a, [String]>, OAuthError> {
    let allowed: &[String] = match (registered.is_empty(), default) {
        (false, _) => registered,
        (true, Some(d)) => std::slice::from_ref(d),
        (true, None) => {
            return Err(OAuthError::invalid_target(
                "the client is registered without an audience; register the APIs it calls (\"audience\")",
            ));
        }
    };
    let mut requested = params.all("resource");
    requested.extend(params.all("audience"));
    if requested.is_empty() {
        return Ok(Cow::Borrowed(allowed));
    }
    let mut out: Vec<String> = Vec::new();
    for r in requested {
        if !allowed.iter().any(|a| a == r) {
            return Err(OAuthError::invalid_target(format!(
                "the client may not obtain tokens for \"{}\"",
                r.chars().take(200).collect::<String>()
            )));
        }
        if !out.iter().any(|o| o == r) {
            out.push(r.to_owned());
        }
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_limited_to_the_registered_set() {
        let reg = vec!["read".to_owned(), "write".to_owned()];
        assert_eq!(check_requested_scope(None, &reg).unwrap(), ["read", "write"]);
        assert_eq!(check_requested_scope(Some("write"), &reg).unwrap(), ["write"]);
        assert_eq!(check_requested_scope(Some("read  read"), &reg).unwrap(), ["read"]);
        assert!(check_requested_scope(Some("admin"), &reg).is_err());
        assert!(check_requested_scope(Some("re\\ad"), &reg).is_err());
    }

    #[test]
    fn token_ids_are_128_random_bits_in_base64url() {
        let (a, b) = (Jti::new().unwrap(), Jti::new().unwrap());
        assert_eq!(a.as_str().len(), 22);
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(URL_SAFE_NO_PAD.decode(a.as_str()).unwrap().len(), 16);
    }
}
