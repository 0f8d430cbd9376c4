//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post` (RFC 6749 §2.3.1) and `private_key_jwt`
//! (RFC 7523 §2.2, §3; OIDC Core §9). Public clients (`none`) come with the browser flow.

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
            let mut e = OAuthError::invalid_client("the Authorization header must use the Basic scheme with client id and secret");
            e.challenge = Some(super::Challenge::Basic);
            e
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
    let one = found.pop().ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
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
    /// Authenticates the client of a back-channel request. Every failure looks the same to the
    /// caller (`invalid_client`) and counts against the client id and the source address.
    pub(super) async fn authenticate_client(&self, req: &FormRequest) -> Result<Arc<Client>, OAuthError> {
        let presented = presented(req)?;
        let (claimed_id, basic) = match &presented {
            Presented::Basic { id, .. } => (Some(id.clone()), true),
            Presented::Post { id, .. } => (Some((*id).to_owned()), false),
            Presented::Assertion { assertion, id } => {
                (id.map(str::to_owned).or_else(|| assertion_subject(assertion)), false)
            }
        };
        // A malformed id is never looked up, cached, logged or counted under its own name.
        let claimed_id = claimed_id.filter(|id| crate::model::is_vschar_id(id));
        if let Err(retry) = self.throttle.check(claimed_id.as_deref(), req.peer) {
            let mut e = OAuthError::new(
                super::ErrorCode::RateLimited,
                "too many failed client authentications; retry later",
            );
            e.retry_after = Some(retry);
            return Err(e);
        }
        let outcome = match &claimed_id {
            None => Err("no client id"),
            Some(id) => match self.load_client(id).await? {
                None => {
                    // Same work as a wrong secret, so timing does not tell which ids exist.
                    let secret = match &presented {
                        Presented::Basic { secret, .. } => Some(secret.as_str()),
                        Presented::Post { secret, .. } => Some(*secret),
                        Presented::Assertion { .. } => None,
                    };
                    if let Some(secret) = secret {
                        self.master.verify_secret(secret, &crate::model::SecretHash([0; 32]));
                    }
                    Err("unknown client")
                }
                Some(client) => self.check_credentials(&client, &presented).await?.map(|()| client),
            },
        };
        outcome.map_err(|why| {
            self.throttle.failure(claimed_id.as_deref(), req.peer);
            tracing::info!(target: "audit", event = "client_auth_failed", client_id = claimed_id.as_deref().unwrap_or(""), peer = %req.peer, reason = why);
            let mut e = OAuthError::invalid_client("client authentication failed");
            e.challenge = basic.then_some(super::Challenge::Basic);
            e
        })
    }

    /// `Ok(Err(reason))` for a credential that does not verify; `Err` for a server failure.
    async fn check_credentials(
        &self,
        client: &Client,
        presented: &Presented<'_>,
    ) -> Result<Result<(), &'static str>, OAuthError> {
        let registered = client.metadata.token_endpoint_auth_method;
        let (method, ok) = match presented {
            Presented::Basic { secret, .. } => (AuthMethod::ClientSecretBasic, self.secret_matches(client, secret)),
            Presented::Post { secret, .. } => (AuthMethod::ClientSecretPost, self.secret_matches(client, secret)),
            Presented::Assertion { assertion, .. } => {
                (AuthMethod::PrivateKeyJwt, self.assertion_verifies(client, assertion).await?)
            }
        };
        if method != registered {
            return Ok(Err("authentication method not registered for this client"));
        }
        Ok(if ok { Ok(()) } else { Err("credential does not verify") })
    }

    fn secret_matches(&self, client: &Client, secret: &str) -> bool {
        client.secret_hash.as_ref().is_some_and(|h| self.master.verify_secret(secret, h))
    }

    /// RFC 7523 §3: signed by one of the client's registered keys; `iss` = `sub` = client id;
    /// `aud` is the token endpoint or the issuer; `exp` present and not too far ahead; `jti`
    /// present and never seen before (kept until the assertion expires).
    async fn assertion_verifies(&self, client: &Client, assertion: &str) -> Result<bool, OAuthError> {
        let Some(jwks) = &client.metadata.jwks else { return Ok(false) };
        let Ok(keys) = jose::client_jwks(jwks) else { return Ok(false) };
        let token_endpoint = self.cfg.endpoint("/token");
        let audience = [token_endpoint.as_str(), self.cfg.issuer.as_str()];
        let expect = Expectations {
            audience: &audience,
            required: &["iss", "sub", "aud", "jti"],
            leeway: self.cfg.clock_skew.as_secs(),
            ..Default::default()
        };
        let Ok(claims) = jose::verify::<AssertionClaims>(assertion, keys.as_slice(), &expect) else {
            return Ok(false);
        };
        let id = client.client_id.as_str();
        let now = unix_now();
        if claims.iss != id || claims.sub != id {
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
