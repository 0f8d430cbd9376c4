//! Issue #7 item 3: opaque access tokens by RFC 7662 introspection, against an in-test
//! introspection endpoint that records every call (and can be taken down), and against
//! Warden's own `/introspect`. Every refusal is checked to have left the upstream untouched.

use super::auth::{both, get, now, refused};
use super::upstream::Upstream;
use super::{base, route};
use crate::support::TestServer;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden::gateway::{Auth, ClientSecret, IntrospectionConfig, IssuerConfig, RouteConfig};
use warden::jose::Alg;

const ISS: &str = "https://as.example";
const API: &str = "https://orders.example";

/// One call the endpoint received.
#[derive(Clone, Debug)]
struct Call {
    authorization: Option<String>,
    form: HashMap<String, String>,
}

#[derive(Default)]
struct EndpointState {
    answers: HashMap<String, Value>,
    calls: Vec<Call>,
    down: bool,
}

/// An RFC 7662 endpoint answering from a table (`{"active": false}` for tokens it does not
/// know), recording calls; `down` answers 500.
struct Endpoint {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<EndpointState>>,
    _stop: tokio_util::sync::DropGuard,
}

impl Endpoint {
    async fn start() -> Endpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state: Arc<Mutex<EndpointState>> = Arc::default();
        async fn serve(State(st): State<Arc<Mutex<EndpointState>>>, headers: HeaderMap, body: String) -> Response {
            let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
            let mut st = st.lock().unwrap();
            st.calls.push(Call { authorization: headers.get("authorization").map(|v| v.to_str().unwrap().to_owned()), form: form.clone() });
            if st.down {
                return (StatusCode::INTERNAL_SERVER_ERROR, "db at 10.0.0.5 down").into_response();
            }
            let answer = form.get("token").and_then(|t| st.answers.get(t)).cloned().unwrap_or(json!({"active": false}));
            axum::Json(answer).into_response()
        }
        let app = Router::new().route("/introspect", axum::routing::post(serve)).with_state(state.clone());
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(async move { s.cancelled().await }).await;
        });
        Endpoint { addr, state, _stop: stop.drop_guard() }
    }

    fn url(&self) -> String {
        format!("http://{}/introspect", self.addr)
    }

    fn answer(&self, token: &str, answer: Value) {
        self.state.lock().unwrap().answers.insert(token.into(), answer);
    }

    fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }
}

fn introspection(url: &str, edit: impl FnOnce(&mut IntrospectionConfig)) -> IntrospectionConfig {
    let mut c = IntrospectionConfig {
        url: url.into(),
        client_id: "gateway".into(),
        client_secret: ClientSecret::new("gw-s3cret".into()),
        ca_file: None,
        always: false,
        cache_max: Duration::from_secs(60),
        negative_cache: Duration::from_secs(5),
    };
    edit(&mut c);
    c
}

fn issuer(name: &str, iss: &str, audience: &str, introspection: IntrospectionConfig) -> IssuerConfig {
    IssuerConfig {
        name: name.into(),
        issuer: iss.into(),
        jwks_url: String::new(),
        jwks_ca_file: None,
        algorithms: vec![Alg::ES256],
        audience: audience.into(),
        types: vec![],
        clock_skew: Duration::ZERO,
        refresh_interval: Duration::from_secs(300),
        introspection: Some(introspection),
    }
}

fn orders_route(upstream: &str) -> RouteConfig {
    RouteConfig { auth: vec![Auth::Issuer("as".into())], ..route("orders", "/orders/", &["GET"], upstream) }
}

async fn gateway_with(up: &Upstream, ep: &Endpoint, edit: impl FnOnce(&mut IntrospectionConfig)) -> TestServer {
    let iss = issuer("as", ISS, API, introspection(&ep.url(), edit));
    super::gateway(vec![orders_route(&up.url())], move |c| c.gateway.issuers = vec![iss]).await
}

fn active(extra: Value) -> Value {
    let mut a = json!({"active": true, "iss": ISS, "aud": API, "sub": "alice", "client_id": "shop-app", "scope": "orders:read", "exp": now() + 300});
    a.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    a
}

