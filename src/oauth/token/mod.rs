//! `POST /token` (RFC 6749 §3.2): dispatch on `grant_type`, one file per grant.

mod client_credentials;

use super::{FormRequest, OAuthError, Provider};
use serde::Serialize;

/// RFC 6749 §5.1 successful response. Carries a bearer token, so it has no `Debug`.
#[derive(Serialize)]
pub struct TokenResponse {
    /// The access token (a JWT, RFC 9068).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Granted scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Grant types this provider implements at the token endpoint.
pub const GRANT_TYPES_SUPPORTED: &[&str] = &["client_credentials"];

impl Provider {
    /// Handles a token request. Unsupported grants are refused before any client
    /// authentication work.
    pub async fn token(&self, req: &FormRequest) -> Result<TokenResponse, OAuthError> {
        let grant_type = req.params.require("grant_type")?;
        match grant_type {
            "client_credentials" => {
                let client = self.authenticate_client(req).await?;
                client_credentials::issue(self, &client, &req.params).await
            }
            other => Err(OAuthError::unsupported_grant_type(format!(
                "grant type \"{}\" is not supported; supported: {}",
                other.chars().take(64).collect::<String>(),
                GRANT_TYPES_SUPPORTED.join(", ")
            ))),
        }
    }
}
