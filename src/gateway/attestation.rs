//! App attestation (issue #7 item 3): WHAT is calling, not only WHO.
//!
//! A static credential — an API key compiled into an app, a client secret — identifies an
//! app but proves nothing about the software that sends it: pulled out of the binary, it is
//! replayed by any script (the Snapchat case, `examples/stolen-api-key-replay/`). Platform
//! attestation services (Apple App Attest, Firebase App Check, Android Play Integrity) check
//! the device and the genuine app, then mint a short-lived token signed by the service. This
//! policy is the verifier of such a token, placed after authentication on a route
//! (`[gateway.routes.attestation]`):
//!
//! 1. the caller is authenticated (a token's `client_id`, or the consumer an API key names);
//! 2. exactly one attestation in the configured header, at most 8 KiB;
//! 3. a JWT signed by one of the configured attestation keys (never a key or URL the token
//!    names), with an algorithm among the configured ones (ES256, EdDSA) and the key's own;
//!    `iss` exactly the attestation service, `aud` containing the configured audience, `exp`
//!    not passed, `nbf` come (all with the skew);
//! 4. `iat` present, not in the future and at most `max_age` old (beyond the skew): an
//!    attestation is minted for one request, moments before it;
//! 5. the binding claim (`sub` by default) equals the caller's client id or consumer: an
//!    attestation for app A does not let a caller authenticated as app B through (403);
//! 6. with `bind_token`, its `ath` is the base64url SHA-256 of the access token sent with it
//!    (as DPoP's `ath`), so it cannot travel to another token (403);
//! 7. its `jti` has not been seen within its lifetime (single use: a captured attestation
//!    cannot be replayed — the replay memory is per node, like DPoP's, and refuses new
//!    attestations with 429 rather than forget one inside its window, `replay.rs`);
//! 8. the header is removed before the upstream.
//!
//! Failing 1–4 or 7 is a 401 (`urn:warden:problem:attestation-required`, challenge
//! `Attestation header="…"`); a good attestation for another client or token (5–6) a 403
//! (`urn:warden:problem:attestation-mismatch`). Both `no-store`, never reaching the upstream.

use super::context::{Denial, Flow, Identity, Policy, RequestContext};
use crate::jose::{self, Alg, Expectations, KeyLookup, VerificationKey};
use crate::model::unix_now;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use serde_json::{Map, Value};
use super::replay::FirstUse;
use std::sync::Arc;
use std::time::Duration;

/// Largest attestation accepted, bytes.
const MAX_SIZE: usize = 8192;

/// `[gateway.routes.attestation]`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttestationConfig {
    /// `header`: where the attestation comes (lower-case; default `x-app-attestation`).
    pub header: String,
    /// The attestation service's JWK Set (`jwks_file`, or `jwks` inline): the only keys
    /// trusted.
    pub jwks: Value,
    /// `algorithms` accepted (default ES256 and EdDSA).
    pub algorithms: Vec<Alg>,
    /// `issuer`: the attestation service's exact `iss`.
    pub issuer: String,
    /// `audience`: the `aud` it must carry (this API, or the deployment).
    pub audience: String,
    /// `max_age`: how old (`iat`) an attestation may be (default 5 minutes).
    pub max_age: Duration,
    /// `client_claim`: the claim naming the app, compared with the caller's client id or
    /// consumer (default `sub`).
    pub client_claim: String,
    /// `bind_token`: require `ath`, the hash of the access token sent with it.
    pub bind_token: bool,
    /// `clock_skew` on `exp`, `nbf` and `iat` (default 30 s).
    pub clock_skew: Duration,
}

/// The trusted keys, each usable only with an allowed algorithm.
struct Keys {
    keys: Vec<Arc<VerificationKey>>,
    algorithms: Vec<Alg>,
}

impl KeyLookup for Keys {
    fn find(&self, kid: Option<&str>, alg: Alg) -> Option<Arc<VerificationKey>> {
        if !self.algorithms.contains(&alg) {
            return None;
        }
        self.keys.as_slice().find(kid, alg)
    }
}

