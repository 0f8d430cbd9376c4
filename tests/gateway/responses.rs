//! Issue #7 item 7 (response policies) and item 12's Verizon case: upstream 5xx scrubbing,
//! response field filtering, security headers (HSTS only over TLS), CORS, configurable
//! identity headers, and the CSRF check — over real sockets, against an in-process upstream
//! that answers from a script and records every request it receives.

use super::{assert_problem, base, gateway, route};
use crate::support::TestServer;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use warden::config::Role;
use warden::gateway::{Auth, Cors, Csrf, RouteConfig};

/// What the scripted upstream saw: method, path, headers.
type Seen = Arc<Mutex<Vec<(String, String, HeaderMap)>>>;

/// An upstream whose answer depends on the path (see `answer`), recording every request.
struct Scripted {
    url: String,
    seen: Seen,
    _stop: tokio_util::sync::DropGuard,
}

impl Scripted {
    async fn start() -> Scripted {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let app = Router::new().fallback(answer).with_state(seen.clone());
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let cfg = warden::http::serve::ServeConfig::default();
            let _ = warden::http::serve::serve_with(listener, app, cfg, Arc::default(), None, s).await;
        });
        Scripted { url, seen, _stop: stop.drop_guard() }
    }

    fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn last(&self) -> (String, String, HeaderMap) {
        self.seen.lock().unwrap().last().cloned().expect("the upstream was reached")
    }
}

const SQL_ERROR: &str = "ERROR: syntax error at or near \"'\" in SELECT * FROM users WHERE email = ''' OR 1=1 --' \
    (password_hash=$argon2id$v=19$m=19456) at /srv/app/db.py:42\nTraceback (most recent call last):\n  File \"/srv/app/views.py\"";

async fn answer(State(seen): State<Seen>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let _ = body.collect().await;
    seen.lock().unwrap().push((parts.method.to_string(), parts.uri.path().to_owned(), parts.headers.clone()));
    let path = parts.uri.path();
    let leaky = [("server", "Apache/2.2.3 (CentOS)"), ("x-powered-by", "PHP/5.4"), ("x-aspnet-version", "4.0.30319"), ("x-runtime", "0.012")];
    let mut b = Response::builder();
    for (k, v) in leaky {
        b = b.header(k, v);
    }
    let json = |b: axum::http::response::Builder, v: Value| b.header("content-type", "application/json").header("etag", "\"v1\"").body(Body::from(v.to_string())).unwrap();
    match path.rsplit('/').next().unwrap_or("") {
        "sql" => b.status(500).header("content-type", "text/plain").header("set-cookie", "debug=1").body(Body::from(SQL_ERROR)).unwrap(),
        "trace" => b.status(503).header("retry-after", "7").header("content-type", "text/html").body(Body::from("<pre>java.lang.NullPointerException at com.acme.Db.query(Db.java:88) jdbc:postgresql://db.internal:5432/prod</pre>")).unwrap(),
        "user" => json(b, json!({
            "id": "u1",
            "password_hash": "$argon2id$secret",
            "profile": {"name": "Ann", "ssn": "123-45-6789"},
            "orders": [{"id": 1, "card": "4111111111111111"}, {"id": 2, "card": "5500000000000004"}],
        })),
        "big" => json(b, json!({"id": "x".repeat(4000)})),
        "streamed" => {
            // No Content-Length: the limit must hold while reading.
            let chunks = (0..8).map(|_| Ok::<_, std::convert::Infallible>(Bytes::from(vec![b' '; 1000])));
            let stream = futures_lite(chunks.chain(std::iter::once(Ok(Bytes::from_static(b"{}")))));
            b.header("content-type", "application/json").body(stream).unwrap()
        }
        "text" => b.header("content-type", "text/plain").body(Body::from("id=u1 password=hunter2")).unwrap(),
        "broken" => b.header("content-type", "application/json").body(Body::from("{\"id\": ")).unwrap(),
        "cached" => b.header("cache-control", "public, max-age=60").body(Body::from("ok")).unwrap(),
        "cors" => b.header("access-control-allow-origin", "*").header("access-control-allow-credentials", "true").body(Body::from("ok")).unwrap(),
        _ => b.body(Body::from("ok")).unwrap(),
    }
}

