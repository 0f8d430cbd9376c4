//! Restart keeps clients, keys and revocations.

use crate::support::TestServer;
use serde_json::{Value, json};

#[tokio::test]
async fn clients_keys_and_revocations_survive_a_restart() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let kept = s.token(&id, &secret, &[]).await;
    let revoked = s.token(&id, &secret, &[]).await;
    assert_eq!(s.post_form("/revoke", Some((&id, &secret)), &[("token", &revoked)]).await.status(), 200);
    let jwks_before: Value = s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap();
    let dir = s.stop().await;

    let s = TestServer::start_in(dir, |_| {}).await;
    // The issuer (port) changed, so compare what does not depend on it.
    let jwks_after: Value = s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks_before, jwks_after, "same keys after restart");
    let fresh = s.token(&id, &secret, &[]).await;
    assert_eq!(s.introspect(&id, &secret, &fresh).await["active"], true, "client still works");
    // Old tokens carry the old issuer URL (a new port), so check revocation in the store.
    let (_, claims) = crate::support::jwt_parts(&revoked);
    let jti = claims["jti"].as_str().unwrap();
    assert!(s.holds(warden::store::ArtifactKind::RevokedJti, jti, warden::model::unix_now()).await, "the revocation is still recorded");
    let (_, kept_claims) = crate::support::jwt_parts(&kept);
    let kept_jti = kept_claims["jti"].as_str().unwrap();
    assert!(!s.holds(warden::store::ArtifactKind::RevokedJti, kept_jti, 0).await);
}

#[tokio::test]
async fn a_revoked_token_stays_revoked_across_restart_with_a_fixed_issuer() {
    // With a fixed issuer the old token itself can be introspected after the restart.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let fixed = move |c: &mut warden::config::Config| {
        c.oauth.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.roles = vec![warden::config::Role::Provider];
    };
    let s = TestServer::start_with(fixed).await;
    let (id, secret) = s.cc_client().await;
    let revoked = s.token(&id, &secret, &[]).await;
    let kept = s.token(&id, &secret, &[]).await;
    assert_eq!(s.post_form("/revoke", Some((&id, &secret)), &[("token", &revoked)]).await.status(), 200);
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, fixed).await;
    assert_eq!(s.introspect(&id, &secret, &revoked).await, json!({"active": false}));
    assert_eq!(s.introspect(&id, &secret, &kept).await["active"], true);
}
