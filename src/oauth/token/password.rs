//! The resource-owner password credentials grant (RFC 6749 §4.3), a legacy grant: RFC 9700
//! §2.4 says it MUST NOT be used, because the client sees the user's password and no second
//! factor or phishing-resistant login can happen. Warden keeps it only for clients an
//! operator registers for it with the CLI (`register/metadata.rs` refuses it to dynamic
//! registration and to public clients), for migrations from systems that used it.

use super::client_credentials::{check_requested_audience, check_requested_scope};
use super::{TokenResponse, UserToken};
use crate::model::{GrantType, Client, Origin, unix_now};
use crate::oauth::id_token::IdTokenFacts;
use crate::oauth::interaction::LoginOutcome;
use crate::oauth::{ErrorCode, FormRequest, OAuthError, Provider};
use crate::secrets::password::Password;

/// Longest username or password looked at: longer ones cannot be anyone's.
const MAX_CREDENTIAL_LEN: usize = 1024;

/// The checks, in this order:
/// 1. client authentication, confidential clients only (RFC 6749 §4.3.2; the dispatcher
///    calls `authenticate_client`) — `invalid_client`;
/// 2. the client is registered for `password` (RFC 6749 §5.2) — `unauthorized_client`;
/// 3. `username` and `password` present (RFC 6749 §4.3.2) — `invalid_request`;
/// 4. `scope` ⊆ the client's registered scopes; none requested → all registered (RFC 6749
///    §3.3) — `invalid_scope`;
/// 5. `resource`/`audience` ⊆ the client's audiences, as for client credentials —
///    `invalid_target`;
/// 6. the username and password, through the login page's own check (`Provider::login`):
///    throttled per (username, address) and per address, one cost and one answer for an
///    unknown user, a wrong password and a disabled user — `invalid_grant`; over the
///    allowance — 429 with `Retry-After` (the password is then not even tried);
/// 7. DPoP, as for the other grants (`Provider::token_dpop_proof`).
///
/// The access token is the user's (`sub`, `auth_time` = now); with `openid` an ID token
/// comes along (`amr` `pwd`, no `nonce`, no `sid`: there is no browser session).
pub(super) async fn issue(p: &Provider, client: &Client, req: &FormRequest) -> Result<TokenResponse, OAuthError> {
    let params = &req.params;
    if !client.allows_grant(GrantType::Password) {
        return Err(OAuthError::unauthorized_client("the client is not registered for the password grant"));
    }
    let username = params.require("username")?;
    let password = params.require("password")?;
    let scope = check_requested_scope(params.get("scope"), &client.metadata.scope)?;
    let default = match client.origin {
        Origin::Dynamic if !p.cfg.registration.issuer_audience => None,
        _ => Some(&p.cfg.default_audience),
    };
    let aud = check_requested_audience(params, &client.metadata.audience, default)?;
    let invalid = || OAuthError::invalid_grant("the username or password is wrong");
    if username.len() > MAX_CREDENTIAL_LEN || password.len() > MAX_CREDENTIAL_LEN {
        return Err(invalid());
    }
    let user = match p.login(username, Password::new(password.to_owned()), req.peer).await {
        LoginOutcome::Success(user) => user,
        LoginOutcome::Invalid => return Err(invalid()),
        LoginOutcome::Throttled(wait) => {
            let mut e = OAuthError::new(ErrorCode::RateLimited, "too many failed sign-in attempts; retry later");
            e.retry_after = Some(wait);
            return Err(e);
        }
        LoginOutcome::Unavailable => {
            return Err(OAuthError::new(ErrorCode::TemporarilyUnavailable, "sign-in is temporarily unavailable"));
        }
    };
    let now = unix_now();
    let proof = p.token_dpop_proof(req, client, now).await?;
    let scope = (!scope.is_empty()).then(|| scope.join(" "));
    let amr = vec!["pwd".to_owned()];
    let token = UserToken {
        client,
        user: &user,
        scope: scope.as_deref(),
        aud: &aud,
        auth_time: now,
        jkt: proof.as_ref().map(|pr| pr.jkt.as_str()),
        userinfo_claims: None,
    };
    let (access_token, lifetime) = p.user_access_token(token, now).await?;
    let id_token = if scope.as_deref().is_some_and(|s| s.split(' ').any(|t| t == "openid")) {
        let facts = IdTokenFacts { nonce: None, auth_time: now, amr: &amr, acr: Some("1"), sid: None, claims: None, scope_claims: &[] };
        Some(p.id_token(client, &user, &facts, Some(&access_token), now)?)
    } else {
        None
    };
    tracing::debug!(target: "audit", event = "token_issued", grant = "password", client_id = %client.client_id, sub = %user.id);
    let token_type = if proof.is_some() { "DPoP" } else { "Bearer" };
    Ok(TokenResponse { access_token, token_type, expires_in: lifetime, scope, id_token, refresh_token: None, dpop_nonce: p.dpop_nonce(now) })
}