/// A streamed body from an iterator of chunks (one frame each).
fn futures_lite(chunks: impl Iterator<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static) -> Body {
    let (mut tx, rx) = http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(1);
    tokio::spawn(async move {
        for c in chunks.flatten() {
            if tx.send_data(c).await.is_err() {
                return;
            }
        }
    });
    Body::new(rx)
}

const LEAKS: [&str; 14] = [
    "select", "syntax error", "password", "argon2", "/srv", "traceback", "views.py", "nullpointer", "jdbc", "db.internal", "java", "apache", "php", "4.0.30319",
];

fn assert_no_software_headers(h: &reqwest::header::HeaderMap) {
    for gone in ["server", "x-powered-by", "x-aspnet-version", "x-runtime"] {
        assert!(!h.contains_key(gone), "{gone} passed: {h:?}");
    }
}

/// An upstream 5xx (an SQL error, a stack trace) becomes a problem+json with the same status
/// and the request id; none of what the upstream wrote passes, in the body or the headers,
/// except `Retry-After`. A route may opt out of scrubbing, but never out of dropping the
/// headers that name the upstream's software.
#[tokio::test]
async fn upstream_errors_are_replaced_by_a_problem_carrying_the_request_id() {
    let up = Scripted::start().await;
    let opt_out = RouteConfig { response: warden::gateway::ResponseRules { scrub_errors: false, ..Default::default() }, ..route("raw", "/raw/", &["GET"], &up.url) };
    let s = gateway(vec![route("api", "/api/", &["GET", "POST"], &up.url), opt_out], |_| {}).await;

    for (path, status) in [("/api/sql", 500), ("/api/trace", 503)] {
        let resp = s.http.get(format!("{}{path}", base(&s))).send().await.unwrap();
        let h = resp.headers().clone();
        assert_no_software_headers(&h);
        assert!(!h.contains_key("set-cookie"), "no upstream header but Retry-After survives: {h:?}");
        let id = h["x-request-id"].to_str().unwrap().to_owned();
        let text = resp.text().await.unwrap();
        for leak in LEAKS {
            assert!(!text.to_lowercase().contains(leak), "{leak} leaked: {text}");
        }
        let p: Value = serde_json::from_str(&text).unwrap();
        assert_eq!((p["status"].as_u64(), p["type"].as_str()), (Some(status), Some("urn:warden:problem:upstream-error")), "{p}");
        assert_eq!(p["request_id"], id.as_str(), "the id ties the report to the upstream's logs");
        assert_eq!(h["content-type"], "application/problem+json");
        assert_eq!(h["content-length"], text.len().to_string().as_str());
        if status == 503 {
            assert_eq!(h["retry-after"], "7");
        }
    }
    // The upstream received the request id it can log under.
    let (_, _, seen) = up.last();
    assert!(seen.contains_key("x-request-id"));

    let resp = s.http.get(format!("{}/raw/sql", base(&s))).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_no_software_headers(resp.headers());
    assert!(resp.text().await.unwrap().contains("SELECT"), "opted out: the body passes");
}

fn filtered(id: &str, path: &str, upstream: &str, schema: Option<Value>, fields: &[&str]) -> RouteConfig {
    let response = warden::gateway::ResponseRules { schema, fields: fields.iter().map(|f| f.to_string()).collect(), max_body: 2048, ..Default::default() };
    RouteConfig { response, ..route(id, path, &["GET", "HEAD"], upstream) }
}

