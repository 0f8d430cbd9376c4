//! Interop with code we did not write: the `oauth2` crate as the client, and jsonwebtoken's
//! JWK handling (not Warden's key ring) to verify against the published JWKS, before and
//! after a key rotation. (conformance/ does the same from Python with other libraries.)

use crate::support::{TestServer, oauth2_send as send};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use serde_json::Value;
use std::time::Duration;

async fn fetch_token(s: &TestServer, id: &str, secret: &str) -> String {
    let client = BasicClient::new(ClientId::new(id.into()))
        .set_client_secret(ClientSecret::new(secret.into()))
        .set_token_uri(TokenUrl::new(s.url("/token")).unwrap());
    let http = s.http.clone();
    let resp = client
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&|req| send(http.clone(), req))
        .await
        .unwrap();
    assert_eq!(resp.token_type().as_ref(), "bearer");
    assert_eq!(resp.scopes().unwrap()[0].as_str(), "read");
    assert!(resp.expires_in().unwrap() > Duration::from_secs(60));
    resp.access_token().secret().clone()
}

fn verify_with_jwks(s: &TestServer, jwks: &JwkSet, token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[&s.issuer]);
    v.set_audience(&[&s.issuer]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub", "jti"]);
    jsonwebtoken::decode::<Value>(token, &key, &v).unwrap().claims
}

async fn jwks(s: &TestServer) -> JwkSet {
    s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn oauth2_crate_gets_tokens_that_verify_against_the_jwks_across_rotation() {
    let s = TestServer::start_with(|c| c.oauth.keys.rotation_delay = Duration::ZERO).await;
    let (id, secret) = s.cc_client().await;
    let before = fetch_token(&s, &id, &secret).await;
    let claims = verify_with_jwks(&s, &jwks(&s).await, &before);
    assert_eq!(claims["client_id"], id);

    let new = warden::oauth::keys::rotate(&s.store, &s.master, &s.cfg.oauth, warden::jose::Alg::ES256).await.unwrap();
    let mut after = String::new();
    for _ in 0..50 {
        after = fetch_token(&s, &id, &secret).await;
        if jsonwebtoken::decode_header(&after).unwrap().kid.as_deref() == Some(new.kid.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(), Some(new.kid.as_str()));
    let set = jwks(&s).await;
    verify_with_jwks(&s, &set, &after);
    verify_with_jwks(&s, &set, &before);
}

#[tokio::test]
async fn oauth2_crate_reports_our_errors_as_rfc6749_errors() {
    let s = TestServer::start().await;
    let (id, _) = s.cc_client().await;
    let client = BasicClient::new(ClientId::new(id))
        .set_client_secret(ClientSecret::new("wrong".into()))
        .set_token_uri(TokenUrl::new(s.url("/token")).unwrap());
    let http = s.http.clone();
    let err = client.exchange_client_credentials().request_async(&|req| send(http.clone(), req)).await.unwrap_err();
    match err {
        oauth2::RequestTokenError::ServerResponse(r) => {
            assert_eq!(*r.error(), oauth2::basic::BasicErrorResponseType::InvalidClient);
        }
        other => panic!("expected an RFC 6749 error response, got {other:?}"),
    }
}
