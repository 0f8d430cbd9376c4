//! OIDC Core §2, §3.1.3.6, §5.4, §5.5: the ID token the token endpoint issues with `openid`,
//! verified with `jsonwebtoken` against the published JWKS (not with Warden's verifier).

use crate::support::TestServer;
use crate::support::code_flow::{Auth, REDIRECT, ada, expected_at_hash, grant, pkce, redeem, store_code, tokens_for, verify_id_token, web_client};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

/// §2: every required claim, with the values of the grant; RS256 by default.
#[tokio::test]
async fn the_id_token_carries_the_grants_facts_and_verifies_with_the_jwks() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let (body, g) = tokens_for(&s, &id, &secret, "openid", |_| {}).await;
    let id_token = body["id_token"].as_str().expect("an ID token with openid");
    let (alg, c) = verify_id_token(&s, id_token, &id).await;
    assert_eq!(alg, Algorithm::RS256, "OIDC's default");
    assert_eq!(c["iss"], s.issuer);
    assert_eq!(c["sub"], g.sub);
    assert_eq!(c["aud"], id);
    assert_eq!(c["azp"], id);
    assert_eq!(c["auth_time"], g.auth_time);
    assert_eq!(c["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(c["sid"], g.sid);
    assert_eq!(c["amr"], json!(["pwd"]));
    assert_eq!(c["acr"], "1", "the grant's acr: a login for this request");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600, "provider.id_token_lifetime, 10m by default");
    let access_token = body["access_token"].as_str().unwrap();
    assert_eq!(c["at_hash"], expected_at_hash(alg, access_token));
}

/// §3.1.2.1: `nonce` only when the authorization request sent one.
#[tokio::test]
async fn nonce_appears_only_when_it_was_sent() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let (body, _) = tokens_for(&s, &id, &secret, "openid", |g| g.nonce = None).await;
    let (_, c) = verify_id_token(&s, body["id_token"].as_str().unwrap(), &id).await;
    assert!(c.get("nonce").is_none(), "{c}");
    assert!(c.get("amr").is_some());
}

/// `id_token_lifetime` is configurable.
#[tokio::test]
async fn the_id_token_lifetime_is_configured() {
    let s = TestServer::start_with(|c| c.oauth.id_token_lifetime = std::time::Duration::from_secs(120)).await;
    let (id, secret) = web_client(&s, json!({})).await;
    let (body, _) = tokens_for(&s, &id, &secret, "openid", |_| {}).await;
    let (_, c) = verify_id_token(&s, body["id_token"].as_str().unwrap(), &id).await;
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 120);
}

/// OIDC Registration §2 `id_token_signed_response_alg`: ES256 (the access-token key) and
/// EdDSA (an extra ID-token key; `at_hash` then uses SHA-512).
#[tokio::test]
async fn a_client_chooses_its_id_token_algorithm() {
    let s = TestServer::start_with(|c| c.oauth.keys.id_token_algs = vec![warden::jose::Alg::RS256, warden::jose::Alg::EdDSA]).await;
    for (name, alg) in [("ES256", Algorithm::ES256), ("EdDSA", Algorithm::EdDSA), ("RS256", Algorithm::RS256)] {
        let (id, secret) = web_client(&s, json!({"id_token_signed_response_alg": name})).await;
        let (body, _) = tokens_for(&s, &id, &secret, "openid", |_| {}).await;
        let (got, c) = verify_id_token(&s, body["id_token"].as_str().unwrap(), &id).await;
        assert_eq!(got, alg);
        assert_eq!(c["at_hash"], expected_at_hash(alg, body["access_token"].as_str().unwrap()), "{name}");
    }
}

/// Registration accepts only algorithms the server signs with, never `none`.
#[tokio::test]
async fn registration_refuses_none_and_algorithms_without_a_key() {
    let s = TestServer::start_with(|c| c.oauth.registration.mode = warden::oauth::RegistrationMode::Open).await;
    for alg in ["none", "PS256", "HS256"] {
        let resp = s
            .http
            .post(s.url("/register"))
            .json(&json!({"redirect_uris": [REDIRECT], "id_token_signed_response_alg": alg}))
            .send()
            .await
            .unwrap();
        crate::support::assert_oauth_error(resp, 400, "invalid_client_metadata").await;
    }
    let resp = s
        .http
        .post(s.url("/register"))
        .json(&json!({"redirect_uris": [REDIRECT], "id_token_signed_response_alg": "ES256"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id_token_signed_response_alg"], "ES256");
}

/// §5.4: with an access token issued, scope claims go to userinfo, not into the ID token;
/// §5.5: the `claims` request's `id_token` member puts single claims there.
#[tokio::test]
async fn scope_claims_stay_out_of_the_id_token_unless_requested_for_it() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let (body, _) = tokens_for(&s, &id, &secret, "openid profile email phone", |_| {}).await;
    let (_, c) = verify_id_token(&s, body["id_token"].as_str().unwrap(), &id).await;
    for absent in ["name", "given_name", "email", "email_verified", "phone_number", "updated_at"] {
        assert!(c.get(absent).is_none(), "{absent} in {c}");
    }
    let (body, _) = tokens_for(&s, &id, &secret, "openid", |g| {
        g.claims = Some(json!({"id_token": {"email": {"essential": true}, "name": null}, "userinfo": {"phone_number": null}}));
    })
    .await;
    let (_, c) = verify_id_token(&s, body["id_token"].as_str().unwrap(), &id).await;
    assert_eq!(c["email"], "ada@example.com");
    assert_eq!(c["name"], "Ada Lovelace");
    assert!(c.get("phone_number").is_none(), "asked for userinfo only");
}

/// No `openid`, no ID token (a plain OAuth grant).
#[tokio::test]
async fn without_openid_there_is_no_id_token() {
    let s = TestServer::start().await;
    let (id, secret) = web_client(&s, json!({})).await;
    let user = ada(&s).await;
    let (verifier, challenge) = pkce();
    let code = store_code(&s, &grant(&id, &user, "profile api", &challenge)).await;
    let resp = redeem(&s, Auth::Basic(&id, &secret), &code, Some(REDIRECT), Some(&verifier), &[], None).await;
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("id_token").is_none(), "{body}");
}

/// RP-Initiated Logout §2: the ID token the token endpoint issued is a valid
/// `id_token_hint` naming its client; a tampered one is refused.
#[tokio::test]
async fn the_id_token_is_accepted_as_id_token_hint_at_logout() {
    let s = TestServer::start().await;
    let bye = "https://app.example/signed-out";
    let (id, secret) = web_client(&s, json!({"post_logout_redirect_uris": [bye]})).await;
    let (body, _) = tokens_for(&s, &id, &secret, "openid", |_| {}).await;
    let hint = body["id_token"].as_str().unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let logout = |hint: String| {
        let mut url = url::Url::parse(&s.url("/logout")).unwrap();
        url.query_pairs_mut().extend_pairs([("id_token_hint", hint.as_str()), ("post_logout_redirect_uri", bye)]);
        http.get(url.to_string()).send()
    };
    // No session in this client: straight back to the verified post-logout URI.
    let resp = logout(hint.to_owned()).await.unwrap();
    assert_eq!(resp.status(), 303);
    assert!(resp.headers()["location"].to_str().unwrap().starts_with(bye));
    let mut tampered = hint.to_owned();
    tampered.pop();
    tampered.push(if hint.ends_with('A') { 'B' } else { 'A' });
    let resp = logout(tampered).await.unwrap();
    assert_eq!(resp.status(), 400);
}
