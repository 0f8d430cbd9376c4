//! Two provider nodes over one PostgreSQL database behave as one authorization server:
//! clients, keys and revocations written through either are honoured by both.

use crate::support::{PgSchema, provider_nodes_over_postgres};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn two_nodes_share_clients_keys_and_revocations_over_postgres() {
    let Some(pg) = PgSchema::new("warden_nodes").await else { return };
    // Longer than the key refresh (200 ms in tests): every node knows a rotated key before
    // any node signs with it — what rotation_delay is for.
    let (a, b) = provider_nodes_over_postgres(&pg, |c| c.oauth.keys.rotation_delay = Duration::from_secs(1)).await;

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
