//! RFC 9126 pushed authorization requests: the request goes on the back channel,
//! authenticated; the browser carries only a single-use reference.

use super::oidc_login_consent::{CB, CHALLENGE, PASSWORD, answer, stored_code, submit_login, user};
use crate::support::browser::{Browser, location};
use crate::support::{TestServer, assert_oauth_error};
use serde_json::{Value, json};
use warden::jose::sha256_b64url;
use warden::store::ArtifactKind;

async fn confidential_client(s: &TestServer, extra: Value) -> (String, String) {
    let mut spec = json!({
        "grant_types": ["authorization_code"],
        "redirect_uris": [CB],
        "scope": "openid email",
        "client_name": "Backend App",
        "first_party": true,
    });
    spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    s.client(spec).await
}

fn request(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut params = vec![
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", "openid email"),
        ("state", "pushed-state"),
        ("nonce", "pushed-nonce"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    params.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    params.extend_from_slice(extra);
    params
}

async fn push(s: &TestServer, id: &str, secret: &str, params: &[(&str, &str)]) -> reqwest::Response {
    s.post_form("/par", Some((id, secret)), params).await
}

fn authorize_with(s: &TestServer, client_id: &str, request_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&s.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([("client_id", client_id), ("request_uri", request_uri)]).extend_pairs(extra);
    url.to_string()
}

#[tokio::test]
async fn a_pushed_request_is_used_once_and_only_its_parameters_count() {
    let s = TestServer::start().await;
    let alice = user(&s, "alice").await;
    let (id, secret) = confidential_client(&s, json!({})).await;
    // §2.1's example: HTTP Basic, and the client's own client_id in the body too.
    let resp = push(&s, &id, &secret, &[request(&[]), vec![("client_id", id.as_str())]].concat()).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    let request_uri = body["request_uri"].as_str().unwrap().to_owned();
    let random = request_uri.strip_prefix("urn:ietf:params:oauth:request_uri:").expect("an RFC 9126 URN");
    assert_eq!(body["expires_in"], 60);
    // Stored for those 60 seconds (under a hash of the reference), and not longer.
    let key = sha256_b64url(random.as_bytes());
    let now = warden::model::unix_now();
    assert!(s.holds(ArtifactKind::PushedRequest, &key, now + 58).await);
    assert!(!s.holds(ArtifactKind::PushedRequest, &key, now + 61).await, "a pushed request expires after expires_in");

    // Parameters beside request_uri are ignored: only the authenticated push counts.
    let mut b = Browser::new(&s);
    let resp = b.get(&authorize_with(&s, &id, &request_uri, &[("state", "forged"), ("scope", "openid email profile")])).await;
    let html = b.get(&location(&resp)).await.text().await.unwrap();
    let q = answer(&location(&submit_login(&mut b, &html, "alice", PASSWORD).await));
    assert_eq!(q["state"], "pushed-state");
    let grant = stored_code(&s, &q["code"]).await;
    assert_eq!(grant.sub, alice.id.as_str());
    assert_eq!(grant.scope, ["openid", "email"]);
    assert_eq!(grant.nonce.as_deref(), Some("pushed-nonce"));

    // Single use; and never for another client.
    let resp = b.get(&authorize_with(&s, &id, &request_uri, &[])).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("already used"));
    let (other, other_secret) = confidential_client(&s, json!({})).await;
    let body: Value = push(&s, &other, &other_secret, &request(&[])).await.json().await.unwrap();
    let resp = b.get(&authorize_with(&s, &id, body["request_uri"].as_str().unwrap(), &[])).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("another application"));
}

/// §2.3: the authorization endpoint's checks, answered as RFC 6749 JSON.
#[tokio::test]
async fn a_push_is_checked_like_an_authorization_request_and_answered_in_json() {
    let s = TestServer::start().await;
    let (id, secret) = confidential_client(&s, json!({})).await;
    assert_oauth_error(push(&s, &id, "wrong", &request(&[])).await, 401, "invalid_client").await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (request(&[("redirect_uri", "https://evil.example/cb")]), "invalid_request"),
        (request(&[("response_type", "token")]), "unsupported_response_type"),
        (request(&[("response_type", "id_token")]), "unauthorized_client"),
        (request(&[("resource", "https://evil.example/")]), "invalid_target"),
        (request(&[("scope", "openid admin")]), "invalid_scope"),
        (request(&[("code_challenge_method", "plain")]), "invalid_request"),
        (request(&[("request_uri", "urn:ietf:params:oauth:request_uri:x")]), "invalid_request"),
        (request(&[("client_id", "someone-else")]), "invalid_request"),
    ];
    for (params, code) in cases {
        assert_oauth_error(push(&s, &id, &secret, &params).await, 400, code).await;
    }
    // A request_uri that was never issued is a page, never a redirect.
    let mut b = Browser::new(&s);
    let resp = b.get(&authorize_with(&s, &id, "urn:ietf:params:oauth:request_uri:nope", &[])).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
}

/// §5, §6: a client (or the whole server) may require pushed requests.
#[tokio::test]
async fn clients_that_require_par_cannot_send_plain_requests() {
    let s = TestServer::start().await;
    let (id, secret) = confidential_client(&s, json!({"require_pushed_authorization_requests": true})).await;
    let mut plain = url::Url::parse(&s.url("/authorize")).unwrap();
    plain.query_pairs_mut().append_pair("client_id", &id).extend_pairs(request(&[]));
    let mut b = Browser::new(&s);
    let q = answer(&location(&b.get(plain.as_str()).await));
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("pushed"));
    let body: Value = push(&s, &id, &secret, &request(&[])).await.json().await.unwrap();
    let resp = b.get(&authorize_with(&s, &id, body["request_uri"].as_str().unwrap(), &[])).await;
    assert!(location(&resp).contains("/interaction/"));

    let strict = TestServer::start_with(|c| c.oauth.require_pushed_authorization_requests = true).await;
    let (id, _) = confidential_client(&strict, json!({})).await;
    let mut plain = url::Url::parse(&strict.url("/authorize")).unwrap();
    plain.query_pairs_mut().append_pair("client_id", &id).extend_pairs(request(&[]));
    let q = answer(&location(&Browser::new(&strict).get(plain.as_str()).await));
    assert_eq!(q["error"], "invalid_request");
}
