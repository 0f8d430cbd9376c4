//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post` (RFC 6749 §2.3.1) and `private_key_jwt`
//! (RFC 7523 §2.2, §3; OIDC Core §9); and public clients (`none`, RFC 6749 §2.1, §3.2.1),
//! identified by `client_id` alone, only where the caller allows it (the authorization code
//! grant, where PKCE binds the code to the client instance).

use super::{FormRequest, OAuthError, Provider};
use crate::jose::{self, Expectations};
use crate::model::{AuthMethod, Client, unix_now};
use crate::store::ArtifactKind;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use std::sync::Arc;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What the client presented.
enum Presented<'a> {
    Basic { id: String, secret: String },
    Post { id: &'a str, secret: &'a str },
    Assertion { assertion: &'a str, id: Option<&'a str> },
    /// Only a `client_id` parameter: a public client (RFC 6749 §3.2.1).
    Public { id: &'a str },
}

/// Whether the endpoint accepts public clients.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Public {
    /// Confidential clients only (client credentials, introspection, revocation).
    Refused,
    /// Public clients by `client_id` alone (the authorization code grant).
    Allowed,
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> String {
        // Without '%', '+' or '&' form decoding is the identity: skip the round trip.
        if !s.bytes().any(|b| matches!(b, b'%' | b'+' | b'&')) {
            return s.to_owned();
        }
        form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// - exactly one method per request (RFC 6749 §2.3: "MUST NOT use more than one");
/// - a `client_id` parameter next to another method must name the same client.
fn presented(req: &FormRequest) -> Result<Presented<'_>, OAuthError> {
    let p = &req.params;
    let mut found: Vec<Presented<'_>> = Vec::new();
    if let Some(h) = req.authorization.as_deref() {
        let (id, secret) = parse_basic(h).ok_or_else(|| {
            OAuthError::invalid_client("the Authorization header must use the Basic scheme with client id and secret")
        })?;
        found.push(Presented::Basic { id, secret });
    }
    if let Some(secret) = p.get("client_secret") {
        let id = p.require("client_id")?;
        found.push(Presented::Post { id, secret });
    }
    match (p.get("client_assertion_type"), p.get("client_assertion")) {
        (None, None) => {}
        (Some(JWT_BEARER), Some(assertion)) => {
            found.push(Presented::Assertion { assertion, id: p.get("client_id") })
        }
        (Some(JWT_BEARER), None) => return Err(OAuthError::invalid_request("missing parameter \"client_assertion\"")),
        (Some(_), _) => {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request("missing parameter \"client_assertion_type\""));
        }
    }
    if found.len() > 1 {
        return Err(OAuthError::invalid_request("use exactly one client authentication method"));
    }
    let one = match (found.pop(), p.get("client_id")) {
        (Some(one), _) => one,
        (None, Some(id)) => Presented::Public { id },
        (None, None) => return Err(OAuthError::invalid_client("client authentication is required")),
    };
    if let (Presented::Basic { id, .. }, Some(param)) = (&one, p.get("client_id"))
        && param != id {
            return Err(OAuthError::invalid_request("client_id does not match the authenticated client"));
        }
    Ok(one)
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    aud: serde_json::Value,
    jti: Option<String>,
    exp: i64,
}

/// The client id an assertion claims to be from, read before verification only to find
/// which client's keys to verify it with.
fn assertion_subject(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["sub"].as_str().map(str::to_owned)
}

impl Provider {
    /// Authenticates the client of a back-channel request:
    /// - the credential is checked first: a valid one is never refused, however many failures
    ///   others caused from the same address (a proxy's, say);
    /// - a failure counts against the client id at the source address and against the
    ///   address (`throttle.rs`); over either allowance the answer is 429 with `Retry-After`,
    ///   otherwise `invalid_client` — every failure looks the same, whatever went wrong.
    ///
    /// Public clients are refused here (see [`Provider::authenticate_client_or_public`]).
    pub(super) async fn authenticate_client(&self, req: &FormRequest) -> Result<Arc<Client>, OAuthError> {
        self.authenticate(req, Public::Refused).await
    }

    /// [`Provider::authenticate_client`], also accepting a public client (registered with
    /// `token_endpoint_auth_method = none`) that sends only its `client_id`. A confidential
    /// client sending only its id fails like a wrong secret: nobody skips a registered method.
    pub(super) async fn authenticate_client_or_public(&self, req: &FormRequest) -> Result<Arc<Client>, OAuthError> {
        self.authenticate(req, Public::Allowed).await
    }

    async fn authenticate(&self, req: &FormRequest, public: Public) -> Result<Arc<Client>, OAuthError> {
        let presented = presented(req)?;
        let claimed_id = match &presented {
            Presented::Basic { id, .. } => Some(id.clone()),
            Presented::Post { id, .. } => Some((*id).to_owned()),
            Presented::Assertion { assertion, id } => id.map(str::to_owned).or_else(|| assertion_subject(assertion)),
            Presented::Public { id } => Some((*id).to_owned()),
        };
        // A malformed id is never looked up, cached, logged or counted under its own name.
        let claimed_id = claimed_id.filter(|id| crate::model::is_vschar_id(id));
        let outcome = match &claimed_id {
            None => Err("no client id"),
            Some(id) => match self.load_client(id).await? {
                None => {
                    // Same work as a wrong secret, so timing does not tell which ids exist.
                    let secret = match &presented {
                        Presented::Basic { secret, .. } => Some(secret.as_str()),
                        Presented::Post { secret, .. } => Some(*secret),
                        Presented::Assertion { .. } | Presented::Public { .. } => None,
                    };
                    if let Some(secret) = secret {
                        self.master.verify_secret(secret, &crate::model::SecretHash([0; 32]));
                    }
                    Err("unknown client")
                }
                Some(client) => self.check_credentials(&client, &presented, public).await?.map(|()| client),
            },
        };
        outcome.map_err(|why| {
            let throttled = self.throttle.count(claimed_id.as_deref(), req.peer);
            tracing::info!(target: "audit", event = "client_auth_failed", client_id = claimed_id.as_deref().unwrap_or(""), peer = %req.peer, reason = why, throttled = throttled.is_err());
            match throttled {
                Err(retry) => {
                    let mut e = OAuthError::new(
                        super::ErrorCode::RateLimited,
                        "too many failed client authentications; retry later",
                    );
                    e.retry_after = Some(retry);
                    e
                }
                Ok(()) => OAuthError::invalid_client("client authentication failed"),
            }
        })
    }

