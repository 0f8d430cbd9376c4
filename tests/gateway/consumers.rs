//! Issue #7 item 3 (consumers): API keys and Basic authentication at the gateway, over real
//! sockets with the recording upstream. Consumers are made with the CLI's functions (and, in
//! one test, with the `warden` binary) on the server's own store; the gateway learns of them
//! by following the store, so each test first waits until a change shows.

use super::upstream::Upstream;
use super::{assert_problem, base, gateway, route};
use crate::support::TestServer;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::time::{Duration, Instant};
use warden::cli::consumers as ops;
use warden::config::{Config, Role};
use warden::gateway::{Auth, RouteConfig};
use warden::secrets::password::Password;

fn consumer_route(id: &str, path: &str, upstream: &str, auth: Vec<Auth>) -> RouteConfig {
    RouteConfig { auth, ..route(id, path, &["GET", "POST"], upstream) }
}

async fn get(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = s.http.get(format!("{}{path}", base(s)));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn basic(name: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{name}:{password}")))
}

/// Asserts a refusal: problem+json with this status, `no-store`; returns the challenges.
async fn refused(resp: reqwest::Response, status: u16) -> Vec<String> {
    assert_eq!(resp.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "{resp:?}");
    let challenges = resp.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_problem(resp, status).await;
    challenges
}

/// Waits (up to 5 s) until `GET path` with `headers` answers `status`; returns how long.
async fn until_status(s: &TestServer, path: &str, headers: &[(&str, &str)], status: u16) -> Duration {
    let start = Instant::now();
    loop {
        if get(s, path, headers).await.status().as_u16() == status {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{path} never answered {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to 5 s) until Basic `authorization` answers `status`. Each attempt comes from
/// another loopback address (behind the trusted proxy), so the waiting itself is not counted
/// as failures against the address the test then uses.
async fn until_basic(s: &TestServer, path: &str, authorization: &str, status: u16) {
    let start = Instant::now();
    for i in 0u32.. {
        let from = format!("127.0.{}.{}", 1 + i / 250, 1 + i % 250);
        if get(s, path, &[("authorization", authorization), ("x-forwarded-for", &from)]).await.status().as_u16() == status {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{path} never answered {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn trust_loopback(c: &mut Config) {
    c.trusted_proxies = warden::http::client_ip::TrustedProxies::parse(&["127.0.0.1".into()]).unwrap();
}

async fn key_gateway(up: &Upstream, edit: impl FnOnce(&mut Config)) -> TestServer {
    gateway(vec![consumer_route("api", "/api/", &up.url(), vec![Auth::ApiKey])], edit).await
}

#[tokio::test]
async fn an_api_key_identifies_its_consumer_and_never_reaches_the_upstream() {
    let up = Upstream::start().await;
    let s = key_gateway(&up, |_| {}).await;
    let c = ops::create(&s.store, "billing", Some("gold")).await.unwrap();
    let (_, key) = ops::add_key(&s.store, &s.master, "billing").await.unwrap();
    assert!(key.starts_with("wk_") && key.len() == 46, "{key}");
    until_status(&s, "/api/x", &[("x-api-key", &key)], 200).await;
    up.clear();

    let ok = get(&s, "/api/x", &[("x-api-key", &key), ("x-warden-consumer", "forged"), ("x-warden-sub", "forged")]).await;
    assert_eq!(ok.status(), 200);
    let seen = up.one();
    assert_eq!(seen.headers["x-warden-consumer"], c.id.as_str(), "the upstream learns which consumer called");
    assert!(!seen.headers.contains_key("x-api-key"), "the key is stripped before the upstream");
    assert!(!seen.headers.contains_key("x-warden-sub"), "forged identity headers are removed");
    up.clear();

    // Unknown, malformed, empty, missing, doubled: refused; none reaches the upstream.
    let forged = format!("wk_{}", "A".repeat(43));
    for headers in [vec![("x-api-key", forged.as_str())], vec![("x-api-key", "")], vec![]] {
        let challenges = refused(get(&s, "/api/x", &headers).await, 401).await;
        assert_eq!(challenges, ["ApiKey header=\"x-api-key\""], "{headers:?}");
    }
    let two = s.http.get(format!("{}/api/x", base(&s))).header("x-api-key", &key).header("x-api-key", &key).send().await.unwrap();
    refused(two, 400).await;
    // A token is no API key on a route that accepts only keys.
    refused(get(&s, "/api/x", &[("authorization", "Bearer abc")]).await, 401).await;
    assert!(up.seen().is_empty(), "a refused request reached the upstream: {:?}", up.seen());
}

/// Revoking a key, disabling or deleting its consumer stops it within about a second, on the
/// node that wrote the change and on another gateway node over the same store.
#[tokio::test]
async fn revoked_keys_and_disabled_consumers_are_refused_within_a_second_on_every_node() {
    let up = Upstream::start().await;
    let s = key_gateway(&up, |_| {}).await;
    let routes = vec![consumer_route("api", "/api/", &up.url(), vec![Auth::ApiKey])];
    let node2 = s.another_node(move |c| {
        c.roles = vec![Role::Gateway];
        c.gateway.routes = routes;
    })
    .await;
    ops::create(&s.store, "mobile", None).await.unwrap();
    let (first, a) = ops::add_key(&s.store, &s.master, "mobile").await.unwrap();
    let (_, b) = ops::add_key(&s.store, &s.master, "MOBILE").await.unwrap();
    for node in [&s, &node2] {
        until_status(node, "/api/x", &[("x-api-key", &a)], 200).await;
        until_status(node, "/api/x", &[("x-api-key", &b)], 200).await;
    }

    ops::revoke_key(&s.store, "mobile", &first.id).await.unwrap();
    let with_a = [("x-api-key", a.as_str())];
    let (here, there) = tokio::join!(until_status(&s, "/api/x", &with_a, 401), until_status(&node2, "/api/x", &with_a, 401));
    assert!(here < Duration::from_millis(1500) && there < Duration::from_millis(1500), "revoked key: {here:?}, {there:?}");
    assert_eq!(get(&node2, "/api/x", &[("x-api-key", &b)]).await.status(), 200, "the other key still works");
    assert!(ops::revoke_key(&s.store, "mobile", &first.id).await.is_err(), "a key is revoked once");

    ops::set_disabled(&s.store, "mobile", true).await.unwrap();
    let with_b = [("x-api-key", b.as_str())];
    let (here, there) = tokio::join!(until_status(&s, "/api/x", &with_b, 401), until_status(&node2, "/api/x", &with_b, 401));
    assert!(here < Duration::from_millis(1500) && there < Duration::from_millis(1500), "disabled consumer: {here:?}, {there:?}");
    ops::set_disabled(&s.store, "mobile", false).await.unwrap();
    until_status(&node2, "/api/x", &[("x-api-key", &b)], 200).await;

    ops::delete(&s.store, "mobile").await.unwrap();
    until_status(&node2, "/api/x", &[("x-api-key", &b)], 401).await;
    until_status(&s, "/api/x", &[("x-api-key", &b)], 401).await;
    up.clear();
    refused(get(&node2, "/api/x", &[("x-api-key", &b)]).await, 401).await;
    assert!(up.seen().is_empty());
}

/// No route lets a caller name a consumer itself: an incoming `x-warden-consumer` is removed
/// on every route, anonymous ones included.
#[tokio::test]
async fn a_forged_consumer_header_never_reaches_the_upstream() {
    let up = Upstream::start().await;
    let s = gateway(vec![route("open", "/open/", &["GET"], &up.url())], |_| {}).await;
    assert_eq!(get(&s, "/open/x", &[("x-warden-consumer", "cons_admin")]).await.status(), 200);
    assert!(!up.one().headers.contains_key("x-warden-consumer"));
}

#[tokio::test]
async fn the_api_key_header_name_is_configurable() {
    let up = Upstream::start().await;
    let s = key_gateway(&up, |c| c.gateway.api_key_header = "x-app-key".into()).await;
    ops::create(&s.store, "partner", None).await.unwrap();
    let (_, key) = ops::add_key(&s.store, &s.master, "partner").await.unwrap();
    until_status(&s, "/api/x", &[("x-app-key", &key)], 200).await;
    up.clear();
    let challenges = refused(get(&s, "/api/x", &[("x-api-key", &key)]).await, 401).await;
    assert_eq!(challenges, ["ApiKey header=\"x-app-key\""]);
    assert!(up.seen().is_empty(), "the default header means nothing here");
    assert_eq!(get(&s, "/api/x", &[("x-app-key", &key)]).await.status(), 200);
    assert!(!up.one().headers.contains_key("x-app-key"));
}

/// A route may accept tokens and consumers: a request without credentials is challenged for
/// both, and a consumer's key does not need a token.
#[tokio::test]
async fn a_route_can_accept_tokens_and_api_keys() {
    let up = Upstream::start().await;
    let s = TestServer::start_with(|c| {
        c.roles = vec![Role::Provider, Role::Gateway];
        c.gateway.routes = vec![consumer_route("api", "/api/", &up.url(), vec![Auth::Warden, Auth::ApiKey])];
    })
    .await;
    let challenges = refused(get(&s, "/api/x", &[]).await, 401).await;
    assert!(challenges.iter().any(|c| c.starts_with("Bearer")), "{challenges:?}");
    assert!(challenges.contains(&"ApiKey header=\"x-api-key\"".to_owned()), "{challenges:?}");
    ops::create(&s.store, "both", None).await.unwrap();
    let (_, key) = ops::add_key(&s.store, &s.master, "both").await.unwrap();
    until_status(&s, "/api/x", &[("x-api-key", &key)], 200).await;
    let (id, secret) = s.cc_client().await;
    let token = s.token(&id, &secret, &[]).await;
    assert_eq!(get(&s, "/api/x", &[("authorization", &format!("Bearer {token}"))]).await.status(), 200);
}

async fn basic_gateway(up: &Upstream) -> TestServer {
    gateway(vec![consumer_route("legacy", "/legacy/", &up.url(), vec![Auth::Basic])], trust_loopback).await
}

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn basic_from_loopback_works_and_wrong_passwords_are_refused_then_throttled() {
    let up = Upstream::start().await;
    let s = basic_gateway(&up).await;
    let c = ops::create(&s.store, "erp", Some("legacy")).await.unwrap();
    ops::set_password(&s.store, "erp", Password::new(PASSWORD.into())).await.unwrap();
    let good = basic("erp", PASSWORD);
    until_basic(&s, "/legacy/x", &good, 200).await;
    up.clear();

    assert_eq!(get(&s, "/legacy/x", &[("authorization", &good)]).await.status(), 200, "plain HTTP from loopback");
    let seen = up.one();
    assert!(!seen.headers.contains_key("authorization"), "the password never reaches the upstream");
    assert_eq!(seen.headers["x-warden-consumer"], c.id.as_str());
    up.clear();

    let challenges = refused(get(&s, "/legacy/x", &[]).await, 401).await;
    assert_eq!(challenges, ["Basic realm=\"warden\", charset=\"UTF-8\""]);
    for bad in [basic("erp", "wrong password!"), basic("nobody", PASSWORD), "Basic !!!".into(), "Bearer abc".into()] {
        let challenges = refused(get(&s, "/legacy/x", &[("authorization", &bad)]).await, 401).await;
        assert_eq!(challenges.len(), 1, "{bad}: {challenges:?}");
    }
    // Ten failures for (erp, this address) in the window: then even the right password waits.
    for _ in 0..9 {
        refused(get(&s, "/legacy/x", &[("authorization", &basic("erp", "wrong password!"))]).await, 401).await;
    }
    let throttled = get(&s, "/legacy/x", &[("authorization", &good)]).await;
    assert!(throttled.headers().contains_key("retry-after"));
    refused(throttled, 429).await;
    assert!(up.seen().is_empty(), "a refused request reached the upstream: {:?}", up.seen());
}

/// A verified Basic credential is remembered for a while, but never past a change: a new
/// password or a disabled consumer ends it on the next refresh of the index.
#[tokio::test]
async fn a_remembered_basic_credential_ends_with_a_new_password_or_a_disabled_consumer() {
    let up = Upstream::start().await;
    let s = basic_gateway(&up).await;
    ops::create(&s.store, "erp", None).await.unwrap();
    ops::set_password(&s.store, "erp", Password::new(PASSWORD.into())).await.unwrap();
    let old = basic("erp", PASSWORD);
    until_basic(&s, "/legacy/x", &old, 200).await;
    assert_eq!(get(&s, "/legacy/x", &[("authorization", &old)]).await.status(), 200, "remembered");
    ops::set_password(&s.store, "erp", Password::new("another long passphrase".into())).await.unwrap();
    until_basic(&s, "/legacy/x", &old, 401).await;
    let new = basic("erp", "another long passphrase");
    assert_eq!(get(&s, "/legacy/x", &[("authorization", &new)]).await.status(), 200);
    ops::set_disabled(&s.store, "erp", true).await.unwrap();
    until_basic(&s, "/legacy/x", &new, 401).await;
}

/// Basic over plain HTTP from anywhere but loopback is refused before the password is looked
/// at, right or wrong (the client address is the one behind the trusted proxy).
#[tokio::test]
async fn basic_over_plain_http_from_another_address_is_refused() {
    let up = Upstream::start().await;
    let s = basic_gateway(&up).await;
    ops::create(&s.store, "erp", None).await.unwrap();
    ops::set_password(&s.store, "erp", Password::new(PASSWORD.into())).await.unwrap();
    let good = basic("erp", PASSWORD);
    until_basic(&s, "/legacy/x", &good, 200).await;
    up.clear();
    for password in [PASSWORD, "wrong password!"] {
        let resp = get(&s, "/legacy/x", &[("authorization", &basic("erp", password)), ("x-forwarded-for", "198.51.100.7")]).await;
        assert_eq!(resp.status(), 403);
        let text = resp.text().await.unwrap();
        assert!(text.contains("tls-required"), "{text}");
    }
    // No credentials from there: no invitation to send a password in clear.
    let challenges = refused(get(&s, "/legacy/x", &[("x-forwarded-for", "198.51.100.7")]).await, 403).await;
    assert!(challenges.is_empty(), "{challenges:?}");
    assert!(up.seen().is_empty());
}

/// Over TLS, Basic works from any address.
#[tokio::test]
async fn basic_over_tls_works_from_another_address() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    let up = Upstream::start().await;
    let s = TestServer::start_with(|c| {
        c.roles = vec![Role::Provider, Role::Gateway];
        c.gateway.tls = Some(warden::http::tls::TlsFiles { cert: dir.path().join("cert.pem"), key: dir.path().join("key.pem") });
        c.gateway.routes = vec![consumer_route("legacy", "/legacy/", &up.url(), vec![Auth::Basic])];
        trust_loopback(c);
    })
    .await;
    ops::create(&s.store, "erp", None).await.unwrap();
    ops::set_password(&s.store, "erp", Password::new(PASSWORD.into())).await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let cfg = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let status = |password: &'static str, from: String| {
        let (cfg, addr) = (cfg.clone(), s.addr(Role::Gateway));
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let tls = tokio_rustls::TlsConnector::from(cfg).connect(rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap();
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
            tokio::spawn(conn);
            let req = hyper::Request::get("/legacy/x")
                .header("host", "api.example")
                .header("x-forwarded-for", from)
                .header("authorization", basic("erp", password))
                .body(Empty::<bytes::Bytes>::new())
                .unwrap();
            let resp = send.send_request(req).await.unwrap();
            let status = resp.status().as_u16();
            let _ = resp.into_body().collect().await;
            status
        }
    };
    let start = Instant::now();
    let mut i = 0;
    while status(PASSWORD, format!("198.51.100.{}", 10 + i % 200)).await != 200 {
        assert!(start.elapsed() < Duration::from_secs(5), "never accepted over TLS");
        tokio::time::sleep(Duration::from_millis(20)).await;
        i += 1;
    }
    assert_eq!(status(PASSWORD, "198.51.100.7".into()).await, 200, "from a non-loopback address, over TLS");
    assert_eq!(status("wrong password!", "198.51.100.7".into()).await, 401);
    let seen = up.seen();
    assert!(seen.iter().all(|r| !r.headers.contains_key("authorization")) && !seen.is_empty());
}

/// The operator's round trip through the `warden` binary, on the running server's store:
/// create, add a key (shown once), use it, list and show, set a Basic password from stdin,
/// revoke the key, delete the consumer.
#[tokio::test]
async fn the_consumer_commands_round_trip_through_the_binary() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let up = Upstream::start().await;
    let s = gateway(vec![consumer_route("api", "/api/", &up.url(), vec![Auth::ApiKey, Auth::Basic])], trust_loopback).await;
    let dir = s.data_dir();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .args(["--json", "--data-dir", dir.to_str().unwrap()])
            .env_remove("WARDEN_MASTER_KEY")
            .env_remove("WARDEN_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin {
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    };
    let created = run(&["consumer", "create", "acme", "--plan", "silver"], None);
    assert_eq!((created["name"].as_str(), created["plan"].as_str(), created["enabled"].as_bool()), (Some("acme"), Some("silver"), Some(true)));
    let added = run(&["consumer", "key", "add", "acme"], None);
    let (key, key_id) = (added["key"].as_str().unwrap().to_owned(), added["id"].as_str().unwrap().to_owned());
    until_status(&s, "/api/x", &[("x-api-key", &key)], 200).await;

    let listed = run(&["consumer", "key", "list", "acme"], None);
    assert_eq!(listed[0]["id"], key_id.as_str());
    assert!(key.starts_with(listed[0]["prefix"].as_str().unwrap()));
    assert!(!listed.to_string().contains(&key), "a key is shown once, never listed");
    let all = run(&["consumer", "list"], None);
    assert_eq!(all[0]["id"], created["id"]);
    let shown = run(&["consumer", "show", "ACME"], None);
    assert_eq!(shown["keys"][0]["id"], key_id.as_str());

    let set = run(&["consumer", "set-password", "acme", "--password-stdin"], Some(&format!("{PASSWORD}\n")));
    assert_eq!(set["password_set"], true);
    assert!(run(&["consumer", "show", "acme"], None)["basic_password"].as_bool().unwrap());
    until_basic(&s, "/api/x", &basic("acme", PASSWORD), 200).await;

    run(&["consumer", "key", "revoke", "acme", &key_id], None);
    until_status(&s, "/api/x", &[("x-api-key", &key)], 401).await;
    assert!(run(&["consumer", "key", "list", "acme"], None)[0]["revoked_at"].is_i64());
    run(&["consumer", "delete", "acme"], None);
    until_basic(&s, "/api/x", &basic("acme", PASSWORD), 401).await;
    assert_eq!(run(&["consumer", "list"], None), serde_json::json!([]));
}
