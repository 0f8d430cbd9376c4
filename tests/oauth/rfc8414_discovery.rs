//! RFC 8414 metadata and the JWKS (RFC 7517). No OpenID configuration before ID tokens exist.

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
    // RFC 8414 §2, member by member: every member present, and nothing else.
    let expected = json!({
        "issuer": s.issuer,
        "token_endpoint": endpoint("/token"),
        "jwks_uri": endpoint("/jwks"),
        "registration_endpoint": endpoint("/register"),
        "introspection_endpoint": endpoint("/introspect"),
        "revocation_endpoint": endpoint("/revoke"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "dpop_signing_alg_values_supported": SIGNING_ALGS,
    });
    assert_eq!(meta, expected);
    // No grant uses the authorization endpoint, so neither it nor response types are listed
    // (RFC 8414 §2; response_types_supported is the documented deviation in discovery.rs).
    assert!(meta.get("authorization_endpoint").is_none());
    assert!(meta.get("response_types_supported").is_none());
    // §3.2: claims with zero elements MUST be omitted.
    for (k, v) in meta.as_object().unwrap() {
        assert!(v.as_array().is_none_or(|a| !a.is_empty()), "{k} is an empty array");
    }
    // Every advertised endpoint exists.
    for key in ["token_endpoint", "introspection_endpoint", "revocation_endpoint", "registration_endpoint"] {
        let url = meta[key].as_str().unwrap();
        let status = s.http.post(url).send().await.unwrap().status().as_u16();
        assert!(status != 404 && status != 405 && status < 500, "{key} answers ({status})");
    }
    let jwks = s.http.get(meta["jwks_uri"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(jwks.status(), 200);
}

/// What an unknown provider path answers: status, content type and body.
async fn answer(s: &TestServer, url: &str) -> (u16, String, String) {
    let resp = s.http.get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let ctype = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ctype, resp.text().await.unwrap())
}

#[tokio::test]
async fn the_openid_configuration_is_not_served_before_id_tokens_exist() {
    let s = TestServer::start().await;
    let unknown = answer(&s, &s.url("/.well-known/no-such-document")).await;
    assert_eq!(unknown.0, 404);
    assert_eq!(answer(&s, &s.url("/.well-known/openid-configuration")).await, unknown);
    // Also under an issuer with a path, at both places a client might look.
    let s = TestServer::start_with(|c| c.oauth.issuer = "http://127.0.0.1:1/tenant-a".into()).await;
    let host = s.issuer.trim_end_matches("/tenant-a").to_owned();
    let unknown = answer(&s, &s.url("/.well-known/no-such-document")).await;
    assert_eq!(unknown.0, 404);
    assert_eq!(answer(&s, &s.url("/.well-known/openid-configuration")).await, unknown);
    assert_eq!(answer(&s, &format!("{host}/.well-known/openid-configuration/tenant-a")).await, unknown);
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
