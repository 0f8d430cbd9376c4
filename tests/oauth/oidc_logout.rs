//! OpenID Connect RP-Initiated Logout 1.0: the end-session endpoint, its confirmation page,
//! and what a signed-out browser gets next.

use super::oidc_login_consent::{CB, PASSWORD, answer, authorize_url, open_login, submit_login, user, web_client};
use crate::support::TestServer;
use crate::support::browser::{Browser, form_action, input, location};
use serde_json::json;
use warden::jose::{Alg, SigningKey};

const BYE: &str = "https://app.example/signed-out";

/// A browser signed in to a first-party client that registered a post-logout URI.
async fn signed_in(s: &TestServer) -> (Browser, String) {
    user(s, "alice").await;
    let client_id = web_client(s, json!({"first_party": true, "post_logout_redirect_uris": [BYE]})).await;
    let mut b = Browser::new(s);
    let (html, _) = open_login(&mut b, s, &client_id, &[]).await;
    answer(&location(&submit_login(&mut b, &html, "alice", PASSWORD).await));
    (b, client_id)
}

fn logout_url(s: &TestServer, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&s.url("/logout")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

async fn silent(b: &mut Browser, s: &TestServer, client_id: &str) -> std::collections::HashMap<String, String> {
    answer(&location(&b.get(&authorize_url(s, client_id, &[("prompt", "none")])).await))
}

/// An ID token signed with the server's own RS256 key (what the token endpoint issues).
async fn id_token(s: &TestServer, aud: &str, typ: &str) -> String {
    // Expired two years ago: hints are accepted for ten years after their expiry (an RP may
    // keep the ID token of a long session).
    let now = warden::model::unix_now();
    let day = 24 * 3600;
    s.sign_with_own_key(Alg::RS256, typ, &json!({"iss": s.issuer, "sub": "x", "aud": aud, "iat": now - 731 * day, "exp": now - 730 * day})).await
}

#[tokio::test]
async fn signing_out_asks_then_ends_the_session_and_returns_with_state() {
    let s = TestServer::start().await;
    let (mut b, client_id) = signed_in(&s).await;
    let old_session = b.cookies["warden_session"].clone();
    assert!(silent(&mut b, &s, &client_id).await.contains_key("code"));

    let resp = b.get(&logout_url(&s, &[("client_id", &client_id), ("post_logout_redirect_uri", BYE), ("state", "s&1")])).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    // The confirmation's 303 leads to the client: browsers check form-action on that redirect.
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("form-action 'self' https://app.example;"), "{csp}");
    let html = resp.text().await.unwrap();
    assert!(html.contains("Sign out?") && html.contains("alice") && html.contains("Photo App"), "{html}");
    // The confirmation waits ten minutes for the user, and no longer.
    let key = warden::jose::sha256_b64url(input(&html, "logout").as_bytes());
    let now = warden::model::unix_now();
    let waiting = warden::store::ArtifactKind::LogoutRequest;
    assert!(s.holds(waiting, &key, now + 9 * 60).await);
    assert!(!s.holds(waiting, &key, now + 10 * 60 + 2).await);

    // Without the CSRF token nothing happens (no other site can sign a user out).
    let resp = b.post(&form_action(&html), &[("logout", &input(&html, "logout"))]).await;
    assert_eq!(resp.status(), 403);
    assert!(silent(&mut b, &s, &client_id).await.contains_key("code"), "still signed in");

    let resp = b.post(&form_action(&html), &[("logout", &input(&html, "logout")), ("csrf", &input(&html, "csrf"))]).await;
    let to = location(&resp);
    assert_eq!(to, format!("{BYE}?state=s%261"));
    assert!(!b.cookies.contains_key("warden_session"), "the cookie is cleared");
    assert_eq!(silent(&mut b, &s, &client_id).await["error"], "login_required");
    // The session is gone on the server too: the old cookie value is worth nothing.
    let mut replay = Browser::new(&s);
    replay.cookies.insert("warden_session".into(), old_session);
    assert_eq!(silent(&mut replay, &s, &client_id).await["error"], "login_required");
    // The confirmation is single-use.
    let resp = b.post(&form_action(&html), &[("logout", &input(&html, "logout")), ("csrf", &input(&html, "csrf"))]).await;
    assert_eq!(resp.status(), 400);
}

/// RP-Initiated Logout §2: the end-session endpoint takes its parameters in a form POST too.
#[tokio::test]
async fn the_end_session_endpoint_takes_a_form_post_too() {
    let s = TestServer::start().await;
    let (mut b, client_id) = signed_in(&s).await;
    let resp = b.post(&s.url("/logout"), &[("client_id", client_id.as_str()), ("post_logout_redirect_uri", BYE), ("state", "p-1")]).await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Sign out?") && html.contains("alice"), "{html}");
    let resp = b.post(&form_action(&html), &[("logout", &input(&html, "logout")), ("csrf", &input(&html, "csrf"))]).await;
    assert_eq!(location(&resp), format!("{BYE}?state=p-1"));
    assert_eq!(silent(&mut b, &s, &client_id).await["error"], "login_required");
}

