//! The user's side of the authorization endpoint: the browser session, login, consent, and
//! the decision that ends an authorization request with a code or an error for the client.
//!
//! A checked request that needs the user is kept as an *interaction* (a short-lived artifact
//! keyed by the hash of a random id in the page's URL); the pages post back to it with a CSRF
//! token bound to the browser's own cookie ([`csrf`]). Signing in makes a new server-side
//! session (store-backed, so every node sees it) with a new id — never one the browser
//! brought — and the `sid` the ID token carries.

pub mod csrf;
pub mod logout;
mod session;

pub use session::{Session, SessionCookie};

use super::authorize::code::CodeGrant;
use super::authorize::{AuthorizationRequest, AuthzErrorCode, Prompt, Redirect, RedirectResponse, ResponseMode, ResponseType};
use super::{OAuthError, Provider};
use crate::model::{Client, User, UserId, unix_now};
use crate::store::ArtifactKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// How long a user has to finish signing in and consenting.
pub const INTERACTION_LIFETIME_SECS: i64 = 15 * 60;
/// How long a remembered consent lasts.
const CONSENT_LIFETIME_SECS: i64 = 365 * 24 * 3600;

/// The stored id of a secret handed to the browser (interaction id, session id): its
/// base64url SHA-256, so the store holds nothing a browser could present.
pub(super) fn artifact_id(secret: &str) -> String {
    crate::jose::sha256_b64url(secret.as_bytes())
}

/// A checked authorization request waiting for the user. No `Debug`: it holds the user's
/// nonce and state.
#[derive(Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The client.
    pub client_id: String,
    /// Where the answer goes.
    pub redirect_uri: String,
    /// Whether the request named the redirect URI.
    pub redirect_uri_sent: bool,
    /// How the answer travels.
    pub response_mode: ResponseMode,
    /// What the answer carries: a code, or (legacy implicit flow) tokens.
    #[serde(default)]
    pub response_type: ResponseType,
    /// The client's `state`.
    pub state: Option<String>,
    /// Requested scopes.
    pub scope: Vec<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// OIDC `nonce`.
    pub nonce: Option<String>,
    /// `prompt=login`: the user must sign in during this interaction, whatever session exists.
    pub force_login: bool,
    /// `prompt=consent`: ask again even if remembered.
    pub force_consent: bool,
    /// `max_age`.
    pub max_age: Option<u64>,
    /// `login_hint`, to prefill the username.
    pub login_hint: Option<String>,
    /// The `claims` request parameter.
    pub claims: Option<Value>,
    /// RFC 8707 resources.
    pub resource: Vec<String>,
    /// RFC 9449 §10 `dpop_jkt`.
    pub dpop_jkt: Option<String>,
    /// Set when the user signed in during this interaction (session id hash): `prompt=login`
    /// and `max_age` are then satisfied by that session.
    #[serde(default)]
    pub signed_in_session: Option<String>,
}

impl Pending {
    fn from_request(r: &AuthorizationRequest) -> Self {
        Self {
            client_id: r.client.client_id.as_str().to_owned(),
            redirect_uri: r.redirect.uri.clone(),
            redirect_uri_sent: r.redirect_uri_sent,
            response_mode: r.redirect.mode,
            response_type: r.response_type,
            state: r.redirect.state.clone(),
            scope: r.scope.clone(),
            code_challenge: r.code_challenge.clone(),
            nonce: r.nonce.clone(),
            force_login: r.prompt.login,
            force_consent: r.prompt.consent,
            max_age: r.max_age,
            login_hint: r.login_hint.clone(),
            claims: r.claims.clone(),
            resource: r.resource.clone(),
            dpop_jkt: r.dpop_jkt.clone(),
            signed_in_session: None,
        }
    }

    /// Where answers to this request go.
    pub fn redirect(&self, issuer: &str) -> Redirect {
        Redirect { uri: self.redirect_uri.clone(), mode: self.response_mode, state: self.state.clone(), issuer: issuer.to_owned() }
    }
}

/// What the browser sees next.
pub enum Step {
    /// The request is answered: send this back to the client.
    Respond(RedirectResponse),
    /// The user must sign in: the login page of this interaction.
    Login {
        /// The interaction id (for the page's URL).
        id: String,
    },
    /// The user must consent: the consent page of this interaction.
    Consent {
        /// The interaction id.
        id: String,
    },
}

