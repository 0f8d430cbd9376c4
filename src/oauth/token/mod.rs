//! `POST /token` (RFC 6749 §3.2): dispatch on `grant_type`, one file per grant.

mod authorization_code;
mod client_credentials;
mod password;
pub(super) mod refresh_token;

use super::grants::{IssuedToken, TokenGrant};
use super::{FormRequest, OAuthError, Provider};
use crate::model::{AccessTokenClaimsRef, AudienceRef, Client, ConfirmationRef, User};
use serde::Serialize;
use serde_json::Value;

/// RFC 6749 §5.1 successful response. Carries a bearer token, so it has no `Debug`.
#[derive(Serialize)]
pub struct TokenResponse {
    /// The access token (a JWT, RFC 9068).
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a key-bound token (RFC 9449 §5).
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Granted scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The ID token (OIDC Core §3.1.3.3), when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The refresh token (RFC 6749 §5.1, §6), when the grant offers one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// A fresh DPoP nonce for the `DPoP-Nonce` header (RFC 9449 §8.2), when nonces are on.
    #[serde(skip)]
    pub dpop_nonce: Option<String>,
}

impl TokenResponse {
    /// The JSON body: the bytes `serde_json` writes for this struct (plainly when an ID token
    /// or a refresh token comes along), and otherwise with the access token
    /// copied in one piece instead of escaped byte by byte when nothing in it needs escaping
    /// (`"`, `\`, controls), which holds for every compact JWS (base64url and dots). The
    /// check is branch-free, so it runs vectorized.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let token = self.access_token.as_bytes();
        let needs_escaping = token.iter().fold(false, |any, &b| any | (b < 0x20) | (b == b'"') | (b == b'\\'));
        if needs_escaping || self.id_token.is_some() || self.refresh_token.is_some() {
            return serde_json::to_vec(self);
        }
        let scope_len = self.scope.as_ref().map_or(0, |s| s.len() + 12);
        let mut out = Vec::with_capacity(token.len() + scope_len + 80);
        out.extend_from_slice(b"{\"access_token\":\"");
        out.extend_from_slice(token);
        out.extend_from_slice(b"\",\"token_type\":");
        serde_json::to_writer(&mut out, self.token_type)?;
        out.extend_from_slice(b",\"expires_in\":");
        serde_json::to_writer(&mut out, &self.expires_in)?;
        if let Some(scope) = &self.scope {
            out.extend_from_slice(b",\"scope\":");
            serde_json::to_writer(&mut out, scope)?;
        }
        out.push(b'}');
        Ok(out)
    }
}

/// Grant types this provider advertises (RFC 8414 metadata, OIDC Discovery): every grant any
/// client may register for. (Legacy grants an operator enables per client are not listed.)
pub const GRANT_TYPES_SUPPORTED: &[&str] = &["authorization_code", "client_credentials", "refresh_token"];

/// Grant types the token endpoint accepts. `password` only for the clients an operator
/// registered for it (legacy, `password.rs`); it is not advertised.
pub const GRANT_TYPES_ACCEPTED: &[&str] = &["authorization_code", "client_credentials", "refresh_token", "password"];

/// RFC 9068 claims of a user's token: the common ones plus `auth_time` (§2.2.1).
#[derive(Serialize)]
struct UserAccessTokenClaims<'a> {
    #[serde(flatten)]
    base: AccessTokenClaimsRef<'a>,
    auth_time: i64,
}

/// A user's RFC 9068 access token about to be signed: the one place user tokens are signed
/// (code grant, refresh, password grant, implicit flow).
pub(super) struct SignedUserToken<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    pub aud: &'a [String],
    pub scope: Option<&'a str>,
    /// The DPoP key (`cnf.jkt`) when bound.
    pub jkt: Option<&'a str>,
    pub auth_time: i64,
    pub jti: &'a str,
    pub exp: i64,
    pub now: i64,
}