/// OWASP API3: a route's JSON responses keep only what its schema or allow-list declares —
/// nested objects and array elements included — with a `Content-Length` that matches and
/// no validator of the unfiltered body.
#[tokio::test]
async fn responses_keep_only_the_declared_fields_nested_and_in_arrays() {
    let up = Scripted::start().await;
    let schema = json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "profile": {"$ref": "#/$defs/Profile"},
            "orders": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer"}}}}
        },
        "$defs": {"Profile": {"type": "object", "properties": {"name": {"type": "string"}}}}
    });
    let s = gateway(
        vec![filtered("schema", "/schema/", &up.url, Some(schema), &[]), filtered("fields", "/fields/", &up.url, None, &["id", "/profile/name", "orders.id"])],
        |_| {},
    )
    .await;
    let want = json!({"id": "u1", "profile": {"name": "Ann"}, "orders": [{"id": 1}, {"id": 2}]});
    for prefix in ["/schema", "/fields"] {
        let resp = s.http.get(format!("{}{prefix}/user", base(&s))).header("accept-encoding", "gzip, br").send().await.unwrap();
        assert_eq!(resp.status(), 200, "{prefix}");
        let h = resp.headers().clone();
        assert!(!h.contains_key("etag"), "{prefix}: the upstream's ETag describes the unfiltered body");
        let bytes = resp.bytes().await.unwrap();
        assert_eq!(h["content-length"], bytes.len().to_string().as_str(), "{prefix}");
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body, want, "{prefix}");
        let text = String::from_utf8_lossy(&bytes);
        for secret in ["argon2", "123-45-6789", "4111", "5500"] {
            assert!(!text.contains(secret), "{prefix}: {secret} passed");
        }
        let (_, _, seen) = up.last();
        assert_eq!(seen["accept-encoding"], "identity", "{prefix}: a body the gateway can read");
    }
}

/// Secure by default: what a filtered route cannot filter — a body over its limit (by
/// `Content-Length` or while streaming), not JSON, or broken JSON — is a 502 problem, never
/// the unfiltered body.
#[tokio::test]
async fn a_filtered_route_answers_502_rather_than_pass_what_it_cannot_filter() {
    let up = Scripted::start().await;
    let s = gateway(vec![filtered("f", "/f/", &up.url, None, &["id"])], |_| {}).await;
    for path in ["/f/big", "/f/streamed", "/f/text", "/f/broken"] {
        let resp = s.http.get(format!("{}{path}", base(&s))).send().await.unwrap();
        let p = assert_problem(resp, 502).await;
        assert_eq!(p["type"], "urn:warden:problem:bad-gateway", "{path}");
        let text = p.to_string();
        assert!(!text.contains("xxxx") && !text.contains("hunter2"), "{path}: {text}");
    }
    assert_eq!(up.hits(), 4, "each was asked; none of their answers passed");
    // An empty answer and a HEAD have nothing to filter.
    let resp = s.http.head(format!("{}/f/user", base(&s))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// Security headers on every answer — the upstream's, the gateway's refusals, a 404 — with
/// `no-store` on 401/403 and on answers to requests with credentials unless the upstream
/// chose its own caching; no HSTS over plain HTTP, even one the upstream sent.
#[tokio::test]
async fn security_headers_are_on_every_answer_and_no_store_where_credentials_were_sent() {
    let up = Scripted::start().await;
    let token_route = RouteConfig { auth: vec![Auth::Warden], ..route("private", "/private/", &["GET"], &up.url) };
    let s = gateway(vec![route("api", "/api/", &["GET"], &up.url), token_route], |c| {
        c.roles = vec![Role::Gateway];
        c.gateway.security_headers.referrer_policy = "strict-origin".into();
    })
    .await;
    let get = |path: &str| s.http.get(format!("{}{path}", base(&s)));

    let resp = get("/api/plain").send().await.unwrap();
    let h = resp.headers();
    assert_eq!((h["x-content-type-options"].to_str().unwrap(), h["referrer-policy"].to_str().unwrap()), ("nosniff", "strict-origin"));
    assert!(!h.contains_key("strict-transport-security"), "never over plain HTTP");
    assert!(!h.contains_key("cache-control"), "an anonymous answer keeps its cacheability");

    let h = get("/api/plain").header("cookie", "session=abc").send().await.unwrap().headers().clone();
    assert_eq!(h["cache-control"], "no-store", "an answer to a request with cookies");
    let h = get("/api/cached").header("cookie", "session=abc").send().await.unwrap().headers().clone();
    assert_eq!(h["cache-control"], "public, max-age=60", "the upstream's own choice is kept");

    let hits = up.hits();
    let resp = get("/private/x").send().await.unwrap();
    let h = resp.headers().clone();
    assert_eq!((h["cache-control"].to_str().unwrap(), h["x-content-type-options"].to_str().unwrap()), ("no-store", "nosniff"));
    assert_eq!(h["referrer-policy"], "strict-origin");
    assert_problem(resp, 401).await;
    let resp = get("/nowhere").send().await.unwrap();
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_problem(resp, 404).await;
    assert_eq!(up.hits(), hits, "no refusal reached the upstream");
}

/// HSTS is sent over TLS (and only there: see the test above).
#[tokio::test]
async fn hsts_is_sent_when_the_listener_has_tls() {
    use rustls::pki_types::{CertificateDer, ServerName};
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    let cert: CertificateDer<'static> = made.cert.der().clone();
    let up = Scripted::start().await;
    let files = warden::http::tls::TlsFiles { cert: dir.path().join("cert.pem"), key: dir.path().join("key.pem") };
    let s = TestServer::start_with(|c| {
        c.roles = vec![Role::Provider, Role::Gateway];
        c.gateway.tls = Some(files);
        c.gateway.routes = vec![route("api", "/api/", &["GET"], &up.url)];
        c.gateway.security_headers.hsts = "max-age=600".into();
    })
    .await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    for path in ["/api/x", "/nowhere"] {
        let tcp = tokio::net::TcpStream::connect(s.addr(Role::Gateway)).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg.clone())).connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get(path).header("host", "api.example").body(http_body_util::Empty::<Bytes>::new()).unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.headers().get("strict-transport-security").map(|v| v.to_str().unwrap()), Some("max-age=600"), "{path}");
    }
}

