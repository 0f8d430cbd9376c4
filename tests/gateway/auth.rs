//! Issue #7 items 3 and 4: authentication and authorization at the gateway, over real
//! sockets with the recording upstream. Every refusal is checked to have left the upstream
//! untouched, to carry `Cache-Control: no-store` and a problem+json body.
//!
//! Tokens are Warden's own (from the in-process provider's token endpoint, or forged here
//! with the provider's stored keys to reach each check) and an external issuer's, whose JWK
//! Set an in-process server serves and can change or take down.

use super::upstream::Upstream;
use super::{assert_problem, base, route};
use crate::support::TestServer;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use warden::config::Role;
use warden::gateway::{Auth, IssuerConfig, ObjectRule, ParamSource, RouteConfig, Rules};
use warden::jose::{Alg, SigningKey};
use warden::model::Kid;

pub(super) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub(super) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(super) fn unique() -> String {
    let mut b = [0u8; 12];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b64(b)
}

/// A compact JWS with exactly this header and payload, signed by `key` (`None`: empty
/// signature, as for `alg: none`).
pub(super) fn jws(header: &Value, claims: &Value, key: Option<&SigningKey>) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig = key.map(|k| b64(k.sign(input.as_bytes()).unwrap())).unwrap_or_default();
    format!("{input}.{sig}")
}

/// A new key pair outside Warden (an attacker's, or another issuer's) and its public JWK.
pub(super) fn fresh_key(alg: Alg, kid: &str) -> (SigningKey, Value) {
    let master = warden::secrets::MasterKey::from_bytes(&[9; 32]);
    let rec = warden::jose::generate_key_record(alg, &master, now(), now()).unwrap();
    let pkcs8 = master.open(&rec.sealed_private, rec.kid.as_str().as_bytes()).unwrap();
    let key = SigningKey::from_pkcs8(Kid(kid.into()), alg, &pkcs8).unwrap();
    let mut jwk = rec.public_jwk;
    jwk["kid"] = kid.into();
    (key, jwk)
}

/// The provider's stored key of `alg` (the one that signs), opened with its master key.
async fn warden_key(s: &TestServer, alg: Alg) -> (SigningKey, Value) {
    let records = s.store.catalog.signing_keys().await.unwrap();
    let rec = warden::jose::signing_record(&records, alg, now()).expect("a key of this algorithm");
    let pkcs8 = s.master.open(&rec.sealed_private, rec.kid.as_str().as_bytes()).unwrap();
    (SigningKey::from_pkcs8(rec.kid.clone(), alg, &pkcs8).unwrap(), rec.public_jwk.clone())
}

/// Claims of a good Warden access token.
fn claims(s: &TestServer) -> Value {
    let t = now();
    json!({"iss": s.issuer, "sub": "client-x", "aud": s.cfg.oauth.default_audience, "exp": t + 300, "iat": t,
           "jti": unique(), "client_id": "client-x", "scope": "read"})
}

fn at_header(key: &SigningKey) -> Value {
    json!({"alg": key.alg.as_str(), "kid": key.kid.as_str(), "typ": "at+jwt"})
}

pub(super) fn warden_route(id: &str, path: &str, upstream: &str) -> RouteConfig {
    RouteConfig { auth: vec![Auth::Warden], ..route(id, path, &["GET", "POST"], upstream) }
}

/// A server with the provider and the gateway, these routes, and the given edits.
pub(super) async fn both(routes: Vec<RouteConfig>, edit: impl FnOnce(&mut warden::config::Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.roles = vec![Role::Provider, Role::Gateway];
        c.gateway.routes = routes;
        edit(c);
    })
    .await
}

pub(super) async fn get(s: &TestServer, path: &str, auth: Option<&str>) -> reqwest::Response {
    let mut req = s.http.get(format!("{}{path}", base(s)));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap()
}

/// Asserts a refusal: status, `no-store`, problem+json; returns the challenge header(s).
pub(super) async fn refused(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "no-store on {status}");
    let challenges: Vec<String> = resp.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_problem(resp, status).await;
    challenges.join(" | ")
}

