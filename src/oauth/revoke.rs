//! `POST /revoke` (RFC 7009).

use super::{FormRequest, OAuthError, Provider};

impl Provider {
    /// Revokes an access token by putting its `jti` on the revocation list until the token
    /// would have expired anyway. Unknown, malformed or already invalid tokens are a success
    /// (RFC 7009 §2.2). A token issued to another client is refused (§2.1).
    ///
    /// A refresh token (whatever the `token_type_hint`: §2.1 lets the server search all its
    /// tokens) revokes its whole grant (RFC 7009 §2.1: "the authorization server SHOULD also
    /// invalidate all access tokens based on the same authorization grant"): every refresh
    /// token of the family and every access token the grant issued (`grants.rs`).
    ///
    /// Public clients revoke their own tokens by `client_id` alone (§2.1 only requires the
    /// authentication of clients that have credentials); the ownership check still applies.
    pub async fn revoke(&self, req: &FormRequest) -> Result<(), OAuthError> {
        let client = self.authenticate_client_or_public(req).await?;
        let token = req.params.require("token")?;
        if let Some(rec) = self.active_refresh_token(token).await? {
            if rec.grant.client_id != client.client_id.as_str() {
                return Err(OAuthError::unauthorized_client("the token was not issued to this client"));
            }
            let revoked_tokens = self.revoke_grant(&rec.grant.grant_id).await?;
            tracing::info!(target: "audit", event = "refresh_token_revoked", client_id = %client.client_id, grant_id = %rec.grant.grant_id, revoked_tokens);
            return Ok(());
        }
        let Some(claims) = self.active_access_token(token).await? else { return Ok(()) };
        if claims.client_id != client.client_id.as_str() {
            return Err(OAuthError::unauthorized_client("the token was not issued to this client"));
        }
        self.revoke_jti(&claims.jti, claims.exp).await?;
        tracing::info!(target: "audit", event = "token_revoked", client_id = %client.client_id, jti = %claims.jti);
        Ok(())
    }
}