/// Waits until the wall clock is past `t` (a unix second): what the cache compares with.
async fn until_past(t: i64) {
    let start = Instant::now();
    while now() <= t {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// RFC 7662 §2.1–2.2: an opaque token the endpoint says is active passes; the upstream sees
/// the caller's identity (never the caller's own copies); the gateway authenticated as its
/// client and sent the token with a hint; a second request is answered from the cache.
#[tokio::test]
async fn rfc7662_an_active_opaque_token_passes_with_identity_headers_and_is_cached() {
    let up = Upstream::start().await;
    let ep = Endpoint::start().await;
    let s = gateway_with(&up, &ep, |_| {}).await;
    ep.answer("opaque-abc", active(json!({})));
    let resp = s.http.get(format!("{}/orders/1", base(&s))).bearer_auth("opaque-abc").header("x-warden-sub", "admin").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let seen = up.one();
    assert_eq!(seen.headers["x-warden-sub"], "alice");
    assert_eq!(seen.headers["x-warden-client-id"], "shop-app");
    assert_eq!(seen.headers["x-warden-scope"], "orders:read");
    let calls = ep.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].form["token"], "opaque-abc");
    assert_eq!(calls[0].form["token_type_hint"], "access_token");
    use base64::Engine;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("gateway:gw-s3cret"));
    assert_eq!(calls[0].authorization.as_deref(), Some(basic.as_str()), "client_secret_basic");

    // Cached: the second request makes no call.
    assert_eq!(get(&s, "/orders/2", Some("Bearer opaque-abc")).await.status(), 200);
    assert_eq!(ep.calls().len(), 1, "served from the cache");
    assert_eq!(up.seen().len(), 2);
}

/// §2.2 `active: false`, and active answers that fail the checks a JWT would (issuer,
/// audience, expiry, a refresh token): 401 `invalid_token`, no-store, the upstream never
/// reached. An inactive answer is remembered briefly (no second call).
#[tokio::test]
async fn rfc7662_inactive_or_unacceptable_tokens_are_401_and_never_reach_the_upstream() {
    let up = Upstream::start().await;
    let ep = Endpoint::start().await;
    let s = gateway_with(&up, &ep, |_| {}).await;
    ep.answer("revoked", json!({"active": false}));
    let c = refused(get(&s, "/orders/1", Some("Bearer revoked")).await, 401).await;
    assert!(c.contains("error=\"invalid_token\"") && c.contains("not active"), "{c}");
    refused(get(&s, "/orders/1", Some("Bearer revoked")).await, 401).await;
    assert_eq!(ep.calls().len(), 1, "the inactive answer is cached briefly");
    for (token, answer) in [
        ("other-iss", active(json!({"iss": "https://evil.example"}))),
        ("no-iss", {
            let mut a = active(json!({}));
            a.as_object_mut().unwrap().remove("iss");
            a
        }),
        ("other-aud", active(json!({"aud": ["https://else.example"]}))),
        ("expired", active(json!({"exp": now() - 10}))),
        ("no-exp", {
            let mut a = active(json!({}));
            a.as_object_mut().unwrap().remove("exp");
            a
        }),
        ("refresh", active(json!({"token_type": "refresh_token"}))),
        ("active-string", active(json!({"active": "true"}))),
    ] {
        ep.answer(token, answer);
        let c = refused(get(&s, "/orders/1", Some(&format!("Bearer {token}"))).await, 401).await;
        assert!(c.contains("invalid_token"), "{token}: {c}");
    }
    assert!(up.seen().is_empty(), "no refusal reached the upstream");
}

/// The cache never outlives the token: an active answer is reused until the token's `exp`
/// and then refused without a call; and a long-lived token is asked about again after
/// `introspection_cache_max`.
#[tokio::test]
async fn a_cached_answer_ends_at_the_tokens_exp_and_at_the_configured_maximum() {
    let up = Upstream::start().await;
    let ep = Endpoint::start().await;
    let s = gateway_with(&up, &ep, |c| c.cache_max = Duration::from_secs(1)).await;
    let exp = now() + 2;
    ep.answer("short", active(json!({"exp": exp})));
    assert_eq!(get(&s, "/orders/1", Some("Bearer short")).await.status(), 200);
    assert_eq!(get(&s, "/orders/1", Some("Bearer short")).await.status(), 200);
    assert_eq!(ep.calls().len(), 1);
    until_past(exp).await;
    let c = refused(get(&s, "/orders/1", Some("Bearer short")).await, 401).await;
    assert!(c.contains("expired"), "{c}");
    assert_eq!(ep.calls().len(), 1, "past exp the cached answer is not served, and no call is needed");
    assert_eq!(up.seen().len(), 2);

    let t0 = now();
    ep.answer("long", active(json!({"exp": t0 + 3600})));
    assert_eq!(get(&s, "/orders/1", Some("Bearer long")).await.status(), 200);
    assert_eq!(ep.calls().len(), 2);
    until_past(t0 + 1).await;
    // Revoked at the issuer meanwhile: once cache_max has passed, the gateway hears of it.
    ep.answer("long", json!({"active": false}));
    refused(get(&s, "/orders/1", Some("Bearer long")).await, 401).await;
    assert_eq!(ep.calls().len(), 3, "asked again after cache_max");
    assert_eq!(up.seen().len(), 3);
}

