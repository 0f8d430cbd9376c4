//! The browser half of the authorization code flow (OIDC Core §3.1.2.3–3.1.2.6, RFC 6749
//! §4.1.2, RFC 9700 §4.4 CSRF, §4.7 clickjacking): login and consent pages, the session, and
//! the code at the end. Driven over real HTTP by a minimal browser that keeps its cookies.

use crate::support::TestServer;
use crate::support::browser::{Browser, form_action, input, location, path_of};
use reqwest::Response;
use serde_json::json;
use std::collections::HashMap;
use warden::model::Claims;
use warden::jose::sha256_b64url;
use warden::oauth::authorize::code::{CodeGrant, code_id};
use warden::oauth::users;
use warden::secrets::password::Password;
use warden::store::ArtifactKind;

pub(crate) const CB: &str = "https://app.example/cb";
pub(crate) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) async fn user(s: &TestServer, name: &str) -> warden::model::User {
    let claims = Claims { email: Some(format!("{name}@example.com")), ..Claims::default() };
    users::create(&s.store, name, claims, Some(Password::new(PASSWORD.into()))).await.unwrap()
}

pub(crate) async fn web_client(s: &TestServer, extra: serde_json::Value) -> String {
    let mut spec = json!({
        "grant_types": ["authorization_code"],
        "redirect_uris": [CB],
        "scope": "openid profile email read",
        "token_endpoint_auth_method": "none",
        "client_name": "Photo App",
        "policy_uri": "https://app.example/privacy",
    });
    spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    s.client(spec).await.0
}