/// How a login attempt ended.
pub enum LoginOutcome {
    /// The user, signed in.
    Success(Box<User>),
    /// Wrong username or password (one answer for both).
    Invalid,
    /// Too many failures from this address (for this account, or at all): retry after this.
    Throttled(std::time::Duration),
    /// The store could not be asked.
    Unavailable,
}

/// A client's name for pages: its registered name, else its id.
pub fn display_name(c: &Client) -> String {
    c.metadata.client_name.clone().unwrap_or_else(|| c.client_id.as_str().to_owned())
}

impl Provider {
    /// Checks a username and password from the login page, throttled like client
    /// authentication: failures are counted per (username, address) and per address, never
    /// per account alone, so a stranger cannot lock a user out; a throttled address gets a
    /// wait, checked before the (slow) password hash runs.
    pub async fn login(&self, username: &str, password: crate::secrets::password::Password, ip: std::net::IpAddr) -> LoginOutcome {
        let account = username.trim().to_ascii_lowercase();
        if let Some(wait) = self.logins.blocked(Some(&account), ip) {
            return LoginOutcome::Throttled(wait);
        }
        match self.authenticate_user(username, password).await {
            Ok(user) => LoginOutcome::Success(Box::new(user)),
            Err(super::users::LoginError::InvalidCredentials) => {
                tracing::debug!(target: "audit", event = "login_failed", %ip);
                match self.logins.count(Some(&account), ip) {
                    Err(wait) => LoginOutcome::Throttled(wait),
                    Ok(()) => {
                        // Growing delays for guessing: the 4th failure for this account from
                        // this address waits 0.25 s, then twice as long each time, at most 2 s
                        // (a task sleeping, not a blocked thread).
                        let n = self.logins.failures(Some(&account), ip);
                        if n >= 4 {
                            tokio::time::sleep(login_delay(n)).await;
                        }
                        LoginOutcome::Invalid
                    }
                }
            }
            Err(super::users::LoginError::Unavailable(e)) => {
                tracing::warn!(error = %e, "login: the store is unavailable");
                LoginOutcome::Unavailable
            }
        }
    }

    /// The CSRF token of interaction `id`'s forms in the browser holding `cookie`.
    pub fn csrf_token(&self, cookie: &str, id: &str) -> String {
        self.csrf.token(cookie, id)
    }

    /// Whether a form's CSRF token fits the browser's cookie and the interaction.
    pub fn csrf_ok(&self, cookie: &str, id: &str, token: &str) -> bool {
        self.csrf.check(cookie, id, token)
    }

    /// The signed-in user who may answer `pending`, if any (see [`Self::usable_session`]).
    pub async fn signed_in_user(&self, session: Option<&Session>, pending: &Pending) -> Result<Option<User>, OAuthError> {
        self.usable_session(session, pending, unix_now()).await
    }

    /// A session that may answer `pending` without a new login: live, its user still there and
    /// enabled, and within `max_age`. With `prompt=login` only a session made during this very
    /// interaction counts.
    async fn usable_session(&self, session: Option<&Session>, pending: &Pending, now: i64) -> Result<Option<User>, OAuthError> {
        let Some(s) = session else { return Ok(None) };
        if pending.force_login && pending.signed_in_session.as_deref() != Some(s.id_hash.as_str()) {
            return Ok(None);
        }
        // `max_age=0` asks for a login now, as `prompt=login` does.
        if let Some(max_age) = pending.max_age
            && (max_age == 0 || now.saturating_sub(s.auth_time) > max_age as i64)
            && pending.signed_in_session.as_deref() != Some(s.id_hash.as_str())
        {
            return Ok(None);
        }
        let user = self.store.catalog.user(&UserId(s.sub.clone())).await?;
        Ok(user.filter(|u| !u.disabled))
    }

    /// Whether `user` already agreed to give `client` these scopes (or needs not: a
    /// first-party client).
    async fn consented(&self, user: &User, client: &Client, scope: &[String], now: i64) -> Result<bool, OAuthError> {
        if client.metadata.first_party {
            return Ok(true);
        }
        let key = format!("{}:{}", user.id.as_str(), client.client_id.as_str());
        let Some(stored) = self.store.artifacts.get(ArtifactKind::Consent, &key, now).await? else { return Ok(false) };
        let granted: Vec<String> = serde_json::from_slice(&stored).unwrap_or_default();
        Ok(scope.iter().all(|s| granted.contains(s)))
    }

