//! Authorization codes (RFC 6749 §4.1.2, §10.5; RFC 9700 §4.2.1): 256 random bits handed to
//! the client once, stored only as a hash, consumable once within 60 seconds, and bound to
//! everything the token request must match. The token endpoint consumes them
//! (`token/authorization_code.rs`); a second use finds `AlreadyConsumed` with the grant id,
//! whose tokens are then revoked.

use crate::oauth::{OAuthError, Provider};
use crate::model::unix_now;
use crate::store::ArtifactKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest life of a code (RFC 6749 §4.1.2 recommends at most 10 minutes; OIDC deployments
/// use far less, and the issue asks for at most 60 s).
pub const CODE_LIFETIME_SECS: i64 = 60;

/// What a code stands for. No `Debug`: it carries the user's identity and nonce.
#[derive(Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    /// The client the code was issued to (RFC 6749 §4.1.3: must be the one redeeming it).
    pub client_id: String,
    /// The redirect URI of the authorization request, which the token request must repeat
    /// (RFC 6749 §4.1.3).
    pub redirect_uri: String,
    /// Whether the authorization request named `redirect_uri` (RFC 6749 §4.1.3: then the
    /// token request must repeat it; it could be left out only with a single registered URI).
    #[serde(default)]
    pub redirect_uri_sent: bool,
    /// The PKCE S256 challenge (RFC 7636 §4.6).
    pub code_challenge: String,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// RFC 8707 resources chosen at the authorization endpoint.
    #[serde(default)]
    pub resource: Vec<String>,
    /// OIDC `nonce`, copied into the ID token.
    #[serde(default)]
    pub nonce: Option<String>,
    /// The OIDC `claims` request parameter.
    #[serde(default)]
    pub claims: Option<Value>,
    /// The user (`sub`).
    pub sub: String,
    /// When the user authenticated (unix seconds): `auth_time`.
    pub auth_time: i64,
    /// The browser session (`sid`, OIDC Front-/Back-Channel Logout).
    pub sid: String,
    /// `acr`: `"1"` for a login during this request, `"0"` for a reused session.
    #[serde(default)]
    pub acr: Option<String>,
    /// Authentication methods (`amr`, RFC 8176), e.g. `pwd`.
    #[serde(default)]
    pub amr: Vec<String>,
    /// RFC 9449 §10: the DPoP key the authorization request was bound to (`dpop_jkt`).
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    /// The grant this code starts: every token issued from it carries this id, so a replayed
    /// code revokes them all (RFC 6749 §4.1.2, RFC 9700 §4.2.1).
    pub grant_id: String,
    /// When the code was issued.
    pub issued_at: i64,
}

/// The stored id of a code: base64url SHA-256. A leaked database holds no usable code.
pub fn code_id(code: &str) -> String {
    crate::jose::sha256_b64url(code.as_bytes())
}

impl Provider {
    /// Stores `grant` under a new code and returns the code (shown to the client once).
    pub async fn issue_code(&self, grant: &CodeGrant) -> Result<String, OAuthError> {
        let code = crate::secrets::random_text(32).map_err(OAuthError::server_error)?;
        let payload = serde_json::to_vec(grant).map_err(OAuthError::server_error)?;
        let expires_at = unix_now() + CODE_LIFETIME_SECS;
        self.store
            .artifacts
            .put(ArtifactKind::AuthorizationCode, &code_id(&code), &payload, expires_at, Some(&grant.grant_id))
            .await?;
        Ok(code)
    }
}