/// Never a redirect to an unverified URI (RP-Initiated Logout §3.1).
#[tokio::test]
async fn an_unregistered_return_address_or_a_foreign_hint_gets_a_page() {
    let s = TestServer::start().await;
    let (mut b, client_id) = signed_in(&s).await;
    let (other, _) = s.client(json!({"grant_types": ["authorization_code"], "redirect_uris": [CB], "post_logout_redirect_uris": ["https://other.example/bye"]})).await;
    let cases = [
        vec![("client_id", client_id.as_str()), ("post_logout_redirect_uri", "https://evil.example/")],
        vec![("client_id", client_id.as_str()), ("post_logout_redirect_uri", "https://other.example/bye")],
        vec![("post_logout_redirect_uri", BYE)],
        vec![("client_id", "nobody"), ("post_logout_redirect_uri", BYE)],
    ];
    for params in cases {
        let resp = b.get(&logout_url(&s, &params)).await;
        assert_eq!(resp.status(), 400, "{params:?}");
        assert!(resp.headers().get("location").is_none());
    }
    // A hint signed by someone else, one for another client, and an access token as a hint.
    let forged = {
        let master = warden::secrets::MasterKey::from_bytes(&[5; 32]);
        let rec = warden::jose::generate_key_record(Alg::RS256, &master, 0, 0).unwrap();
        let pkcs8 = master.open(&rec.sealed_private, rec.kid.as_str().as_bytes()).unwrap();
        SigningKey::from_pkcs8(rec.kid, Alg::RS256, &pkcs8).unwrap().sign_jwt("JWT", &json!({"iss": s.issuer, "sub": "x", "aud": client_id, "exp": warden::model::unix_now() + 60})).unwrap()
    };
    let other_hint = id_token(&s, &other, "JWT").await;
    let access = id_token(&s, &client_id, "at+jwt").await;
    // Our own key, but another issuer; or no audience.
    let exp = warden::model::unix_now() + 60;
    let foreign_iss = s.sign_with_own_key(Alg::RS256, "JWT", &json!({"iss": "https://other-issuer.example", "sub": "x", "aud": client_id, "exp": exp})).await;
    let no_aud = s.sign_with_own_key(Alg::RS256, "JWT", &json!({"iss": s.issuer, "sub": "x", "exp": exp})).await;
    for (hint, extra) in [
        (forged.as_str(), None),
        (other_hint.as_str(), Some(client_id.as_str())),
        (access.as_str(), None),
        (foreign_iss.as_str(), None),
        (no_aud.as_str(), None),
    ] {
        let mut params = vec![("id_token_hint", hint)];
        if let Some(c) = extra {
            params.push(("client_id", c));
        }
        let resp = b.get(&logout_url(&s, &params)).await;
        assert_eq!(resp.status(), 400, "{params:?}");
        assert!(resp.text().await.unwrap().contains("ID token"), "{params:?}");
    }
    assert!(silent(&mut b, &s, &client_id).await.contains_key("code"), "nothing was signed out");
}

/// The hint names the client (even expired), so no client_id is needed; a browser that is not
/// signed in goes straight back.
#[tokio::test]
async fn an_expired_id_token_hint_names_the_client_and_a_signed_out_browser_goes_straight_back() {
    let s = TestServer::start().await;
    let (mut b, client_id) = signed_in(&s).await;
    let hint = id_token(&s, &client_id, "JWT").await;
    let resp = b.get(&logout_url(&s, &[("id_token_hint", &hint), ("post_logout_redirect_uri", BYE)])).await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    let resp = b.post(&form_action(&html), &[("logout", &input(&html, "logout")), ("csrf", &input(&html, "csrf"))]).await;
    assert_eq!(location(&resp), BYE);

    let mut stranger = Browser::new(&s);
    let resp = stranger.get(&logout_url(&s, &[("id_token_hint", &hint), ("post_logout_redirect_uri", BYE), ("state", "z")])).await;
    assert_eq!(location(&resp), format!("{BYE}?state=z"));
    // An audience array with the client alone names it as well.
    let now = warden::model::unix_now();
    let listed = s.sign_with_own_key(Alg::RS256, "JWT", &json!({"iss": s.issuer, "sub": "x", "aud": [client_id], "exp": now - 60})).await;
    let resp = stranger.get(&logout_url(&s, &[("id_token_hint", &listed), ("post_logout_redirect_uri", BYE)])).await;
    assert_eq!(location(&resp), BYE);
    let resp = stranger.get(&logout_url(&s, &[])).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("You are signed out"));
}
