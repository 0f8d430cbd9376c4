//! Opaque access tokens, asked about at the issuer's RFC 7662 introspection endpoint (issue
//! #7 item 3). An `[[gateway.issuers]]` entry with an `introspection_url` introspects the
//! tokens that are not JWTs (`introspect = "opaque"`, the default) or all its tokens
//! (`"always"`: a JWT whose `iss` names it is introspected instead of verified locally, so a
//! revocation at the issuer counts at once).
//!
//! Per token, in order:
//! 1. the cache, keyed by the token's SHA-256: an active answer is kept until the token's
//!    `exp` and at most `cache_max`; an inactive one for `negative_cache` (both bounded by
//!    the LRU's size). An entry past the token's `exp` is refused without a call;
//! 2. `POST introspection_url` with `token` and `token_type_hint=access_token`, the gateway
//!    authenticating as a client with `client_secret_basic` (RFC 7662 §2.1); the secret is
//!    never logged and never in `Debug`;
//! 3. the endpoint down, slow (5 s), answering other than 200 or not a JSON object:
//!    [`Failure::Unavailable`] — a 503, never a pass (fail closed) and never cached;
//! 4. `active` must be `true` (§2.2), else [`Failure::Invalid`];
//! 5. like a JWT: `iss` exactly the issuer's, `exp` present (a number) and not passed beyond
//!    the skew, `nbf` and `iat` not in the future beyond it; a `token_type` of
//!    `refresh_token` is not an access token; `aud` (string or array) is checked by the route
//!    as for JWTs, and `scope` becomes the caller's scopes.

use super::jwks::{FETCH_TIMEOUT, fetch_client};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use lru::LruCache;
use serde_json::{Map, Value};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

/// Largest introspection response read.
const MAX_BODY: usize = 64 * 1024;

/// A client secret: no `Debug` of its value, compared in constant time.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret read from a file or the environment.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(***)")
    }
}

impl PartialEq for ClientSecret {
    fn eq(&self, other: &Self) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(self.0.as_bytes(), other.0.as_bytes()).is_ok()
    }
}

/// The introspection settings of one `[[gateway.issuers]]` entry (`introspection_*` keys).
#[derive(Clone, Debug, PartialEq)]
pub struct IntrospectionConfig {
    /// `introspection_url`: the issuer's RFC 7662 endpoint (http or https).
    pub url: String,
    /// `introspection_client_id`: the gateway's client at the issuer.
    pub client_id: String,
    /// Its secret, read from `introspection_client_secret_file` or the environment variable
    /// `introspection_client_secret_env` names.
    pub client_secret: ClientSecret,
    /// `introspection_ca_file`: PEM roots for an https URL (default: the system's).
    pub ca_file: Option<std::path::PathBuf>,
    /// `introspect = "always"`: JWTs naming this issuer are introspected too (default
    /// `"opaque"`: only tokens that are not JWTs).
    pub always: bool,
    /// `introspection_cache_max`: an active answer is reused at most this long (and never
    /// past the token's `exp`).
    pub cache_max: Duration,
    /// `introspection_negative_cache`: an inactive answer is reused this long.
    pub negative_cache: Duration,
}

/// Why a token did not pass introspection.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The token is not (or no longer) good: 401 `invalid_token`.
    Invalid(&'static str),
    /// The endpoint could not answer: 503, fail closed.
    Unavailable,
}

/// A cached answer.
#[derive(Clone)]
enum Entry<T> {
    /// Served while `now < until` (the `cache_max` bound) and `now <= exp`.
    Active { value: T, exp: i64, until: i64 },
    Inactive { until: i64 },
}

/// One issuer's introspection client and its cache of answers (`T`: what the caller makes of
/// an active answer).
pub struct Introspector<T> {
    cfg: IntrospectionConfig,
    uri: Uri,
    authorization: hyper::header::HeaderValue,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    cache: Mutex<LruCache<[u8; 32], Entry<T>>>,
}

impl<T> std::fmt::Debug for Introspector<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector").field("url", &self.uri).field("client_id", &self.cfg.client_id).finish()
    }
}

/// `client_secret_basic` (RFC 6749 §2.3.1: each part form-encoded, then Base64).
fn basic(id: &str, secret: &str) -> Result<hyper::header::HeaderValue, String> {
    use base64::Engine;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    let mut v = hyper::header::HeaderValue::from_str(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw)))
        .map_err(|_| "the client id or secret cannot be sent".to_owned())?;
    v.set_sensitive(true);
    Ok(v)
}