/// One route's attestation policy.
pub struct Attest {
    cfg: AttestationConfig,
    header: HeaderName,
    keys: Keys,
    challenge: HeaderValue,
    /// `iss` + `jti` → last second a replay would still be accepted (shared by the routes
    /// of a gateway and carried over by a reload).
    seen: ReplayMemory,
}

/// Attestations seen: `iss` + `jti` → last second a replay would still be accepted.
pub type ReplayMemory = Arc<super::replay::ReplayMemory>;

/// An empty [`ReplayMemory`] for `capacity` attestations (`[gateway] replay_memory`).
pub fn replay_memory(capacity: usize) -> ReplayMemory {
    Arc::new(super::replay::ReplayMemory::new(capacity))
}

impl std::fmt::Debug for Attest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attest").field("header", &self.header).field("issuer", &self.cfg.issuer).finish()
    }
}

impl Attest {
    /// The policy; `Err` names what is wrong with the settings (`warden config check` runs it).
    pub fn new(cfg: &AttestationConfig) -> Result<Self, String> {
        let header = HeaderName::from_bytes(cfg.header.as_bytes()).map_err(|_| format!("\"{}\" is not a header name", cfg.header))?;
        let keys = jose::client_jwks(&cfg.jwks).map_err(|e| e.to_string())?;
        if !keys.iter().any(|k| k.algs.iter().any(|a| cfg.algorithms.contains(a))) {
            return Err("no key of the JWK Set may be used with the configured algorithms".into());
        }
        let challenge = HeaderValue::from_str(&format!("Attestation header=\"{}\"", cfg.header)).map_err(|_| "bad header name".to_owned())?;
        Ok(Self {
            header,
            keys: Keys { keys, algorithms: cfg.algorithms.clone() },
            challenge,
            // Replaced by the gateway's shared memory (`sharing`) before serving.
            seen: replay_memory(1_000),
            cfg: cfg.clone(),
        })
    }

    /// Remembers attestations in `seen` (the gateway's, which outlives a reload) instead of
    /// its own.
    pub fn sharing(mut self, seen: ReplayMemory) -> Self {
        self.seen = seen;
        self
    }

    fn required(&self, detail: &str) -> Denial {
        Denial::new(401, "urn:warden:problem:attestation-required", "Unauthorized", detail)
            .with_header(header::WWW_AUTHENTICATE, self.challenge.clone())
            .with_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
    }

    fn mismatch(&self, detail: &str) -> Denial {
        Denial::new(403, "urn:warden:problem:attestation-mismatch", "Forbidden", detail).with_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
    }

