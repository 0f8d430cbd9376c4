//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the client sends the browser
//! to the end-session endpoint; the user confirms on a page (CSRF-protected, so no other site
//! can sign a user out); the session ends; the browser goes back to a registered
//! `post_logout_redirect_uri` with the client's `state`, or sees a "signed out" page.

use super::artifact_id;
use crate::jose::{self, Expectations};
use crate::model::{Client, unix_now};
use crate::oauth::{OAuthError, Provider};
use crate::store::ArtifactKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// How long the confirmation page stays valid.
const LOGOUT_LIFETIME_SECS: i64 = 10 * 60;
/// ID tokens are usually expired by the time a user signs out; RP-Initiated Logout §2 asks
/// the OP to accept them as hints (signature and issuer still checked).
const HINT_LEEWAY_SECS: u64 = 10 * 365 * 24 * 3600;

/// A checked logout request, waiting for the user's confirmation.
#[derive(Clone, Serialize, Deserialize)]
pub struct LogoutRequest {
    /// The client that asked, if known (from `id_token_hint` or `client_id`).
    pub client_id: Option<String>,
    /// Where to go afterwards, verified against the client's registration.
    pub post_logout_redirect_uri: Option<String>,
    /// The client's `state`, echoed.
    pub state: Option<String>,
}

impl LogoutRequest {
    /// Where the browser goes once signed out: the registered URI with `state`.
    pub fn return_to(&self) -> Option<String> {
        let uri = self.post_logout_redirect_uri.as_ref()?;
        Some(match &self.state {
            None => uri.clone(),
            Some(state) => {
                let q = form_urlencoded::Serializer::new(String::new()).append_pair("state", state).finish();
                let sep = if uri.contains('?') { '&' } else { '?' };
                format!("{uri}{sep}{q}")
            }
        })
    }
}

/// Why a logout request is refused: shown as a page, never redirected.
pub struct LogoutError(pub &'static str);

fn one<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

impl Provider {
    /// Checks an end-session request (RP-Initiated Logout §2, §3), in order:
    /// 1. `id_token_hint`, when sent, is an ID token this server signed (`iss`, signature; an
    ///    expired one is fine);
    /// 2. the client: `client_id`, or the hint's audience; when both are sent, the hint is for
    ///    that client; it must be registered;
    /// 3. `post_logout_redirect_uri`, when sent, needs a known client and must be one it
    ///    registered, exactly — never a redirect to an unverified URI.
    pub async fn check_logout(&self, pairs: &[(String, String)]) -> Result<(LogoutRequest, Option<Arc<Client>>), LogoutError> {
        let mut audiences: Vec<String> = Vec::new();
        if let Some(hint) = one(pairs, "id_token_hint") {
            let ring = self.ring.current();
            let expect = Expectations {
                issuer: Some(&self.cfg.issuer),
                // An ID token (typ JWT or none), not one of our access tokens (at+jwt).
                typ: &["JWT", ""],
                required: &["sub", "aud"],
                leeway: HINT_LEEWAY_SECS,
                ..Default::default()
            };
            let claims: serde_json::Map<String, Value> =
                jose::verify(hint, ring.as_ref(), &expect).map_err(|_| LogoutError("The sign-out request carries an ID token this server did not issue (id_token_hint)."))?;
            audiences = match claims.get("aud") {
                Some(Value::String(a)) => vec![a.clone()],
                Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                _ => vec![],
            };
        }
        let client_id = match (one(pairs, "client_id"), audiences.as_slice()) {
            (Some(id), auds) if auds.is_empty() || auds.iter().any(|a| a == id) => Some(id.to_owned()),
            (Some(_), _) => return Err(LogoutError("The ID token in the sign-out request was issued to another application.")),
            (None, [only]) => Some(only.clone()),
            (None, _) => None,
        };
        let client = match &client_id {
            Some(id) => match self.load_client(id).await {
                Ok(Some(c)) => Some(c),
                Ok(None) => return Err(LogoutError("The application asking to sign you out is not registered here.")),
                Err(_) => return Err(LogoutError("Signing out is temporarily unavailable. Please try again in a moment.")),
            },
            None => None,
        };
        let post_logout_redirect_uri = match one(pairs, "post_logout_redirect_uri") {
            None => None,
            Some(uri) => match &client {
                Some(c) if c.metadata.post_logout_redirect_uris.iter().any(|r| r == uri) => Some(uri.to_owned()),
                Some(_) => return Err(LogoutError("The address to return to after signing out is not registered for this application.")),
                None => return Err(LogoutError("A return address needs the application to be named (id_token_hint or client_id).")),
            },
        };
        let state = one(pairs, "state").filter(|s| s.len() <= 2048).map(str::to_owned);
        Ok((LogoutRequest { client_id, post_logout_redirect_uri, state }, client))
    }

    /// Keeps a checked request until the user confirms; returns its id for the form.
    pub async fn save_logout(&self, req: &LogoutRequest) -> Result<String, OAuthError> {
        let id = crate::secrets::random_text(24).map_err(OAuthError::server_error)?;
        let payload = serde_json::to_vec(req).map_err(OAuthError::server_error)?;
        self.store.artifacts.put(ArtifactKind::LogoutRequest, &artifact_id(&id), &payload, unix_now() + LOGOUT_LIFETIME_SECS, None).await?;
        Ok(id)
    }

    /// The confirmed request, used once.
    pub async fn take_logout(&self, id: &str) -> Result<Option<LogoutRequest>, OAuthError> {
        let got = match self.store.artifacts.consume(ArtifactKind::LogoutRequest, &artifact_id(id), unix_now()).await {
            Ok(v) => v,
            Err(crate::store::StoreError::AlreadyConsumed { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(got.and_then(|b| serde_json::from_slice(&b).ok()))
    }
}