/// A token from the in-process provider verifies at the gateway; the upstream sees the
/// caller's identity headers (never a client's own copies); no token → 401 without `error`.
#[tokio::test]
async fn a_token_from_the_provider_passes_and_a_missing_one_is_401() {
    let up = Upstream::start().await;
    let s = both(vec![warden_route("api", "/api/", &up.url())], |_| {}).await;
    let (id, secret) = s.cc_client().await;
    let token = s.token(&id, &secret, &[]).await;

    let resp = s.http.get(format!("{}/api/orders", base(&s))).bearer_auth(&token).header("x-warden-sub", "admin").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let seen = up.one();
    assert_eq!(seen.headers["x-warden-sub"], id.as_str(), "set from the token, the caller's copy dropped");
    assert_eq!(seen.headers["x-warden-client-id"], id.as_str());
    let (_, claims) = crate::support::jwt_parts(&token);
    assert_eq!(seen.headers["x-warden-scope"], claims["scope"].as_str().unwrap());
    // The scheme is case-insensitive, and a token seen before (cached) still passes.
    up.clear();
    for scheme in ["bearer", "BEARER", "Bearer"] {
        assert_eq!(get(&s, "/api/x", Some(&format!("{scheme} {token}"))).await.status(), 200, "{scheme}");
    }
    assert_eq!(up.seen().len(), 3);

    up.clear();
    let resp = s.http.get(format!("{}/api/orders", base(&s))).header("x-warden-sub", "admin").send().await.unwrap();
    let challenge = refused(resp, 401).await;
    assert!(challenge.starts_with("Bearer") && !challenge.contains("error="), "{challenge}");
    let challenge = refused(get(&s, "/api/x", Some("Bearer not-a-jwt")).await, 401).await;
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(up.seen().is_empty(), "no refusal reached the upstream");
}

