//! RFC 7591 dynamic registration and RFC 7592 registration management.

use crate::support::{TestServer, assert_oauth_error};
use serde_json::{Value, json};
use warden::oauth::RegistrationMode;
use warden::oauth::register::create_initial_access_token;

async fn iat(s: &TestServer, lifetime: Option<u64>) -> String {
    create_initial_access_token(&s.store, &s.master, "test", lifetime).await.unwrap().token
}

async fn register(s: &TestServer, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = s.http.post(s.url("/register")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn registering_with_an_initial_access_token_returns_credentials_that_work() {
    let s = TestServer::start_with(|c| c.oauth.registration.allowed_audiences = vec![API.into()]).await;
    let t = iat(&s, Some(3600)).await;
    let resp = register(&s, Some(&t), json!({"client_name": "svc", "grant_types": ["client_credentials"], "scope": "openid profile", "audience": [API], "unknown_member": 1})).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let v: Value = resp.json().await.unwrap();
    for k in ["client_id", "client_secret", "registration_access_token", "registration_client_uri"] {
        assert!(v[k].is_string(), "{k} in {v}");
    }
    assert_eq!(v["client_secret_expires_at"], 0);
    assert!(v["client_id_issued_at"].is_i64());
    assert_eq!(v["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(v["scope"], "openid profile");
    assert!(v.get("unknown_member").is_none());
    let (id, secret) = (v["client_id"].as_str().unwrap(), v["client_secret"].as_str().unwrap());
    let token = s.token(id, secret, &[]).await;
    assert_eq!(crate::support::jwt_parts(&token).1["aud"], API);
    // The initial access token can register more than one client until it expires.
    assert_eq!(register(&s, Some(&t), json!({"grant_types": ["client_credentials"]})).await.status(), 201);
}

#[tokio::test]
async fn registration_needs_a_valid_initial_access_token() {
    let s = TestServer::start().await;
    let body = json!({"grant_types": ["client_credentials"]});
    let h = assert_oauth_error(register(&s, None, body.clone()).await, 401, "invalid_token").await;
    let challenge = h["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer") && !challenge.contains("error="), "RFC 6750 §3.1: no error code without a token: {challenge}");
    let h = assert_oauth_error(register(&s, Some("made-up"), body.clone()).await, 401, "invalid_token").await;
    assert!(h["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));

    // A lifetime runs from creation.
    let lasting = create_initial_access_token(&s.store, &s.master, "hour", Some(3600)).await.unwrap().record;
    assert_eq!(lasting.expires_at, Some(lasting.created_at + 3600));
    assert!((lasting.created_at - warden::model::unix_now()).abs() <= 5);
    let expired = iat(&s, Some(0)).await;
    assert_oauth_error(register(&s, Some(&expired), body.clone()).await, 401, "invalid_token").await;

    let revoked = create_initial_access_token(&s.store, &s.master, "r", None).await.unwrap();
    s.store.catalog.revoke_initial_access_token(&revoked.record.id, warden::model::unix_now()).await.unwrap();
    assert_oauth_error(register(&s, Some(&revoked.token), body).await, 401, "invalid_token").await;
}

#[tokio::test]
async fn invalid_metadata_is_refused_with_a_useful_description() {
    let s = TestServer::start_with(|c| c.oauth.registration.per_address = 1000).await;
    let t = iat(&s, None).await;
    let cases = [
        (json!({"redirect_uris": ["https://app.example/cb#x"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["http://app.example/cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["https://*.example/cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["javascript:alert(1)"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["data:text/html,x"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["http://localhost:3000/cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["http://127.0.0.1:3000/cb"], "application_type": "web"}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["com.example.app:/cb"], "application_type": "web"}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["https://a.example/cb"], "application_type": "desktop"}), "invalid_client_metadata"),
        (json!({"redirect_uris": ["https://a.example/cb"], "post_logout_redirect_uris": ["http://a.example/bye"]}), "invalid_client_metadata"),
        (json!({"redirect_uris": ["https://a.example/cb"], "first_party": true}), "invalid_client_metadata"),
        (json!({"grant_types": ["authorization_code"]}), "invalid_redirect_uri"),
        (json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "magic"}), "invalid_client_metadata"),
        (json!({"grant_types": ["implicit"], "redirect_uris": ["https://a.example/cb"]}), "invalid_client_metadata"),
        (json!({"grant_types": ["client_credentials"], "response_types": ["token"]}), "invalid_client_metadata"),
        (json!({"grant_types": ["client_credentials"], "scope": "admin"}), "invalid_client_metadata"),
        (json!({"grant_types": ["client_credentials"], "access_token_lifetime": 99999}), "invalid_client_metadata"),
        (json!({"grant_types": ["client_credentials"], "audience": ["https://payments.internal"]}), "invalid_client_metadata"),
        (json!({"grant_types": ["client_credentials"], "client_id": "chosen"}), "invalid_client_metadata"),
        (json!({"grant_types": "client_credentials"}), "invalid_client_metadata"),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ];
    for (body, code) in cases {
        let resp = register(&s, Some(&t), body.clone()).await;
        assert_eq!(resp.status(), 400, "{body}");
        assert_oauth_error(resp, 400, code).await;
    }
    let resp = s.http.post(s.url("/register")).bearer_auth(&t).header("content-type", "application/json").body("{nope").send().await.unwrap();
    assert_oauth_error(resp, 400, "invalid_client_metadata").await;
    let resp = s.http.post(s.url("/register")).bearer_auth(&t).form(&[("a", "b")]).send().await.unwrap();
    assert_oauth_error(resp, 400, "invalid_request").await;
    assert!(s.store.catalog.clients().await.unwrap().is_empty(), "nothing half-written");
}

#[tokio::test]
async fn rfc7592_read_update_delete_with_the_registration_access_token() {
    let s = TestServer::start_with(|c| c.oauth.registration.issuer_audience = true).await;
    let t = iat(&s, None).await;
    let v: Value = register(&s, Some(&t), json!({"grant_types": ["client_credentials"], "client_name": "one", "scope": "email"}))
        .await
        .json()
        .await
        .unwrap();
    let uri = v["registration_client_uri"].as_str().unwrap().to_owned();
    let rat = v["registration_access_token"].as_str().unwrap().to_owned();
    let id = v["client_id"].as_str().unwrap().to_owned();
    let secret = v["client_secret"].as_str().unwrap().to_owned();

    let read: Value = s.http.get(&uri).bearer_auth(&rat).send().await.unwrap().json().await.unwrap();
    assert_eq!(read["client_name"], "one");
    assert!(read.get("client_secret").is_none(), "the secret is never shown again");
    assert_eq!(read["registration_access_token"], rat, "RFC 7592 §3");
    assert_eq!(read["registration_client_uri"], uri);
    let undecodable = format!("{}/register/%FF", s.base);
    assert_oauth_error(s.http.get(&undecodable).bearer_auth(&rat).send().await.unwrap(), 401, "invalid_token").await;

    assert_oauth_error(s.http.get(&uri).bearer_auth("wrong").send().await.unwrap(), 401, "invalid_token").await;
    assert_oauth_error(s.http.get(&uri).bearer_auth(&t).send().await.unwrap(), 401, "invalid_token").await;
    let other = uri.replace(&id, "someone-else");
    assert_oauth_error(s.http.get(&other).bearer_auth(&rat).send().await.unwrap(), 401, "invalid_token").await;

    let update = json!({"client_id": id, "client_name": "renamed", "grant_types": ["client_credentials"], "scope": "email profile"});
    let resp = s.http.put(&uri).bearer_auth(&rat).json(&update).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(updated["client_name"], "renamed");
    assert_eq!(updated["registration_access_token"], rat);
    assert_eq!(updated["scope"], "email profile");
    let tok = s.token(&id, &secret, &[("scope", "profile")]).await;
    assert!(!tok.is_empty(), "the secret still works and the new scope applies");

    // RFC 7592 §2.2: the fields the server assigns must not be sent, each on its own.
    for (field, value) in [("registration_access_token", json!(rat)), ("registration_client_uri", json!(uri)), ("client_id_issued_at", json!(1)), ("client_secret_expires_at", json!(0))] {
        let mut bad = json!({"client_id": id, "grant_types": ["client_credentials"]});
        bad[field] = value;
        assert_oauth_error(s.http.put(&uri).bearer_auth(&rat).json(&bad).send().await.unwrap(), 400, "invalid_request").await;
    }
    let bad = json!({"client_id": "other", "grant_types": ["client_credentials"]});
    assert_oauth_error(s.http.put(&uri).bearer_auth(&rat).json(&bad).send().await.unwrap(), 400, "invalid_request").await;
    let bad = json!({"client_id": id, "grant_types": ["client_credentials"], "client_secret": "not-it"});
    assert_oauth_error(s.http.put(&uri).bearer_auth(&rat).json(&bad).send().await.unwrap(), 400, "invalid_request").await;

    let live = s.token(&id, &secret, &[]).await;
    let (rs, rs_secret) = s.client(json!({"grant_types": ["client_credentials"], "resource_server_for": [s.issuer]})).await;
    assert_eq!(s.introspect(&rs, &rs_secret, &live).await["active"], true);
    let resp = s.http.delete(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(s.introspect(&rs, &rs_secret, &live).await, json!({"active": false}), "RFC 7592 §2.3: its tokens die with it");
    assert_oauth_error(s.http.get(&uri).bearer_auth(&rat).send().await.unwrap(), 401, "invalid_token").await;
    let resp = s.post_form("/token", Some((&id, &secret)), &[("grant_type", "client_credentials")]).await;
    assert_oauth_error(resp, 401, "invalid_client").await;
}

const API: &str = "https://api.example.com";

/// Issue #5 item 5: a dynamically registered client gets no audience by default; tokens for
/// the issuer itself only when the operator opts in (`registration.issuer_audience`).
#[tokio::test]
async fn a_dynamic_client_without_an_audience_gets_no_tokens_unless_the_operator_opts_in() {
    for opt_in in [false, true] {
        let s = TestServer::start_with(|c| {
            c.oauth.registration.mode = RegistrationMode::Open;
            c.oauth.registration.issuer_audience = opt_in;
        })
        .await;
        let v: Value = register(&s, None, json!({"grant_types": ["client_credentials"]})).await.json().await.unwrap();
        let (id, secret) = (v["client_id"].as_str().unwrap(), v["client_secret"].as_str().unwrap());
        let resp = s.post_form("/token", Some((id, secret)), &[("grant_type", "client_credentials")]).await;
        if opt_in {
            assert_eq!(resp.status(), 200);
            let token: Value = resp.json().await.unwrap();
            assert_eq!(crate::support::jwt_parts(token["access_token"].as_str().unwrap()).1["aud"], s.issuer);
        } else {
            assert_oauth_error(resp, 400, "invalid_target").await;
            let resp = s.post_form("/token", Some((id, secret)), &[("grant_type", "client_credentials"), ("resource", &s.issuer)]).await;
            assert_oauth_error(resp, 400, "invalid_target").await;
        }
    }
    // Clients created by an operator keep the default audience.
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    assert_eq!(crate::support::jwt_parts(&s.token(&id, &secret, &[]).await).1["aud"], s.issuer);
}

/// Issue #5 item 5: open registration is rate-limited per source address.
#[tokio::test]
async fn open_registration_is_rate_limited_per_address() {
    let s = TestServer::start_with(|c| {
        c.oauth.registration.mode = RegistrationMode::Open;
        c.oauth.registration.per_address = 3;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(register(&s, None, json!({"grant_types": ["client_credentials"]})).await.status(), 201);
    }
    let h = assert_oauth_error(register(&s, None, json!({"grant_types": ["client_credentials"]})).await, 429, "temporarily_unavailable").await;
    assert!(h.contains_key("retry-after"));
    let elsewhere = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 3])).build().unwrap();
    let resp = elsewhere.post(s.url("/register")).json(&json!({"grant_types": ["client_credentials"]})).send().await.unwrap();
    assert_eq!(resp.status(), 201, "another address has its own allowance");
    assert_eq!(s.store.catalog.clients().await.unwrap().len(), 4, "the refused request stored nothing");
}

#[tokio::test]
async fn open_registration_needs_no_token_and_disabled_has_no_endpoint() {
    let open = TestServer::start_with(|c| c.oauth.registration.mode = RegistrationMode::Open).await;
    assert_eq!(register(&open, None, json!({"grant_types": ["client_credentials"]})).await.status(), 201);

    let off = TestServer::start_with(|c| c.oauth.registration.mode = RegistrationMode::Disabled).await;
    assert_eq!(register(&off, None, json!({})).await.status(), 404);
    let meta: Value = off.http.get(off.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    assert!(meta.get("registration_endpoint").is_none());
}

#[tokio::test]
async fn a_private_key_jwt_client_registers_with_inline_keys_only() {
    let s = TestServer::start().await;
    let t = iat(&s, None).await;
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"});
    let ok = json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk]}});
    let v: Value = register(&s, Some(&t), ok).await.json().await.unwrap();
    assert!(v.get("client_secret").is_none(), "no secret for private_key_jwt");
    assert_eq!(v["jwks"]["keys"][0]["kty"], "EC");
    let private = json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                         "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
                                            "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM", "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]}});
    assert_oauth_error(register(&s, Some(&t), private).await, 400, "invalid_client_metadata").await;
    // RFC 7515 §A.3's coordinates with one changed: not a point on P-256.
    let off_curve = json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                           "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                                              "y": "x_FEzRjCXXsUqfkyN4a8J_iq5-Ve3Gnkh-y7dwkTsHo"}]}});
    assert_oauth_error(register(&s, Some(&t), off_curve).await, 400, "invalid_client_metadata").await;
    let small_rsa = json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                           "jwks": {"keys": [{"kty": "RSA", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"}]}});
    let resp = register(&s, Some(&t), small_rsa).await;
    assert_eq!(resp.status(), 201, "a 2048-bit key is accepted");
    let tiny = json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                      "jwks": {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}});
    assert_oauth_error(register(&s, Some(&t), tiny).await, 400, "invalid_client_metadata").await;
}

/// OIDC Dynamic Client Registration §2: application_type, explicit or implied by the URIs.
#[tokio::test]
async fn the_application_type_follows_the_redirect_uris_and_is_shown_back() {
    let s = TestServer::start().await;
    let t = iat(&s, None).await;
    for (body, want) in [
        (json!({"redirect_uris": ["https://a.example/cb"]}), "web"),
        (json!({"redirect_uris": ["http://127.0.0.1/cb", "com.example.app:/cb"]}), "native"),
        (json!({"redirect_uris": ["https://a.example/cb"], "application_type": "native"}), "native"),
        (json!({"redirect_uris": ["https://a.example/cb"], "application_type": "web"}), "web"),
    ] {
        let resp = register(&s, Some(&t), body.clone()).await;
        assert_eq!(resp.status(), 201, "{body}");
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["application_type"], want, "{body}");
    }
    // A web application's redirect URIs are https only; there is no third type.
    for (body, code) in [
        (json!({"redirect_uris": ["https://a.example/cb", "http://127.0.0.1/cb"], "application_type": "web"}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["com.example.app:/cb"], "application_type": "web"}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["https://a.example/cb"], "application_type": "desktop"}), "invalid_client_metadata"),
    ] {
        assert_oauth_error(register(&s, Some(&t), body).await, 400, code).await;
    }
}
