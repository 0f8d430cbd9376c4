//! The legacy grants (RFC 9700 §2.1.2 implicit, §2.4 resource-owner password): they exist only
//! for clients an operator registers for them with the CLI; dynamic registration refuses them
//! and every other client gets `unauthorized_client` / `unsupported_response_type`.
//!
//! - implicit (OIDC Core §3.2): `id_token` and `id_token token`, `nonce` required, fragment
//!   or form_post only (OAuth 2.0 Multiple Response Type Encoding Practices §5), `at_hash`
//!   with an access token (§3.2.2.10), scope claims in the ID token when it comes alone (§5.4);
//! - password (RFC 6749 §4.3): confidential client, the login page's throttled check,
//!   `invalid_grant` with one message for every bad credential, 429 once throttled.

use crate::blackbox::{json_out, warden};
use crate::oauth::oidc_login_consent::{CB, PASSWORD, submit_login, user, web_client};
use crate::support::browser::{Browser, form_action, input, location};
use crate::support::code_flow::{expected_at_hash, verify_id_token};
use crate::support::{TestServer, assert_oauth_error, jwt_parts};
use serde_json::{Value, json};
use std::collections::HashMap;

/// An operator's implicit client (what `warden client create --grant-type implicit` makes).
async fn implicit_client(s: &TestServer, extra: Value) -> String {
    let mut spec = json!({
        "grant_types": ["implicit"],
        "redirect_uris": [CB],
        "scope": "openid email read",
        "token_endpoint_auth_method": "none",
        "client_name": "Legacy SPA",
        "first_party": true,
    });
    spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    s.client(spec).await.0
}

/// An operator's password-grant client.
async fn password_client(s: &TestServer) -> (String, String) {
    s.client(json!({"grant_types": ["password"], "scope": "openid email read", "client_name": "Old CLI"})).await
}

