//! RFC 6749 §4.1.3 (+ RFC 7636 PKCE, RFC 8707, RFC 9449 §10, RFC 9700 §4.2.1): redeeming an
//! authorization code at the token endpoint. Codes are made as the authorization endpoint
//! stores them (`support::code_flow`).

use crate::support::code_flow::{
    Auth, DpopKey, REDIRECT, ada, grant, now, pkce, public_client, redeem, store_code, store_code_expiring, web_client,
};
use crate::support::{PgSchema, TestServer, assert_oauth_error, jwt_parts, provider_nodes_over_postgres};
use serde_json::{Value, json};

/// §4.1.4: a confidential client gets a user's RFC 9068 access token; no ID token without
/// `openid`.
#[tokio::test]
async fn a_confidential_client_redeems_its_code_for_the_users_token() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let g = grant(&id, &user, "api profile", &challenge);
    let code = store_code(&s, &g).await;
    let resp = redeem(&s, Auth::Basic(&id, &secret), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "api profile");
    assert_eq!(body["expires_in"], 600);
    assert!(body.get("id_token").is_none(), "no openid, no ID token: {body}");
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    let (header, claims) = jwt_parts(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], user.id.0);
    assert_eq!(claims["client_id"], id);
    assert_eq!(claims["scope"], "api profile");
    assert_eq!(claims["auth_time"], g.auth_time);
    assert_eq!(claims["aud"], s.issuer, "the default audience");
    assert_eq!(claims["iss"], s.issuer);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 22));
    // The token lives exactly the lifetime it announces, from now.
    let now = warden::model::unix_now();
    let iat = claims["iat"].as_i64().unwrap();
    assert!((now - 5..=now).contains(&iat), "iat {iat} is now ({now})");
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 600, "exp = iat + expires_in");
    let info = s.introspect(&id, &secret, token).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], user.id.0);
    assert_eq!(info["auth_time"], g.auth_time);
}