fn cors(origins: &[&str], credentials: bool) -> Cors {
    Cors {
        origins: origins.iter().map(|o| o.to_string()).collect(),
        methods: vec!["GET".into(), "POST".into()],
        headers: vec!["authorization".into(), "content-type".into()],
        expose_headers: vec!["x-upstream-total".into()],
        credentials,
        max_age: Duration::from_secs(600),
    }
}

fn with_cors(r: RouteConfig, c: Cors) -> RouteConfig {
    RouteConfig { response: warden::gateway::ResponseRules { cors: Some(c), ..Default::default() }, ..r }
}

/// Preflights of a CORS route are answered by the gateway — before authentication, though
/// the route does not list OPTIONS — and never reach the upstream; other origins, methods or
/// headers get 403 without CORS headers; a route without `cors` gets no such exception.
#[tokio::test]
async fn preflights_are_answered_by_the_gateway_for_allowed_origins_only() {
    let up = Scripted::start().await;
    let api = with_cors(RouteConfig { auth: vec![Auth::Warden], ..route("api", "/api/", &["GET", "POST"], &up.url) }, cors(&["https://app.example"], true));
    let s = gateway(vec![api, route("plain", "/plain/", &["GET", "POST"], &up.url)], |_| {}).await;
    let preflight = |path: &str, origin: &str, method: &str, headers: &str| {
        let mut r = s
            .http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", base(&s)))
            .header("origin", origin)
            .header("access-control-request-method", method);
        if !headers.is_empty() {
            r = r.header("access-control-request-headers", headers);
        }
        r.send()
    };

    let resp = preflight("/api/orders", "https://app.example", "POST", "authorization, content-type").await.unwrap();
    assert_eq!(resp.status(), 204);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-allow-methods"], "GET, POST");
    assert_eq!(h["access-control-allow-headers"], "authorization, content-type");
    assert_eq!(h["access-control-max-age"], "600");
    assert!(h["vary"].to_str().unwrap().contains("Origin"));
    assert_eq!(h["x-content-type-options"], "nosniff");

    for (origin, method, headers) in [
        ("https://evil.example", "POST", ""),
        ("null", "GET", ""),
        ("https://app.example.evil.example", "GET", ""),
        ("https://app.example", "DELETE", ""),
        ("https://app.example", "GET", "x-admin-override"),
    ] {
        let resp = preflight("/api/orders", origin, method, headers).await.unwrap();
        assert!(!resp.headers().contains_key("access-control-allow-origin"), "{origin} {method}");
        assert_problem(resp, 403).await;
    }
    // Without `cors`, OPTIONS is a method the route does not list.
    assert_problem(preflight("/plain/x", "https://app.example", "POST", "").await.unwrap(), 405).await;
    assert_eq!(up.hits(), 0, "no preflight reached the upstream");
}

