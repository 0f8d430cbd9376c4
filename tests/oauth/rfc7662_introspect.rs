//! RFC 7662 token introspection.

use crate::support::{TestServer, assert_oauth_error, jwt_parts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use std::time::Duration;
use warden::jose::Alg;

#[tokio::test]
async fn an_active_token_shows_its_claims() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    // The resource server of the tokens' audience (the default audience: the issuer).
    let (rs, rs_secret) = s
        .client(serde_json::json!({"grant_types": ["client_credentials"], "resource_server_for": [s.issuer]}))
        .await;
    let t = s.token(&id, &secret, &[("scope", "write")]).await;
    let v = s.introspect(&rs, &rs_secret, &t).await;
    assert_eq!(v["active"], true);
    assert_eq!(v["client_id"], id);
    assert_eq!(v["sub"], id);
    assert_eq!(v["scope"], "write");
    assert_eq!(v["iss"], s.issuer);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["jti"], jwt_parts(&t).1["jti"]);
}

/// RFC 7662 §4: a token is described only to its own client and to the resource servers of
/// its audience; any other client learns `{"active": false}`, as for a token that does not
/// exist. `provider.introspection = "any_client"` lifts the restriction.
#[tokio::test]
async fn only_the_tokens_client_and_its_resource_servers_may_introspect_it() {
    let s = TestServer::start().await;
    let api = "https://api.example.com";
    let (id, secret) = s
        .client(serde_json::json!({"grant_types": ["client_credentials"], "scope": "read", "audience": [api]}))
        .await;
    let (stranger, stranger_secret) = s.cc_client().await;
    let (other_rs, other_rs_secret) = s
        .client(serde_json::json!({"grant_types": ["client_credentials"], "resource_server_for": ["https://other.example.com"]}))
        .await;
    let (rs, rs_secret) = s
        .client(serde_json::json!({"grant_types": ["client_credentials"], "resource_server_for": [api]}))
        .await;
    let t = s.token(&id, &secret, &[]).await;
    assert_eq!(s.introspect(&id, &secret, &t).await["active"], true, "its own client");
    assert_eq!(s.introspect(&rs, &rs_secret, &t).await["active"], true, "the resource server of its audience");
    for (who, secret) in [(&stranger, &stranger_secret), (&other_rs, &other_rs_secret)] {
        assert_eq!(s.introspect(who, secret, &t).await, serde_json::json!({"active": false}), "nothing for others");
    }

    let open = TestServer::start_with(|c| c.oauth.introspection = warden::oauth::IntrospectionPolicy::AnyClient).await;
    let (id, secret) = open.cc_client().await;
    let (stranger, stranger_secret) = open.cc_client().await;
    let t = open.token(&id, &secret, &[]).await;
    assert_eq!(open.introspect(&stranger, &stranger_secret, &t).await["active"], true, "any_client");
}

