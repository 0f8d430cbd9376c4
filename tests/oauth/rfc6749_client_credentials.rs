//! RFC 6749 §4.4 client credentials, RFC 9068 JWT access tokens.

use crate::support::{TestServer, assert_oauth_error, jwt_parts};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn issues_an_rfc9068_access_token_with_basic_auth() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "client_credentials"), ("scope", "read")]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "read");
    let (header, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());
    assert_eq!(claims["iss"], s.issuer);
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["client_id"], id);
    assert_eq!(claims["aud"], s.issuer, "default audience is the issuer");
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600);
    assert!(claims["jti"].as_str().unwrap().len() >= 16);
}

#[tokio::test]
async fn client_secret_post_works_for_clients_registered_for_it() {
    let s = TestServer::start().await;
    let (id, secret) = s
        .client(json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_post", "scope": "a"}))
        .await;
    let form = [("grant_type", "client_credentials"), ("client_id", id.as_str()), ("client_secret", secret.as_str())];
    let resp = s.post_form("/token", None, &form).await;
    assert_eq!(resp.status(), 200);
    // The same credentials through Basic are refused: the method must be the registered one.
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "client_credentials")]).await;
    assert_oauth_error(resp, 401, "invalid_client").await;
}

#[tokio::test]
async fn no_scope_requested_grants_all_registered_scopes_and_tokens_are_unique() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let t1 = s.token(&id, &secret, &[]).await;
    let t2 = s.token(&id, &secret, &[]).await;
    let (_, c1) = jwt_parts(&t1);
    let (_, c2) = jwt_parts(&t2);
    assert_eq!(c1["scope"], "read write");
    assert_ne!(c1["jti"], c2["jti"]);
}

#[tokio::test]
async fn scope_beyond_the_registered_set_is_invalid_scope() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "client_credentials"), ("scope", "read admin")]).await;
    assert_oauth_error(resp, 400, "invalid_scope").await;
}

#[tokio::test]
async fn audience_and_lifetime_follow_the_client_and_resource_is_checked() {
    let s = TestServer::start().await;
    let (id, secret) = s
        .client(json!({"grant_types": ["client_credentials"], "scope": "read",
                       "audience": ["https://api.example", "https://other.example"], "access_token_lifetime": 120}))
        .await;
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "client_credentials")]).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["expires_in"], 120);
    let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], json!(["https://api.example", "https://other.example"]));

    let t = s.token(&id, &secret, &[("resource", "https://other.example")]).await;
    assert_eq!(jwt_parts(&t).1["aud"], "https://other.example");
    // `resource` (RFC 8707) and `audience` values add up, each value once.
    let t = s
        .token(&id, &secret, &[("resource", "https://other.example"), ("audience", "https://api.example"), ("resource", "https://other.example")])
        .await;
    assert_eq!(jwt_parts(&t).1["aud"], json!(["https://other.example", "https://api.example"]));

    let resp = s
        .post_form("/token", Some((&id, &secret)), &[("grant_type", "client_credentials"), ("resource", "https://evil.example")])
        .await;
    assert_oauth_error(resp, 400, "invalid_target").await;
}

#[tokio::test]
async fn a_client_not_registered_for_the_grant_is_unauthorized_client() {
    let s = TestServer::start().await;
    let (id, secret) = s.client(json!({"redirect_uris": ["https://app.example/cb"]})).await;
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "client_credentials")]).await;
    assert_oauth_error(resp, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn configured_es_alternatives_sign_access_tokens() {
    for alg in ["EdDSA", "RS256", "PS256"] {
        let s = TestServer::start_with(|c| c.oauth.keys.access_token_alg = warden::jose::Alg::parse(alg).unwrap()).await;
        let (id, secret) = s.cc_client().await;
        let t = s.token(&id, &secret, &[]).await;
        assert_eq!(jwt_parts(&t).0["alg"], alg);
        assert_eq!(s.introspect(&id, &secret, &t).await["active"], true, "{alg} token verifies");
        let jwks: Value = s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap();
        assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["alg"] == alg && k["kid"] == jwt_parts(&t).0["kid"]));
    }
}