/// Every JWT attack of the issue, each refused with 401 `invalid_token` (or 400 for the
/// header tricks) and none reaching the upstream.
#[tokio::test]
async fn every_jwt_attack_is_refused_and_never_reaches_the_upstream() {
    let up = Upstream::start().await;
    // A JWKS server an attacker names in jku / x5u: it must never be contacted.
    let lure = JwksServer::start(json!({"keys": []})).await;
    let s = both(vec![warden_route("api", "/api/", &up.url())], |_| {}).await;
    let (es, es_jwk) = warden_key(&s, Alg::ES256).await;
    let (rs, rs_jwk) = warden_key(&s, Alg::RS256).await;
    let (evil, evil_jwk) = fresh_key(Alg::ES256, "evil-1");
    lure.set(json!({"keys": [evil_jwk.clone()]}));
    let good = claims(&s);
    // Sanity: the forging helper makes tokens the gateway accepts.
    assert_eq!(get(&s, "/api/x", Some(&format!("Bearer {}", jws(&at_header(&es), &good, Some(&es))))).await.status(), 200);
    up.clear();

    let hmac = |alg: &str, kid: &str, secret: &[u8]| {
        let header = json!({"alg": alg, "kid": kid, "typ": "at+jwt"});
        let input = format!("{}.{}", b64(header.to_string()), b64(good.to_string()));
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        format!("{input}.{}", b64(aws_lc_rs::hmac::sign(&k, input.as_bytes())))
    };
    let mut attacks: Vec<(String, String)> = Vec::new();
    for none in ["none", "None", "NONE", "nOnE"] {
        attacks.push((format!("alg {none}"), jws(&json!({"alg": none, "kid": es.kid.as_str(), "typ": "at+jwt"}), &good, None)));
    }
    // Algorithm confusion: the public key (as JWK text, and as its raw members) as an HMAC secret.
    attacks.push(("HS256 with the RSA public key".into(), hmac("HS256", rs.kid.as_str(), rs_jwk.to_string().as_bytes())));
    attacks.push(("HS256 with the RSA modulus".into(), hmac("HS256", rs.kid.as_str(), &URL_SAFE_NO_PAD.decode(rs_jwk["n"].as_str().unwrap()).unwrap())));
    attacks.push(("HS256 with the EC public key".into(), hmac("HS256", es.kid.as_str(), es_jwk.to_string().as_bytes())));
    attacks.push(("HS384 with the EC x coordinate".into(), hmac("HS384", es.kid.as_str(), &URL_SAFE_NO_PAD.decode(es_jwk["x"].as_str().unwrap()).unwrap())));
    // Keys the token names or carries.
    let with = |extra: Value| {
        let mut h = json!({"alg": "ES256", "kid": "evil-1", "typ": "at+jwt"});
        h.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        jws(&h, &good, Some(&evil))
    };
    attacks.push(("jku".into(), with(json!({"jku": lure.url()}))));
    attacks.push(("x5u".into(), with(json!({"x5u": lure.url()}))));
    attacks.push(("embedded jwk".into(), with(json!({"jwk": evil_jwk}))));
    attacks.push(("embedded jwk with Warden's kid".into(), {
        let h = json!({"alg": "ES256", "kid": es.kid.as_str(), "typ": "at+jwt", "jwk": evil_jwk});
        jws(&h, &good, Some(&evil))
    }));
    attacks.push(("x5c".into(), with(json!({"x5c": [b64(b"not a certificate")]}))));
    // A key used with an algorithm other than its own: the RSA key's kid, signed PS256.
    let (ps_as_rs, _) = {
        let records = s.store.catalog.signing_keys().await.unwrap();
        let rec = warden::jose::signing_record(&records, Alg::RS256, now()).unwrap().clone();
        let pkcs8 = s.master.open(&rec.sealed_private, rec.kid.as_str().as_bytes()).unwrap();
        (SigningKey::from_pkcs8(rec.kid.clone(), Alg::PS256, &pkcs8).unwrap(), ())
    };
    attacks.push(("the RS256 key used for PS256".into(), jws(&json!({"alg": "PS256", "kid": rs.kid.as_str(), "typ": "at+jwt"}), &good, Some(&ps_as_rs))));
    attacks.push(("the ES256 kid with RS256".into(), jws(&json!({"alg": "RS256", "kid": es.kid.as_str(), "typ": "at+jwt"}), &good, Some(&rs))));
    // Headers and claims, each signed by the real key.
    let mut crit = at_header(&es);
    crit["crit"] = json!(["exp"]);
    attacks.push(("unknown crit".into(), jws(&crit, &good, Some(&es))));
    let t = now();
    let edit = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c["jti"] = unique().into();
        jws(&at_header(&es), &c, Some(&es))
    };
    attacks.push(("wrong iss".into(), edit("iss", "https://evil.example".into())));
    attacks.push(("wrong aud".into(), edit("aud", "https://other-api.example".into())));
    attacks.push(("wrong aud in an array".into(), edit("aud", json!(["https://other-api.example"]))));
    attacks.push(("expired".into(), edit("exp", (t - 3600).into())));
    attacks.push(("exp as a string".into(), edit("exp", (t + 300).to_string().into())));
    attacks.push(("no exp".into(), edit("exp", Value::Null)));
    attacks.push(("nbf in the future".into(), edit("nbf", (t + 3600).into())));
    attacks.push(("iat in the future".into(), edit("iat", (t + 3600).into())));
    // An ID token (signed by the provider's ID-token key) is not an access token.
    let id_token = json!({"iss": s.issuer, "sub": "user-1", "aud": s.cfg.oauth.default_audience, "exp": t + 300, "iat": t, "nonce": "n-1"});
    attacks.push(("ID token (typ JWT)".into(), jws(&json!({"alg": "RS256", "kid": rs.kid.as_str(), "typ": "JWT"}), &id_token, Some(&rs))));
    let mut id_as_at = id_token.clone();
    id_as_at["jti"] = unique().into();
    id_as_at["client_id"] = "c".into();
    attacks.push(("ID token relabelled at+jwt".into(), jws(&json!({"alg": "RS256", "kid": rs.kid.as_str(), "typ": "at+jwt"}), &id_as_at, Some(&rs))));
    attacks.push(("a bad signature".into(), {
        let t = jws(&at_header(&es), &good, Some(&es));
        let (rest, _) = t.rsplit_once('.').unwrap();
        format!("{rest}.{}", b64([7u8; 64]))
    }));

    for (name, token) in &attacks {
        let challenge = refused(get(&s, "/api/x", Some(&format!("Bearer {token}"))).await, 401).await;
        assert!(challenge.contains("error=\"invalid_token\""), "{name}: {challenge}");
    }
    assert!(up.seen().is_empty(), "an attack reached the upstream: {:?}", up.seen());
    assert_eq!(lure.fetches(), 0, "a URL from a token header was fetched");

    // Header tricks: two Authorization headers, a token in the query (400); an oversized
    // token (401).
    let token = jws(&at_header(&es), &good, Some(&es));
    let resp = s
        .http
        .get(format!("{}/api/x", base(&s)))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", "Bearer other")
        .send()
        .await
        .unwrap();
    let challenge = refused(resp, 400).await;
    assert!(challenge.contains("invalid_request"), "{challenge}");
    refused(get(&s, &format!("/api/x?access_token={token}"), None).await, 400).await;
    refused(get(&s, &format!("/api/x?a=1&access_token={token}"), Some(&format!("Bearer {token}"))).await, 400).await;
    let huge = format!("Bearer {}", "a".repeat(9 * 1024));
    let challenge = refused(get(&s, "/api/x", Some(&huge)).await, 401).await;
    assert!(challenge.contains("invalid_token"), "{challenge}");
    refused(get(&s, "/api/x", Some(&format!("Basic {}", b64("u:p")))).await, 401).await;
    assert!(up.seen().is_empty(), "a header trick reached the upstream: {:?}", up.seen());
}