/// A NumericDate claim, when present: `Err` when it is not a number.
fn date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, ()> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)).map(Some).ok_or(()),
    }
}

/// Steps 4–5 of the module doc on an answer: the token's claims and its `exp`.
pub fn check_answer(answer: &Map<String, Value>, issuer: &str, now: i64, leeway: i64) -> Result<i64, Failure> {
    use Failure::Invalid;
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Err(Invalid("the access token is not active"));
    }
    if answer.get("token_type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("refresh_token")) {
        return Err(Invalid("a refresh token is not an access token"));
    }
    if answer.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(Invalid("the access token's issuer is not accepted"));
    }
    let malformed = |_| Invalid("the introspection answer is malformed");
    let exp = date(answer, "exp").map_err(malformed)?.ok_or(Invalid("the access token has no expiry"))?;
    if now > exp.saturating_add(leeway) {
        return Err(Invalid("the access token has expired"));
    }
    if date(answer, "nbf").map_err(malformed)?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(Invalid("the access token is not valid yet"));
    }
    if date(answer, "iat").map_err(malformed)?.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(Invalid("the access token is issued in the future"));
    }
    Ok(exp)
}

impl<T: Clone> Introspector<T> {
    /// A client for `cfg.url`; `cache_size` bounds the cached answers.
    pub fn new(cfg: &IntrospectionConfig, cache_size: usize) -> Result<Self, String> {
        let (uri, client) = fetch_client(&cfg.url, cfg.ca_file.clone())?;
        let authorization = basic(&cfg.client_id, cfg.client_secret.expose())?;
        let size = NonZeroUsize::new(cache_size.max(1)).unwrap_or(NonZeroUsize::MIN);
        Ok(Self { cfg: cfg.clone(), uri, authorization, client, cache: Mutex::new(LruCache::new(size)) })
    }

    /// Whether JWTs naming the issuer are introspected too.
    pub fn always(&self) -> bool {
        self.cfg.always
    }