    /// Remembers that `user` gave `client` these scopes (added to what it gave before).
    pub async fn remember_consent(&self, user: &User, client: &Client, scope: &[String], now: i64) -> Result<(), OAuthError> {
        let key = format!("{}:{}", user.id.as_str(), client.client_id.as_str());
        let mut granted: Vec<String> = match self.store.artifacts.get(ArtifactKind::Consent, &key, now).await? {
            Some(v) => serde_json::from_slice(&v).unwrap_or_default(),
            None => vec![],
        };
        for s in scope {
            if !granted.contains(s) {
                granted.push(s.clone());
            }
        }
        let payload = serde_json::to_vec(&granted).map_err(OAuthError::server_error)?;
        self.store.artifacts.put(ArtifactKind::Consent, &key, &payload, now + CONSENT_LIFETIME_SECS, None).await?;
        Ok(())
    }

    /// Decides a checked authorization request (OIDC Core §3.1.2.3–3.1.2.4):
    /// 1. a usable session and consent (remembered, or a first-party client), no
    ///    `prompt=consent`: a code, at once, with no page;
    /// 2. `prompt=none` otherwise: `login_required` without a usable session, else
    ///    `consent_required` (OIDC Core §3.1.2.6) — never a page;
    /// 3. otherwise a new interaction: the login page, or the consent page when a usable
    ///    session exists.
    pub async fn decide(&self, req: AuthorizationRequest, session: Option<&Session>) -> Result<Step, OAuthError> {
        let now = unix_now();
        let pending = Pending::from_request(&req);
        // OIDC Core §3.1.2.1: a session of another user than the hint's does not count.
        let user = self.usable_session(session, &pending, now).await?.filter(|u| req.hint_sub.as_ref().is_none_or(|h| h == u.id.as_str()));
        let consented = match &user {
            Some(u) => self.consented(u, &req.client, &pending.scope, now).await?,
            None => false,
        };
        if let (Some(u), Some(s), true, false) = (&user, session, consented, pending.force_consent) {
            return Ok(Step::Respond(self.success_response(&pending, &req.client, u, s).await?));
        }
        if req.prompt == (Prompt { none: true, ..Prompt::default() }) {
            let (code, why) = if user.is_none() {
                (AuthzErrorCode::LoginRequired, "the user is not signed in")
            } else {
                (AuthzErrorCode::ConsentRequired, "the user has not consented to this request")
            };
            return Ok(Step::Respond(RedirectResponse::error(req.redirect.clone(), code, why)));
        }
        let id = self.start_interaction(&pending, now).await?;
        Ok(if user.is_some() { Step::Consent { id } } else { Step::Login { id } })
    }

    async fn start_interaction(&self, pending: &Pending, now: i64) -> Result<String, OAuthError> {
        let id = crate::secrets::random_text(24).map_err(OAuthError::server_error)?;
        self.save_interaction(&id, pending, now).await?;
        Ok(id)
    }

    async fn save_interaction(&self, id: &str, pending: &Pending, now: i64) -> Result<(), OAuthError> {
        let payload = serde_json::to_vec(pending).map_err(OAuthError::server_error)?;
        self.store
            .artifacts
            .put(ArtifactKind::Interaction, &artifact_id(id), &payload, now + INTERACTION_LIFETIME_SECS, None)
            .await?;
        Ok(())
    }

    /// A live interaction and its client; `None` when it expired, was finished, or never was.
    pub async fn interaction(&self, id: &str) -> Result<Option<(Pending, Arc<Client>)>, OAuthError> {
        let Some(bytes) = self.store.artifacts.get(ArtifactKind::Interaction, &artifact_id(id), unix_now()).await? else {
            return Ok(None);
        };
        let Ok(pending) = serde_json::from_slice::<Pending>(&bytes) else { return Ok(None) };
        let Some(client) = self.load_client(&pending.client_id).await? else { return Ok(None) };
        Ok(Some((pending, client)))
    }