/// An implicit authorization request (no PKCE: there is no code).
fn implicit_url(s: &TestServer, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("client_id", client_id),
        ("redirect_uri", CB),
        ("response_type", "id_token token"),
        ("scope", "openid email read"),
        ("state", "st-1"),
        ("nonce", "n-legacy"),
    ];
    params.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    params.extend(extra.iter().filter(|(_, v)| !v.is_empty()));
    let mut url = url::Url::parse(&s.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// The parameters of a redirect to the client that must carry them in the fragment, never in
/// the query.
fn fragment(loc: &str) -> HashMap<String, String> {
    let u = url::Url::parse(loc).unwrap();
    assert!(loc.starts_with(&format!("{CB}#")), "{loc}");
    assert_eq!(u.query(), None, "nothing in the query: {loc}");
    form_urlencoded::parse(u.fragment().unwrap().as_bytes()).into_owned().collect()
}

/// Signs in through the real login page; returns the redirect to the client.
async fn sign_in(b: &mut Browser, url: &str) -> String {
    let resp = b.get(url).await;
    let page = location(&resp);
    let html = b.get(&page).await.text().await.unwrap();
    location(&submit_login(b, &html, "alice", PASSWORD).await)
}

/// RFC 9700 §2.1.2, §2.4: dynamic registration never gets the legacy grants or the implicit
/// response types, and says who can enable them.
#[tokio::test]
async fn dynamic_registration_refuses_the_legacy_grants() {
    let s = TestServer::start_with(|c| c.oauth.registration.mode = warden::oauth::RegistrationMode::Open).await;
    for body in [
        json!({"grant_types": ["implicit"], "redirect_uris": [CB]}),
        json!({"grant_types": ["implicit"], "redirect_uris": [CB], "response_types": ["id_token"]}),
        json!({"grant_types": ["password"]}),
        json!({"grant_types": ["authorization_code", "password"], "redirect_uris": [CB]}),
    ] {
        let resp = s.http.post(s.url("/register")).json(&body).send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(status, 400, "{body}");
        assert_eq!(v["error"], "invalid_client_metadata", "{body}");
        let why = v["error_description"].as_str().unwrap();
        assert!(why.contains("RFC 9700") && why.contains("warden client create"), "{why}");
    }
    // The id_token response types alone (with the code grant) disagree with the grants.
    let body = json!({"grant_types": ["authorization_code"], "redirect_uris": [CB], "response_types": ["code", "id_token"]});
    let resp = s.http.post(s.url("/register")).json(&body).send().await.unwrap();
    assert_oauth_error(resp, 400, "invalid_client_metadata").await;
    assert!(s.store.catalog.clients().await.unwrap().is_empty());
}

/// The operator enables them per client with the CLI.
#[test]
fn the_cli_registers_implicit_and_password_clients() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = json_out(&warden(d, &["client", "create", "--grant-type", "implicit", "--redirect-uri", CB, "--scope", "openid", "--json"]));
    assert_eq!(c["grant_types"], json!(["implicit"]));
    assert_eq!(c["response_types"], json!(["id_token", "id_token token"]));
    let c = json_out(&warden(d, &["client", "create", "--grant-type", "implicit", "--response-type", "token id_token", "--redirect-uri", CB, "--json"]));
    assert_eq!(c["response_types"], json!(["id_token token"]), "stored in canonical form");
    let c = json_out(&warden(d, &["client", "create", "--grant-type", "password", "--scope", "openid", "--json"]));
    assert_eq!(c["grant_types"], json!(["password"]));
    assert!(c["client_secret"].is_string(), "a confidential client");
    let o = warden(d, &["client", "create", "--grant-type", "password", "--auth-method", "none"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("public client"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// OIDC Core §3.2.2.5, §3.2.2.10: `id_token token` answers in the fragment with the ID token
/// (nonce, at_hash), the access token and its type and lifetime, `state` and `iss`; the
/// access token is the user's and userinfo accepts it.
#[tokio::test]
async fn implicit_id_token_token_comes_back_in_the_fragment_with_nonce_and_at_hash() {
    let s = TestServer::start().await;
    let alice = user(&s, "alice").await;
    let id = implicit_client(&s, json!({})).await;
    let mut b = Browser::new(&s);
    let f = fragment(&sign_in(&mut b, &implicit_url(&s, &id, &[])).await);
    assert_eq!(f["state"], "st-1");
    assert_eq!(f["iss"], s.issuer);
    assert_eq!(f["token_type"], "Bearer");
    assert_eq!(f["expires_in"], "600");
    assert_eq!(f["scope"], "openid email read");
    assert!(!f.contains_key("code"), "no code in the implicit flow");
    let access_token = &f["access_token"];
    let (alg, c) = verify_id_token(&s, &f["id_token"], &id).await;
    assert_eq!(c["sub"], alice.id.as_str());
    assert_eq!(c["nonce"], "n-legacy");
    assert_eq!(c["at_hash"], expected_at_hash(alg, access_token));
    assert!(c["sid"].is_string() && c["auth_time"].is_i64());
    assert!(c.get("email").is_none(), "§5.4: with an access token, scope claims go to userinfo");
    let at = jwt_parts(access_token).1;
    assert_eq!(at["sub"], alice.id.as_str());
    assert_eq!(at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(), 600, "exp is iat + expires_in");
    assert_eq!(at["client_id"], id);
    let info: Value = s.http.get(s.url("/userinfo")).bearer_auth(access_token).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["sub"], alice.id.as_str());
    assert_eq!(info["email"], "alice@example.com");
}

/// RFC 8707, RFC 9068 §2.2: the implicit access token is for the requested `resource`, else
/// the client's registered audiences, else the provider's default audience.
#[tokio::test]
async fn implicit_access_tokens_are_for_the_requested_or_registered_audience() {
    let s = TestServer::start().await;
    user(&s, "alice").await;
    let plain = implicit_client(&s, json!({})).await;
    let apis = implicit_client(&s, json!({"audience": ["https://a.example", "https://b.example"]})).await;
    let mut b = Browser::new(&s);
    let aud = |loc: &str| {
        let f = fragment(loc);
        match jwt_parts(&f["access_token"]).1["aud"].clone() {
            Value::Array(a) => a,
            one => vec![one],
        }
    };
    assert_eq!(aud(&sign_in(&mut b, &implicit_url(&s, &plain, &[])).await), [json!(s.cfg.oauth.default_audience)]);
    // Signed in now: the next requests come straight back.
    let all = location(&b.get(&implicit_url(&s, &apis, &[])).await);
    assert_eq!(aud(&all), [json!("https://a.example"), json!("https://b.example")]);
    let one = location(&b.get(&implicit_url(&s, &apis, &[("resource", "https://b.example")])).await);
    assert_eq!(aud(&one), [json!("https://b.example")]);
}

/// `id_token` alone, through the consent page: no access token, no at_hash, and the scopes'
/// claims in the ID token (§5.4); `form_post` works too; values of `response_type` in any
/// order.
#[tokio::test]
async fn implicit_id_token_alone_carries_the_scope_claims_and_form_post_works() {
    let s = TestServer::start().await;
    user(&s, "alice").await;
    let id = implicit_client(&s, json!({"first_party": false})).await;
    let mut b = Browser::new(&s);
    let resp = b.get(&implicit_url(&s, &id, &[("response_type", "id_token")])).await;
    let page = location(&resp);
    let html = b.get(&page).await.text().await.unwrap();
    let resp = submit_login(&mut b, &html, "alice", PASSWORD).await;
    let consent = b.get(&location(&resp)).await.text().await.unwrap();
    assert!(consent.contains("Legacy SPA"), "{consent}");
    let resp = b.post(&form_action(&consent), &[("csrf", &input(&consent, "csrf")), ("decision", "allow")]).await;
    let f = fragment(&location(&resp));
    assert!(!f.contains_key("access_token") && !f.contains_key("token_type"), "{f:?}");
    let (_, c) = verify_id_token(&s, &f["id_token"], &id).await;
    assert_eq!(c["nonce"], "n-legacy");
    assert!(c.get("at_hash").is_none(), "no access token, no at_hash");
    assert_eq!(c["email"], "alice@example.com", "no userinfo to ask: the claims come in the ID token");

    // Signed in and consented: form_post answers at once, with an auto-submitted form.
    let resp = b.get(&implicit_url(&s, &id, &[("response_type", "token id_token"), ("response_mode", "form_post"), ("nonce", "n-2")])).await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert_eq!(form_action(&html), CB);
    let (alg, c) = verify_id_token(&s, &input(&html, "id_token"), &id).await;
    assert_eq!(c["nonce"], "n-2");
    assert_eq!(c["at_hash"], expected_at_hash(alg, &input(&html, "access_token")));
    assert_eq!(input(&html, "state"), "st-1");
}

/// Multiple Response Types §5 (never the query), OIDC Core §3.2.2.1 (nonce and openid
/// required): refused, and the error itself goes in the fragment.
#[tokio::test]
async fn implicit_refuses_the_query_mode_a_missing_nonce_and_a_missing_openid() {
    let s = TestServer::start().await;
    let id = implicit_client(&s, json!({})).await;
    let mut b = Browser::new(&s);
    for (extra, code, says) in [
        (&[("response_mode", "query")][..], "invalid_request", "response_mode=query"),
        (&[("nonce", "")][..], "invalid_request", "nonce"),
        (&[("scope", "email")][..], "invalid_scope", "openid"),
        (&[("response_type", "id_token"), ("dpop_jkt", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")][..], "invalid_request", "dpop_jkt"),
    ] {
        let resp = b.get(&implicit_url(&s, &id, extra)).await;
        let f = fragment(&location(&resp));
        assert_eq!(f["error"], code, "{extra:?}");
        assert!(f["error_description"].contains(says), "{extra:?}: {}", f["error_description"]);
        assert_eq!(f["state"], "st-1");
        assert_eq!(f["iss"], s.issuer);
        assert!(!f.contains_key("id_token"));
    }
    // An implicit-only client cannot ask for a code.
    let resp = b.get(&implicit_url(&s, &id, &[("response_type", "code")])).await;
    let loc = location(&resp);
    let q: HashMap<String, String> = url::Url::parse(&loc).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q["error"], "unauthorized_client", "{loc}");
}

/// RFC 6749 §4.1.2.1 / §4.2.2.1: the server supports the id_token types, so a client not
/// registered for them gets `unauthorized_client`; a type the server does not serve at all
/// (`token` alone, hybrid) is `unsupported_response_type`.
#[tokio::test]
async fn other_clients_get_unauthorized_client_or_unsupported_response_type() {
    let s = TestServer::start().await;
    let code_client = web_client(&s, json!({})).await;
    let only_id_token = implicit_client(&s, json!({"response_types": ["id_token"]})).await;
    let mut b = Browser::new(&s);
    for (id, rt) in [(&code_client, "id_token"), (&code_client, "id_token token"), (&only_id_token, "id_token token")] {
        let resp = b.get(&implicit_url(&s, id, &[("response_type", rt)])).await;
        let f = fragment(&location(&resp));
        assert_eq!(f["error"], "unauthorized_client", "{rt}");
        assert_eq!(f["state"], "st-1");
    }
    for rt in ["token", "code id_token", "code token"] {
        let resp = b.get(&implicit_url(&s, &only_id_token, &[("response_type", rt)])).await;
        let loc = location(&resp);
        let q: HashMap<String, String> = url::Url::parse(&loc).unwrap().query_pairs().into_owned().collect();
        assert_eq!(q["error"], "unsupported_response_type", "{rt}: {loc}");
    }
    assert!(b.cookies.keys().all(|k| !k.contains("session")), "nobody signed in");
}

/// RFC 6749 §4.3: the password grant for its client: access token and ID token for the user;
/// userinfo accepts the token.
#[tokio::test]
async fn the_password_grant_issues_the_users_tokens_to_its_client() {
    let s = TestServer::start().await;
    let alice = user(&s, "alice").await;
    let (id, secret) = password_client(&s).await;
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "password"), ("username", "Alice"), ("password", PASSWORD), ("scope", "openid email")]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid email");
    let at = jwt_parts(body["access_token"].as_str().unwrap()).1;
    assert_eq!(at["sub"], alice.id.as_str());
    assert_eq!(at["client_id"], id);
    assert_eq!(at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(), body["expires_in"].as_i64().unwrap(), "exp is iat + expires_in");
    assert!((at["iat"].as_i64().unwrap() - warden::model::unix_now()).abs() <= 5);
    assert!(at["auth_time"].is_i64());
    let (alg, c) = verify_id_token(&s, body["id_token"].as_str().unwrap(), &id).await;
    assert_eq!(c["sub"], alice.id.as_str());
    assert_eq!(c["amr"], json!(["pwd"]));
    assert_eq!(c["at_hash"], expected_at_hash(alg, body["access_token"].as_str().unwrap()));
    assert!(c.get("nonce").is_none() && c.get("sid").is_none());
    let info: Value = s.http.get(s.url("/userinfo")).bearer_auth(body["access_token"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["sub"], alice.id.as_str());

    // Without openid: no ID token. A scope beyond the registered ones: invalid_scope.
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD), ("scope", "read")]).await;
    let body: Value = resp.json().await.unwrap();
    assert!(body["access_token"].is_string() && body.get("id_token").is_none(), "{body}");
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD), ("scope", "admin")]).await;
    assert_oauth_error(resp, 400, "invalid_scope").await;
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "password"), ("username", "alice")]).await;
    assert_oauth_error(resp, 400, "invalid_request").await;
    // Client authentication is required.
    let resp = s.post_form("/token", None, &[("grant_type", "password"), ("client_id", &id), ("username", "alice"), ("password", PASSWORD)]).await;
    assert_oauth_error(resp, 401, "invalid_client").await;
}

