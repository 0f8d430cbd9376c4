//! RFC 6749 §5.2 errors at the token endpoint: every malformed request gets the right code,
//! status and headers, never a 500 or internals.

use crate::support::{TestServer, assert_oauth_error};
use base64::Engine;

#[tokio::test]
async fn wrong_unknown_or_missing_client_credentials_are_invalid_client() {
    let s = TestServer::start().await;
    let (id, _) = s.cc_client().await;
    let cc = [("grant_type", "client_credentials")];

    let h = assert_oauth_error(s.post_form("/token", Some((&id, "wrong")), &cc).await, 401, "invalid_client").await;
    assert!(h["www-authenticate"].to_str().unwrap().starts_with("Basic"), "Basic challenge after Basic auth");

    let h = assert_oauth_error(s.post_form("/token", Some(("nobody", "x")), &cc).await, 401, "invalid_client").await;
    assert!(h.contains_key("www-authenticate"));

    // RFC 9110 §15.5.2: a 401 always carries a challenge, whatever method the client tried.
    let form = [("grant_type", "client_credentials"), ("client_id", id.as_str()), ("client_secret", "wrong")];
    let h = assert_oauth_error(s.post_form("/token", None, &form).await, 401, "invalid_client").await;
    assert!(h["www-authenticate"].to_str().unwrap().starts_with("Basic"), "client_secret_post failure");

    let h = assert_oauth_error(s.post_form("/token", None, &cc).await, 401, "invalid_client").await;
    assert!(h.contains_key("www-authenticate"), "no credentials at all");

    let assertion = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
    ];
    let h = assert_oauth_error(s.post_form("/token", None, &assertion).await, 401, "invalid_client").await;
    assert!(h.contains_key("www-authenticate"), "private_key_jwt failure");

    for path in ["/introspect", "/revoke"] {
        let h = assert_oauth_error(s.post_form(path, None, &[("token", "x")]).await, 401, "invalid_client").await;
        assert!(h.contains_key("www-authenticate"), "{path}");
    }

    let resp = s.http.post(s.url("/token")).header("authorization", "Basic %%%").form(&cc).send().await.unwrap();
    let h = assert_oauth_error(resp, 401, "invalid_client").await;
    assert!(h.contains_key("www-authenticate"));
    let resp = s.http.post(s.url("/token")).header("authorization", "Bearer abc").form(&cc).send().await.unwrap();
    let h = assert_oauth_error(resp, 401, "invalid_client").await;
    assert!(h.contains_key("www-authenticate"));
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_per_rfc6749() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    // Our ids and secrets are base64url, which form-encoding leaves alone; a '+' or '%' would
    // need escaping. Check that an escaped id is decoded before lookup.
    let escaped_id: String = id.chars().map(|c| if c == '-' { "%2D".to_string() } else { c.to_string() }).collect();
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{escaped_id}:{secret}"));
    let resp = s
        .http
        .post(s.url("/token"))
        .header("authorization", format!("Basic {creds}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn grant_type_problems() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let c = Some((id.as_str(), secret.as_str()));
    assert_oauth_error(s.post_form("/token", c, &[]).await, 400, "invalid_request").await;
    for g in ["urn:ietf:params:oauth:grant-type:device_code", "bogus"] {
        let resp = s.post_form("/token", c, &[("grant_type", g)]).await;
        assert_oauth_error(resp, 400, "unsupported_grant_type").await;
    }
    // Implemented, but this client is registered for client_credentials only (§5.2); the
    // legacy password grant exists for the clients an operator registers for it.
    let resp = s.post_form("/token", c, &[("grant_type", "authorization_code"), ("code", "x")]).await;
    assert_oauth_error(resp, 400, "unauthorized_client").await;
    let resp = s.post_form("/token", c, &[("grant_type", "password"), ("username", "u"), ("password", "p")]).await;
    assert_oauth_error(resp, 400, "unauthorized_client").await;
    let resp = s.post_form("/token", c, &[("grant_type", "refresh_token"), ("refresh_token", "x")]).await;
    assert_oauth_error(resp, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn malformed_bodies_are_invalid_request() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let send = |ct: &'static str, body: &'static str| {
        s.http.post(s.url("/token")).basic_auth(&id, Some(&secret)).header("content-type", ct).body(body).send()
    };
    let resp = send("application/x-www-form-urlencoded", "grant_type=client_credentials&grant_type=client_credentials").await.unwrap();
    assert_oauth_error(resp, 400, "invalid_request").await;
    let resp = send("application/json", r#"{"grant_type":"client_credentials"}"#).await.unwrap();
    assert_oauth_error(resp, 400, "invalid_request").await;
    let resp = send("application/x-www-form-urlencoded", "=x&grant_type=client_credentials").await.unwrap();
    assert_oauth_error(resp, 400, "invalid_request").await;
    // Undecodable percent escapes and non-UTF-8 are tolerated as literal text, not a crash.
    let resp = send("application/x-www-form-urlencoded", "grant_type=client_credentials&scope=%ff%fe").await.unwrap();
    assert_oauth_error(resp, 400, "invalid_scope").await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let s = TestServer::start().await;
    let big = format!("grant_type=client_credentials&x={}", "a".repeat(70 * 1024));
    let resp = s.http.post(s.url("/token")).header("content-type", "application/x-www-form-urlencoded").body(big.clone()).send().await.unwrap();
    assert_oauth_error(resp, 413, "invalid_request").await;
    let resp = s.http.post(s.url("/token")).header("content-type", "application/x-www-form-urlencoded").body(big).send().await.unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error_description"], "the request body is too large");
}

/// A client's mistake is the client's: it is answered, not logged as a failure of the
/// server (only 5xx answers reach the logs, 503 at warn).
#[tokio::test]
async fn client_errors_are_not_logged_as_failures() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let logs = crate::support::LogCapture::default();
    let guard = tracing::subscriber::set_default(logs.subscriber(tracing::Level::WARN));
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "client_credentials"), ("scope", "no-such-scope")]).await;
    drop(guard);
    assert_oauth_error(resp, 400, "invalid_scope").await;
    assert_eq!(logs.text(), "", "nothing at warn or above");
}