    /// After a successful login in interaction `id`: records the session on the interaction,
    /// then decides again (consent page, or the code).
    pub async fn after_login(&self, id: &str, mut pending: Pending, client: &Client, session: &Session, user: User) -> Result<Step, OAuthError> {
        let now = unix_now();
        pending.signed_in_session = Some(session.id_hash.clone());
        if !pending.force_consent && self.consented(&user, client, &pending.scope, now).await? {
            self.finish_interaction(id).await?;
            return Ok(Step::Respond(self.success_response(&pending, client, &user, session).await?));
        }
        self.save_interaction(id, &pending, now).await?;
        Ok(Step::Consent { id: id.to_owned() })
    }

    /// The consent page's answer: `allow` remembers the consent and issues the code; anything
    /// else is `access_denied` (RFC 6749 §4.1.2.1). Either way the interaction ends.
    pub async fn after_consent(&self, id: &str, pending: &Pending, client: &Client, session: &Session, user: &User, allow: bool) -> Result<RedirectResponse, OAuthError> {
        self.finish_interaction(id).await?;
        if !allow {
            return Ok(RedirectResponse::error(pending.redirect(&self.cfg.issuer), AuthzErrorCode::AccessDenied, "the user denied the request"));
        }
        self.remember_consent(user, client, &pending.scope, unix_now()).await?;
        self.success_response(pending, client, user, session).await
    }

    async fn finish_interaction(&self, id: &str) -> Result<(), OAuthError> {
        self.store.artifacts.delete(ArtifactKind::Interaction, &artifact_id(id)).await?;
        Ok(())
    }

    /// The successful authorization response for the request's response type: a code, or
    /// (legacy) the implicit flow's tokens (`authorize/implicit.rs`).
    async fn success_response(&self, pending: &Pending, client: &Client, user: &User, session: &Session) -> Result<RedirectResponse, OAuthError> {
        if pending.response_type.is_implicit() {
            return self.implicit_response(pending, client, user, session).await;
        }
        self.code_response(pending, user, session).await
    }

    /// The successful authorization response: a new code for this user and session.
    async fn code_response(&self, pending: &Pending, user: &User, session: &Session) -> Result<RedirectResponse, OAuthError> {
        let grant = CodeGrant {
            acr: Some(acr_of(pending, session).to_owned()),
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            redirect_uri_sent: pending.redirect_uri_sent,
            code_challenge: pending.code_challenge.clone(),
            scope: pending.scope.clone(),
            resource: pending.resource.clone(),
            nonce: pending.nonce.clone(),
            claims: pending.claims.clone(),
            sub: user.id.as_str().to_owned(),
            auth_time: session.auth_time,
            sid: session.sid.clone(),
            amr: session.amr.clone(),
            dpop_jkt: pending.dpop_jkt.clone(),
            grant_id: crate::secrets::random_text(16).map_err(OAuthError::server_error)?,
            issued_at: unix_now(),
        };
        let code = self.issue_code(&grant).await?;
        tracing::debug!(target: "audit", event = "code_issued", client_id = %grant.client_id, sub = %grant.sub);
        Ok(RedirectResponse { to: pending.redirect(&self.cfg.issuer), params: vec![("code", code)] })
    }
}

/// `acr` of a response (see `IdTokenFacts::acr`): `"1"` if the user signed in during this
/// interaction, `"0"` if an existing session answered.
pub(super) fn acr_of(pending: &Pending, session: &Session) -> &'static str {
    if pending.signed_in_session.as_deref() == Some(session.id_hash.as_str()) { "1" } else { "0" }
}

/// The delay before answering the `n`th failed login (n ≥ 4) for one account from one address.
fn login_delay(n: u32) -> std::time::Duration {
    std::time::Duration::from_millis((250u64 << n.saturating_sub(4).min(3)).min(2000))
}

/// Plain words for a scope on the consent page.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Confirm who you are (sign you in)".into(),
        "profile" => "See your name and basic profile".into(),
        "email" => "See your email address".into(),
        "address" => "See your postal address".into(),
        "phone" => "See your phone number".into(),
        "offline_access" => "Stay connected when you are not using it".into(),
        other => format!("Use the permission \u{201c}{other}\u{201d}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_delays_double_from_the_fourth_failure_up_to_two_seconds() {
        let ms: Vec<u128> = (4..=10).map(|n| login_delay(n).as_millis()).collect();
        assert_eq!(ms, [250, 500, 1000, 2000, 2000, 2000, 2000]);
    }
}
