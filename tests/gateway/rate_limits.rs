//! Issue #7 item 5: rate limits at the gateway, over real sockets with the recording
//! upstream — exact counts, the 429 and its headers, buckets keyed by route (never the raw
//! path), by caller and by address, refused or anonymous callers without the key, plan
//! overrides, and accuracy under concurrent load. Every 429 is checked to have left the
//! upstream untouched. The store's memory bound is a unit test (`rate_limit::store`).

use super::upstream::Upstream;
use super::{assert_problem, base, gateway, raw_get, route};
use crate::support::TestServer;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use warden::config::Role;
use warden::gateway::{Auth, MissingKey, RateKey, RateLimitConfig, RouteConfig};
use warden::jose::{Alg, SigningKey};

fn limit(key: RateKey, rate: u64, per_secs: u64) -> RateLimitConfig {
    RateLimitConfig {
        name: key.as_str().into(),
        key,
        rate,
        per: Duration::from_secs(per_secs),
        burst: None,
        missing_key: MissingKey::Refuse,
        plan_claim: None,
        plans: vec![],
    }
}

fn limited(r: RouteConfig, limits: Vec<RateLimitConfig>) -> RouteConfig {
    RouteConfig { rate_limits: limits, ..r }
}

/// A server with the provider (for tokens) and the gateway.
async fn both(routes: Vec<RouteConfig>, edit: impl FnOnce(&mut warden::config::Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.roles = vec![Role::Provider, Role::Gateway];
        c.gateway.routes = routes;
        edit(c);
    })
    .await
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

async fn get(s: &TestServer, path: &str, token: Option<&str>, client: Option<&str>) -> reqwest::Response {
    let mut req = s.http.get(format!("{}{path}", base(s)));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(c) = client {
        req = req.header("x-forwarded-for", c);
    }
    req.send().await.unwrap()
}

/// Asserts a 429 problem with `Retry-After` and the limit's headers; returns `Retry-After`.
async fn assert_429(resp: reqwest::Response, policy: &str) -> u64 {
    let retry: u64 = header(&resp, "retry-after").expect("Retry-After").parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(header(&resp, "ratelimit-policy").as_deref(), Some(policy));
    let name = policy.split(';').next().unwrap();
    let rl = header(&resp, "ratelimit").expect("RateLimit");
    assert!(rl.starts_with(&format!("{name};r=0;t=")), "{rl}");
    let body = assert_problem(resp, 429).await;
    assert_eq!(body["type"], "urn:warden:problem:rate-limited");
    retry
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A Warden access token with these claims on top of good ones, signed with the provider's
/// own key (as `auth.rs` forges them), for claims the token endpoint does not issue (`plan`).
async fn forged(s: &TestServer, client_id: &str, extra: Value) -> String {
    let records = s.store.catalog.signing_keys().await.unwrap();
    let rec = warden::jose::signing_record(&records, Alg::ES256, now()).expect("an ES256 key");
    let pkcs8 = s.master.open(&rec.sealed_private, rec.kid.as_str().as_bytes()).unwrap();
    let key = SigningKey::from_pkcs8(rec.kid.clone(), Alg::ES256, &pkcs8).unwrap();
    let t = now();
    let mut claims = json!({"iss": s.issuer, "sub": client_id, "aud": s.cfg.oauth.default_audience, "exp": t + 300, "iat": t,
        "jti": format!("{client_id}-{}", rand_id()), "client_id": client_id, "scope": "read"});
    claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let header = json!({"alg": "ES256", "kid": key.kid.as_str(), "typ": "at+jwt"});
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", b64(&header), b64(&claims));
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).unwrap()))
}

fn rand_id() -> String {
    let mut b = [0u8; 9];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    URL_SAFE_NO_PAD.encode(b)
}

