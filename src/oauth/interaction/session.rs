//! Browser sessions: a random id in a cookie, the session itself in the store (by the id's
//! hash), so every node sees it and a leaked database holds no usable cookie.

use super::artifact_id;
use crate::model::{User, unix_now};
use crate::oauth::{OAuthError, Provider};
use crate::store::ArtifactKind;
use serde::{Deserialize, Serialize};

/// A signed-in browser. No `Debug`: `id_hash` finds it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// The hash of the cookie's id (the artifact id); not serialized into the payload.
    #[serde(skip)]
    pub id_hash: String,
    /// The user.
    pub sub: String,
    /// When the user authenticated.
    pub auth_time: i64,
    /// How (RFC 8176 `amr`).
    pub amr: Vec<String>,
    /// The public session id for ID tokens (`sid`), not the cookie's secret.
    pub sid: String,
}

/// The session cookie's attributes (RFC 6265bis): `HttpOnly; SameSite=Lax; Path=/`, and with
/// an https issuer `Secure` and the `__Host-` prefix, which pins it to this exact host.
pub struct SessionCookie {
    /// The cookie's name.
    pub name: &'static str,
    secure: bool,
}

impl SessionCookie {
    /// For an issuer.
    pub fn for_issuer(issuer: &str) -> Self {
        let secure = issuer.starts_with("https://");
        Self { name: if secure { "__Host-warden_session" } else { "warden_session" }, secure }
    }

    /// The `Set-Cookie` value that stores `value` for `max_age` seconds (0 deletes it).
    pub fn set(&self, name: &str, value: &str, max_age: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
    }

    /// The name of the CSRF cookie that goes with it.
    pub fn csrf_name(&self) -> &'static str {
        if self.secure { "__Host-warden_csrf" } else { "warden_csrf" }
    }
}

impl Provider {
    /// The live session behind a cookie value, if any.
    pub async fn session(&self, cookie: &str) -> Result<Option<Session>, OAuthError> {
        if cookie.is_empty() || cookie.len() > 128 {
            return Ok(None);
        }
        let id_hash = artifact_id(cookie);
        let Some(bytes) = self.store.artifacts.get(ArtifactKind::Session, &id_hash, unix_now()).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<Session>(&bytes).ok().map(|s| Session { id_hash, ..s }))
    }

    /// Signs `user` in: a new session with a new id (never one the browser brought: no
    /// fixation). Returns the session and the cookie value.
    pub async fn start_session(&self, user: &User, amr: &[&str]) -> Result<(Session, String), OAuthError> {
        let now = unix_now();
        let cookie = crate::secrets::random_text(32).map_err(OAuthError::server_error)?;
        let session = Session {
            id_hash: artifact_id(&cookie),
            sub: user.id.as_str().to_owned(),
            auth_time: now,
            amr: amr.iter().map(|a| (*a).to_owned()).collect(),
            sid: crate::secrets::random_text(16).map_err(OAuthError::server_error)?,
        };
        let payload = serde_json::to_vec(&session).map_err(OAuthError::server_error)?;
        let expires = now + self.cfg.session_lifetime.as_secs() as i64;
        self.store.artifacts.put(ArtifactKind::Session, &session.id_hash, &payload, expires, None).await?;
        Ok((session, cookie))
    }

    /// Ends a session (logout); no error if it is already gone.
    pub async fn end_session(&self, session: &Session) -> Result<(), OAuthError> {
        self.store.artifacts.delete(ArtifactKind::Session, &session.id_hash).await?;
        Ok(())
    }
}