/// Waits until `GET path` with `token` answers 401; returns how long that took.
async fn until_refused(s: &TestServer, path: &str, token: &str) -> Duration {
    let start = Instant::now();
    loop {
        let status = get(s, path, Some(&format!("Bearer {token}"))).await.status();
        if status == 401 {
            return start.elapsed();
        }
        assert_eq!(status, 200);
        assert!(start.elapsed() < Duration::from_secs(5), "the revoked token still passes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A token revoked at the provider is refused by the gateway within 1 s, although it was
/// verified (and cached) before — in the same process and on a second, gateway-only node
/// sharing the store.
#[tokio::test]
async fn a_token_revoked_at_the_provider_is_refused_within_one_second_on_every_node() {
    let up = Upstream::start().await;
    let s = both(vec![warden_route("api", "/api/", &up.url())], |_| {}).await;
    let routes = vec![warden_route("api", "/api/", &up.url())];
    let node2 = s.another_node(move |c| {
        c.roles = vec![Role::Gateway];
        c.gateway.routes = routes;
    })
    .await;
    let (id, secret) = s.cc_client().await;
    let (a, b) = (s.token(&id, &secret, &[]).await, s.token(&id, &secret, &[]).await);
    for t in [&a, &b] {
        assert_eq!(get(&s, "/api/x", Some(&format!("Bearer {t}"))).await.status(), 200);
        assert_eq!(get(&node2, "/api/x", Some(&format!("Bearer {t}"))).await.status(), 200);
    }
    assert_eq!(s.post_form("/revoke", Some((&id, &secret)), &[("token", &a)]).await.status(), 200);
    let (here, there) = tokio::join!(until_refused(&s, "/api/x", &a), until_refused(&node2, "/api/x", &a));
    assert!(here < Duration::from_secs(1), "same process: {here:?}");
    assert!(there < Duration::from_secs(1), "other node: {there:?}");
    let challenge = refused(get(&node2, "/api/x", Some(&format!("Bearer {a}"))).await, 401).await;
    assert!(challenge.contains("revoked"), "{challenge}");
    // The other token is untouched.
    assert_eq!(get(&s, "/api/x", Some(&format!("Bearer {b}"))).await.status(), 200);
    assert_eq!(get(&node2, "/api/x", Some(&format!("Bearer {b}"))).await.status(), 200);
}

/// Scopes all-of / any-of: exact matches; a missing one is 403 `insufficient_scope` naming
/// what is needed.
#[tokio::test]
async fn required_scopes_are_checked_exactly() {
    let up = Upstream::start().await;
    let rules = |all: &[&str], any: &[&str]| Rules {
        scopes_all: all.iter().map(|s| s.to_string()).collect(),
        scopes_any: any.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let routes = vec![
        RouteConfig { rules: rules(&["read"], &[]), ..warden_route("read", "/read/", &up.url()) },
        RouteConfig { rules: rules(&["read", "write"], &[]), ..warden_route("both", "/both/", &up.url()) },
        RouteConfig { rules: rules(&[], &["admin", "write"]), ..warden_route("any", "/any/", &up.url()) },
        RouteConfig { rules: rules(&["rea"], &[]), ..warden_route("prefix", "/prefix/", &up.url()) },
    ];
    let s = both(routes, |_| {}).await;
    let (id, secret) = s.cc_client().await;
    let read = s.token(&id, &secret, &[("scope", "read")]).await;
    let all = s.token(&id, &secret, &[("scope", "read write")]).await;
    let auth = |t: &str| format!("Bearer {t}");
    assert_eq!(get(&s, "/read/x", Some(&auth(&read))).await.status(), 200);
    assert_eq!(get(&s, "/both/x", Some(&auth(&all))).await.status(), 200);
    assert_eq!(get(&s, "/any/x", Some(&auth(&all))).await.status(), 200);
    assert_eq!(up.seen().len(), 3);
    up.clear();
    let challenge = refused(get(&s, "/both/x", Some(&auth(&read))).await, 403).await;
    // (RFC 9728 §5.1: the route's metadata URL comes last, `rfc9728_metadata.rs`.)
    let metadata = format!("{}/.well-known/oauth-protected-resource/both", base(&s));
    assert_eq!(challenge, format!("Bearer error=\"insufficient_scope\", scope=\"read write\", resource_metadata=\"{metadata}\""));
    let challenge = refused(get(&s, "/any/x", Some(&auth(&read))).await, 403).await;
    assert!(challenge.contains("scope=\"admin write\""), "{challenge}");
    refused(get(&s, "/prefix/x", Some(&auth(&read))).await, 403).await;
    refused(get(&s, "/read/x", None).await, 401).await;
    assert!(up.seen().is_empty());
}

/// A JWK Set server whose answer a test can change or take down; counts its fetches.
struct JwksServer {
    addr: std::net::SocketAddr,
    state: Arc<(Mutex<Option<Value>>, AtomicUsize)>,
    _stop: tokio_util::sync::DropGuard,
}

impl JwksServer {
    async fn start(jwks: Value) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new((Mutex::new(Some(jwks)), AtomicUsize::new(0)));
        async fn serve(State(st): State<Arc<(Mutex<Option<Value>>, AtomicUsize)>>) -> Response {
            st.1.fetch_add(1, Ordering::SeqCst);
            match st.0.lock().unwrap().clone() {
                Some(v) => axum::Json(v).into_response(),
                None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            }
        }
        let app = Router::new().fallback(serve).with_state(state.clone());
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(async move { s.cancelled().await }).await;
        });
        JwksServer { addr, state, _stop: stop.drop_guard() }
    }

    fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    fn set(&self, jwks: Value) {
        *self.state.0.lock().unwrap() = Some(jwks);
    }

    fn down(&self) {
        *self.state.0.lock().unwrap() = None;
    }

    fn fetches(&self) -> usize {
        self.state.1.load(Ordering::SeqCst)
    }
}

const PARTNER: &str = "https://idp.partner.example";
const API: &str = "https://cars.example";

fn issuer(jwks: &JwksServer, refresh: Duration) -> IssuerConfig {
    IssuerConfig {
        name: "partner".into(),
        issuer: PARTNER.into(),
        jwks_url: jwks.url(),
        jwks_ca_file: None,
        algorithms: vec![Alg::ES256, Alg::EdDSA],
        audience: API.into(),
        types: vec![],
        clock_skew: Duration::from_secs(30),
        refresh_interval: refresh,
        introspection: None,
    }
}

fn partner_token(key: &SigningKey, extra: Value) -> String {
    let t = now();
    let mut c = json!({"iss": PARTNER, "sub": "user-7", "aud": API, "exp": t + 300, "iat": t, "scope": "cars:read"});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    jws(&json!({"alg": key.alg.as_str(), "kid": key.kid.as_str(), "typ": "at+jwt"}), &c, Some(key))
}

fn partner_route(id: &str, path: &str, upstream: &str) -> RouteConfig {
    RouteConfig { auth: vec![Auth::Issuer("partner".into())], ..route(id, path, &["GET"], upstream) }
}

/// Rotation by an unknown `kid` (one refetch), and the cooldown: further unknown `kid`s
/// within it fetch nothing and fail closed; an algorithm the issuer is not allowed is
/// refused even with a key in its set.
#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_once_per_cooldown() {
    let up = Upstream::start().await;
    let (k1, j1) = fresh_key(Alg::ES256, "k1");
    let (k2, j2) = fresh_key(Alg::ES256, "k2");
    let (k3, j3) = fresh_key(Alg::ES256, "k3");
    let (rsa, jr) = fresh_key(Alg::RS256, "r1");
    let jwks = JwksServer::start(json!({"keys": [j1.clone(), jr.clone()]})).await;
    let iss = issuer(&jwks, Duration::from_secs(3600));
    let s = super::gateway(vec![partner_route("cars", "/cars/", &up.url())], move |c| {
        c.gateway.issuers = vec![iss];
        c.gateway.jwks_refetch_cooldown = Duration::from_secs(30);
    })
    .await;
    assert_eq!(jwks.fetches(), 1, "fetched once at start");
    let bearer = |t: String| format!("Bearer {t}");
    assert_eq!(get(&s, "/cars/1", Some(&bearer(partner_token(&k1, json!({}))))).await.status(), 200);
    // The issuer rotates: k2 is unknown here, so the set is fetched again, once.
    jwks.set(json!({"keys": [j1.clone(), j2.clone(), j3.clone()]}));
    assert_eq!(get(&s, "/cars/1", Some(&bearer(partner_token(&k2, json!({}))))).await.status(), 200);
    assert_eq!(jwks.fetches(), 2);
    assert_eq!(get(&s, "/cars/1", Some(&bearer(partner_token(&k3, json!({}))))).await.status(), 200, "k3 came with that fetch");
    // Unknown kids within the cooldown fetch nothing and fail closed.
    let (stranger, _) = fresh_key(Alg::ES256, "k9");
    for _ in 0..5 {
        refused(get(&s, "/cars/1", Some(&bearer(partner_token(&stranger, json!({}))))).await, 401).await;
    }
    assert_eq!(jwks.fetches(), 2, "the cooldown holds");
    // RS256 is not among this issuer's algorithms, though its key is in the set.
    refused(get(&s, "/cars/1", Some(&bearer(partner_token(&rsa, json!({}))))).await, 401).await;
    // Warden's own tokens are not accepted on a route that names only the partner.
    let t = now();
    let forged = jws(&json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"}), &json!({"iss": "https://other", "aud": API, "exp": t + 60}), Some(&k1));
    refused(get(&s, "/cars/1", Some(&bearer(forged))).await, 401).await;
    assert_eq!(up.seen().len(), 3);
}

/// A key dropped from the JWK Set stops working at the next refresh, even for a token
/// verified (and cached) before; while the JWKS endpoint is down the last set that loaded
/// keeps serving.
#[tokio::test]
async fn jwks_removal_takes_effect_at_the_next_refresh_and_an_outage_keeps_the_last_good_keys() {
    let up = Upstream::start().await;
    let (k1, j1) = fresh_key(Alg::ES256, "k1");
    let (k2, j2) = fresh_key(Alg::EdDSA, "k2");
    let jwks = JwksServer::start(json!({"keys": [j1.clone(), j2.clone()]})).await;
    let iss = issuer(&jwks, Duration::from_millis(300));
    let s = super::gateway(vec![partner_route("cars", "/cars/", &up.url())], move |c| c.gateway.issuers = vec![iss]).await;
    let t1 = format!("Bearer {}", partner_token(&k1, json!({})));
    let t2 = format!("Bearer {}", partner_token(&k2, json!({})));
    assert_eq!(get(&s, "/cars/1", Some(&t1)).await.status(), 200);
    assert_eq!(get(&s, "/cars/1", Some(&t2)).await.status(), 200);
    // k1 is removed from the set.
    jwks.set(json!({"keys": [j2.clone()]}));
    let before = jwks.fetches();
    let start = Instant::now();
    while jwks.fetches() < before + 2 {
        assert!(start.elapsed() < Duration::from_secs(5), "no refresh");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let challenge = refused(get(&s, "/cars/1", Some(&t1)).await, 401).await;
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_eq!(get(&s, "/cars/1", Some(&t2)).await.status(), 200);
    // The endpoint goes down: refreshes fail, the last good set keeps serving.
    jwks.down();
    let before = jwks.fetches();
    while jwks.fetches() < before + 3 {
        assert!(start.elapsed() < Duration::from_secs(10), "no refresh");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(&s, "/cars/1", Some(&t2)).await.status(), 200, "last-known-good");
    let fresh = format!("Bearer {}", partner_token(&k2, json!({"jti": "another"})));
    assert_eq!(get(&s, "/cars/1", Some(&fresh)).await.status(), 200, "a token not seen before verifies with the kept keys");
    refused(get(&s, "/cars/1", Some(&t1)).await, 401).await;
    assert_eq!(up.seen().len(), 5);
}

/// The Nissan Leaf case: `/cars/{vin}` answers only for the VINs in the token's `vins`; a
/// query `user_id` must be the token's `sub`; claim conditions. Refusals never reach the
/// upstream.
#[tokio::test]
async fn object_rules_bind_the_vin_to_the_token() {
    let up = Upstream::start().await;
    let (k1, j1) = fresh_key(Alg::ES256, "k1");
    let jwks = JwksServer::start(json!({"keys": [j1]})).await;
    let iss = issuer(&jwks, Duration::from_secs(3600));
    let rules = Rules {
        scopes_all: vec!["cars:read".into()],
        claims: vec![warden::gateway::ClaimCondition::Equals { claim: "tenant".into(), value: "nissan".into() }],
        objects: vec![
            ObjectRule { source: ParamSource::Path("vin".into()), claim: "vins".into(), member: true },
            ObjectRule { source: ParamSource::Query("user_id".into()), claim: "sub".into(), member: false },
        ],
        ..Default::default()
    };
    let routes = vec![RouteConfig { rules, ..partner_route("cars", "/cars/{vin}", &up.url()) }];
    let s = super::gateway(routes, move |c| c.gateway.issuers = vec![iss]).await;
    let mine = format!("Bearer {}", partner_token(&k1, json!({"vins": ["SJNFAAZE0U6000001"], "tenant": "nissan"})));
    assert_eq!(get(&s, "/cars/SJNFAAZE0U6000001", Some(&mine)).await.status(), 200);
    assert_eq!(get(&s, "/cars/SJNFAAZE0U6000001?user_id=user-7", Some(&mine)).await.status(), 200);
    assert_eq!(up.seen().len(), 2);
    up.clear();
    // Somebody else's car: 403, and the upstream never hears of it.
    let resp = get(&s, "/cars/SJNFAAZE0U6000002", Some(&mine)).await;
    refused(resp, 403).await;
    refused(get(&s, "/cars/SJNFAAZE0U6000001?user_id=user-8", Some(&mine)).await, 403).await;
    refused(get(&s, "/cars/SJNFAAZE0U6000001?user_id=user-7&user_id=user-8", Some(&mine)).await, 400).await;
    // No VINs at all, another tenant, no token.
    let none = format!("Bearer {}", partner_token(&k1, json!({"tenant": "nissan"})));
    refused(get(&s, "/cars/SJNFAAZE0U6000001", Some(&none)).await, 403).await;
    let other = format!("Bearer {}", partner_token(&k1, json!({"vins": ["SJNFAAZE0U6000001"], "tenant": "acme"})));
    refused(get(&s, "/cars/SJNFAAZE0U6000001", Some(&other)).await, 403).await;
    refused(get(&s, "/cars/SJNFAAZE0U6000001", None).await, 401).await;
    assert!(up.seen().is_empty(), "{:?}", up.seen());
}

/// A DPoP proof by `key` (public JWK `jwk`) for `htm` `htu`, with `ath` for the token given.
fn dpop_proof(htm: &str, htu: &str, ath: Option<&str>, key: &SigningKey, jwk: &Value) -> String {
    let mut c = json!({"jti": unique(), "htm": htm, "htu": htu, "iat": now()});
    if let Some(t) = ath {
        c["ath"] = b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes())).into();
    }
    jws(&json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}), &c, Some(key))
}

