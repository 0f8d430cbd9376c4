//! The implicit flow's successful response (OIDC Core §3.2.2.5, §3.2.2.10), a legacy flow:
//! RFC 9700 §2.1.2 says clients SHOULD NOT use it, since tokens travel in the front channel
//! where they leak (history, referrers, injected scripts) and cannot be sender-constrained.
//! Warden serves it only to clients an operator registered for the `implicit` grant
//! (`register/metadata.rs`); `request.rs` has already required `nonce` and `openid`, and
//! refused the query response mode.
//!
//! - `id_token`: an ID token alone; with no access token to reach userinfo, the scopes'
//!   claims go into it (OIDC Core §5.4);
//! - `id_token token`: an RFC 9068 access token for the user (`Bearer`, never DPoP-bound:
//!   no proof can come through a redirect) and an ID token with `at_hash`
//!   (§3.2.2.10: REQUIRED here);
//! - with `access_token`: `token_type`, `expires_in` and `scope`; always `state` (when sent)
//!   and `iss` (`response.rs`).

use super::RedirectResponse;
use crate::model::{Client, Origin, User, unix_now};
use crate::oauth::claims::requested_member;
use crate::oauth::id_token::IdTokenFacts;
use crate::oauth::interaction::{Pending, Session};
use crate::oauth::token::UserToken;
use crate::oauth::{OAuthError, Provider};

impl Provider {
    /// The implicit flow's answer for `user`, signed in with `session`.
    pub(in crate::oauth) async fn implicit_response(&self, pending: &Pending, client: &Client, user: &User, session: &Session) -> Result<RedirectResponse, OAuthError> {
        let now = unix_now();
        let mut params: Vec<(&'static str, String)> = Vec::new();
        let with_token = pending.response_type == super::ResponseType::IdTokenToken;
        let scope = pending.scope.join(" ");
        let access_token = if with_token {
            let aud = self.implicit_audience(pending, client)?;
            let t = UserToken {
                client,
                user,
                scope: Some(&scope),
                aud: &aud,
                auth_time: session.auth_time,
                jkt: None,
                userinfo_claims: requested_member(pending.claims.as_ref(), "userinfo").cloned(),
            };
            let (token, lifetime) = self.user_access_token(t, now).await?;
            params.push(("access_token", token.clone()));
            params.push(("token_type", "Bearer".to_owned()));
            params.push(("expires_in", lifetime.to_string()));
            params.push(("scope", scope.clone()));
            Some(token)
        } else {
            None
        };
        let scopes: Vec<&str> = pending.scope.iter().map(String::as_str).collect();
        let facts = IdTokenFacts {
            nonce: pending.nonce.as_deref(),
            auth_time: session.auth_time,
            amr: &session.amr,
            acr: Some(crate::oauth::interaction::acr_of(pending, session)),
            sid: Some(&session.sid),
            claims: pending.claims.as_ref(),
            scope_claims: if with_token { &[] } else { &scopes },
        };
        let id_token = self.id_token(client, user, &facts, access_token.as_deref(), now)?;
        params.insert(0, ("id_token", id_token));
        tracing::debug!(target: "audit", event = "token_issued", grant = "implicit", client_id = %client.client_id, sub = %user.id);
        Ok(RedirectResponse { to: pending.redirect(&self.cfg.issuer), params })
    }

    /// The access token's audience: the request's resources (RFC 8707, already checked),
    /// else the client's audiences, else the default audience (for an operator's client).
    fn implicit_audience(&self, pending: &Pending, client: &Client) -> Result<Vec<String>, OAuthError> {
        if !pending.resource.is_empty() {
            return Ok(pending.resource.clone());
        }
        if !client.metadata.audience.is_empty() {
            return Ok(client.metadata.audience.clone());
        }
        match client.origin {
            Origin::Dynamic if !self.cfg.registration.issuer_audience => Err(OAuthError::invalid_target(
                "the client is registered without an audience; register the APIs it calls (\"audience\")",
            )),
            _ => Ok(vec![self.cfg.default_audience.clone()]),
        }
    }
}