/// The longest password the policy allows (256 characters of 4 bytes: 1024 bytes) signs in
/// through the password grant; a longer credential is `invalid_grant` like any wrong one.
#[tokio::test]
async fn the_longest_password_the_policy_allows_works_with_the_password_grant() {
    let s = TestServer::start().await;
    let longest = "\u{1D11E}".repeat(warden::secrets::password::MAX_CHARS);
    assert_eq!(longest.len(), 1024);
    let claims = warden::model::Claims::default();
    warden::oauth::users::create(&s.store, "lena", claims, Some(warden::secrets::password::Password::new(longest.clone()))).await.unwrap();
    let (id, secret) = password_client(&s).await;
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "password"), ("username", "lena"), ("password", &longest)]).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let longer = format!("{longest}x");
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "password"), ("username", "lena"), ("password", &longer)]).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
}

/// Only the clients registered for it: every other client, confidential or code-flow, gets
/// `unauthorized_client` (RFC 6749 §5.2), even with the right password.
#[tokio::test]
async fn the_password_grant_is_unauthorized_client_for_other_clients() {
    let s = TestServer::start().await;
    user(&s, "alice").await;
    let (cc, cc_secret) = s.cc_client().await;
    let (web, web_secret) = s.client(json!({"grant_types": ["authorization_code"], "redirect_uris": [CB], "scope": "openid"})).await;
    for (id, secret) in [(&cc, &cc_secret), (&web, &web_secret)] {
        let resp = s.post_form("/token", Some((id, secret)), &[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD)]).await;
        assert_oauth_error(resp, 400, "unauthorized_client").await;
    }
}