/// A fresh ES256 DPoP key (and its public JWK) and a client-credentials token bound to it.
async fn dpop_bound_token(s: &TestServer) -> (SigningKey, Value, String) {
    let (id, secret) = s.cc_client().await;
    let (dpop, jwk) = fresh_key(Alg::ES256, "dpop");
    let mut public = jwk.clone();
    public.as_object_mut().unwrap().retain(|k, _| ["kty", "crv", "x", "y"].contains(&k.as_str()));
    let resp = s
        .http
        .post(s.url("/token"))
        .basic_auth(&id, Some(&secret))
        .header("DPoP", dpop_proof("POST", &s.url("/token"), None, &dpop, &public))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    (dpop, public, body["access_token"].as_str().unwrap().to_owned())
}

/// RFC 9449 at the gateway: a DPoP-bound token from the provider passes with the DPoP scheme
/// and a proof for this request; as Bearer, without a proof, with a replayed proof, or with
/// another key's proof it is refused.
#[tokio::test]
async fn dpop_bound_tokens_need_their_proof() {
    let up = Upstream::start().await;
    let s = both(vec![warden_route("api", "/api/", &up.url())], |_| {}).await;
    let (id, secret) = s.cc_client().await;
    let (dpop, public, token) = dpop_bound_token(&s).await;
    let url = format!("{}/api/x", base(&s));
    let send = |scheme: &str, proofs: Vec<String>| {
        let mut req = s.http.get(&url).header("authorization", format!("{scheme} {token}"));
        for p in proofs {
            req = req.header("DPoP", p);
        }
        req.send()
    };
    let good = dpop_proof("GET", &url, Some(&token), &dpop, &public);
    assert_eq!(send("DPoP", vec![good.clone()]).await.unwrap().status(), 200);
    assert_eq!(up.seen().len(), 1);
    up.clear();
    // Replayed proof.
    let c = refused(send("DPoP", vec![good]).await.unwrap(), 401).await;
    assert!(c.contains("invalid_dpop_proof"), "{c}");
    // As Bearer, with or without a proof.
    let c = refused(send("Bearer", vec![]).await.unwrap(), 401).await;
    assert!(c.starts_with("DPoP") && c.contains("invalid_token"), "{c}");
    refused(send("Bearer", vec![dpop_proof("GET", &url, Some(&token), &dpop, &public)]).await.unwrap(), 401).await;
    // No proof; a proof for another URL, method or token; another key's proof; two proofs.
    refused(send("DPoP", vec![]).await.unwrap(), 401).await;
    refused(send("DPoP", vec![dpop_proof("GET", &format!("{}/api/y", base(&s)), Some(&token), &dpop, &public)]).await.unwrap(), 401).await;
    refused(send("DPoP", vec![dpop_proof("POST", &url, Some(&token), &dpop, &public)]).await.unwrap(), 401).await;
    refused(send("DPoP", vec![dpop_proof("GET", &url, Some("other-token"), &dpop, &public)]).await.unwrap(), 401).await;
    refused(send("DPoP", vec![dpop_proof("GET", &url, None, &dpop, &public)]).await.unwrap(), 401).await;
    let (thief, thief_jwk) = fresh_key(Alg::ES256, "thief");
    let mut thief_public = thief_jwk.clone();
    thief_public.as_object_mut().unwrap().retain(|k, _| ["kty", "crv", "x", "y"].contains(&k.as_str()));
    refused(send("DPoP", vec![dpop_proof("GET", &url, Some(&token), &thief, &thief_public)]).await.unwrap(), 401).await;
    let two = vec![dpop_proof("GET", &url, Some(&token), &dpop, &public), dpop_proof("GET", &url, Some(&token), &dpop, &public)];
    refused(send("DPoP", two).await.unwrap(), 401).await;
    assert!(up.seen().is_empty(), "{:?}", up.seen());
    // An unbound token with the DPoP scheme is refused too.
    let plain = s.token(&id, &secret, &[]).await;
    let resp = s.http.get(&url).header("authorization", format!("DPoP {plain}")).header("DPoP", dpop_proof("GET", &url, Some(&plain), &dpop, &public)).send().await.unwrap();
    refused(resp, 401).await;
    assert!(up.seen().is_empty());
}