/// Actual cross-origin requests: an allowed origin can read the answer (also a 401: the
/// page must see why), a disallowed one gets no CORS header; `Vary: Origin` always; the
/// upstream's own CORS headers (here a wildcard with credentials) never pass.
#[tokio::test]
async fn cors_headers_follow_the_routes_rules_not_the_upstreams() {
    let up = Scripted::start().await;
    let anon = with_cors(route("api", "/api/", &["GET", "POST"], &up.url), cors(&["https://app.example"], true));
    let private = with_cors(RouteConfig { auth: vec![Auth::Warden], ..route("private", "/private/", &["GET"], &up.url) }, cors(&["https://app.example"], false));
    let s = gateway(vec![anon, private], |_| {}).await;
    let get = |path: &str, origin: &str| s.http.get(format!("{}{path}", base(&s))).header("origin", origin).send();

    let resp = get("/api/cors", "https://app.example").await.unwrap();
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["access-control-expose-headers"], "x-upstream-total");
    assert_eq!(h["vary"], "Origin");

    let resp = get("/api/cors", "https://evil.example").await.unwrap();
    let h = resp.headers();
    assert_eq!(resp.status(), 200);
    assert!(!h.contains_key("access-control-allow-origin") && !h.contains_key("access-control-allow-credentials"), "{h:?}");
    assert_eq!(h["vary"], "Origin");

    let resp = get("/private/x", "https://app.example").await.unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.example");
    assert!(!resp.headers().contains_key("access-control-allow-credentials"));
    assert_problem(resp, 401).await;
}