    /// Steps 1–7 of the module doc.
    fn check(&self, ctx: &RequestContext, head: &Parts, now: i64) -> Result<(), Denial> {
        let Identity::Token(caller) = &ctx.identity else {
            return Err(self.required("an app attestation is checked for an authenticated caller; none authenticated"));
        };
        let mut values = head.headers.get_all(&self.header).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(self.required(&format!("this API needs exactly one app attestation in the {} header", self.cfg.header)));
        };
        if value.len() > MAX_SIZE {
            return Err(self.required("the app attestation is too large"));
        }
        let token = value.to_str().map_err(|_| self.required("the app attestation is malformed"))?;
        let leeway = self.cfg.clock_skew.as_secs();
        let claim = self.cfg.client_claim.as_str();
        let expect = Expectations {
            issuer: Some(&self.cfg.issuer),
            audience: &[self.cfg.audience.as_str()],
            typ: &[],
            required: &["iat", "jti", claim],
            leeway,
        };
        let claims: Map<String, Value> = jose::verify(token, &self.keys, &expect).map_err(|e| self.required(describe(&e)))?;
        let iat = claims.get("iat").and_then(Value::as_i64).ok_or_else(|| self.required("the app attestation is malformed"))?;
        let leeway = leeway as i64;
        if iat > now.saturating_add(leeway) {
            return Err(self.required("the app attestation is issued in the future"));
        }
        if now.saturating_sub(iat) > self.cfg.max_age.as_secs() as i64 + leeway {
            return Err(self.required("the app attestation is too old; attest again"));
        }
        let app = claims.get(claim).and_then(Value::as_str).ok_or_else(|| self.required("the app attestation is malformed"))?;
        let bound = caller.client_id.as_deref() == Some(app) || caller.consumer.as_deref() == Some(app);
        if !bound {
            return Err(self.mismatch("the app attestation was issued to another app than the calling client"));
        }
        if self.cfg.bind_token {
            let sent = access_token(head).ok_or_else(|| self.mismatch("the app attestation is bound to an access token; none was sent"))?;
            let ath = jose::sha256_b64url(sent.as_bytes());
            let claimed = claims.get("ath").and_then(Value::as_str).unwrap_or("");
            if aws_lc_rs::constant_time::verify_slices_are_equal(ath.as_bytes(), claimed.as_bytes()).is_err() {
                return Err(self.mismatch("the app attestation is bound to another access token (ath)"));
            }
        }
        let jti = claims.get("jti").and_then(Value::as_str).ok_or_else(|| self.required("the app attestation is malformed"))?;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
        // Kept while the attestation could pass: until its exp, and until it is too old.
        let until = exp.min(iat.saturating_add(self.cfg.max_age.as_secs() as i64)).saturating_add(leeway);
        let key = format!("{}\u{0}{jti}", self.cfg.issuer);
        match self.seen.first_use(key, until, now) {
            FirstUse::Yes => Ok(()),
            FirstUse::Replayed => Err(self.required("the app attestation was used before; attest again")),
            FirstUse::Full(retry_after) => Err(super::replay::full(retry_after)),
        }
    }
}

/// The access token of `Authorization: Bearer|DPoP <token>`.
fn access_token(head: &Parts) -> Option<&str> {
    let (scheme, token) = head.headers.get(header::AUTHORIZATION)?.to_str().ok()?.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop")).then(|| token.trim_start_matches(' '))
}

fn describe(e: &jose::JoseError) -> &'static str {
    use jose::JoseError as E;
    match e {
        E::Expired => "the app attestation has expired; attest again",
        E::NotYetValid => "the app attestation is not valid yet",
        E::WrongIssuer => "the app attestation is not from the trusted attestation service",
        E::WrongAudience => "the app attestation is not meant for this API",
        E::UnknownKid | E::AlgNotAllowed | E::BadSignature | E::Key(_) => "the app attestation is not signed by a trusted attestation key",
        E::MissingClaim(_) => "the app attestation lacks a required claim",
        E::Malformed | E::UnsupportedCritical | E::WrongType => "the app attestation is malformed",
    }
}