impl SignedUserToken<'_> {
    /// Signs with the access-token key.
    pub(super) fn sign(&self, p: &Provider) -> Result<String, OAuthError> {
        let claims = UserAccessTokenClaims {
            base: AccessTokenClaimsRef {
                iss: &p.cfg.issuer,
                sub: self.user.id.as_str(),
                aud: AudienceRef::from_list(self.aud),
                exp: self.exp,
                iat: self.now,
                jti: self.jti,
                client_id: self.client.client_id.as_str(),
                scope: self.scope,
                cnf: self.jkt.map(|jkt| ConfirmationRef { jkt }),
            },
            auth_time: self.auth_time,
        };
        let key = p
            .ring
            .current()
            .signer_or(p.cfg.keys.access_token_alg, p.access_token_fallback)
            .ok_or_else(|| OAuthError::server_error("no active signing key for the access-token algorithm"))?;
        key.sign_jwt("at+jwt", &claims).map_err(OAuthError::server_error)
    }
}

/// A user's access token issued outside the code grant (the password grant, the implicit
/// flow), and what it needs.
pub(in crate::oauth) struct UserToken<'a> {
    /// The client it is issued to.
    pub client: &'a Client,
    /// The user (`sub`).
    pub user: &'a User,
    /// Granted scopes, space-separated.
    pub scope: Option<&'a str>,
    /// `aud`.
    pub aud: &'a [String],
    /// When the user authenticated.
    pub auth_time: i64,
    /// RFC 9449 `cnf.jkt`.
    pub jkt: Option<&'a str>,
    /// The `userinfo` member of a `claims` request.
    pub userinfo_claims: Option<Value>,
}

impl Provider {
    /// Signs a user's RFC 9068 access token and records it under a new grant (so userinfo
    /// accepts it and revocation by grant finds it); returns the token and its lifetime.
    pub(in crate::oauth) async fn user_access_token(&self, t: UserToken<'_>, now: i64) -> Result<(String, u64), OAuthError> {
        let lifetime = self.token_lifetime(t.client.metadata.access_token_lifetime, t.aud).await?;
        let exp = now + lifetime as i64;
        let jti = client_credentials::Jti::new()?;
        let grant_id = crate::secrets::random_text(16).map_err(OAuthError::server_error)?;
        let link = TokenGrant { grant_id: grant_id.clone(), userinfo_claims: t.userinfo_claims };
        if !self.record_grant(&grant_id, IssuedToken { jti: jti.as_str().to_owned(), exp }, &link, 0).await? {
            return Err(OAuthError::server_error("a new grant id was already recorded"));
        }
        let token = SignedUserToken {
            client: t.client,
            user: t.user,
            aud: t.aud,
            scope: t.scope,
            jkt: t.jkt,
            auth_time: t.auth_time,
            jti: jti.as_str(),
            exp,
            now,
        }
        .sign(self)?;
        Ok((token, lifetime))
    }
}

impl Provider {
    /// Handles a token request. Unsupported grants are refused before any client
    /// authentication work.
    pub async fn token(&self, req: &FormRequest) -> Result<TokenResponse, OAuthError> {
        let grant_type = req.params.require("grant_type")?;
        match grant_type {
            "client_credentials" => {
                let client = self.authenticate_client(req).await?;
                client_credentials::issue(self, &client, req).await
            }
            "authorization_code" => authorization_code::issue(self, req).await,
            "refresh_token" => refresh_token::issue(self, req).await,
            "password" => {
                let client = self.authenticate_client(req).await?;
                password::issue(self, &client, req).await
            }
            other => Err(OAuthError::unsupported_grant_type(format!(
                "grant type \"{}\" is not supported; supported: {}",
                other.chars().take(64).collect::<String>(),
                GRANT_TYPES_ACCEPTED.join(", ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_body_is_what_serde_writes() {
        for (token, scope) in [
            ("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_", Some("read write")),
            ("a.b.c", None),
            ("not \"jws\"\n", Some("s\"\\")),
            ("back\\slash", None),
            // Two characters to escape: a check that toggled per character would miss them.
            ("two \"quotes\"", None),
            ("\\\\", None),
            ("\"\\", None),
            ("\"\"", None),
            ("\u{1}\u{1f}", None),
            ("ctl\u{1}", None),
            ("del\u{7f} é", None),
            ("", Some("")),
        ] {
            let t = TokenResponse { access_token: token.into(), token_type: "Bearer", expires_in: 600, scope: scope.map(str::to_owned), id_token: None, refresh_token: None, dpop_nonce: None };
            assert_eq!(String::from_utf8(t.to_json().unwrap()).unwrap(), serde_json::to_string(&t).unwrap());
        }
    }
}
