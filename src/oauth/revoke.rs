//! `POST /revoke` (RFC 7009).

use super::{FormRequest, OAuthError, Provider};
use crate::store::ArtifactKind;

impl Provider {
    /// Revokes an access token by putting its `jti` on the revocation list until the token
    /// would have expired anyway. Unknown, malformed or already invalid tokens are a success
    /// (RFC 7009 §2.2). A token issued to another client is refused (§2.1).
    pub async fn revoke(&self, req: &FormRequest) -> Result<(), OAuthError> {
        let client = self.authenticate_client(req).await?;
        let token = req.params.require("token")?;
        let Some(claims) = self.active_access_token(token).await? else { return Ok(()) };
        if claims.client_id != client.client_id.as_str() {
            return Err(OAuthError::unauthorized_client("the token was not issued to this client"));
        }
        // Verification accepts the token while now <= exp + skew; a record is gone once
        // expires_at <= now. Keep it one second past the last accepting second.
        let keep_until = claims.exp + self.cfg.clock_skew.as_secs() as i64 + 1;
        self.store.artifacts.put(ArtifactKind::RevokedJti, &claims.jti, b"", keep_until, None).await?;
        tracing::info!(target: "audit", event = "token_revoked", client_id = %client.client_id, jti = %claims.jti);
        Ok(())
    }
}