/// §2.1, §3.2.1: a public client (`none`) authenticates by `client_id` alone.
#[tokio::test]
async fn a_public_client_redeems_its_code_with_its_client_id_alone() {
    let s = TestServer::start().await;
    let id = public_client(&s).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let code = store_code(&s, &grant(&id, &user, "openid", &challenge)).await;
    let resp = redeem(&s, Auth::Public(&id), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(jwt_parts(body["access_token"].as_str().unwrap()).1["client_id"], id);
    assert!(body["id_token"].is_string());
}

/// Public clients authenticate by id only for this grant: not for client credentials, nor
/// at introspection.
#[tokio::test]
async fn a_public_client_cannot_use_client_credentials_or_introspection() {
    let s = TestServer::start().await;
    let id = public_client(&s).await;
    let resp = s.post_form("/token", None, &[("grant_type", "client_credentials"), ("client_id", &id)]).await;
    let h = assert_oauth_error(resp, 401, "invalid_client").await;
    assert!(h.contains_key("www-authenticate"));
    let resp = s.post_form("/introspect", None, &[("token", "x"), ("client_id", &id)]).await;
    assert_oauth_error(resp, 401, "invalid_client").await;
}

/// A confidential client that sends only its `client_id` does not skip its secret.
#[tokio::test]
async fn a_confidential_client_cannot_skip_its_secret() {
    let s = TestServer::start().await;
    let (id, _secret) = web_client(&s, json!({})).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let code = store_code(&s, &grant(&id, &user, "openid", &challenge)).await;
    let resp = redeem(&s, Auth::Public(&id), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_oauth_error(resp, 401, "invalid_client").await;
    let resp = redeem(&s, Auth::Basic(&id, "wrong-secret"), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_oauth_error(resp, 401, "invalid_client").await;
}

/// §4.1.2, RFC 9700 §4.2.1: a second use of a code is `invalid_grant` and revokes the token
/// the first use issued; a third use stays refused.
#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_the_first_token() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let code = store_code(&s, &grant(&id, &user, "openid api", &challenge)).await;
    let first = redeem(&s, Auth::Basic(&id, &secret), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_eq!(first.status(), 200);
    let body: Value = first.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(s.introspect(&id, &secret, token).await["active"], true);
    for _ in 0..2 {
        let again = redeem(&s, Auth::Basic(&id, &secret), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
        assert_oauth_error(again, 400, "invalid_grant").await;
    }
    assert_eq!(s.introspect(&id, &secret, token).await, json!({"active": false}));
}

/// Unknown and expired codes are `invalid_grant`; a missing code is `invalid_request`.
#[tokio::test]
async fn unknown_expired_and_missing_codes_are_refused() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let auth = Auth::Basic(&id, &secret);
    let expired = store_code_expiring(&s, &grant(&id, &user, "openid", &challenge), now() - 1).await;
    let resp = redeem(&s, auth, &expired, Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    // A made-up code is refused while a real one is outstanding, and the real one still works.
    let live = store_code(&s, &grant(&id, &user, "openid", &challenge)).await;
    let resp = redeem(&s, auth, "no-such-code", Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    assert_eq!(redeem(&s, auth, &live, Some(REDIRECT), Some(&verifier), &[], None).await.status(), 200);
    let resp = redeem(&s, auth, &"x".repeat(5000), Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "authorization_code"), ("code_verifier", &verifier)]).await;
    assert_oauth_error(resp, 400, "invalid_request").await;
}

/// §4.1.3: a code issued to one client cannot be redeemed by another; and a client not
/// registered for the grant is `unauthorized_client`.
#[tokio::test]
async fn a_code_of_another_client_is_invalid_grant() {
    let s = TestServer::start().await;
    let (id, _) = web_client(&s, json!({})).await;
    let (other, other_secret) = web_client(&s, json!({})).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let code = store_code(&s, &grant(&id, &user, "openid", &challenge)).await;
    let resp = redeem(&s, Auth::Basic(&other, &other_secret), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    let (cc, cc_secret) = s.cc_client().await;
    let code = store_code(&s, &grant(&cc, &user, "openid", &challenge)).await;
    let resp = redeem(&s, Auth::Basic(&cc, &cc_secret), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_oauth_error(resp, 400, "unauthorized_client").await;
}

/// §4.1.3: `redirect_uri` must repeat the authorization request's; left out only when that
/// request named none, and then, if sent anyway, still identical.
#[tokio::test]
async fn redirect_uri_must_repeat_the_authorization_requests() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let user = ada(&s).await;
    let auth = Auth::Basic(&id, &secret);
    let (verifier, challenge) = pkce();
    for sent in [None, Some("https://app.example/cb/"), Some("https://app.example/cb?x=1"), Some("https://evil.example/cb")] {
        let code = store_code(&s, &grant(&id, &user, "openid", &challenge)).await;
        let resp = redeem(&s, auth, &code, sent, Some(&verifier), &[], None).await;
        assert_oauth_error(resp, 400, "invalid_grant").await;
    }
    let mut unnamed = grant(&id, &user, "openid", &challenge);
    unnamed.redirect_uri_sent = false;
    let code = store_code(&s, &unnamed).await;
    assert_eq!(redeem(&s, auth, &code, None, Some(&verifier), &[], None).await.status(), 200);
    let code = store_code(&s, &unnamed).await;
    assert_eq!(redeem(&s, auth, &code, Some(REDIRECT), Some(&verifier), &[], None).await.status(), 200);
    let code = store_code(&s, &unnamed).await;
    let resp = redeem(&s, auth, &code, Some("https://app.example/other"), Some(&verifier), &[], None).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
}

/// RFC 7636 §4.5, §4.6: the verifier is required, well-formed and the challenge's.
#[tokio::test]
async fn pkce_missing_wrong_or_malformed_verifiers_are_invalid_grant() {
    let s = TestServer::start().await;
    let id = public_client(&s).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let (other_verifier, _) = pkce();
    let plain = challenge.clone();
    let too_long = "a".repeat(129);
    let bad_char = format!("{}+", &verifier[..43]);
    for v in [None, Some(other_verifier.as_str()), Some(plain.as_str()), Some("short"), Some(too_long.as_str()), Some(bad_char.as_str())] {
        let code = store_code(&s, &grant(&id, &user, "openid", &challenge)).await;
        let resp = redeem(&s, Auth::Public(&id), &code, Some(REDIRECT), v, &[], None).await;
        assert_oauth_error(resp, 400, "invalid_grant").await;
    }
}

/// A user disabled or deleted after granting the code gets no token.
#[tokio::test]
async fn a_disabled_or_deleted_user_gets_no_token() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let code = store_code(&s, &grant(&id, &user, "openid", &challenge)).await;
    warden::oauth::users::set_disabled(&s.store, "ada", true).await.unwrap();
    let resp = redeem(&s, Auth::Basic(&id, &secret), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
    let code = store_code(&s, &grant(&id, &user, "openid", &challenge)).await;
    warden::oauth::users::delete(&s.store, "ada").await.unwrap();
    let resp = redeem(&s, Auth::Basic(&id, &secret), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_oauth_error(resp, 400, "invalid_grant").await;
}

/// RFC 9449 §10: a code bound to a DPoP key (`dpop_jkt`) needs a proof with that key; a
/// proof binds the access token (`cnf.jkt`, `token_type: DPoP`).
#[tokio::test]
async fn a_dpop_bound_code_needs_a_proof_with_its_key() {
    let s = TestServer::start().await;
    let id = public_client(&s).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let key = DpopKey::new();
    let mut g = grant(&id, &user, "openid", &challenge);
    g.dpop_jkt = Some(key.thumbprint());
    let url = s.url("/token");
    let code = store_code(&s, &g).await;
    let resp = redeem(&s, Auth::Public(&id), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    assert_oauth_error(resp, 400, "invalid_dpop_proof").await;
    let code = store_code(&s, &g).await;
    let stranger = DpopKey::new().proof("POST", &url, None);
    let resp = redeem(&s, Auth::Public(&id), &code, Some(REDIRECT), Some(&verifier), &[], Some(&stranger)).await;
    assert_oauth_error(resp, 400, "invalid_dpop_proof").await;
    let code = store_code(&s, &g).await;
    let proof = key.proof("POST", &url, None);
    let resp = redeem(&s, Auth::Public(&id), &code, Some(REDIRECT), Some(&verifier), &[], Some(&proof)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(jwt_parts(body["access_token"].as_str().unwrap()).1["cnf"], json!({"jkt": key.thumbprint()}));
}

/// RFC 8707 §2: `resource` at the token endpoint picks among the code's resources.
#[tokio::test]
async fn resource_picks_among_the_codes_resources() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({"audience": ["https://a.example", "https://b.example", "https://c.example"]})).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let auth = Auth::Basic(&id, &secret);
    let mut g = grant(&id, &user, "api", &challenge);
    g.resource = vec!["https://a.example".into(), "https://b.example".into()];
    let code = store_code(&s, &g).await;
    let resp = redeem(&s, auth, &code, Some(REDIRECT), Some(&verifier), &[("resource", "https://b.example")], None).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(jwt_parts(body["access_token"].as_str().unwrap()).1["aud"], "https://b.example");
    let code = store_code(&s, &g).await;
    let resp = redeem(&s, auth, &code, Some(REDIRECT), Some(&verifier), &[("resource", "https://c.example")], None).await;
    assert_oauth_error(resp, 400, "invalid_target").await;
    let code = store_code(&s, &g).await;
    let resp = redeem(&s, auth, &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(jwt_parts(body["access_token"].as_str().unwrap()).1["aud"], json!(["https://a.example", "https://b.example"]));
    // Several resources are all kept, each once.
    let code = store_code(&s, &g).await;
    let both = [("resource", "https://b.example"), ("resource", "https://a.example"), ("resource", "https://b.example")];
    let resp = redeem(&s, auth, &code, Some(REDIRECT), Some(&verifier), &both, None).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(jwt_parts(body["access_token"].as_str().unwrap()).1["aud"], json!(["https://b.example", "https://a.example"]));
    g.resource.clear();
    let code = store_code(&s, &g).await;
    let resp = redeem(&s, auth, &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(jwt_parts(body["access_token"].as_str().unwrap()).1["aud"], json!(["https://a.example", "https://b.example", "https://c.example"]), "the client's audiences");
}

/// Discovery lists the grant and the endpoints of the flow.
#[tokio::test]
async fn the_grant_and_its_endpoints_are_advertised() {
    let s = TestServer::start().await;
    let meta: Value = s.http.get(s.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(meta["grant_types_supported"].as_array().unwrap().contains(&json!("authorization_code")));
    assert_eq!(meta["userinfo_endpoint"], s.url("/userinfo"));
    assert_eq!(meta["authorization_endpoint"], s.url("/authorize"));
}

/// RFC 9700 §4.2.1 under concurrency: two nodes redeeming one code at the same moment — at
/// most one gets tokens, and whatever it got is revoked, whichever request the store saw
/// first (the replay may even win the race to the grant record: then nothing is issued).
#[tokio::test]
async fn a_code_redeemed_twice_at_once_on_two_nodes_leaves_no_live_token() {
    let a = TestServer::start().await;
    let b = a.another_node(|_| {}).await;
    race_two_nodes(&a, &b).await;
}

/// The same over one PostgreSQL database (skipped with a message without PostgreSQL).
#[tokio::test]
async fn a_code_redeemed_twice_at_once_over_postgres_leaves_no_live_token() {
    let Some(pg) = PgSchema::new("warden_codes").await else { return };
    let (a, b) = provider_nodes_over_postgres(&pg, |_| {}).await;
    race_two_nodes(&a, &b).await;
}

async fn race_two_nodes(a: &TestServer, b: &TestServer) {
    let (id, secret) = web_client(a, json!({})).await;
    let user = ada(a).await;
    for _ in 0..8 {
        let (verifier, challenge) = pkce();
        let code = store_code(a, &grant(&id, &user, "openid api", &challenge)).await;
        let (ra, rb) = tokio::join!(
            redeem(a, Auth::Basic(&id, &secret), &code, Some(REDIRECT), Some(&verifier), &[], None),
            redeem(b, Auth::Basic(&id, &secret), &code, Some(REDIRECT), Some(&verifier), &[], None),
        );
        let mut issued = Vec::new();
        for r in [ra, rb] {
            match r.status().as_u16() {
                200 => issued.push(r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()),
                _ => {
                    assert_oauth_error(r, 400, "invalid_grant").await;
                }
            }
        }
        assert!(issued.len() <= 1, "one code, one winner");
        for t in issued {
            assert_eq!(a.introspect(&id, &secret, &t).await, json!({"active": false}), "the winner's token is revoked");
            assert_eq!(b.introspect(&id, &secret, &t).await, json!({"active": false}));
        }
    }
}

/// The two halves together (RFC 6749 §4.1, OIDC Core §3.1): sign in and consent in a
/// browser, redeem the code the pages issued, check the ID token against the session, and
/// read userinfo with the access token.
#[tokio::test]
async fn the_code_the_sign_in_pages_issue_redeems_for_tokens_that_userinfo_accepts() {
    use crate::oauth::oidc_login_consent::{PASSWORD, answer, open_login, stored_code, submit_login, user, web_client as photo_app};
    use crate::support::browser::{Browser, form_action, input, location};
    use crate::support::code_flow::verify_id_token;
    let s = TestServer::start().await;
    let alice = user(&s, "alice").await;
    let client_id = photo_app(&s, json!({})).await;
    let mut b = Browser::new(&s);
    let (html, _) = open_login(&mut b, &s, &client_id, &[]).await;
    let consent = location(&submit_login(&mut b, &html, "alice", PASSWORD).await);
    let html = b.get(&consent).await.text().await.unwrap();
    let csrf = input(&html, "csrf");
    let q = answer(&location(&b.post(&form_action(&html), &[("csrf", &csrf), ("decision", "allow")]).await));
    let code = &q["code"];
    let grant = stored_code(&s, code).await;
    // Stored under its hash (a copy of the store holds no usable code), for 60 seconds.
    let key = warden::oauth::authorize::code::code_id(code);
    assert_ne!(&key, code);
    let codes = warden::store::ArtifactKind::AuthorizationCode;
    assert!(s.holds(codes, &key, now() + 58).await);
    assert!(!s.holds(codes, &key, now() + 61).await, "a code lives 60 seconds");
    assert!(!s.holds(codes, code, now()).await, "never under the code itself");
    // RFC 7636 Appendix B: the verifier of the pages' test challenge.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let resp = redeem(&s, Auth::Public(&client_id), code, Some(crate::oauth::oidc_login_consent::CB), Some(verifier), &[], None).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "openid email read");
    let (_, id) = verify_id_token(&s, body["id_token"].as_str().unwrap(), &client_id).await;
    assert_eq!(id["sub"], alice.id.0);
    assert_eq!(id["nonce"], "n-0S6");
    assert_eq!(id["sid"], grant.sid);
    assert_eq!(id["auth_time"], grant.auth_time);
    assert_eq!(id["amr"], json!(["pwd"]));
    let token = body["access_token"].as_str().unwrap();
    let info: Value = s.http.get(s.url("/userinfo")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(info, json!({"sub": alice.id.0, "email": "alice@example.com", "email_verified": false}));
    let again = redeem(&s, Auth::Public(&client_id), code, Some(crate::oauth::oidc_login_consent::CB), Some(verifier), &[], None).await;
    assert_oauth_error(again, 400, "invalid_grant").await;
    let resp = s.http.get(s.url("/userinfo")).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 401, "the replay revoked the first token");
}

/// Issue #5 item 5, in the code flow: a dynamically registered client's code is redeemed for
/// the issuer's audience only when the operator opted in.
#[tokio::test]
async fn a_dynamic_clients_code_gets_the_issuer_audience_only_if_the_operator_opts_in() {
    for opt_in in [false, true] {
        let s = TestServer::start_with(|c| {
            c.oauth.registration.mode = warden::oauth::RegistrationMode::Open;
            c.oauth.registration.issuer_audience = opt_in;
        })
        .await;
        let spec = json!({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code"], "scope": "openid profile"});
        let v: Value = s.http.post(s.url("/register")).json(&spec).send().await.unwrap().json().await.unwrap();
        let (id, secret) = (v["client_id"].as_str().unwrap_or_else(|| panic!("registration failed: {v}")), v["client_secret"].as_str().unwrap());
        let user = ada(&s).await;
        let (verifier, challenge) = pkce();
        let code = store_code(&s, &grant(id, &user, "openid profile", &challenge)).await;
        let resp = redeem(&s, Auth::Basic(id, secret), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
        if opt_in {
            assert_eq!(resp.status(), 200);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(jwt_parts(body["access_token"].as_str().unwrap()).1["aud"], s.issuer);
        } else {
            assert_oauth_error(resp, 400, "invalid_target").await;
        }
    }
}