/// rate = 3 per minute: three pass (with `RateLimit` counting down), the fourth and fifth
/// are 429 with `Retry-After` and the headers, and the upstream saw exactly three.
#[tokio::test]
async fn a_burst_passes_then_429_with_retry_after_and_ratelimit_headers() {
    let up = Upstream::start().await;
    let s = gateway(vec![limited(route("api", "/api/", &["GET"], &up.url()), vec![limit(RateKey::Route, 3, 60)])], |_| {}).await;
    for remaining in [2, 1, 0] {
        let resp = get(&s, "/api/x", None, None).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "ratelimit-policy").as_deref(), Some("\"route\";q=3;w=60"));
        let rl = header(&resp, "ratelimit").unwrap();
        assert!(rl.starts_with(&format!("\"route\";r={remaining};t=")), "{rl}");
        assert_eq!(header(&resp, "x-upstream").as_deref(), Some("yes"), "the upstream's own headers stay");
    }
    for _ in 0..2 {
        let retry = assert_429(get(&s, "/api/x", None, None).await, "\"route\";q=3;w=60").await;
        assert!((19..=20).contains(&retry), "one request per 20 s: {retry}");
    }
    assert_eq!(up.seen().len(), 3, "the upstream saw exactly the allowed requests");
}

/// The bucket is the route's: every spelling of one path counts against it.
#[tokio::test]
async fn path_variants_share_one_bucket() {
    let up = Upstream::start().await;
    let s = gateway(vec![limited(route("api", "/api/", &["GET"], &up.url()), vec![limit(RateKey::Ip, 4, 60)])], |_| {}).await;
    for path in ["/api/x", "/api//x", "/api/./x", "/api/%78"] {
        assert_eq!(raw_get(&s, path).await.status, 200, "{path}");
    }
    for path in ["/api/y/../x", "//api/x", "/api/x"] {
        let r = raw_get(&s, path).await;
        r.assert_problem(429);
        assert!(r.header("retry-after").is_some(), "{path}");
    }
    let seen = up.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|r| r.path == "/api/x"), "{seen:?}");
}

/// Two clients of the provider, each with its own bucket: one exhausting its limit leaves
/// the other's untouched.
#[tokio::test]
async fn per_consumer_keys_isolate_two_callers() {
    let up = Upstream::start().await;
    let r = RouteConfig { auth: vec![Auth::Warden], ..route("api", "/api/", &["GET"], &up.url()) };
    let s = both(vec![limited(r, vec![limit(RateKey::Consumer, 2, 60)])], |_| {}).await;
    let (a_id, a_secret) = s.cc_client().await;
    let (b_id, b_secret) = s.cc_client().await;
    assert_ne!(a_id, b_id);
    let a = s.token(&a_id, &a_secret, &[]).await;
    let b = s.token(&b_id, &b_secret, &[]).await;
    for _ in 0..2 {
        assert_eq!(get(&s, "/api/x", Some(&a), None).await.status(), 200);
    }
    assert_429(get(&s, "/api/x", Some(&a), None).await, "\"consumer\";q=2;w=60").await;
    // A new token of the same client is the same caller.
    let a2 = s.token(&a_id, &a_secret, &[]).await;
    assert_429(get(&s, "/api/x", Some(&a2), None).await, "\"consumer\";q=2;w=60").await;
    for remaining in [1, 0] {
        let resp = get(&s, "/api/x", Some(&b), None).await;
        assert_eq!(resp.status(), 200);
        assert!(header(&resp, "ratelimit").unwrap().starts_with(&format!("\"consumer\";r={remaining};")));
    }
    assert_429(get(&s, "/api/x", Some(&b), None).await, "\"consumer\";q=2;w=60").await;
    let seen = up.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen.iter().filter(|r| r.headers["x-warden-client-id"] == a_id.as_str()).count(), 2);
    assert_eq!(seen.iter().filter(|r| r.headers["x-warden-client-id"] == b_id.as_str()).count(), 2);
}