#[tokio::test]
async fn more_than_one_authentication_method_is_invalid_request() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let form = [("grant_type", "client_credentials"), ("client_id", id.as_str()), ("client_secret", secret.as_str())];
    let resp = s.post_form("/token", Some((&id, &secret)), &form).await;
    assert_oauth_error(resp, 400, "invalid_request").await;
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "client_credentials"), ("client_id", "someone-else")]).await;
    assert_oauth_error(resp, 400, "invalid_request").await;
}

#[tokio::test]
async fn failed_authentication_is_throttled_per_client_and_address_then_per_address() {
    let s = TestServer::start_with(|c| {
        c.oauth.auth_failures_per_client = 3;
        c.oauth.auth_failures_per_ip = 5;
    })
    .await;
    let (id, secret) = s.cc_client().await;
    let cc = [("grant_type", "client_credentials")];
    for _ in 0..3 {
        assert_oauth_error(s.post_form("/token", Some((&id, "guess")), &cc).await, 401, "invalid_client").await;
    }
    // The fourth guess for this client from this address is over the allowance.
    let h = assert_oauth_error(s.post_form("/token", Some((&id, "guess")), &cc).await, 429, "temporarily_unavailable").await;
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // A valid generated secret is never refused by the failure throttle: guessing a 256-bit
    // secret is hopeless anyway, and refusing it would let a stranger lock the client out.
    assert_eq!(s.post_form("/token", Some((&id, &secret)), &cc).await.status(), 200, "the real client still gets tokens");

    // Client ids are public: failures from one address do not count elsewhere.
    let other_address = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).build().unwrap();
    let resp = other_address.post(s.url("/token")).basic_auth(&id, Some("guess")).form(&cc).send().await.unwrap();
    assert_oauth_error(resp, 401, "invalid_client").await;

    s.post_form("/token", Some(("unknown-client", "x")), &cc).await;
    // Six failures from 127.0.0.1 in all (per address: 5): any further failure is throttled,
    // whichever client it names, while valid credentials keep working.
    let (other, other_secret) = s.cc_client().await;
    assert_oauth_error(s.post_form("/token", Some((&other, "guess")), &cc).await, 429, "temporarily_unavailable").await;
    assert_eq!(s.post_form("/token", Some((&other, &other_secret)), &cc).await.status(), 200, "other clients are unaffected");
}