#[tokio::test]
async fn a_registered_resource_shortens_the_lifetime_of_its_tokens() {
    let s = TestServer::start().await;
    let max = s.cfg.oauth.max_access_token_lifetime;
    warden::oauth::resources::create(&s.store, "https://payments.example", None, Some(std::time::Duration::from_secs(60)), max)
        .await
        .unwrap();
    let (id, secret) = s
        .client(json!({"grant_types": ["client_credentials"], "audience": ["https://payments.example", "https://reports.example"]}))
        .await;
    let expires = |v: Value| v["expires_in"].as_u64().unwrap();
    let get = |form: Vec<(&'static str, &'static str)>| {
        let (id, secret) = (id.clone(), secret.clone());
        let s = &s;
        async move { s.post_form("/token", Some((&id, &secret)), &form).await.json::<Value>().await.unwrap() }
    };
    assert_eq!(expires(get(vec![("grant_type", "client_credentials")]).await), 60, "both audiences: the shortest wins");
    let reports = get(vec![("grant_type", "client_credentials"), ("resource", "https://reports.example")]).await;
    assert_eq!(expires(reports), 600, "an unregistered audience keeps the default");

    let (short, short_secret) = s
        .client(json!({"grant_types": ["client_credentials"], "audience": ["https://payments.example"], "access_token_lifetime": 30}))
        .await;
    let v: Value = s.post_form("/token", Some((&short, &short_secret)), &[("grant_type", "client_credentials")]).await.json().await.unwrap();
    assert_eq!(expires(v), 30, "a shorter client lifetime wins over the resource's");

    let err = warden::oauth::resources::create(&s.store, "not a uri", None, None, max).await.unwrap_err();
    assert_eq!(err.code, warden::oauth::ErrorCode::InvalidRequest);
    let err = warden::oauth::resources::create(&s.store, "https://x.example", None, Some(max * 2), max).await.unwrap_err();
    assert_eq!(err.code, warden::oauth::ErrorCode::InvalidRequest);
    // A URN parses as a URL even with a space in it: whitespace and control characters are
    // refused on their own, and so is an empty audience.
    for bad in ["", "urn:example:a b", "urn:example:a\u{7}b", "urn:example:tab\there"] {
        let err = warden::oauth::resources::create(&s.store, bad, None, None, max).await.unwrap_err();
        assert_eq!(err.code, warden::oauth::ErrorCode::InvalidRequest, "{bad:?}");
    }
    warden::oauth::resources::create(&s.store, "urn:example:max", None, Some(max), max).await.expect("the longest lifetime allowed");
    // Deleting a resource removes it: a second delete is an error, and it can be made again.
    warden::oauth::resources::delete(&s.store, "https://payments.example").await.unwrap();
    let err = warden::oauth::resources::delete(&s.store, "https://payments.example").await.unwrap_err();
    assert_eq!(err.code, warden::oauth::ErrorCode::InvalidRequest);
    warden::oauth::resources::create(&s.store, "https://payments.example", None, None, max).await.expect("created again");
}

/// Issue #5 item 9: a secret rotated by another process (`warden client rotate-secret`, another
/// node) stops working within `provider.client_cache_ttl`, and the new one works as soon as
/// that process has committed it — the documented bound, not "eventually".
#[tokio::test]
async fn a_secret_rotated_elsewhere_stops_working_within_the_client_cache_ttl() {
    let s = TestServer::start_with(|c| c.oauth.client_cache_ttl = Duration::from_millis(500)).await;
    let (id, old) = s.cc_client().await;
    let cc = [("grant_type", "client_credentials")];
    assert_eq!(s.post_form("/token", Some((&id, &old)), &cc).await.status(), 200, "cached now");
    // Rotated through the store, as the CLI does from its own process.
    let (_, new) = warden::oauth::clients::rotate_secret(&s.store, &s.master, &warden::model::ClientId(id.clone())).await.unwrap();
    let rotated_at = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_oauth_error(s.post_form("/token", Some((&id, &old)), &cc).await, 401, "invalid_client").await;
    assert!(rotated_at.elapsed() < Duration::from_secs(2));
    assert_eq!(s.post_form("/token", Some((&id, &new)), &cc).await.status(), 200);
}