pub(crate) fn authorize_url(s: &TestServer, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("client_id", client_id),
        ("redirect_uri", CB),
        ("response_type", "code"),
        ("scope", "openid email read"),
        ("state", "xyz"),
        ("nonce", "n-0S6"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    params.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    params.extend_from_slice(extra);
    let mut url = url::Url::parse(&s.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// The parameters of a redirect back to the client.
pub(crate) fn answer(loc: &str) -> HashMap<String, String> {
    assert!(loc.starts_with(&format!("{CB}?")), "{loc}");
    url::Url::parse(loc).unwrap().query_pairs().into_owned().collect()
}

/// Starts a flow: GET /authorize, follow to the interaction page; its HTML and URL.
pub(crate) async fn open_login(b: &mut Browser, s: &TestServer, client_id: &str, extra: &[(&str, &str)]) -> (String, String) {
    let resp = b.get(&authorize_url(s, client_id, extra)).await;
    let page_url = location(&resp);
    let resp = b.get(&page_url).await;
    assert_eq!(resp.status(), 200);
    (resp.text().await.unwrap(), page_url)
}

pub(crate) async fn submit_login(b: &mut Browser, html: &str, username: &str, password: &str) -> Response {
    let csrf = input(html, "csrf");
    b.post(&form_action(html), &[("csrf", &csrf), ("username", username), ("password", password)]).await
}

pub(crate) async fn stored_code(s: &TestServer, code: &str) -> CodeGrant {
    let bytes = s.store.artifacts.get(ArtifactKind::AuthorizationCode, &code_id(code), warden::model::unix_now()).await.unwrap().expect("the code is stored");
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn sign_in_then_consent_then_a_code_and_next_time_no_pages_at_all() {
    let s = TestServer::start().await;
    let alice = user(&s, "alice").await;
    let client_id = web_client(&s, json!({})).await;
    let mut b = Browser::new(&s);

    let (html, _) = open_login(&mut b, &s, &client_id, &[]).await;
    assert!(html.contains("Sign in") && html.contains("Photo App"), "{html}");
    assert!(html.contains(r#"autocomplete="current-password""#));

    let resp = submit_login(&mut b, &html, "Alice", PASSWORD).await;
    let set_cookie: Vec<String> = resp.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let session_cookie = set_cookie.iter().find(|c| c.starts_with("warden_session=")).expect("a session cookie");
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax") && session_cookie.contains("Path=/"));
    let consent_url = location(&resp);
    let resp = b.get(&consent_url).await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    for words in ["Photo App", "alice", "See your email address", "Confirm who you are", "Use the permission", "Privacy policy"] {
        assert!(html.contains(words), "consent page shows {words:?}: {html}");
    }
    let csrf = input(&html, "csrf");
    let resp = b.post(&form_action(&html), &[("csrf", &csrf), ("decision", "allow")]).await;
    let q = answer(&location(&resp));
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], s.issuer);
    let grant = stored_code(&s, &q["code"]).await;
    assert_eq!(grant.sub, alice.id.as_str());
    assert_eq!(grant.client_id, client_id);
    assert_eq!(grant.code_challenge, CHALLENGE);
    assert_eq!(grant.nonce.as_deref(), Some("n-0S6"));
    assert_eq!(grant.scope, ["openid", "email", "read"]);
    assert_eq!(grant.amr, ["pwd"]);
    assert_eq!(grant.acr.as_deref(), Some("1"), "signed in for this request");
    assert!(grant.redirect_uri_sent);

    // Signed in and consented: the next request gets a code with no page (OIDC Core §3.1.2.3).
    let resp = b.get(&authorize_url(&s, &client_id, &[("state", "second")])).await;
    let q2 = answer(&location(&resp));
    assert_eq!(q2["state"], "second");
    let grant2 = stored_code(&s, &q2["code"]).await;
    assert_eq!((grant2.sid.as_str(), grant2.auth_time), (grant.sid.as_str(), grant.auth_time), "same session");
    assert_eq!(grant2.acr.as_deref(), Some("0"), "answered by the existing session");
    assert_ne!(grant2.grant_id, grant.grant_id);
    // prompt=none works silently too; in another browser it is login_required.
    assert!(answer(&location(&b.get(&authorize_url(&s, &client_id, &[("prompt", "none")])).await)).contains_key("code"));
    let mut other = Browser::new(&s);
    let q = answer(&location(&other.get(&authorize_url(&s, &client_id, &[("prompt", "none")])).await));
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "xyz");
}

#[tokio::test]
async fn consent_is_asked_for_new_scopes_and_with_prompt_consent_and_deny_is_access_denied() {
    let s = TestServer::start().await;
    user(&s, "bob").await;
    let client_id = web_client(&s, json!({})).await;
    let mut b = Browser::new(&s);
    let (html, _) = open_login(&mut b, &s, &client_id, &[("scope", "openid")]).await;
    let consent = location(&submit_login(&mut b, &html, "bob", PASSWORD).await);
    let html = b.get(&consent).await.text().await.unwrap();
    let csrf = input(&html, "csrf");
    answer(&location(&b.post(&form_action(&html), &[("csrf", &csrf), ("decision", "allow")]).await));

    // More scopes than consented: the consent page again, without a login.
    let resp = b.get(&authorize_url(&s, &client_id, &[("scope", "openid profile")])).await;
    let html = b.get(&location(&resp)).await.text().await.unwrap();
    assert!(html.contains("See your name and basic profile"), "{html}");
    let csrf = input(&html, "csrf");
    let q = answer(&location(&b.post(&form_action(&html), &[("csrf", &csrf), ("decision", "deny")]).await));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["iss"], s.issuer);

    // prompt=consent asks even for what was consented; prompt=none never shows a page.
    let resp = b.get(&authorize_url(&s, &client_id, &[("scope", "openid"), ("prompt", "consent")])).await;
    assert!(b.get(&location(&resp)).await.text().await.unwrap().contains("wants to access your account"));
    let q = answer(&location(&b.get(&authorize_url(&s, &client_id, &[("scope", "openid profile"), ("prompt", "none")])).await));
    assert_eq!(q["error"], "consent_required");
}

#[tokio::test]
async fn a_first_party_client_skips_consent() {
    let s = TestServer::start().await;
    user(&s, "carol").await;
    let client_id = web_client(&s, json!({"first_party": true})).await;
    let mut b = Browser::new(&s);
    let (html, _) = open_login(&mut b, &s, &client_id, &[]).await;
    let q = answer(&location(&submit_login(&mut b, &html, "carol", PASSWORD).await));
    assert!(q.contains_key("code"));
}

/// One message, one status for an unknown user and a wrong password; the username typed is
/// kept, the password never echoed.
#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_look_the_same() {
    let s = TestServer::start().await;
    user(&s, "dave").await;
    let client_id = web_client(&s, json!({})).await;
    let mut b = Browser::new(&s);
    let (html, _) = open_login(&mut b, &s, &client_id, &[]).await;
    let wrong = submit_login(&mut b, &html, "dave", "not the password").await;
    let (s1, page1) = (wrong.status(), wrong.text().await.unwrap());
    let unknown = submit_login(&mut b, &html, "nobody", "not the password").await;
    let (s2, page2) = (unknown.status(), unknown.text().await.unwrap());
    assert_eq!(s1, s2);
    assert!(page1.contains("The username or password is not right.") && page2.contains("The username or password is not right."));
    assert!(!page1.contains("not the password"));
    assert_eq!(input(&page1, "username"), "dave");
    assert!(!b.cookies.contains_key("warden_session"), "no session after a failure");
}

/// RFC 9700 §4.4.1.8 (login CSRF): the token is required, and bound to the browser.
#[tokio::test]
async fn a_login_form_without_its_token_or_from_another_browser_is_refused() {
    let s = TestServer::start().await;
    user(&s, "erin").await;
    let client_id = web_client(&s, json!({})).await;
    let mut victim = Browser::new(&s);
    let (html, _) = open_login(&mut victim, &s, &client_id, &[]).await;
    let action = form_action(&html);

    let resp = victim.post(&action, &[("username", "erin"), ("password", PASSWORD)]).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let resp = victim.post(&action, &[("csrf", "forged"), ("username", "erin"), ("password", PASSWORD)]).await;
    assert_eq!(resp.status(), 403);

    // The attacker's browser fetched its own form, then the victim posts the attacker's token.
    let mut attacker = Browser::new(&s);
    let (attacker_html, _) = open_login(&mut attacker, &s, &client_id, &[]).await;
    let token = input(&attacker_html, "csrf");
    let resp = victim.post(&form_action(&attacker_html), &[("csrf", &token), ("username", "erin"), ("password", PASSWORD)]).await;
    assert_eq!(resp.status(), 403, "a form moved to another browser fails");
    assert!(!victim.cookies.contains_key("warden_session"));
}

/// RFC 9700 §4.4 / OWASP session fixation: the session id after login is new, never one the
/// browser brought.
#[tokio::test]
async fn signing_in_always_makes_a_new_session_id() {
    let s = TestServer::start().await;
    user(&s, "frank").await;
    let client_id = web_client(&s, json!({"first_party": true})).await;
    let mut b = Browser::new(&s);
    b.cookies.insert("warden_session".into(), "planted-by-attacker-0123456789".into());
    let (html, _) = open_login(&mut b, &s, &client_id, &[]).await;
    answer(&location(&submit_login(&mut b, &html, "frank", PASSWORD).await));
    let id = b.cookies["warden_session"].clone();
    assert_ne!(id, "planted-by-attacker-0123456789");
    assert!(id.len() >= 43);
    // The planted value is no session.
    let mut attacker = Browser::new(&s);
    attacker.cookies.insert("warden_session".into(), "planted-by-attacker-0123456789".into());
    let q = answer(&location(&attacker.get(&authorize_url(&s, &client_id, &[("prompt", "none")])).await));
    assert_eq!(q["error"], "login_required");
}

/// RFC 9449 §10: `dpop_jkt` at the authorization endpoint binds the code to that key (the
/// token endpoint then wants a proof made with it: rfc6749_authorization_code.rs); a value
/// that is not a thumbprint is `invalid_request`.
#[tokio::test]
async fn dpop_jkt_binds_the_code_made_at_the_end_of_the_sign_in() {
    let s = TestServer::start().await;
    user(&s, "jane").await;
    let client_id = web_client(&s, json!({"first_party": true})).await;
    let jkt = crate::support::code_flow::DpopKey::new().thumbprint();
    let mut b = Browser::new(&s);
    let (html, _) = open_login(&mut b, &s, &client_id, &[("dpop_jkt", &jkt)]).await;
    let q = answer(&location(&submit_login(&mut b, &html, "jane", PASSWORD).await));
    assert_eq!(stored_code(&s, &q["code"]).await.dpop_jkt.as_deref(), Some(jkt.as_str()));
    let q = answer(&location(&b.get(&authorize_url(&s, &client_id, &[])).await));
    assert_eq!(stored_code(&s, &q["code"]).await.dpop_jkt, None, "no dpop_jkt, no binding");
    let q = answer(&location(&b.get(&authorize_url(&s, &client_id, &[("dpop_jkt", "not-a-thumbprint")])).await));
    assert_eq!(q["error"], "invalid_request");
}

/// RFC 8707 §2: the `resource` values of the authorization request are what the code
/// carries, each once, in request order (the token endpoint narrows among them).
#[tokio::test]
async fn the_code_carries_the_requested_resources_once_each() {
    let s = TestServer::start().await;
    user(&s, "kim").await;
    let client_id = web_client(&s, json!({"first_party": true, "audience": ["https://a.example", "https://b.example"]})).await;
    let mut b = Browser::new(&s);
    let (html, _) = open_login(&mut b, &s, &client_id, &[("resource", "https://b.example")]).await;
    let q = answer(&location(&submit_login(&mut b, &html, "kim", PASSWORD).await));
    assert_eq!(stored_code(&s, &q["code"]).await.resource, ["https://b.example"]);
    let both = [("resource", "https://b.example"), ("resource", "https://a.example"), ("resource", "https://b.example")];
    let q = answer(&location(&b.get(&authorize_url(&s, &client_id, &both)).await));
    assert_eq!(stored_code(&s, &q["code"]).await.resource, ["https://b.example", "https://a.example"]);
}

/// An issuer with a path (one provider per tenant behind a proxy): the sign-in pages, their
/// form and their stylesheet live under that path, and sign-in completes there.
#[tokio::test]
async fn sign_in_works_under_an_issuer_with_a_path() {
    let s = TestServer::start_with(|c| c.oauth.issuer = "http://127.0.0.1:1/tenant-a".into()).await;
    assert!(s.issuer.ends_with("/tenant-a"), "{}", s.issuer);
    user(&s, "tess").await;
    let client_id = web_client(&s, json!({"first_party": true})).await;
    let mut b = Browser::new(&s);
    let (html, page_url) = open_login(&mut b, &s, &client_id, &[]).await;
    assert!(page_url.starts_with("/tenant-a/interaction/"), "{page_url}");
    assert!(form_action(&html).starts_with("/tenant-a/interaction/"), "{html}");
    assert!(html.replace("&#x2f;", "/").contains("href=\"/tenant-a/assets/warden.css\""), "the stylesheet under the issuer: {html}");
    let q = answer(&location(&submit_login(&mut b, &html, "tess", PASSWORD).await));
    assert!(q.contains_key("code"), "{q:?}");
    assert_eq!(q["iss"], s.issuer);
}

/// OIDC Core §3.1.2.1: `select_account` is a known prompt value; `none` goes with no other.
#[tokio::test]
async fn prompt_none_goes_alone_and_select_account_is_known() {
    let s = TestServer::start().await;
    let client_id = web_client(&s, json!({})).await;
    let mut b = Browser::new(&s);
    for bad in ["none login", "none consent", "none select_account", "login none"] {
        let q = answer(&location(&b.get(&authorize_url(&s, &client_id, &[("prompt", bad)])).await));
        assert_eq!(q["error"], "invalid_request", "prompt={bad}");
    }
    let resp = b.get(&authorize_url(&s, &client_id, &[("prompt", "select_account")])).await;
    assert!(location(&resp).starts_with("/interaction/"), "prompt=select_account shows the sign-in page");
}

/// A session ends on the server after `session_lifetime`, whatever the browser does with the
/// cookie's `Max-Age`: a copied cookie no longer signs anyone in.
#[tokio::test]
async fn a_session_ends_after_its_lifetime_even_if_the_cookie_is_kept() {
    let s = TestServer::start_with(|c| c.oauth.session_lifetime = std::time::Duration::from_secs(1)).await;
    user(&s, "iris").await;
    let client_id = web_client(&s, json!({"first_party": true})).await;
    let mut b = Browser::new(&s);
    let (html, _) = open_login(&mut b, &s, &client_id, &[]).await;
    let resp = submit_login(&mut b, &html, "iris", PASSWORD).await;
    let cookie = resp.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).find(|c| c.starts_with("warden_session=")).unwrap().to_owned();
    assert!(cookie.ends_with("Max-Age=1"), "{cookie}");
    answer(&location(&resp));
    assert!(answer(&location(&b.get(&authorize_url(&s, &client_id, &[("prompt", "none")])).await)).contains_key("code"));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let q = answer(&location(&b.get(&authorize_url(&s, &client_id, &[("prompt", "none")])).await));
    assert_eq!(q["error"], "login_required", "the browser still sends {:?}", b.cookies.get("warden_session"));
}

