//! What a grant issued, so that a replayed code can take it all back (RFC 6749 §4.1.2,
//! RFC 9700 §4.2.1), and what userinfo needs to know about a user's access token.
//!
//! Access tokens are JWTs; revoking one puts its `jti` on the `RevokedJti` list that
//! introspection and userinfo check. To know which `jti`s a grant issued, two artifacts:
//!
//! - `Grant`, keyed by grant id ([`GrantRecord`]): the `jti`s (with their `exp`) issued under
//!   the grant. It is created with `put_new` *before* the token is signed and returned, and a
//!   replay writes a revoked record the same way, so whichever comes second sees the other:
//!   - the redemption first: the replay finds the record, revokes every `jti` in it, and
//!     replaces it with a revoked record;
//!   - the replay first (the winner's redemption is still between consuming the code and
//!     recording its token): the redemption's `put_new` fails, and it answers
//!     `invalid_grant` without issuing anything.
//! - `TokenGrant`, keyed by `jti` ([`TokenGrant`]): the grant an access token belongs to and
//!   the `userinfo` member of the grant's `claims` request (OIDC Core §5.5), copied here so
//!   userinfo reads one record. A token without one was not issued to a user (client
//!   credentials), and userinfo refuses it.
//!
//! Both live as long as the longest token they describe can verify (its `exp` plus the clock
//! skew, plus a second).

use super::{OAuthError, Provider};
use crate::model::unix_now;
use crate::store::ArtifactKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An access token issued under a grant.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct IssuedToken {
    /// The token's `jti`.
    pub jti: String,
    /// Its `exp`.
    pub exp: i64,
}

/// The `Grant` artifact.
#[derive(Default, Serialize, Deserialize)]
pub(super) struct GrantRecord {
    /// Tokens issued under the grant.
    #[serde(default)]
    pub tokens: Vec<IssuedToken>,
    /// Set once a replay revoked the grant: nothing may be issued under it any more.
    #[serde(default)]
    pub revoked: bool,
}

/// The `TokenGrant` artifact.
#[derive(Serialize, Deserialize)]
pub(super) struct TokenGrant {
    /// The grant the token was issued under.
    pub grant_id: String,
    /// The `userinfo` member of the grant's `claims` request parameter, if it had one.
    #[serde(default)]
    pub userinfo_claims: Option<Value>,
}

impl Provider {
    /// How long a record about a token expiring at `exp` must live.
    fn keep_until(&self, exp: i64) -> i64 {
        exp + self.cfg.clock_skew.as_secs() as i64 + 1
    }

    /// Records the first token of a new grant before it is handed out. `Ok(false)`: a replay
    /// of the grant's code already revoked it, so the token must not be issued.
    pub(super) async fn record_grant(&self, grant_id: &str, token: IssuedToken, link: &TokenGrant) -> Result<bool, OAuthError> {
        let keep_until = self.keep_until(token.exp);
        let jti = token.jti.clone();
        let record = GrantRecord { tokens: vec![token], revoked: false };
        let payload = serde_json::to_vec(&record).map_err(OAuthError::server_error)?;
        if !self.store.artifacts.put_new(ArtifactKind::Grant, grant_id, &payload, keep_until, unix_now()).await? {
            return Ok(false);
        }
        let link = serde_json::to_vec(link).map_err(OAuthError::server_error)?;
        self.store.artifacts.put(ArtifactKind::TokenGrant, &jti, &link, keep_until, Some(grant_id)).await?;
        Ok(true)
    }

    /// A replayed code: revokes every access token the grant issued (their `jti`s go on the
    /// revocation list until they expire), deletes everything stored under the grant, and
    /// leaves a revoked record so a redemption still in flight issues nothing.
    pub(super) async fn revoke_grant(&self, grant_id: &str) -> Result<(), OAuthError> {
        let now = unix_now();
        // Long enough for any token a redemption in flight could still issue.
        let horizon = self.keep_until(now + self.cfg.max_access_token_lifetime.as_secs() as i64);
        let revoked = serde_json::to_vec(&GrantRecord { tokens: vec![], revoked: true }).map_err(OAuthError::server_error)?;
        let mut revoked_jtis = 0;
        if !self.store.artifacts.put_new(ArtifactKind::Grant, grant_id, &revoked, horizon, now).await? {
            let stored = self.store.artifacts.get(ArtifactKind::Grant, grant_id, now).await?;
            let record: GrantRecord = match stored {
                Some(bytes) => serde_json::from_slice(&bytes).map_err(OAuthError::server_error)?,
                None => GrantRecord::default(),
            };
            for t in &record.tokens {
                let keep_until = self.keep_until(t.exp);
                self.store.artifacts.put(ArtifactKind::RevokedJti, &t.jti, b"", keep_until, None).await?;
                revoked_jtis += 1;
            }
            self.store.artifacts.revoke_by_grant(grant_id).await?;
            self.store.artifacts.put(ArtifactKind::Grant, grant_id, &revoked, horizon, None).await?;
        }
        tracing::warn!(target: "audit", event = "code_replayed", grant_id = %grant_id, revoked_tokens = revoked_jtis);
        Ok(())
    }

    /// The grant of a user's access token, if it was issued to a user.
    pub(super) async fn token_grant(&self, jti: &str) -> Result<Option<TokenGrant>, OAuthError> {
        match self.store.artifacts.get(ArtifactKind::TokenGrant, jti, unix_now()).await? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(OAuthError::server_error)?)),
            None => Ok(None),
        }
    }
}