    /// The cached answer for `hash`, if still usable: `Some(Ok)` active, `Some(Err)` refused.
    pub fn cached(&self, hash: &[u8; 32], now: i64) -> Option<Result<T, Failure>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get(hash)?.clone() {
            Entry::Active { value, exp, until } if now < until && now <= exp => Some(Ok(value)),
            Entry::Active { exp, .. } if now > exp => {
                cache.pop(hash);
                Some(Err(Failure::Invalid("the access token has expired")))
            }
            Entry::Inactive { until } if now <= until => Some(Err(Failure::Invalid("the access token is not active"))),
            _ => {
                cache.pop(hash);
                None
            }
        }
    }

    /// Remembers an active answer for `cache_max` (whole seconds; zero: not at all), and
    /// never past the token's `exp`.
    pub fn remember(&self, hash: [u8; 32], value: T, exp: i64, now: i64) {
        if self.cfg.cache_max.as_secs() == 0 {
            return;
        }
        let until = now.saturating_add(self.cfg.cache_max.as_secs() as i64);
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).put(hash, Entry::Active { value, exp, until });
    }

    /// Remembers a refusal for `negative_cache`.
    pub fn remember_refusal(&self, hash: [u8; 32], now: i64) {
        if self.cfg.negative_cache.is_zero() {
            return;
        }
        let until = now.saturating_add(self.cfg.negative_cache.as_secs() as i64);
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).put(hash, Entry::Inactive { until });
    }

    /// Step 2–3: the endpoint's answer as a JSON object.
    pub async fn ask(&self, token: &str) -> Result<Map<String, Value>, Failure> {
        let body: String = form_urlencoded::Serializer::new(String::new()).append_pair("token", token).append_pair("token_type_hint", "access_token").finish();
        let req = hyper::Request::post(self.uri.clone())
            .header(hyper::header::AUTHORIZATION, self.authorization.clone())
            .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(hyper::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| Failure::Unavailable)?;
        let down = |why: String| {
            tracing::warn!(url = %self.uri, error = %why, "token introspection failed; refusing with 503");
            Failure::Unavailable
        };
        let resp = tokio::time::timeout(FETCH_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| down("timed out".into()))?
            .map_err(|e| down(format!("request failed: {e}")))?;
        if resp.status() != hyper::StatusCode::OK {
            return Err(down(format!("status {}", resp.status())));
        }
        let body = tokio::time::timeout(FETCH_TIMEOUT, Limited::new(resp.into_body(), MAX_BODY).collect())
            .await
            .map_err(|_| down("timed out reading the body".into()))?
            .map_err(|e| down(format!("body: {e}")))?
            .to_bytes();
        serde_json::from_slice::<Map<String, Value>>(&body).map_err(|_| down("the answer is not a JSON object".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    const ISS: &str = "https://idp.example";

    #[test]
    fn an_answer_must_be_active_from_the_issuer_and_not_expired() {
        let now = 1_000_000;
        let good = json!({"active": true, "iss": ISS, "exp": now + 60, "scope": "a"});
        assert_eq!(check_answer(&answer(good.clone()), ISS, now, 0), Ok(now + 60));
        let with = |k: &str, v: Value| {
            let mut a = answer(good.clone());
            a.insert(k.into(), v);
            a
        };
        let without = |k: &str| {
            let mut a = answer(good.clone());
            a.remove(k);
            a
        };
        let invalid = |a: Map<String, Value>| match check_answer(&a, ISS, now, 5) {
            Err(Failure::Invalid(why)) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(invalid(with("active", json!(false))), "the access token is not active");
        assert_eq!(invalid(with("active", json!("true"))), "the access token is not active", "only the JSON true");
        assert_eq!(invalid(without("active")), "the access token is not active");
        assert_eq!(invalid(with("token_type", json!("refresh_token"))), "a refresh token is not an access token");
        assert_eq!(invalid(with("iss", json!("https://other.example"))), "the access token's issuer is not accepted");
        assert_eq!(invalid(without("iss")), "the access token's issuer is not accepted");
        assert_eq!(invalid(without("exp")), "the access token has no expiry");
        assert_eq!(invalid(with("exp", json!("soon"))), "the introspection answer is malformed");
        assert_eq!(invalid(with("exp", json!(now - 6))), "the access token has expired");
        assert!(check_answer(&with("exp", json!(now - 5)), ISS, now, 5).is_ok(), "within the skew");
        assert_eq!(invalid(with("nbf", json!(now + 6))), "the access token is not valid yet");
        assert_eq!(invalid(with("iat", json!(now + 6))), "the access token is issued in the future");
    }

    fn introspector(cache_max: u64, negative: u64) -> Introspector<u32> {
        let cfg = IntrospectionConfig {
            url: "http://127.0.0.1:1/introspect".into(),
            client_id: "gw".into(),
            client_secret: ClientSecret::new("s3cret".into()),
            ca_file: None,
            always: false,
            cache_max: Duration::from_secs(cache_max),
            negative_cache: Duration::from_secs(negative),
        };
        Introspector::new(&cfg, 2).unwrap()
    }

    /// An active answer is reused until the earlier of `exp` and `cache_max`; past `exp` it
    /// is a refusal without a call; an inactive one is reused for `negative_cache` only.
    #[test]
    fn cached_answers_never_outlive_the_token_or_the_maximum() {
        let i = introspector(60, 5);
        let now = 1_000;
        i.remember([1; 32], 7, now + 10, now);
        assert_eq!(i.cached(&[1; 32], now + 10).unwrap().ok(), Some(7));
        assert_eq!(i.cached(&[1; 32], now + 11).unwrap().err(), Some(Failure::Invalid("the access token has expired")));
        assert!(i.cached(&[1; 32], now + 11).is_none(), "dropped once expired");
        i.remember([2; 32], 8, now + 3600, now);
        assert!(i.cached(&[2; 32], now + 59).is_some());
        assert!(i.cached(&[2; 32], now + 60).is_none(), "cache_max bounds a long-lived token");
        let never = introspector(0, 0);
        never.remember([2; 32], 8, now + 3600, now);
        assert!(never.cached(&[2; 32], now).is_none(), "introspection_cache_max = 0 keeps nothing");
        i.remember_refusal([3; 32], now);
        assert_eq!(i.cached(&[3; 32], now + 5).unwrap().err(), Some(Failure::Invalid("the access token is not active")));
        assert!(i.cached(&[3; 32], now + 6).is_none());
        let none = introspector(60, 0);
        none.remember_refusal([3; 32], now);
        assert!(none.cached(&[3; 32], now).is_none(), "negative_cache = 0 keeps nothing");
    }

    #[test]
    fn the_secret_is_sent_form_encoded_and_never_shown() {
        let v = basic("gw id", "p:ss%").unwrap();
        assert!(v.is_sensitive());
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD.decode(&v.as_bytes()[6..]).unwrap();
        assert_eq!(decoded, b"gw+id:p%3Ass%25");
        let s = ClientSecret::new("s3cret".into());
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(!format!("{:?}", introspector(1, 1)).contains("s3cret"));
        assert_eq!(s, ClientSecret::new("s3cret".into()));
        assert_ne!(s, ClientSecret::new("other".into()));
    }
}