/// A caller without the limit's key: refused (401 with a Bearer challenge) where the limit
/// says so, else counted in one bucket shared by every such caller — never unlimited.
#[tokio::test]
async fn a_caller_without_the_key_is_refused_or_shares_the_anonymous_bucket() {
    let up = Upstream::start().await;
    let open = |id: &str, path: &str| RouteConfig { auth: vec![Auth::Anonymous, Auth::Warden], ..route(id, path, &["GET"], &up.url()) };
    let strict = limited(open("strict", "/strict/"), vec![limit(RateKey::ClientId, 5, 60)]);
    let shared = limited(open("shared", "/shared/"), vec![RateLimitConfig { missing_key: MissingKey::Anonymous, ..limit(RateKey::ClientId, 2, 60) }]);
    let s = both(vec![strict, shared], |c| {
        c.trusted_proxies = warden::http::client_ip::TrustedProxies::parse(&["127.0.0.1".into()]).unwrap();
    })
    .await;
    let resp = get(&s, "/strict/x", None, None).await;
    assert!(header(&resp, "www-authenticate").unwrap().starts_with("Bearer"));
    assert_eq!(header(&resp, "cache-control").as_deref(), Some("no-store"));
    assert_problem(resp, 401).await;
    assert!(up.seen().is_empty(), "a refused caller never reaches the upstream");
    let (id, secret) = s.cc_client().await;
    let token = s.token(&id, &secret, &[]).await;
    assert_eq!(get(&s, "/strict/x", Some(&token), None).await.status(), 200);

    up.clear();
    // Anonymous callers from two addresses share one bucket of 2…
    assert_eq!(get(&s, "/shared/x", None, Some("192.0.2.1")).await.status(), 200);
    assert_eq!(get(&s, "/shared/x", None, Some("198.51.100.1")).await.status(), 200);
    assert_429(get(&s, "/shared/x", None, Some("203.0.113.1")).await, "\"client_id\";q=2;w=60").await;
    // …which a caller with a token does not touch.
    assert_eq!(get(&s, "/shared/x", Some(&token), None).await.status(), 200);
    assert_eq!(up.seen().len(), 3);
}

/// The address key: the client behind trusted proxies, IPv6 counted per /64.
#[tokio::test]
async fn the_ip_key_counts_the_forwarded_client_and_ipv6_by_64() {
    let up = Upstream::start().await;
    let s = gateway(vec![limited(route("api", "/api/", &["GET"], &up.url()), vec![limit(RateKey::Ip, 1, 60)])], |c| {
        c.trusted_proxies = warden::http::client_ip::TrustedProxies::parse(&["127.0.0.1".into()]).unwrap();
    })
    .await;
    assert_eq!(get(&s, "/api/x", None, Some("2001:db8:1:2::1")).await.status(), 200);
    assert_429(get(&s, "/api/x", None, Some("2001:db8:1:2:ffff::7")).await, "\"ip\";q=1;w=60").await;
    assert_eq!(get(&s, "/api/x", None, Some("2001:db8:1:3::1")).await.status(), 200, "another /64");
    assert_eq!(get(&s, "/api/x", None, Some("192.0.2.1")).await.status(), 200);
    assert_429(get(&s, "/api/x", None, Some("::ffff:192.0.2.1")).await, "\"ip\";q=1;w=60").await;
    assert_eq!(up.seen().len(), 3);
}

/// `plan_claim` + `plans`: a token whose `plan` is "gold" gets gold's rate; any other value
/// or none gets the limit's own.
#[tokio::test]
async fn a_plan_claim_overrides_the_rate() {
    let up = Upstream::start().await;
    let r = RouteConfig { auth: vec![Auth::Warden], ..route("api", "/api/", &["GET"], &up.url()) };
    let l = RateLimitConfig { name: "per-app".into(), plan_claim: Some("plan".into()), plans: vec![("gold".into(), 4)], ..limit(RateKey::ClientId, 1, 60) };
    let s = both(vec![limited(r, vec![l])], |_| {}).await;
    let gold = forged(&s, "app-gold", json!({"plan": "gold"})).await;
    let free = forged(&s, "app-free", json!({"plan": "platinum-unknown"})).await;
    let none = forged(&s, "app-none", json!({})).await;
    for _ in 0..4 {
        let resp = get(&s, "/api/x", Some(&gold), None).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "ratelimit-policy").as_deref(), Some("\"per-app\";q=4;w=60"));
    }
    assert_429(get(&s, "/api/x", Some(&gold), None).await, "\"per-app\";q=4;w=60").await;
    for token in [&free, &none] {
        assert_eq!(get(&s, "/api/x", Some(token), None).await.status(), 200);
        assert_429(get(&s, "/api/x", Some(token), None).await, "\"per-app\";q=1;w=60").await;
    }
    assert_eq!(up.seen().len(), 6);
}