/// The replay memory never forgets a proof inside its window: when it holds only live ones
/// (`replay_memory` = 2 here), a new proof gets 429 with `Retry-After` instead of pushing out
/// one that could then be replayed.
#[tokio::test]
async fn a_full_dpop_replay_memory_refuses_new_proofs_and_forgets_none() {
    let up = Upstream::start().await;
    let s = both(vec![warden_route("api", "/api/", &up.url())], |c| c.gateway.replay_memory = 2).await;
    let (key, public, token) = dpop_bound_token(&s).await;
    let url = format!("{}/api/x", base(&s));
    let send = |proof: &str| s.http.get(&url).header("authorization", format!("DPoP {token}")).header("DPoP", proof).send();
    let proofs: Vec<String> = (0..3).map(|_| dpop_proof("GET", &url, Some(&token), &key, &public)).collect();
    assert_eq!(send(&proofs[0]).await.unwrap().status(), 200);
    assert_eq!(send(&proofs[1]).await.unwrap().status(), 200);
    let resp = send(&proofs[2]).await.unwrap();
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=200).contains(&wait), "until the oldest proof's window ends: {wait}");
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    // Neither remembered proof was pushed out: both are still refused as replays.
    for p in &proofs[..2] {
        let c = refused(send(p).await.unwrap(), 401).await;
        assert!(c.contains("invalid_dpop_proof"), "{c}");
    }
    assert_eq!(up.seen().len(), 2);
}