/// One answer for an unknown user, a wrong password and a disabled user; the login page's
/// throttle per (username, address): after 10 failures, 429 with Retry-After, and then even
/// the right password is not tried — while another account from the same address still
/// signs in (no lockout of the address by one account's failures).
#[tokio::test]
async fn bad_credentials_are_invalid_grant_and_repeated_failures_are_throttled() {
    let s = TestServer::start().await;
    user(&s, "alice").await;
    user(&s, "bob").await;
    user(&s, "carol").await;
    warden::oauth::users::set_disabled(&s.store, "carol", true).await.unwrap();
    let (id, secret) = password_client(&s).await;
    let attempt = |username: &'static str, password: &'static str| {
        let (id, secret) = (id.clone(), secret.clone());
        let s = &s;
        async move { s.post_form("/token", Some((&id, &secret)), &[("grant_type", "password"), ("username", username), ("password", password)]).await }
    };
    let mut descriptions = Vec::new();
    for (u, pw) in [("alice", "wrong password!"), ("nobody", PASSWORD), ("carol", PASSWORD)] {
        let resp = attempt(u, pw).await;
        assert_eq!(resp.status(), 400);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"], "invalid_grant");
        descriptions.push(v["error_description"].clone());
    }
    assert_eq!(descriptions[0], descriptions[1], "the same words for an unknown user and a wrong password");
    assert_eq!(descriptions[0], descriptions[2], "and for a disabled user");
    for _ in 0..9 {
        assert_oauth_error(attempt("alice", "wrong password!").await, 400, "invalid_grant").await;
    }
    // The eleventh failure for alice at this address goes over the allowance.
    let h = assert_oauth_error(attempt("alice", "wrong password!").await, 429, "temporarily_unavailable").await;
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");
    assert_oauth_error(attempt("alice", PASSWORD).await, 429, "temporarily_unavailable").await;
    let resp = attempt("bob", PASSWORD).await;
    assert_eq!(resp.status(), 200, "another account is not locked out");
}