/// An endpoint that is down is a 503 (fail closed), never a pass, a 500 or its internals;
/// the failure is not cached: once the endpoint is back, the token passes.
#[tokio::test]
async fn an_introspection_outage_is_503_and_fails_closed() {
    let up = Upstream::start().await;
    let ep = Endpoint::start().await;
    let s = gateway_with(&up, &ep, |_| {}).await;
    ep.answer("good", active(json!({})));
    ep.set_down(true);
    let resp = get(&s, "/orders/1", Some("Bearer good")).await;
    assert_eq!(resp.headers().get_all("retry-after").iter().count(), 1, "one Retry-After, the denial's own");
    let body = resp.text().await.unwrap();
    assert!(!body.contains("10.0.0.5") && !body.contains("500"), "no internals: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], 503);
    refused(get(&s, "/orders/1", Some("Bearer good")).await, 503).await;
    assert_eq!(ep.calls().len(), 2, "failures are not cached");
    assert!(up.seen().is_empty());

    // Unreachable altogether (nothing listens): 503 too.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let iss = issuer("as", ISS, API, introspection(&format!("http://{closed}/introspect"), |_| {}));
    let nowhere = super::gateway(vec![orders_route(&up.url())], move |c| c.gateway.issuers = vec![iss]).await;
    refused(get(&nowhere, "/orders/1", Some("Bearer good")).await, 503).await;
    assert!(up.seen().is_empty());

    ep.set_down(false);
    assert_eq!(get(&s, "/orders/1", Some("Bearer good")).await.status(), 200);
    assert_eq!(up.seen().len(), 1);
}

/// A route may list one introspecting issuer: an opaque token names no issuer, and would
/// otherwise be shown to several.
#[tokio::test]
async fn a_route_with_two_introspecting_issuers_is_refused_at_start() {
    let ep = Endpoint::start().await;
    let cfg = warden::gateway::Config {
        issuers: vec![issuer("a", ISS, API, introspection(&ep.url(), |_| {})), issuer("b", "https://b.example", API, introspection(&ep.url(), |_| {}))],
        routes: vec![RouteConfig { auth: vec![Auth::Issuer("a".into()), Auth::Issuer("b".into())], ..route("r", "/r/", &["GET"], "http://127.0.0.1:1") }],
        ..Default::default()
    };
    let errors = warden::gateway::Gateway::new(&cfg, Arc::default(), None).unwrap_err();
    assert!(errors[0].message.contains("more than one issuer with an introspection_url"), "{errors:?}");
}

/// Warden's own `/introspect` as the endpoint (`introspect = "always"`: its JWTs are asked
/// about, not verified locally): a token passes; once revoked at the provider it is refused
/// at the next request (here `introspection_cache_max = 0`: every request asks).
#[tokio::test]
async fn warden_introspect_as_the_endpoint_and_a_revocation_counts_at_once() {
    let up = Upstream::start().await;
    let s = both(vec![], |_| {}).await;
    let audience = s.cfg.oauth.default_audience.clone();
    let (rs, rs_secret) = s.client(json!({"grant_types": ["client_credentials"], "resource_server_for": [audience]})).await;
    let cfg = introspection(&s.url("/introspect"), |c| {
        c.client_id = rs.clone();
        c.client_secret = ClientSecret::new(rs_secret.clone());
        c.always = true;
        c.cache_max = Duration::ZERO;
    });
    let iss = issuer("self", &s.issuer, &audience, cfg);
    let route = RouteConfig { auth: vec![Auth::Issuer("self".into())], ..route("api", "/api/", &["GET"], &up.url()) };
    let gw = super::gateway(vec![route], move |c| c.gateway.issuers = vec![iss]).await;
    let (id, secret) = s.cc_client().await;
    let token = s.token(&id, &secret, &[]).await;
    let resp = gw.http.get(format!("{}/api/x", base(&gw))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.one().headers["x-warden-client-id"], id.as_str());
    let r = s.post_form("/revoke", Some((&id, &secret)), &[("token", &token)]).await;
    assert_eq!(r.status(), 200);
    let c = refused(get(&gw, "/api/x", Some(&format!("Bearer {token}"))).await, 401).await;
    assert!(c.contains("not active"), "{c}");
    assert_eq!(up.seen().len(), 1);
}