#[async_trait::async_trait]
impl Policy for Attest {
    fn name(&self) -> &'static str {
        "attestation"
    }

    async fn on_request(&self, ctx: &mut RequestContext, head: &mut Parts) -> Flow {
        match self.check(ctx, head, unix_now()) {
            Ok(()) => {
                head.headers.remove(&self.header);
                Flow::Continue
            }
            Err(d) => Flow::Stop(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::context::Caller;
    use crate::jose::{SigningKey, generate_key_record};
    use crate::secrets::MasterKey;
    use serde_json::json;

    /// The test's "now": `jose::verify` checks `exp` against the clock, the policy's own
    /// checks against the `now` they are given.
    static START: std::sync::LazyLock<i64> = std::sync::LazyLock::new(unix_now);

    fn key(alg: Alg) -> (SigningKey, Value) {
        let master = MasterKey::from_bytes(&[7; 32]);
        let rec = generate_key_record(alg, &master, 0, 0).unwrap();
        let pkcs8 = master.open(&rec.sealed_private, rec.kid.as_str().as_bytes()).unwrap();
        (SigningKey::from_pkcs8(rec.kid.clone(), alg, &pkcs8).unwrap(), rec.public_jwk)
    }

    fn config(jwk: &Value) -> AttestationConfig {
        AttestationConfig {
            header: "x-app-attestation".into(),
            jwks: json!({"keys": [jwk]}),
            algorithms: vec![Alg::ES256, Alg::EdDSA],
            issuer: "https://attest.example".into(),
            audience: "api".into(),
            max_age: Duration::from_secs(300),
            client_claim: "sub".into(),
            bind_token: false,
            clock_skew: Duration::from_secs(10),
        }
    }

    fn ctx(client_id: Option<&str>, consumer: Option<&str>) -> RequestContext {
        let caller = Caller {
            source: "warden".into(),
            sub: None,
            client_id: client_id.map(str::to_owned),
            consumer: consumer.map(Arc::from),
            plan: None,
            scopes: vec![],
            claims: Map::new(),
        };
        RequestContext { identity: Identity::Token(Arc::new(caller)), ..RequestContext::new(String::new(), crate::http::client_ip::ClientAddr { peer: ([127, 0, 0, 1], 1).into(), ip: [127, 0, 0, 1].into() }, false) }
    }

    fn head(attestations: &[&str]) -> Parts {
        let mut b = hyper::Request::get("/").header("authorization", "Bearer tok");
        for a in attestations {
            b = b.header("x-app-attestation", *a);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn claims(extra: Value) -> Value {
        let mut c = json!({"iss": "https://attest.example", "aud": "api", "sub": "app-1", "iat": *START, "exp": *START + 60, "jti": "j1"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    /// The status and detail of a check at `now`.
    fn outcome(a: &Attest, ctx: &RequestContext, token: &str, now: i64) -> (u16, String) {
        match a.check(ctx, &head(&[token]), now) {
            Ok(()) => (200, String::new()),
            Err(d) => (d.problem.status, d.problem.detail.unwrap_or_default()),
        }
    }

    /// Each check of the module doc, at its boundary where it has one.
    #[test]
    fn every_check_refuses_on_its_own() {
        let (k, jwk) = key(Alg::EdDSA);
        let a = Attest::new(&config(&jwk)).unwrap();
        let caller = ctx(Some("app-1"), None);
        let sign = |extra: Value| k.sign_jwt("JWT", &claims(extra)).unwrap();
        let mut jti = 0;
        let mut fresh = |extra: Value| {
            jti += 1;
            let mut e = extra;
            if e.get("jti").is_none() {
                e["jti"] = format!("j{jti}").into();
            }
            sign(e)
        };
        assert_eq!(outcome(&a, &caller, &fresh(json!({})), *START).0, 200);
        // 1. an authenticated caller.
        let mut anonymous = ctx(None, None);
        anonymous.identity = Identity::Anonymous;
        assert_eq!(outcome(&a, &anonymous, &fresh(json!({})), *START).0, 401);
        // 2. exactly one, not too large.
        assert_eq!(a.check(&caller, &head(&[]), *START).unwrap_err().problem.status, 401);
        let t = fresh(json!({}));
        assert_eq!(a.check(&caller, &head(&[&t, &t]), *START).unwrap_err().problem.status, 401);
        assert_eq!(outcome(&a, &caller, &"a".repeat(MAX_SIZE + 1), *START).1, "the app attestation is too large");
        // 3. the trusted key and algorithms, iss, aud, exp with the skew.
        let (other, _) = key(Alg::EdDSA);
        assert!(outcome(&a, &caller, &other.sign_jwt("JWT", &claims(json!({"jti": "x1"}))).unwrap(), *START).1.contains("trusted attestation key"));
        assert!(outcome(&a, &caller, &fresh(json!({"iss": "https://x"})), *START).1.contains("trusted attestation service"));
        assert!(outcome(&a, &caller, &fresh(json!({"aud": ["other"]})), *START).1.contains("not meant for this API"));
        assert_eq!(outcome(&a, &caller, &fresh(json!({"exp": *START - 5})), *START).0, 200, "exp within the skew");
        assert!(outcome(&a, &caller, &fresh(json!({"exp": *START - 30})), *START).1.contains("expired"));
        // 4. iat: present, at most max_age (+ skew) old, not in the future beyond the skew.
        assert!(outcome(&a, &caller, &fresh(json!({"iat": null})), *START).1.contains("lacks a required claim"));
        assert_eq!(outcome(&a, &caller, &fresh(json!({"iat": *START - 310})), *START).0, 200);
        assert!(outcome(&a, &caller, &fresh(json!({"iat": *START - 311})), *START).1.contains("too old"));
        assert_eq!(outcome(&a, &caller, &fresh(json!({"iat": *START + 10})), *START).0, 200);
        assert!(outcome(&a, &caller, &fresh(json!({"iat": *START + 11})), *START).1.contains("in the future"));
        // 5. bound to the caller's client id, or its consumer.
        assert_eq!(outcome(&a, &caller, &fresh(json!({"sub": "app-2"})), *START).0, 403);
        assert_eq!(outcome(&a, &ctx(None, Some("app-1")), &fresh(json!({})), *START).0, 200, "the consumer of an API key");
        assert_eq!(outcome(&a, &ctx(Some("app-2"), Some("app-1")), &fresh(json!({})), *START).0, 200);
        assert!(outcome(&a, &caller, &fresh(json!({"sub": 7})), *START).1.contains("malformed"));
        // 7. single use, remembered while it could pass (here until iat + max_age + skew).
        let once = fresh(json!({"jti": "once", "exp": *START + 3600}));
        assert_eq!(outcome(&a, &caller, &once, *START).0, 200);
        assert!(outcome(&a, &caller, &once, *START + 1).1.contains("used before"));
        assert!(outcome(&a, &caller, &once, *START + 310).1.contains("used before"));
        assert!(outcome(&a, &caller, &once, *START + 311).1.contains("too old"), "forgotten only once it cannot pass anyway");
        assert!(outcome(&a, &caller, &fresh(json!({"jti": null})), *START).1.contains("lacks a required claim"));
    }

    #[test]
    fn bind_token_requires_the_hash_of_the_access_token_sent() {
        let (k, jwk) = key(Alg::ES256);
        let a = Attest::new(&AttestationConfig { bind_token: true, ..config(&jwk) }).unwrap();
        let caller = ctx(Some("app-1"), None);
        let ath = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"tok"));
        let t = |extra: Value| k.sign_jwt("JWT", &claims(extra)).unwrap();
        assert_eq!(outcome(&a, &caller, &t(json!({"jti": "1", "ath": ath})), *START).0, 200);
        assert_eq!(outcome(&a, &caller, &t(json!({"jti": "2", "ath": "AAAA"})), *START).0, 403);
        assert_eq!(outcome(&a, &caller, &t(json!({"jti": "3"})), *START).0, 403);
        let mut no_token = head(&[&t(json!({"jti": "4", "ath": ath}))]);
        no_token.headers.remove("authorization");
        assert_eq!(a.check(&caller, &no_token, *START).unwrap_err().problem.status, 403);
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        let (_, jwk) = key(Alg::EdDSA);
        assert!(Attest::new(&AttestationConfig { header: "bad header".into(), ..config(&jwk) }).is_err());
        assert!(Attest::new(&AttestationConfig { algorithms: vec![Alg::ES256], ..config(&jwk) }).unwrap_err().contains("no key"));
        let mut private = jwk.clone();
        private["d"] = "AAAA".into();
        assert!(Attest::new(&config(&private)).is_err(), "private key material refuses the set");
        assert!(Attest::new(&AttestationConfig { jwks: json!({}), ..config(&jwk) }).is_err());
    }
}
