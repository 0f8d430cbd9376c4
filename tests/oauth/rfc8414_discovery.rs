//! RFC 8414 metadata, the OpenID Provider configuration (OIDC Discovery 1.0), and the JWKS
//! (RFC 7517).

use crate::support::TestServer;
use serde_json::{Value, json};

const AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
const SIGNING_ALGS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];

#[tokio::test]
async fn metadata_lists_exactly_what_works() {
    let s = TestServer::start().await;
    let resp = s.http.get(s.url("/.well-known/oauth-authorization-server")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let meta: Value = resp.json().await.unwrap();
    let endpoint = |path: &str| format!("{}{path}", s.issuer);
    let mut token_methods = AUTH_METHODS.to_vec();
    token_methods.push("none");
    let mut meta_without_claims = meta.clone();
    let claims = meta_without_claims.as_object_mut().unwrap().remove("claims_supported").unwrap();
    // Member by member: every member present, and nothing else.
    let expected = json!({
        "issuer": s.issuer,
        "authorization_endpoint": endpoint("/authorize"),
        "token_endpoint": endpoint("/token"),
        "userinfo_endpoint": endpoint("/userinfo"),
        "jwks_uri": endpoint("/jwks"),
        "registration_endpoint": endpoint("/register"),
        "pushed_authorization_request_endpoint": endpoint("/par"),
        "end_session_endpoint": endpoint("/logout"),
        "introspection_endpoint": endpoint("/introspect"),
        "revocation_endpoint": endpoint("/revoke"),
        "scopes_supported": ["openid", "profile", "email", "address", "phone", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "token_endpoint_auth_methods_supported": token_methods,
        "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "revocation_endpoint_auth_methods_supported": token_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "dpop_signing_alg_values_supported": SIGNING_ALGS,
    });
    assert_eq!(meta_without_claims, expected);
    for c in ["sub", "iss", "auth_time", "nonce", "at_hash", "sid", "email", "email_verified", "name", "address", "phone_number"] {
        assert!(claims.as_array().unwrap().contains(&json!(c)), "claims_supported lists {c}");
    }
    // §3.2: claims with zero elements MUST be omitted.
    for (k, v) in meta.as_object().unwrap() {
        assert!(v.as_array().is_none_or(|a| !a.is_empty()), "{k} is an empty array");
    }
    // Every advertised endpoint exists.
    for key in ["token_endpoint", "introspection_endpoint", "revocation_endpoint", "registration_endpoint", "pushed_authorization_request_endpoint", "userinfo_endpoint"] {
        let url = meta[key].as_str().unwrap();
        let status = s.http.post(url).send().await.unwrap().status().as_u16();
        assert!(status != 404 && status != 405 && status < 500, "{key} answers ({status})");
    }
    for key in ["authorization_endpoint", "end_session_endpoint", "jwks_uri"] {
        let status = s.http.get(meta[key].as_str().unwrap()).send().await.unwrap().status().as_u16();
        assert!(status != 404 && status != 405 && status < 500, "{key} answers ({status})");
    }
}

/// What an unknown provider path answers: status, content type and body.
async fn answer(s: &TestServer, url: &str) -> (u16, String, String) {
    let resp = s.http.get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let ctype = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ctype, resp.text().await.unwrap())
}

/// OIDC Discovery §4: the same document at `{issuer}/.well-known/openid-configuration`,
/// with the members §3 requires; RFC 8414 §3 puts its own suffix between host and path.
#[tokio::test]
async fn the_openid_configuration_is_the_same_document_at_its_own_place() {
    let s = TestServer::start().await;
    let rfc8414: Value = s.http.get(s.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    let oidc: Value = s.http.get(s.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(oidc, rfc8414);
    for required in ["issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported"] {
        assert!(oidc.get(required).is_some(), "OIDC Discovery §3 requires {required}");
    }
    assert!(oidc["id_token_signing_alg_values_supported"].as_array().unwrap().contains(&json!("RS256")), "RS256 MUST be included");

    let s = TestServer::start_with(|c| c.oauth.issuer = "http://127.0.0.1:1/tenant-a".into()).await;
    let host = s.issuer.trim_end_matches("/tenant-a").to_owned();
    let oidc = s.http.get(format!("{}/.well-known/openid-configuration", s.issuer)).send().await.unwrap();
    assert_eq!(oidc.status(), 200);
    assert_eq!(oidc.json::<Value>().await.unwrap()["issuer"], s.issuer);
    let unknown = answer(&s, &s.url("/.well-known/no-such-document")).await;
    assert_eq!(unknown.0, 404);
    // Not at the host root, and not RFC 8414-style for the OIDC name.
    assert_eq!(answer(&s, &format!("{host}/.well-known/openid-configuration")).await.0, 404);
    assert_eq!(answer(&s, &format!("{host}/.well-known/openid-configuration/tenant-a")).await.0, 404);
}

#[tokio::test]
async fn jwks_publishes_public_keys_with_kid_use_alg_only() {
    let s = TestServer::start().await;
    let resp = s.http.get(s.url("/jwks")).send().await.unwrap();
    assert!(resp.headers()["cache-control"].to_str().unwrap().starts_with("public"));
    let jwks: Value = resp.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    // The access-token key (ES256) and the ID-token key (RS256, which OIDC requires).
    let mut algs: Vec<(&str, &str)> = keys.iter().map(|k| (k["alg"].as_str().unwrap(), k["kty"].as_str().unwrap())).collect();
    algs.sort();
    assert_eq!(algs, [("ES256", "EC"), ("RS256", "RSA")]);
    for k in keys {
        assert_eq!(k["use"], "sig");
        assert_eq!(k["kid"], warden::jose::jwk_thumbprint(k).unwrap(), "kid is the RFC 7638 thumbprint");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none());
        }
    }
}

#[tokio::test]
async fn an_issuer_with_a_path_serves_everything_under_it() {
    let s = TestServer::start_with(|c| c.oauth.issuer = "http://127.0.0.1:1/tenant-a".into()).await;
    assert!(s.issuer.ends_with("/tenant-a"));
    // RFC 8414 §3: the well-known suffix goes between host and path.
    let host = s.issuer.trim_end_matches("/tenant-a");
    let rfc8414 = s.http.get(format!("{host}/.well-known/oauth-authorization-server/tenant-a")).send().await.unwrap();
    assert_eq!(rfc8414.status(), 200);
    let meta: Value = rfc8414.json().await.unwrap();
    assert_eq!(meta["issuer"], s.issuer);
    assert_eq!(meta["token_endpoint"], format!("{}/token", s.issuer));
    let (id, secret) = s.cc_client().await;
    let t = s.token(&id, &secret, &[]).await;
    assert_eq!(crate::support::jwt_parts(&t).1["iss"], s.issuer);
    assert_eq!(s.http.get(format!("{host}/jwks")).send().await.unwrap().status(), 404);
}

/// Relying parties may cache the JWKS for half the rotation delay at most (and five minutes
/// at most), so they fetch a new key before it signs.
#[tokio::test]
async fn the_jwks_is_cached_for_at_most_half_the_rotation_delay() {
    for (delay, max_age) in [(60, 30), (300, 150), (3600, 300)] {
        let s = TestServer::start_with(|c| c.oauth.keys.rotation_delay = std::time::Duration::from_secs(delay)).await;
        let resp = s.http.get(s.url("/jwks")).send().await.unwrap();
        assert_eq!(resp.headers()["cache-control"], format!("public, max-age={max_age}").as_str(), "rotation_delay {delay} s");
    }
}