/// The credentials rules are configuration errors: a wildcard with credentials, an origin
/// with a path, a method the route does not serve.
#[test]
fn cors_credentials_rules_are_checked_at_load() {
    let load = |extra: &str| {
        let text = format!(
            "version = 1\n[[gateway.routes]]\nid = \"a\"\npath = \"/a/\"\nmethods = [\"GET\"]\nupstream = \"http://127.0.0.1:9\"\nauth = [\"anonymous\"]\n{extra}\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("warden.toml");
        std::fs::write(&file, text).unwrap();
        warden::config::Config::load(Some(&file), [], &Default::default())
    };
    let c = load("cors = { origins = [\"https://App.example:443\"], credentials = true }").unwrap();
    let cors = c.gateway.routes[0].response.cors.clone().unwrap();
    assert_eq!((cors.origins[0].as_str(), cors.methods.as_slice()), ("https://app.example", &["GET".to_owned()][..]));
    assert_eq!(c.gateway.routes[0].response.csrf, Csrf::Origin, "anonymous routes check Origin by default");
    for (bad, key) in [
        ("cors = { origins = [\"*\"], credentials = true }", "gateway.routes[0].cors.origins"),
        ("cors = { origins = [\"https://app.example/app\"] }", "gateway.routes[0].cors.origins"),
        ("cors = { origins = [] }", "gateway.routes[0].cors.origins"),
        ("cors = { origins = [\"https://a.example\"], methods = [\"DELETE\"] }", "gateway.routes[0].cors.methods"),
        ("response_schema = { \"$ref\" = \"#/$defs/Nope\" }", "gateway.routes[0].response_schema"),
        ("response_fields = [\"a..b\"]", "gateway.routes[0].response_fields"),
        ("csrf = \"token\"", "gateway.routes[0].csrf"),
    ] {
        let errors = load(bad).unwrap_err();
        assert!(errors.iter().any(|e| e.key == key), "{bad}: {errors:?}");
    }
}

/// The identity headers' names are configurable; a caller's own copies (under the
/// configured names) never reach the upstream, on anonymous and token calls alike.
#[tokio::test]
async fn identity_headers_use_the_configured_names_and_spoofed_copies_are_dropped() {
    let up = Scripted::start().await;
    let s = TestServer::start_with(|c| {
        c.roles = vec![Role::Provider, Role::Gateway];
        c.gateway.routes = vec![
            RouteConfig { auth: vec![Auth::Warden], ..route("private", "/private/", &["GET"], &up.url) },
            route("public", "/public/", &["GET"], &up.url),
        ];
        c.gateway.identity_headers.sub = "x-user".parse().unwrap();
        c.gateway.identity_headers.scope = "x-user-scopes".parse().unwrap();
    })
    .await;
    let (id, secret) = s.cc_client().await;
    let token = s.token(&id, &secret, &[]).await;
    let spoof = |r: reqwest::RequestBuilder| r.header("x-user", "admin").header("x-user-scopes", "admin:all").header("x-warden-client-id", "trusted-app");

    spoof(s.http.get(format!("{}/public/x", base(&s)))).send().await.unwrap();
    let (_, _, h) = up.last();
    assert!(!h.contains_key("x-user") && !h.contains_key("x-user-scopes") && !h.contains_key("x-warden-client-id"), "{h:?}");

    spoof(s.http.get(format!("{}/private/x", base(&s)))).bearer_auth(&token).send().await.unwrap();
    let (_, _, h) = up.last();
    assert_eq!(h["x-user"], id.as_str());
    assert_eq!(h["x-warden-client-id"], id.as_str(), "the default name where none was configured");
    assert_ne!(h["x-user-scopes"], "admin:all");
    assert_eq!(h.get_all("x-user").iter().count(), 1);
}

/// The Verizon case, from `examples/forged-cross-site-request/warden.toml` itself: a form on
/// another site posts to the cookie-authenticated API with the victim's cookie — refused
/// before the upstream; the site's own page (same origin or its listed app origin) passes.
/// The bearer-only route is immune by construction: the forged request carries no token.
#[tokio::test]
async fn the_forged_cross_site_request_example_is_refused_and_the_legitimate_one_passes() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/forged-cross-site-request/warden.toml");
    let example = warden::config::Config::load(Some(&file), [], &Default::default()).expect("the example's configuration is valid");
    let up = Scripted::start().await;
    let s = TestServer::start_with(|c| {
        c.roles = vec![Role::Provider, Role::Gateway];
        let listen = c.gateway.listen;
        c.gateway = example.gateway.clone();
        c.gateway.listen = listen;
        for r in &mut c.gateway.routes {
            r.upstream = warden::gateway::Upstream::parse(&up.url).unwrap();
        }
    })
    .await;
    let gw = s.addr(Role::Gateway);
    let post = |path: &str| s.http.post(format!("{}{path}", base(&s))).header("cookie", "session=victim").header("content-type", "application/x-www-form-urlencoded").body("email=attacker@evil.example");

    // The attacker's page: an auto-submitting form on evil.example.
    for forged in [
        post("/account/email").header("origin", "https://evil.example").header("sec-fetch-site", "cross-site"),
        post("/account/email").header("sec-fetch-site", "cross-site"),
        post("/account/email").header("origin", "null"),
    ] {
        let p = assert_problem(forged.send().await.unwrap(), 403).await;
        assert_eq!(p["type"], "urn:warden:problem:cross-site-request");
    }
    assert_eq!(up.hits(), 0, "no forged request reached the upstream");

    // The same request from the site itself, from its app's origin, and from a non-browser client.
    for legit in [
        post("/account/email").header("origin", format!("http://{gw}")).header("sec-fetch-site", "same-origin"),
        post("/account/email").header("origin", "https://app.example").header("sec-fetch-site", "same-site"),
        post("/account/email"),
    ] {
        assert_eq!(legit.send().await.unwrap().status(), 200);
    }
    assert_eq!(up.hits(), 3);
    let (method, path, h) = up.last();
    assert_eq!((method.as_str(), path.as_str(), h["cookie"].to_str().unwrap()), ("POST", "/account/email", "session=victim"));

    // Bearer-only: the forged request arrives without a token (a browser never adds one).
    let resp = post("/v2/account/email").header("origin", "https://evil.example").header("sec-fetch-site", "cross-site").send().await.unwrap();
    assert_problem(resp, 401).await;
    assert_eq!(up.hits(), 3, "not reached");
}
