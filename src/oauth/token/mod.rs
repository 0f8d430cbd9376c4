//! `POST /token` (RFC 6749 §3.2): dispatch on `grant_type`, one file per grant.

mod authorization_code;
mod client_credentials;

use super::{FormRequest, OAuthError, Provider};
use serde::Serialize;

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
    /// A fresh DPoP nonce for the `DPoP-Nonce` header (RFC 9449 §8.2), when nonces are on.
    #[serde(skip)]
    pub dpop_nonce: Option<String>,
}

impl TokenResponse {
    /// The JSON body: the bytes `serde_json` writes for this struct (plainly when an ID token
    /// comes along), and otherwise with the access token
    /// copied in one piece instead of escaped byte by byte when nothing in it needs escaping
    /// (`"`, `\`, controls), which holds for every compact JWS (base64url and dots). The
    /// check is branch-free, so it runs vectorized.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let token = self.access_token.as_bytes();
        let needs_escaping = token.iter().fold(false, |any, &b| any | (b < 0x20) | (b == b'"') | (b == b'\\'));
        if needs_escaping || self.id_token.is_some() {
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
pub const GRANT_TYPES_SUPPORTED: &[&str] = &["authorization_code", "client_credentials"];

/// Grant types the token endpoint accepts.
pub const GRANT_TYPES_ACCEPTED: &[&str] = &["authorization_code", "client_credentials"];

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
            ("ctl\u{1}", None),
            ("del\u{7f} é", None),
            ("", Some("")),
        ] {
            let t = TokenResponse { access_token: token.into(), token_type: "Bearer", expires_in: 600, scope: scope.map(str::to_owned), id_token: None, dpop_nonce: None };
            assert_eq!(String::from_utf8(t.to_json().unwrap()).unwrap(), serde_json::to_string(&t).unwrap());
        }
    }
}
