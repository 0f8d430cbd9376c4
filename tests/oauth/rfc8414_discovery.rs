//! RFC 8414 metadata, OpenID discovery and the JWKS (RFC 7517).

use crate::support::TestServer;
use serde_json::Value;

#[tokio::test]
async fn metadata_lists_exactly_what_works() {
    let s = TestServer::start().await;
    let rfc8414: Value = s.http.get(s.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    let oidc: Value = s.http.get(s.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(rfc8414, oidc);
    assert_eq!(rfc8414["issuer"], s.issuer);
    assert_eq!(rfc8414["grant_types_supported"], serde_json::json!(["client_credentials"]));
    assert!(rfc8414.get("authorization_endpoint").is_none(), "not built yet, so not advertised");
    assert!(rfc8414.get("userinfo_endpoint").is_none());
    for m in rfc8414["token_endpoint_auth_methods_supported"].as_array().unwrap() {
        assert_ne!(m, "none", "public clients cannot use the token endpoint yet");
    }
    // Every advertised endpoint exists.
    for key in ["token_endpoint", "introspection_endpoint", "revocation_endpoint", "registration_endpoint"] {
        let url = rfc8414[key].as_str().unwrap();
        assert!(url.starts_with(&s.issuer), "{key}");
        let status = s.http.post(url).send().await.unwrap().status().as_u16();
        assert!(status != 404 && status != 405 && status < 500, "{key} answers ({status})");
    }
    let jwks = s.http.get(rfc8414["jwks_uri"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(jwks.status(), 200);
}

#[tokio::test]
async fn jwks_publishes_public_keys_with_kid_use_alg_only() {
    let s = TestServer::start().await;
    let resp = s.http.get(s.url("/jwks")).send().await.unwrap();
    assert!(resp.headers()["cache-control"].to_str().unwrap().starts_with("public"));
    let jwks: Value = resp.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k["use"], "sig");
    assert_eq!(k["alg"], "ES256");
    assert_eq!(k["kty"], "EC");
    assert_eq!(k["kid"], warden::jose::jwk_thumbprint(k).unwrap(), "kid is the RFC 7638 thumbprint");
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(k.get(private).is_none());
    }
}

#[tokio::test]
async fn an_issuer_with_a_path_serves_everything_under_it() {
    let s = TestServer::start_with(|c| c.oauth.issuer = "http://127.0.0.1:1/tenant-a".into()).await;
    assert!(s.issuer.ends_with("/tenant-a"));
    let meta: Value = s.http.get(s.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(meta["issuer"], s.issuer);
    assert_eq!(meta["token_endpoint"], format!("{}/token", s.issuer));
    // RFC 8414 §3: the well-known suffix goes between host and path.
    let host = s.issuer.trim_end_matches("/tenant-a");
    let rfc8414 = s.http.get(format!("{host}/.well-known/oauth-authorization-server/tenant-a")).send().await.unwrap();
    assert_eq!(rfc8414.status(), 200);
    let (id, secret) = s.cc_client().await;
    let t = s.token(&id, &secret, &[]).await;
    assert_eq!(crate::support::jwt_parts(&t).1["iss"], s.issuer);
    assert_eq!(s.http.get(format!("{host}/jwks")).send().await.unwrap().status(), 404);
}