/// Several limits on one route: each applies; the headers name the one closest to refusing.
#[tokio::test]
async fn every_limit_of_a_route_applies_and_the_headers_name_the_tightest() {
    let up = Upstream::start().await;
    let limits = vec![limit(RateKey::Ip, 100, 60), RateLimitConfig { burst: Some(2), ..limit(RateKey::Route, 10, 1) }];
    let s = gateway(vec![limited(route("api", "/api/", &["GET"], &up.url()), limits)], |_| {}).await;
    let resp = get(&s, "/api/x", None, None).await;
    assert_eq!(header(&resp, "ratelimit-policy").as_deref(), Some("\"route\";q=10;w=1"));
    assert!(header(&resp, "ratelimit").unwrap().starts_with("\"route\";r=1;"));
    assert_eq!(get(&s, "/api/x", None, None).await.status(), 200);
    assert_429(get(&s, "/api/x", None, None).await, "\"route\";q=10;w=1").await;
    assert_eq!(up.seen().len(), 2);
}

/// 64 concurrent callers hammer `rate = 100 per 1s, burst = 10` for about 2 s: the number
/// let through is within 3 % of burst + rate × time, and the upstream saw exactly those.
/// (100/s rather than more: the callers must saturate the limit throughout, on a 2-core
/// machine running a debug build and the rest of the suite at the same time, where they
/// reach about 200 requests/s; the limiter's arithmetic does not depend on the rate.)
///
/// "Time" is the span over which the gateway let requests through, measured where they
/// arrive — at the upstream, a short hop after each decision — rather than at the callers,
/// whose requests may queue for a while under load before the gateway decides. Each caller
/// opens its connection first (on an unlimited route), so connection set-up does not blur
/// the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accuracy_under_concurrency_is_within_a_few_percent() {
    const CALLERS: usize = 64;
    let up = Upstream::start().await;
    let l = RateLimitConfig { burst: Some(10), ..limit(RateKey::Route, 100, 1) };
    let routes = vec![limited(route("api", "/api/", &["GET"], &up.url()), vec![l]), route("warm", "/warm/", &["GET"], &up.url())];
    let s = gateway(routes, |_| {}).await;
    let ready = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let (http, base, ready) = (s.http.clone(), base(&s), ready.clone());
        tasks.spawn(async move {
            assert_eq!(http.get(format!("{base}/warm/x")).send().await.unwrap().status(), 200);
            ready.wait().await;
            let end = Instant::now() + Duration::from_secs(2);
            let (mut allowed, mut refused, mut other) = (0usize, 0usize, 0usize);
            while Instant::now() < end {
                match http.get(format!("{base}/api/x")).send().await.map(|r| r.status().as_u16()) {
                    Ok(200) => allowed += 1,
                    Ok(429) => refused += 1,
                    _ => other += 1,
                }
            }
            (allowed, refused, other)
        });
    }
    let (mut allowed, mut refused, mut other) = (0, 0, 0);
    while let Some(r) = tasks.join_next().await {
        let (a, r, o) = r.unwrap();
        allowed += a;
        refused += r;
        other += o;
    }
    assert_eq!(other, 0);
    // Offered load well above the rate (else fewer pass than the theory, and the check below
    // fails rather than passes by luck).
    assert!(refused > allowed / 4, "the limit was hardly reached: {allowed} allowed, {refused} refused");
    let arrivals: Vec<Instant> = up.seen().iter().filter(|r| r.path == "/api/x").map(|r| r.at).collect();
    assert_eq!(arrivals.len(), allowed, "the upstream saw exactly the allowed requests");
    let span = *arrivals.iter().max().unwrap() - *arrivals.iter().min().unwrap();
    let theory = 10.0 + 100.0 * span.as_secs_f64();
    let error = (allowed as f64 - theory).abs() / theory;
    assert!(error <= 0.03, "{allowed} allowed ({refused} refused) over {span:?}: theory {theory:.1}, {:.1} % off", error * 100.0);
}