/// `auth = ["anonymous", "warden"]`: no token passes as anonymous, a good token passes
/// with its identity, a bad token is still refused.
#[tokio::test]
async fn an_anonymous_route_still_refuses_a_bad_token() {
    let up = Upstream::start().await;
    let r = RouteConfig { auth: vec![Auth::Anonymous, Auth::Warden], ..route("open", "/open/", &["GET"], &up.url()) };
    let s = both(vec![r], |_| {}).await;
    let (id, secret) = s.cc_client().await;
    let token = s.token(&id, &secret, &[]).await;
    assert_eq!(get(&s, "/open/x", None).await.status(), 200);
    assert!(!up.one().headers.contains_key("x-warden-sub"));
    up.clear();
    assert_eq!(get(&s, "/open/x", Some(&format!("Bearer {token}"))).await.status(), 200);
    assert_eq!(up.one().headers["x-warden-sub"], id.as_str());
    up.clear();
    refused(get(&s, "/open/x", Some("Bearer forged.token.here")).await, 401).await;
    assert!(up.seen().is_empty());
}

/// The authorization code flow's tokens: the user's access token passes with the user as
/// `sub`; the ID token from the same response is refused, even on a route whose audience is
/// the client (the ID token's `aud`).
#[tokio::test]
async fn a_real_id_token_is_not_an_access_token() {
    use crate::support::code_flow::{tokens_for, web_client};
    let up = Upstream::start().await;
    let s = both(vec![warden_route("api", "/api/", &up.url())], |_| {}).await;
    let (id, secret) = web_client(&s, json!({})).await;
    let (body, grant) = tokens_for(&s, &id, &secret, "openid", |_| {}).await;
    let access = body["access_token"].as_str().unwrap();
    let id_token = body["id_token"].as_str().expect("an ID token");
    assert_eq!(get(&s, "/api/me", Some(&format!("Bearer {access}"))).await.status(), 200);
    assert_eq!(up.one().headers["x-warden-sub"], grant.sub.as_str(), "the user, not the client");
    up.clear();
    let challenge = refused(get(&s, "/api/me", Some(&format!("Bearer {id_token}"))).await, 401).await;
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // A route whose audience is the client id: the ID token's aud matches, and it is still refused.
    let routes = vec![RouteConfig { audience: Some(id.clone()), ..warden_route("rp", "/rp/", &up.url()) }];
    let g = s.another_node(move |c| {
        c.roles = vec![Role::Gateway];
        c.gateway.routes = routes;
    })
    .await;
    let challenge = refused(get(&g, "/rp/x", Some(&format!("Bearer {id_token}"))).await, 401).await;
    assert!(challenge.contains("not an access token"), "{challenge}");
    assert!(up.seen().is_empty());
}