/// An unfinished sign-in waits 15 minutes for the user, and no longer; a consent is
/// remembered for a year, and then asked again.
#[tokio::test]
async fn a_sign_in_waits_fifteen_minutes_and_a_consent_is_remembered_for_a_year() {
    let s = TestServer::start().await;
    let alice = user(&s, "alice").await;
    let client_id = web_client(&s, json!({})).await;
    let mut b = Browser::new(&s);
    let (html, page_url) = open_login(&mut b, &s, &client_id, &[]).await;
    let interaction = sha256_b64url(page_url.split('?').next().unwrap().rsplit('/').next().unwrap().as_bytes());
    let now = warden::model::unix_now();
    assert!(s.holds(ArtifactKind::Interaction, &interaction, now + 14 * 60).await);
    assert!(!s.holds(ArtifactKind::Interaction, &interaction, now + 15 * 60 + 2).await, "an interaction expires after 15 minutes");

    let consent_url = location(&submit_login(&mut b, &html, "alice", PASSWORD).await);
    let consent_page = b.get(&consent_url).await.text().await.unwrap();
    let csrf = input(&consent_page, "csrf");
    let form = [("csrf", csrf.as_str()), ("decision", "allow")];
    let resp = b.post(&form_action(&consent_page), &form).await;
    assert!(answer(&location(&resp)).contains_key("code"));
    // The interaction ended with its answer: the same form again gets a page, not a second code.
    let again = b.post(&form_action(&consent_page), &form).await;
    assert_eq!(again.status(), 400);
    assert!(again.headers().get("location").is_none());
    assert!(again.text().await.unwrap().contains("expired"));
    let consent = format!("{}:{client_id}", alice.id.as_str());
    let year = 365 * 24 * 3600;
    assert!(s.holds(ArtifactKind::Consent, &consent, now + year - 60).await);
    assert!(!s.holds(ArtifactKind::Consent, &consent, now + year + 60).await, "a consent expires after a year");
}

