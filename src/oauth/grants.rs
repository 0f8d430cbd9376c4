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
//! skew, plus a second), and the `Grant` record at least as long as the grant's refresh token.
//!
//! # Refresh tokens (the family)
//!
//! A grant's refresh tokens (`token/refresh_token.rs`) are stored under the grant id, so
//! [`Provider::revoke_grant`] deletes them with everything else the grant left behind. A
//! refresh extends the same `Grant` record with the new access token's `jti`
//! ([`Provider::extend_grant`]). That is a read-modify-write with no lock, and it is safe
//! because:
//! - writers are serialized: only the request that consumed the family's one live refresh
//!   token (an atomic consume) extends the record, and it creates the next refresh token only
//!   afterwards;
//! - revocation does not rely on the record alone: [`Provider::revoke_grant`] first sets a
//!   `GrantRevoked` marker (a separate artifact nobody else writes), then reads the record and
//!   revokes every `jti` in it. A writer appends its `jti` first and reads the marker after.
//!   Whichever way the two interleave, either the revoker reads the appended `jti`, or the
//!   writer sees the marker, revokes its own `jti` and issues nothing (a Dekker-style pair of
//!   write-then-read on one store, whose statements are atomic).
//!
//! The marker outlives every refresh token the family could still hold (the longest refresh
//! lifetime), so a refresh token stored by a writer after the revoker's delete is refused too.

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

    /// Puts the `jti` of an access token expiring at `exp` on the revocation list, for as
    /// long as the token could still verify: verification accepts it while now <= exp + skew,
    /// and a record is gone once its expiry <= now.
    pub(super) async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), OAuthError> {
        self.store.artifacts.put(ArtifactKind::RevokedJti, jti, b"", self.keep_until(exp), None).await?;
        Ok(())
    }

    /// Records the first token of a new grant before it is handed out; the record lives at
    /// least until `family_until` (the expiry of the grant's refresh token, or 0). `Ok(false)`:
    /// a replay of the grant's code already revoked it, so the token must not be issued.
    pub(super) async fn record_grant(&self, grant_id: &str, token: IssuedToken, link: &TokenGrant, family_until: i64) -> Result<bool, OAuthError> {
        let keep_until = self.keep_until(token.exp);
        let jti = token.jti.clone();
        let record = GrantRecord { tokens: vec![token], revoked: false };
        let payload = serde_json::to_vec(&record).map_err(OAuthError::server_error)?;
        if !self.store.artifacts.put_new(ArtifactKind::Grant, grant_id, &payload, keep_until.max(family_until), unix_now()).await? {
            return Ok(false);
        }
        let link = serde_json::to_vec(link).map_err(OAuthError::server_error)?;
        self.store.artifacts.put(ArtifactKind::TokenGrant, &jti, &link, keep_until, Some(grant_id)).await?;
        Ok(true)
    }

    /// Whether the grant (its refresh-token family) was revoked.
    pub(super) async fn grant_revoked(&self, grant_id: &str) -> Result<bool, OAuthError> {
        Ok(self.store.artifacts.get(ArtifactKind::GrantRevoked, grant_id, unix_now()).await?.is_some())
    }

    /// A refresh: adds `token` to the grant's record (which then lives at least until
    /// `family_until`), then checks the revocation marker (module doc). Only the request that
    /// consumed the family's live refresh token may call this. `Ok(false)`: the family was
    /// revoked, `token` is on the revocation list, and nothing may be issued.
    pub(super) async fn extend_grant(&self, grant_id: &str, token: IssuedToken, link: &TokenGrant, family_until: i64) -> Result<bool, OAuthError> {
        let now = unix_now();
        let mut record: GrantRecord = match self.store.artifacts.get(ArtifactKind::Grant, grant_id, now).await? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(OAuthError::server_error)?,
            None => GrantRecord::default(),
        };
        if record.revoked || self.grant_revoked(grant_id).await? {
            return Ok(false);
        }
        // Tokens that no longer verify need no revoking: drop them so the record stays small.
        record.tokens.retain(|t| self.keep_until(t.exp) > now);
        let (jti, exp) = (token.jti.clone(), token.exp);
        record.tokens.push(token);
        let keep_until = record.tokens.iter().map(|t| self.keep_until(t.exp)).max().unwrap_or(0).max(family_until);
        let payload = serde_json::to_vec(&record).map_err(OAuthError::server_error)?;
        self.store.artifacts.put(ArtifactKind::Grant, grant_id, &payload, keep_until, None).await?;
        let link = serde_json::to_vec(link).map_err(OAuthError::server_error)?;
        self.store.artifacts.put(ArtifactKind::TokenGrant, &jti, &link, self.keep_until(exp), Some(grant_id)).await?;
        if self.grant_revoked(grant_id).await? {
            self.revoke_jti(&jti, exp).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Revokes a grant — a replayed code, a reused refresh token, or a refresh token revoked
    /// by RFC 7009: marks it revoked (module doc), revokes every access token it issued (their
    /// `jti`s go on the revocation list until they expire), deletes everything stored under
    /// the grant (codes, refresh tokens, token links), and leaves a revoked record so a
    /// redemption still in flight issues nothing. Returns how many access tokens it revoked.
    pub(super) async fn revoke_grant(&self, grant_id: &str) -> Result<u32, OAuthError> {
        let now = unix_now();
        // Long enough for any token a redemption in flight could still issue.
        let horizon = self.keep_until(now + self.cfg.max_access_token_lifetime.as_secs() as i64);
        // Long enough for any refresh token of the family that could still be stored.
        let family_horizon = horizon.max(self.keep_until(now + self.cfg.refresh_token_max_lifetime.as_secs() as i64));
        self.store.artifacts.put(ArtifactKind::GrantRevoked, grant_id, b"", family_horizon, None).await?;
        let revoked = serde_json::to_vec(&GrantRecord { tokens: vec![], revoked: true }).map_err(OAuthError::server_error)?;
        let mut revoked_jtis = 0;
        if !self.store.artifacts.put_new(ArtifactKind::Grant, grant_id, &revoked, horizon, now).await? {
            let stored = self.store.artifacts.get(ArtifactKind::Grant, grant_id, now).await?;
            let record: GrantRecord = match stored {
                Some(bytes) => serde_json::from_slice(&bytes).map_err(OAuthError::server_error)?,
                None => GrantRecord::default(),
            };
            for t in &record.tokens {
                self.revoke_jti(&t.jti, t.exp).await?;
                revoked_jtis += 1;
            }
            self.store.artifacts.put(ArtifactKind::Grant, grant_id, &revoked, horizon, None).await?;
        }
        self.store.artifacts.revoke_by_grant(grant_id).await?;
        Ok(revoked_jtis)
    }

    /// The grant of a user's access token, if it was issued to a user.
    pub(super) async fn token_grant(&self, jti: &str) -> Result<Option<TokenGrant>, OAuthError> {
        match self.store.artifacts.get(ArtifactKind::TokenGrant, jti, unix_now()).await? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(OAuthError::server_error)?)),
            None => Ok(None),
        }
    }
}