#[tokio::test]
async fn dynamic_clients_cannot_claim_to_be_resource_servers() {
    let s = TestServer::start_with(|c| c.oauth.registration.mode = warden::oauth::RegistrationMode::Open).await;
    let resp = s
        .http
        .post(s.url("/register"))
        .json(&serde_json::json!({"grant_types": ["client_credentials"], "resource_server_for": [s.issuer]}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(resp, 400, "invalid_client_metadata").await;
}

#[tokio::test]
async fn garbage_tampered_and_foreign_tokens_are_inactive() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let t = s.token(&id, &secret, &[]).await;
    let (header, mut claims) = jwt_parts(&t);
    let sig = t.rsplit('.').next().unwrap();

    claims["scope"] = "read write admin".into();
    let tampered = format!(
        "{}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    // alg=none, and HS256 keyed with the public key: the header must not pick the algorithm.
    let mut none_header = header.clone();
    none_header["alg"] = "none".into();
    let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(none_header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut hs_header = header.clone();
    hs_header["alg"] = "HS256".into();
    let hs = format!("{}.{}.{sig}", URL_SAFE_NO_PAD.encode(hs_header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut unknown_kid = header.clone();
    unknown_kid["kid"] = "not-ours".into();
    let other_kid = format!("{}.{}", URL_SAFE_NO_PAD.encode(unknown_kid.to_string()), t.split_once('.').unwrap().1);

    for bad in ["", "abc", "a.b.c", tampered.as_str(), none.as_str(), hs.as_str(), other_kid.as_str()] {
        let resp = s.post_form("/introspect", Some((&id, &secret)), &[("token", bad)]).await;
        if bad.is_empty() {
            assert_oauth_error(resp, 400, "invalid_request").await;
            continue;
        }
        assert_eq!(resp.status(), 200);
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v, json!({"active": false}), "token {bad:.20}");
    }
}

#[tokio::test]
async fn expired_tokens_are_inactive() {
    let s = TestServer::start_with(|c| c.oauth.clock_skew = Duration::ZERO).await;
    let (id, secret) = s.client(json!({"grant_types": ["client_credentials"], "access_token_lifetime": 1})).await;
    let t = s.token(&id, &secret, &[]).await;
    assert_eq!(s.introspect(&id, &secret, &t).await["active"], true);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(s.introspect(&id, &secret, &t).await, json!({"active": false}));
}

#[tokio::test]
async fn tokens_of_another_issuer_are_inactive() {
    let a = TestServer::start().await;
    let b = TestServer::start().await;
    let (id, secret) = a.cc_client().await;
    let t = a.token(&id, &secret, &[]).await;
    let (bid, bsecret) = b.cc_client().await;
    assert_eq!(b.introspect(&bid, &bsecret, &t).await, json!({"active": false}));
}

/// Signed with the server's own key, a token is still inactive when its issuer is not this
/// one (the issuer renamed, the keys kept) or its `typ` is not `at+jwt` (an ID token's `JWT`:
/// RFC 9068 §4, no token confusion); one expired for less than `clock_skew` is active.
#[tokio::test]
async fn a_token_signed_with_our_key_is_checked_for_issuer_typ_and_expiry_with_clock_skew() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let t = s.token(&id, &secret, &[]).await;
    let (_, claims) = jwt_parts(&t);
    let now = warden::model::unix_now();
    let with = |k: &str, v: serde_json::Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    let s = &s;
    let sign = |typ: &'static str, c: serde_json::Value| async move { s.sign_with_own_key(Alg::ES256, typ, &c).await };
    assert_eq!(s.introspect(&id, &secret, &sign("at+jwt", claims.clone()).await).await["active"], true, "the same claims re-signed");
    let foreign = sign("at+jwt", with("iss", "https://old-name.example".into())).await;
    assert_eq!(s.introspect(&id, &secret, &foreign).await, json!({"active": false}), "another issuer");
    let id_typed = sign("JWT", claims.clone()).await;
    assert_eq!(s.introspect(&id, &secret, &id_typed).await, json!({"active": false}), "typ JWT");
    let just_expired = sign("at+jwt", with("exp", (now - 10).into())).await;
    assert_eq!(s.introspect(&id, &secret, &just_expired).await["active"], true, "within the 60 s clock skew");
    let expired = sign("at+jwt", with("exp", (now - 120).into())).await;
    assert_eq!(s.introspect(&id, &secret, &expired).await, json!({"active": false}), "past the clock skew");
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let t = s.token(&id, &secret, &[]).await;
    assert_oauth_error(s.post_form("/introspect", None, &[("token", &t)]).await, 401, "invalid_client").await;
    assert_oauth_error(s.post_form("/introspect", Some((&id, "bad")), &[("token", &t)]).await, 401, "invalid_client").await;
}

/// A public client (`none`) has no credential, so it cannot introspect: its `client_id`
/// alone is refused here, though `/revoke` and `/token` accept it.
#[tokio::test]
async fn a_public_client_cannot_introspect_with_its_client_id_alone() {
    let s = TestServer::start().await;
    let id = crate::support::code_flow::public_client(&s).await;
    let (cc, cc_secret) = s.cc_client().await;
    let t = s.token(&cc, &cc_secret, &[]).await;
    let resp = s.post_form("/introspect", None, &[("client_id", &id), ("token", &t)]).await;
    assert_oauth_error(resp, 401, "invalid_client").await;
}