/// Issue #5 item 1: behind a TLS proxy every request comes from the proxy's address. Before,
/// 100 bogus attempts from anyone made the endpoints answer 429 to every client.
#[tokio::test]
async fn behind_a_trusted_proxy_nobody_can_lock_clients_out() {
    let s = TestServer::start_with(|c| {
        c.trusted_proxies = warden::http::client_ip::TrustedProxies::parse(&["127.0.0.0/8".into()]).unwrap();
        c.oauth.auth_failures_per_client = 3;
        c.oauth.auth_failures_per_ip = 10;
    })
    .await;
    let (id, secret) = s.cc_client().await;
    let cc = [("grant_type", "client_credentials")];
    let via_proxy = |xff: &str, user: &str, pass: &str| {
        s.http.post(s.url("/token")).header("x-forwarded-for", xff).basic_auth(user, Some(pass)).form(&cc).send()
    };
    let mut throttled = 0;
    for i in 0..100 {
        // The attacker forges a leading entry; the proxy appends the real address.
        let resp = via_proxy(&format!("10.9.9.{i}, 203.0.113.66"), &id, "guess").await.unwrap();
        throttled += (resp.status() == 429) as u32;
    }
    assert!(throttled >= 85, "the attacker's address is throttled ({throttled} of 100)");
    // Every other client behind the same proxy is served; so is this client from the attacker's
    // own address, with its valid secret.
    for xff in ["198.51.100.1", "203.0.113.66", "2001:db8::1"] {
        assert_eq!(via_proxy(xff, &id, &secret).await.unwrap().status(), 200, "client at {xff}");
    }
    for path in ["/introspect", "/revoke"] {
        let resp = s.http.post(s.url(path)).header("x-forwarded-for", "198.51.100.1").basic_auth(&id, Some(&secret)).form(&[("token", "x")]).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path} behind the proxy");
    }
    // The attacker's other /64 neighbours share its IPv6 allowance.
    for i in 0..12 {
        via_proxy(&format!("2001:db8:aa:bb::{i}"), "nobody", "x").await.unwrap();
    }
    let resp = via_proxy("2001:db8:aa:bb::ffff", "nobody", "x").await.unwrap();
    assert_eq!(resp.status(), 429, "IPv6 is counted per /64");
    assert_eq!(via_proxy("2001:db8:aa:cc::1", "nobody", "x").await.unwrap().status(), 401, "another /64");
}

/// Without `trusted_proxies`, forwarding headers are anyone's words: a client cannot escape its
/// own allowance by claiming to be someone else.
#[tokio::test]
async fn forwarding_headers_from_untrusted_peers_are_ignored() {
    let s = TestServer::start_with(|c| {
        c.oauth.auth_failures_per_client = 2;
    })
    .await;
    let (id, _) = s.cc_client().await;
    let cc = [("grant_type", "client_credentials")];
    let mut last = 0;
    for i in 0..4 {
        let resp = s.http.post(s.url("/token")).header("x-forwarded-for", format!("198.51.100.{i}")).header("forwarded", format!("for=192.0.2.{i}")).basic_auth(&id, Some("guess")).form(&cc).send().await.unwrap();
        last = resp.status().as_u16();
    }
    assert_eq!(last, 429, "the peer address is what counts");
}

#[tokio::test]
async fn malformed_client_ids_are_refused_without_a_lookup() {
    let s = TestServer::start().await;
    let cc = [("grant_type", "client_credentials")];
    let long = "x".repeat(10_000);
    for id in [long.as_str(), "abc\u{0}def", "tab\there"] {
        let resp = s.post_form("/token", Some((id, "secret")), &cc).await;
        assert_oauth_error(resp, 401, "invalid_client").await;
        let form = [("grant_type", "client_credentials"), ("client_id", id), ("client_secret", "x")];
        assert_oauth_error(s.post_form("/token", None, &form).await, 401, "invalid_client").await;
    }
}

#[tokio::test]
async fn too_many_parameters_are_refused() {
    let s = TestServer::start().await;
    let body: String = (0..5000).map(|i| format!("p{i}=x&")).collect();
    let resp = s.http.post(s.url("/token")).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
    assert_oauth_error(resp, 400, "invalid_request").await;
}

#[tokio::test]
async fn wrong_methods_and_paths_are_not_500() {
    let s = TestServer::start().await;
    let resp = s.http.get(s.url("/token")).send().await.unwrap();
    assert!(resp.headers()["allow"].to_str().unwrap().contains("POST"));
    assert_oauth_error(resp, 405, "invalid_request").await;
    let resp = s.http.delete(s.url("/jwks")).send().await.unwrap();
    assert_oauth_error(resp, 405, "invalid_request").await;
    let resp = s.http.get(s.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
}