/// `prompt=login` and `max_age` force a new login (OIDC Core §3.1.2.1) and a newer
/// `auth_time`; a disabled user's session no longer counts.
#[tokio::test]
async fn prompt_login_and_max_age_force_a_new_login_and_disabling_ends_silent_sign_in() {
    let s = TestServer::start().await;
    user(&s, "gina").await;
    let client_id = web_client(&s, json!({"first_party": true})).await;
    let mut b = Browser::new(&s);
    let (html, _) = open_login(&mut b, &s, &client_id, &[]).await;
    let first = stored_code(&s, &answer(&location(&submit_login(&mut b, &html, "gina", PASSWORD).await))["code"]).await;

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // A session younger than max_age signs in silently; an older one must sign in again.
    let fresh = answer(&location(&b.get(&authorize_url(&s, &client_id, &[("max_age", "3600"), ("prompt", "none")])).await));
    assert!(fresh.contains_key("code"), "{fresh:?}");
    let stale = answer(&location(&b.get(&authorize_url(&s, &client_id, &[("max_age", "1"), ("prompt", "none")])).await));
    assert_eq!(stale["error"], "login_required", "the session is 2 s old");
    for extra in [("prompt", "login"), ("max_age", "0")] {
        let (html, _) = open_login(&mut b, &s, &client_id, &[extra]).await;
        assert!(html.contains("Sign in"), "{extra:?} shows the login page");
        let again = stored_code(&s, &answer(&location(&submit_login(&mut b, &html, "gina", PASSWORD).await))["code"]).await;
        assert!(again.auth_time > first.auth_time, "{extra:?}: auth_time moves");
    }
    users::set_disabled(&s.store, "gina", true).await.unwrap();
    let q = answer(&location(&b.get(&authorize_url(&s, &client_id, &[("prompt", "none")])).await));
    assert_eq!(q["error"], "login_required");
}

