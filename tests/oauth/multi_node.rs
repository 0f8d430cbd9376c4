//! Two provider nodes over one PostgreSQL database behave as one authorization server:
//! clients, keys and revocations written through either are honoured by both.

use crate::support::{PgSchema, TestServer};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn two_nodes_share_clients_keys_and_revocations_over_postgres() {
    let Some(pg) = PgSchema::new("warden_nodes").await else { return };
    let (url, schema) = (pg.url.clone(), pg.schema.clone());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{port}");
    let master = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [42u8; 32]);
    let node = |issuer: String, url: String, schema: String| {
        move |c: &mut warden::config::Config| {
            c.database.url = url;
            c.database.schema = schema;
            c.roles = vec![warden::config::Role::Provider];
            // Both nodes answer for the same issuer (as behind a load balancer).
            c.oauth.issuer = issuer.clone();
            c.oauth.default_audience = issuer;
            // Longer than the key refresh (200 ms in tests): every node knows a rotated key
            // before any node signs with it — what rotation_delay is for.
            c.oauth.keys.rotation_delay = Duration::from_secs(1);
        }
    };
    let a = TestServer::start_shared(&master, node(issuer.clone(), url.clone(), schema.clone())).await;
    let b = TestServer::start_shared(&master, node(issuer.clone(), url.clone(), schema.clone())).await;

    let (id, secret) = a.cc_client().await;
    let t = a.token(&id, &secret, &[]).await;
    assert_eq!(b.introspect(&id, &secret, &t).await["active"], true, "node B trusts node A's key");
    assert_eq!(b.post_form("/revoke", Some((&id, &secret)), &[("token", &t)]).await.status(), 200);
    assert_eq!(a.introspect(&id, &secret, &t).await, json!({"active": false}), "revoked on B, inactive on A");

    let new = warden::oauth::keys::rotate(&a.store, &a.master, &a.cfg.oauth, warden::jose::Alg::ES256).await.unwrap();
    let mut signed_by_new = false;
    for _ in 0..60 {
        let t = b.token(&id, &secret, &[]).await;
        if crate::support::jwt_parts(&t).0["kid"] == new.kid.0 {
            assert_eq!(a.introspect(&id, &secret, &t).await["active"], true);
            signed_by_new = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(signed_by_new, "node B signs with the key rotated through node A's store");
    drop(a);
    drop(b);
}
