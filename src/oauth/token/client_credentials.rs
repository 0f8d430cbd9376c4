//! The client credentials grant (RFC 6749 §4.4) issuing RFC 9068 JWT access tokens.

use super::TokenResponse;
use crate::model::{AccessTokenClaims, Audience, Client, GrantType, Origin, unix_now};
use crate::oauth::register::metadata::is_scope_token;
use crate::oauth::{OAuthError, Params, Provider};

/// - the client is registered for `client_credentials`;
/// - scope: requested ⊆ registered (`invalid_scope`); none requested → all registered;
/// - audience: `resource` (RFC 8707) / `audience` values ⊆ the client's audiences
///   (`invalid_target`); none requested → the client's audiences; a client registered
///   without any gets the default audience if an operator registered it, and a dynamically
///   registered one only if `registration.issuer_audience` allows (else `invalid_target`);
/// - lifetime: the client's (or the default), shortened by any registered resource in the
///   audience, capped by the maximum.
pub(super) async fn issue(p: &Provider, client: &Client, params: &Params) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::unauthorized_client("the client is not registered for client_credentials"));
    }
    let scope = check_requested_scope(params.get("scope"), &client.metadata.scope)?;
    let default = match client.origin {
        Origin::Dynamic if !p.cfg.registration.issuer_audience => None,
        _ => Some(p.cfg.default_audience.as_str()),
    };
    let aud = check_requested_audience(params, &client.metadata.audience, default)?;
    let lifetime = p.token_lifetime(client.metadata.access_token_lifetime, &aud).await?;
    let now = unix_now();
    let claims = AccessTokenClaims {
        iss: p.cfg.issuer.clone(),
        sub: client.client_id.0.clone(),
        aud: Audience::from_list(aud),
        exp: now + lifetime as i64,
        iat: now,
        jti: crate::secrets::random_text(16).map_err(OAuthError::server_error)?,
        client_id: client.client_id.0.clone(),
        scope: (!scope.is_empty()).then(|| scope.join(" ")),
    };
    let key = p
        .ring
        .current()
        .signer_or_latest(p.cfg.keys.access_token_alg)
        .ok_or_else(|| OAuthError::server_error("no active signing key for the access-token algorithm"))?;
    let access_token = key.sign_jwt("at+jwt", &claims).map_err(OAuthError::server_error)?;
    tracing::debug!(target: "audit", event = "token_issued", grant = "client_credentials", client_id = %client.client_id, jti = %claims.jti);
    Ok(TokenResponse { access_token, token_type: "Bearer", expires_in: lifetime, scope: claims.scope })
}

/// RFC 6749 §3.3.
fn check_requested_scope(requested: Option<&str>, registered: &[String]) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else { return Ok(registered.to_vec()) };
    let mut out: Vec<String> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !is_scope_token(s) {
            return Err(OAuthError::invalid_scope("the scope parameter is malformed"));
        }
        if !registered.iter().any(|r| r == s) {
            return Err(OAuthError::invalid_scope(format!(
                "scope \"{s}\" is not allowed for this client"
            )));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// RFC 8707 §2: each `resource` must be one the client may get tokens for.
fn check_requested_audience(params: &Params, registered: &[String], default: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let allowed: Vec<String> = match (registered.is_empty(), default) {
        (false, _) => registered.to_vec(),
        (true, Some(d)) => vec![d.to_owned()],
        (true, None) => {
            return Err(OAuthError::invalid_target(
                "the client is registered without an audience; register the APIs it calls (\"audience\")",
            ));
        }
    };
    let mut requested = params.all("resource");
    requested.extend(params.all("audience"));
    if requested.is_empty() {
        return Ok(allowed);
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
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_limited_to_the_registered_set() {
        let reg = vec!["read".to_owned(), "write".to_owned()];
        assert_eq!(check_requested_scope(None, &reg).unwrap(), reg);
        assert_eq!(check_requested_scope(Some("write"), &reg).unwrap(), ["write"]);
        assert_eq!(check_requested_scope(Some("read  read"), &reg).unwrap(), ["read"]);
        assert!(check_requested_scope(Some("admin"), &reg).is_err());
        assert!(check_requested_scope(Some("re\\ad"), &reg).is_err());
    }
}