/// Guessing is throttled per (username, address) — also the right password, once blocked —
/// with a 429 page and Retry-After; another address is not locked out.
#[tokio::test]
async fn login_brute_force_gets_429_and_does_not_lock_out_others() {
    let s = TestServer::start().await;
    user(&s, "hank").await;
    let client_id = web_client(&s, json!({"first_party": true})).await;
    let mut b = Browser::new(&s);
    let (html, _) = open_login(&mut b, &s, &client_id, &[]).await;
    let mut statuses = vec![];
    let mut took = vec![];
    for i in 0..11 {
        let t = std::time::Instant::now();
        statuses.push(submit_login(&mut b, &html, "hank", &format!("guess number {i}")).await.status().as_u16());
        took.push(t.elapsed());
    }
    // Growing delays from the 4th failure: the 7th waits at least a second.
    assert!(took[6] >= std::time::Duration::from_secs(1), "{took:?}");
    assert_eq!(&statuses[..10], &[200; 10]);
    assert_eq!(statuses[10], 429);
    let resp = submit_login(&mut b, &html, "hank", PASSWORD).await;
    assert_eq!(resp.status(), 429, "blocked attempts are not even checked");
    assert!(resp.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 0);
    assert!(resp.text().await.unwrap().contains("Too many sign-in attempts"));
    // Behind a trusted proxy another address is a different client: hank signs in from there.
    drop(s);
    let s = TestServer::start_with(|c| {
        c.trusted_proxies = warden::http::client_ip::TrustedProxies::parse(&["127.0.0.0/8".into()]).unwrap();
    })
    .await;
    user(&s, "hank").await;
    let client_id = web_client(&s, json!({"first_party": true})).await;
    let mut attacker = Browser::new(&s);
    attacker.http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers([("x-forwarded-for".parse().unwrap(), "203.0.113.9".parse().unwrap())].into_iter().collect())
        .build()
        .unwrap();
    let (html, _) = open_login(&mut attacker, &s, &client_id, &[]).await;
    for i in 0..12 {
        submit_login(&mut attacker, &html, "hank", &format!("guess {i}")).await;
    }
    let mut owner = Browser::new(&s);
    let (html, _) = open_login(&mut owner, &s, &client_id, &[]).await;
    assert!(answer(&location(&submit_login(&mut owner, &html, "hank", PASSWORD).await)).contains_key("code"));
}