    /// `Ok(Err(reason))` for a credential that does not verify; `Err` for a server failure.
    async fn check_credentials(
        &self,
        client: &Client,
        presented: &Presented<'_>,
        public: Public,
    ) -> Result<Result<(), &'static str>, OAuthError> {
        let registered = client.metadata.token_endpoint_auth_method;
        let (method, ok) = match presented {
            Presented::Basic { secret, .. } => (AuthMethod::ClientSecretBasic, self.secret_matches(client, secret)),
            Presented::Post { secret, .. } => (AuthMethod::ClientSecretPost, self.secret_matches(client, secret)),
            Presented::Assertion { assertion, .. } => {
                (AuthMethod::PrivateKeyJwt, self.assertion_verifies(client, assertion).await?)
            }
            Presented::Public { .. } => (AuthMethod::None, public == Public::Allowed),
        };
        if method != registered {
            return Ok(Err("authentication method not registered for this client"));
        }
        Ok(if ok { Ok(()) } else { Err("credential does not verify") })
    }

    fn secret_matches(&self, client: &Client, secret: &str) -> bool {
        client.secret_hash.as_ref().is_some_and(|h| self.master.verify_secret(secret, h))
    }

    /// RFC 7523 §3 as draft-ietf-oauth-rfc7523bis tightens it:
    /// - signed by one of the client's registered keys (`jose::verify`: the key's own
    ///   algorithm, `exp` required, clock skew allowed);
    /// - `iss` = `sub` = the client id;
    /// - `aud` is the issuer identifier as a single string (the OpenID Foundation's January
    ///   2025 disclosure: an audience a client also uses elsewhere lets a malicious server
    ///   replay its assertions); the token endpoint URL or an array only while
    ///   `provider.assertion_audience_transition` is on;
    /// - `exp` not further ahead than `assertion_max_lifetime` (+ skew);
    /// - `jti` present and never seen before, kept until the assertion can no longer verify.
    async fn assertion_verifies(&self, client: &Client, assertion: &str) -> Result<bool, OAuthError> {
        let Some(jwks) = &client.metadata.jwks else { return Ok(false) };
        let Ok(keys) = jose::client_jwks(jwks) else { return Ok(false) };
        let expect = Expectations {
            required: &["iss", "sub", "aud", "jti"],
            leeway: self.cfg.clock_skew.as_secs(),
            ..Default::default()
        };
        let Ok(claims) = jose::verify::<AssertionClaims>(assertion, keys.as_slice(), &expect) else {
            return Ok(false);
        };
        let id = client.client_id.as_str();
        let now = unix_now();
        if claims.iss != id || claims.sub != id || !self.assertion_audience_ok(&claims.aud) {
            return Ok(false);
        }
        let horizon = self.cfg.assertion_max_lifetime.as_secs() as i64 + self.cfg.clock_skew.as_secs() as i64;
        if claims.exp > now + horizon {
            return Ok(false);
        }
        let Some(jti) = claims.jti.filter(|j| crate::model::is_vschar_id(j)) else { return Ok(false) };
        let key = format!("{id}:{jti}");
        // The verifier accepts the assertion while now <= exp + skew; a record is gone once
        // expires_at <= now. Keep it one second past the last accepting second.
        let keep_until = claims.exp + self.cfg.clock_skew.as_secs() as i64 + 1;
        Ok(self.store.artifacts.put_new(ArtifactKind::AssertionJti, &key, b"", keep_until, now).await?)
    }
}

impl Provider {
    fn assertion_audience_ok(&self, aud: &serde_json::Value) -> bool {
        let issuer = self.cfg.issuer.as_str();
        if aud.as_str() == Some(issuer) {
            return true;
        }
        if !self.cfg.assertion_audience_transition {
            return false;
        }
        let token_endpoint = self.cfg.endpoint("/token");
        let ok = |v: &serde_json::Value| v.as_str().is_some_and(|s| s == issuer || s == token_endpoint);
        match aud {
            serde_json::Value::Array(items) => items.iter().any(ok),
            other => ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let h = format!("Basic {}", STANDARD.encode("my%20client:p%3Ass+word"));
        assert_eq!(parse_basic(&h), Some(("my client".into(), "p:ss word".into())));
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic(&format!("Basic {}", STANDARD.encode("nocolon"))), None);
        let plain = format!("Basic {}", STANDARD.encode("id-1.x_~:s3cr=t"));
        assert_eq!(parse_basic(&plain), Some(("id-1.x_~".into(), "s3cr=t".into())));
        let amp = format!("Basic {}", STANDARD.encode("a&b:c"));
        assert_eq!(parse_basic(&amp), Some(("a".into(), "c".into())), "as form decoding of x=a&b");
    }
}
