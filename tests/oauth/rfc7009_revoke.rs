//! RFC 7009 token revocation.

use crate::support::{TestServer, assert_oauth_error};
use serde_json::json;

#[tokio::test]
async fn a_revoked_token_is_inactive() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let t = s.token(&id, &secret, &[]).await;
    let other = s.token(&id, &secret, &[]).await;
    let resp = s.post_form("/revoke", Some((&id, &secret)), &[("token", &t), ("token_type_hint", "access_token")]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(s.introspect(&id, &secret, &t).await, json!({"active": false}));
    assert_eq!(s.introspect(&id, &secret, &other).await["active"], true, "only that token");
    // Revoking again, or revoking nonsense, is still a success.
    assert_eq!(s.post_form("/revoke", Some((&id, &secret)), &[("token", &t)]).await.status(), 200);
    assert_eq!(s.post_form("/revoke", Some((&id, &secret)), &[("token", "no-such-token")]).await.status(), 200);
    let hint = [("token", "x"), ("token_type_hint", "refresh_token")];
    assert_eq!(s.post_form("/revoke", Some((&id, &secret)), &hint).await.status(), 200);
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token() {
    let s = TestServer::start().await;
    let (a, a_secret) = s.cc_client().await;
    let (b, b_secret) = s.cc_client().await;
    let t = s.token(&a, &a_secret, &[]).await;
    let resp = s.post_form("/revoke", Some((&b, &b_secret)), &[("token", &t)]).await;
    assert_oauth_error(resp, 400, "unauthorized_client").await;
    assert_eq!(s.introspect(&a, &a_secret, &t).await["active"], true);
}

#[tokio::test]
async fn revocation_requires_client_authentication_and_a_token() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let t = s.token(&id, &secret, &[]).await;
    assert_oauth_error(s.post_form("/revoke", None, &[("token", &t)]).await, 401, "invalid_client").await;
    assert_oauth_error(s.post_form("/revoke", Some((&id, &secret)), &[]).await, 400, "invalid_request").await;
    assert_eq!(s.introspect(&id, &secret, &t).await["active"], true);
}

#[tokio::test]
async fn a_revocation_is_kept_while_the_token_could_still_be_accepted_and_no_longer() {
    // Verification accepts a token until exp + clock_skew. The revocation record must cover
    // that last second and be purged just after it: gone earlier, the token would pass again.
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let t = s.token(&id, &secret, &[]).await;
    assert_eq!(s.post_form("/revoke", Some((&id, &secret)), &[("token", &t)]).await.status(), 200);
    let (_, claims) = crate::support::jwt_parts(&t);
    let (jti, exp) = (claims["jti"].as_str().unwrap(), claims["exp"].as_i64().unwrap());
    let last_accepting = exp + s.cfg.oauth.clock_skew.as_secs() as i64;
    let revoked = warden::store::ArtifactKind::RevokedJti;
    assert!(s.holds(revoked, jti, last_accepting).await, "still revoked at exp + skew");
    assert!(!s.holds(revoked, jti, last_accepting + 1).await, "purged once no verifier accepts it");
}