/// RFC 9700 §4.7, OIDC Core §3.1.2.1: every page refuses framing and runs no foreign script.
#[tokio::test]
async fn login_and_consent_pages_refuse_framing() {
    let s = TestServer::start().await;
    user(&s, "ivy").await;
    let client_id = web_client(&s, json!({})).await;
    let mut b = Browser::new(&s);
    let resp = b.get(&authorize_url(&s, &client_id, &[])).await;
    let page = location(&resp);
    let resp = b.get(&page).await;
    let h = resp.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
    // Forms post to us, and may lead on to the client: browsers check form-action on the
    // redirect that follows the submission (Chromium blocks the 303 to the client without it).
    assert!(csp.contains("form-action 'self' https://app.example;"), "{csp}");
    assert_eq!(h["cache-control"], "no-store");
    let csrf_cookie = h.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).find(|c| c.starts_with("warden_csrf=")).unwrap();
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"));
    // It outlives a login page left open for a while (a day), so its form still submits.
    assert!(csrf_cookie.contains("Max-Age=86400"), "{csrf_cookie}");
    // An interaction id that does not exist (or expired) is a page, not a crash.
    let resp = b.get(&format!("{}/interaction/nope", path_of(&s.url("")))).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("expired"));
}

/// An ID token signed with the server's own RS256 key for `sub` and `aud`, expired an hour
/// ago (hints are accepted after expiry).
pub(crate) async fn hint(s: &TestServer, sub: &str, aud: &str) -> String {
    let now = warden::model::unix_now();
    s.sign_with_own_key(warden::jose::Alg::RS256, "JWT", &json!({"iss": s.issuer, "sub": sub, "aud": aud, "iat": now - 7200, "exp": now - 3600})).await
}

/// OIDC Core §3.1.2.1 `id_token_hint`: it must be ours and for this client; a session of
/// another user than the hint's does not count (prompt=none: login_required).
#[tokio::test]
async fn an_id_token_hint_must_be_ours_and_name_the_signed_in_user() {
    let s = TestServer::start().await;
    let alice = user(&s, "alice").await;
    let client_id = web_client(&s, json!({"first_party": true})).await;
    let (other, _) = s.client(json!({"grant_types": ["authorization_code"], "redirect_uris": [CB], "scope": "openid"})).await;
    let mut b = Browser::new(&s);
    let (html, _) = open_login(&mut b, &s, &client_id, &[]).await;
    answer(&location(&submit_login(&mut b, &html, "alice", PASSWORD).await));

    let for_alice = hint(&s, alice.id.as_str(), &client_id).await;
    let q = answer(&location(&b.get(&authorize_url(&s, &client_id, &[("prompt", "none"), ("id_token_hint", &for_alice)])).await));
    assert!(q.contains_key("code"), "{q:?}");
    let for_bob = hint(&s, "someone-else", &client_id).await;
    let q = answer(&location(&b.get(&authorize_url(&s, &client_id, &[("prompt", "none"), ("id_token_hint", &for_bob)])).await));
    assert_eq!(q["error"], "login_required");
    for bad in [hint(&s, alice.id.as_str(), &other).await, "not.a.jwt".to_owned()] {
        let q = answer(&location(&b.get(&authorize_url(&s, &client_id, &[("id_token_hint", &bad)])).await));
        assert_eq!(q["error"], "invalid_request");
    }
}
