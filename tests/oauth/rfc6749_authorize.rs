//! The authorization endpoint's request checks (RFC 6749 §4.1.1, §4.1.2.1, §3.1.2; OIDC Core
//! §3.1.2; RFC 7636; RFC 9207; RFC 9700 §4.1, §4.12): what goes back to the client, and what
//! is only ever shown to the user.

use crate::support::TestServer;
use reqwest::Response;
use serde_json::json;
use std::collections::HashMap;

const CB: &str = "https://app.example/cb";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A browser-flow client with two redirect URIs (one of them a native app's loopback URI).
async fn web_client(s: &TestServer) -> String {
    s.client(json!({
        "grant_types": ["authorization_code"],
        "redirect_uris": [CB, "http://127.0.0.1/native"],
        "scope": "openid profile read",
        "token_endpoint_auth_method": "none",
    }))
    .await
    .0
}

fn good(client_id: &str) -> Vec<(&str, &str)> {
    vec![
        ("client_id", client_id),
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", "openid read"),
        ("state", "st&te=1 ü"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

fn with<'a>(mut params: Vec<(&'a str, &'a str)>, name: &'a str, value: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    params.retain(|(k, _)| *k != name);
    if let Some(v) = value {
        params.push((name, v));
    }
    params
}

async fn get(s: &TestServer, params: &[(&str, &str)]) -> Response {
    let mut url = url::Url::parse(&s.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    no_redirects().get(url).send().await.unwrap()
}

/// Asserts an error page: HTML, never a redirect, with the page headers.
async fn assert_page(resp: Response, status: u16, mentions: &str) -> String {
    assert_eq!(resp.status().as_u16(), status);
    let h = resp.headers().clone();
    assert!(h.get("location").is_none(), "an unverified request is never redirected");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(h["cache-control"], "no-store");
    let body = resp.text().await.unwrap();
    assert!(body.contains(mentions), "page should mention {mentions:?}: {body}");
    if status >= 400 {
        let request_id = h["x-request-id"].to_str().unwrap();
        assert!(body.contains(&format!("<code>{request_id}</code>")), "an error page quotes its request id for support: {body}");
    }
    body
}

/// Asserts an error sent back to the client by redirect: its parameters.
fn redirected_error(resp: &Response, to: &str) -> HashMap<String, String> {
    assert_eq!(resp.status().as_u16(), 303, "RFC 9700 §4.12: 303, never 307");
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(&format!("{to}?")), "{location}");
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

#[tokio::test]
async fn an_unknown_or_missing_client_gets_a_page_never_a_redirect() {
    let s = TestServer::start().await;
    let id = web_client(&s).await;
    assert_page(get(&s, &with(good(&id), "client_id", None)).await, 400, "client_id is missing").await;
    assert_page(get(&s, &with(good(&id), "client_id", Some("nobody"))).await, 400, "not registered").await;
    let mut twice = good(&id);
    twice.push(("client_id", &id));
    assert_page(get(&s, &twice).await, 400, "client_id is repeated").await;
}

/// RFC 9700 §4.1: every variant of a registered redirect URI is refused, on a page.
#[tokio::test]
async fn a_redirect_uri_that_is_not_registered_exactly_gets_a_page() {
    let s = TestServer::start().await;
    let id = web_client(&s).await;
    for evil in [
        "https://app.example/cb/",
        "https://app.example/cb/other",
        "https://app.example/cb?x=1",
        "https://app.example:8443/cb",
        "http://app.example/cb",
        "https://user@app.example/cb",
        "https://app.example@evil.example/cb",
        "https://app.example/cb#frag",
        "https://evil.example/cb",
        "https://app.example.evil.example/cb",
        "HTTPS://app.example/cb",
        "http://127.0.0.1:5000/other",
        "http://localhost:5000/native",
        "javascript:alert(1)",
    ] {
        let body = assert_page(get(&s, &with(good(&id), "redirect_uri", Some(evil))).await, 400, "is not registered").await;
        assert!(!body.contains("<script"), "the URI is escaped on the page");
    }
    // With two registered URIs the request must name one (and OIDC requests always must).
    assert_page(get(&s, &with(good(&id), "redirect_uri", None)).await, 400, "redirect_uri is missing").await;
}

/// RFC 6749 §3.1.2.3: with exactly one registered URI a plain OAuth request may leave
/// `redirect_uri` out; an OpenID request may not (OIDC Core §3.1.2.1), and a client without
/// a registered URI cannot use the browser flow at all.
#[tokio::test]
async fn a_redirect_uri_may_be_left_out_only_with_one_registered_and_without_openid() {
    let s = TestServer::start().await;
    let (one, _) = s.client(json!({"grant_types": ["authorization_code"], "redirect_uris": [CB], "scope": "openid read", "token_endpoint_auth_method": "none"})).await;
    let plain = with(with(good(&one), "redirect_uri", None), "scope", Some("read"));
    let resp = get(&s, &plain).await;
    assert_eq!(resp.status(), 303);
    assert!(resp.headers()["location"].to_str().unwrap().starts_with("/interaction/"), "{:?}", resp.headers());
    let openid = with(good(&one), "redirect_uri", None);
    assert_page(get(&s, &openid).await, 400, "redirect_uri is missing").await;
    let (none, _) = s.client(json!({"grant_types": ["client_credentials"], "scope": "read"})).await;
    let body = with(with(good(&none), "redirect_uri", None), "scope", Some("read"));
    assert_page(get(&s, &body).await, 400, "no registered redirect URI").await;
}

/// RFC 6749 §4.1.2.1, RFC 9207: once client and redirect URI are verified, errors go back
/// to the client with `error`, `error_description`, `state` (byte for byte) and `iss`.
#[tokio::test]
async fn errors_after_verification_go_back_to_the_client_with_state_and_iss() {
    let s = TestServer::start().await;
    let id = web_client(&s).await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (with(good(&id), "response_type", None), "invalid_request"),
        (with(good(&id), "response_type", Some("token")), "unsupported_response_type"),
        (with(good(&id), "response_type", Some("code id_token")), "unsupported_response_type"),
        (with(good(&id), "scope", Some("openid admin")), "invalid_scope"),
        (with(good(&id), "scope", None), "invalid_scope"),
        (with(good(&id), "code_challenge", None), "invalid_request"),
        (with(good(&id), "code_challenge_method", None), "invalid_request"),
        (with(good(&id), "code_challenge_method", Some("plain")), "invalid_request"),
        (with(good(&id), "code_challenge", Some("too-short")), "invalid_request"),
        (with(good(&id), "prompt", Some("none login")), "invalid_request"),
        (with(good(&id), "prompt", Some("create")), "invalid_request"),
        (with(good(&id), "max_age", Some("-1")), "invalid_request"),
        (with(good(&id), "display", Some("fullscreen")), "invalid_request"),
        (with(good(&id), "claims", Some("{not json")), "invalid_request"),
        (with(good(&id), "request", Some("eyJhbGciOiJub25lIn0.e30.")), "request_not_supported"),
        (with(good(&id), "request_uri", Some("https://app.example/req")), "request_uri_not_supported"),
        (with(good(&id), "resource", Some("https://other-api.example")), "invalid_target"),
        (with(good(&id), "resource", Some("not a uri")), "invalid_request"),
        (with(good(&id), "response_mode", Some("web_message")), "invalid_request"),
    ];
    for (params, code) in cases {
        let resp = get(&s, &params).await;
        let q = redirected_error(&resp, CB);
        assert_eq!(q["error"], code, "{params:?}");
        assert!(!q["error_description"].is_empty());
        assert_eq!(q["state"], "st&te=1 ü", "state comes back byte for byte");
        assert_eq!(q["iss"], s.issuer, "RFC 9207");
    }
    // A repeated parameter (other than resource).
    let mut params = good(&id);
    params.push(("scope", "openid"));
    assert_eq!(redirected_error(&get(&s, &params).await, CB)["error"], "invalid_request");
    // Without state, none comes back.
    let q = redirected_error(&get(&s, &with(with(good(&id), "state", None), "response_type", Some("token"))).await, CB);
    assert!(!q.contains_key("state"));
    // state and nonce are opaque but at most 2048 bytes each.
    let (max, over) = ("s".repeat(2048), "s".repeat(2049));
    // (2048 bytes pass that check: the request fails at the later resource check.)
    let later = |name, value| with(with(good(&id), name, Some(value)), "resource", Some("https://other-api.example"));
    let q = redirected_error(&get(&s, &later("state", &max)).await, CB);
    assert_eq!((q["error"].as_str(), q["state"].len()), ("invalid_target", 2048));
    let q = redirected_error(&get(&s, &later("nonce", &max)).await, CB);
    assert_eq!(q["error"], "invalid_target");
    for (name, value) in [("state", &over), ("nonce", &over)] {
        let q = redirected_error(&get(&s, &with(good(&id), name, Some(value))).await, CB);
        assert_eq!(q["error"], "invalid_request", "{name} of 2049 bytes");
        assert!(q["error_description"].contains("2048"), "{q:?}");
    }
    // §3.1: a parameter without a value is as if omitted: an empty state comes back as no
    // state, and an empty prompt or max_age is no error (the request fails later, at its
    // resource).
    let empty = with(with(with(good(&id), "state", Some("")), "prompt", Some("")), "max_age", Some(""));
    let q = redirected_error(&get(&s, &with(empty, "resource", Some("https://other-api.example"))).await, CB);
    assert_eq!(q["error"], "invalid_target", "{q:?}");
    assert!(!q.contains_key("state"), "{q:?}");
}

/// A client registered without the code grant (but with a redirect URI) is told so.
#[tokio::test]
async fn a_client_not_registered_for_the_code_flow_gets_unauthorized_client() {
    let s = TestServer::start().await;
    let (id, _) = s.client(json!({"grant_types": ["client_credentials"], "redirect_uris": [CB], "scope": "read"})).await;
    let q = redirected_error(&get(&s, &with(good(&id), "scope", Some("read"))).await, CB);
    assert_eq!(q["error"], "unauthorized_client");
}

/// The response mode decides how errors travel: fragment, and form_post as an
/// auto-submitting page allowed to post only to the client.
#[tokio::test]
async fn errors_use_the_requested_response_mode() {
    let s = TestServer::start().await;
    let id = web_client(&s).await;
    let bad = with(good(&id), "response_type", Some("token"));
    let resp = get(&s, &with(bad.clone(), "response_mode", Some("fragment"))).await;
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(&format!("{CB}#error=unsupported_response_type&")), "{location}");

    let resp = get(&s, &with(bad, "response_mode", Some("form_post"))).await;
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("form-action https://app.example;"), "{csp}");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let html = resp.text().await.unwrap();
    assert!(html.contains(r#"<form method="post" action="https:&#x2f;&#x2f;app.example&#x2f;cb">"#), "{html}");
    assert!(html.contains(r#"name="error" value="unsupported_response_type""#));
    assert!(html.contains(r#"name="state" value="st&amp;te=1 ü""#));
}

/// RFC 8252 §7.3: a native app's loopback redirect URI may come with any port; the answer
/// goes to that port.
#[tokio::test]
async fn a_loopback_redirect_uri_may_carry_any_port() {
    let s = TestServer::start().await;
    let id = web_client(&s).await;
    let uri = "http://127.0.0.1:54321/native";
    let params = with(with(good(&id), "redirect_uri", Some(uri)), "response_type", Some("token"));
    assert_eq!(redirected_error(&get(&s, &params).await, uri)["error"], "unsupported_response_type");
}

/// OIDC Core §3.1.2.1: POST works as GET; a POST that is not a form gets a page.
#[tokio::test]
async fn post_is_checked_like_get() {
    let s = TestServer::start().await;
    let id = web_client(&s).await;
    let bad = with(good(&id), "response_type", Some("token"));
    let resp = no_redirects().post(s.url("/authorize")).form(&bad).send().await.unwrap();
    assert_eq!(redirected_error(&resp, CB)["error"], "unsupported_response_type");
    let resp = no_redirects().post(s.url("/authorize")).json(&json!({"client_id": id})).send().await.unwrap();
    assert_page(resp, 415, "must be a form").await;
    let resp = no_redirects().post(s.url("/authorize")).form(&with(good(&id), "redirect_uri", Some("https://evil.example/"))).send().await.unwrap();
    assert_page(resp, 400, "is not registered").await;
}

/// A valid request from a browser without a session goes to the login page of a new
/// interaction (oidc_login_consent.rs follows it from there); nothing goes to the client yet.
#[tokio::test]
async fn a_valid_request_without_a_session_goes_to_the_login_page() {
    let s = TestServer::start().await;
    let id = web_client(&s).await;
    let resp = get(&s, &good(&id)).await;
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/interaction/"), "{location}");
    let page = no_redirects().get(s.url(&location)).send().await.unwrap();
    assert_page(page, 200, "Sign in").await;
}

#[tokio::test]
async fn pages_load_their_stylesheet_from_the_issuer() {
    let s = TestServer::start().await;
    let resp = s.http.get(s.url("/assets/warden.css")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    assert!(resp.text().await.unwrap().contains("--accent"));
}
