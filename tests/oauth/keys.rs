//! Signing-key rotation: a new key is published before it signs; old keys stay published
//! while tokens they signed can still be valid.

use crate::support::{TestServer, jwt_parts};
use serde_json::Value;
use std::time::Duration;
use warden::jose::Alg;
use warden::oauth::keys;

/// The published access-token (ES256) keys; the RS256 ID-token key is left out.
async fn jwks_kids(s: &TestServer) -> Vec<String> {
    let v: Value = s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap();
    v["keys"].as_array().unwrap().iter().filter(|k| k["alg"] != "RS256").map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

/// Waits for `check` (polled every 50 ms) for up to 15 s: an upper bound that returns as soon
/// as the condition holds, generous for a loaded 2-core CI machine.
async fn wait_for(mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached in 15 s");
}

#[tokio::test]
async fn a_rotated_key_is_published_first_and_signs_after_the_delay() {
    let s = TestServer::start_with(|c| c.oauth.keys.rotation_delay = Duration::from_secs(2)).await;
    let (id, secret) = s.cc_client().await;
    let old_token = s.token(&id, &secret, &[]).await;
    let old_kid = jwt_parts(&old_token).0["kid"].as_str().unwrap().to_owned();

    // Rotate through the store, as `warden keys rotate` in another process does.
    let new = keys::rotate(&s.store, &s.master, &s.cfg.oauth, Alg::ES256).await.unwrap();
    wait_for(async || jwks_kids(&s).await.len() == 2).await;
    assert!(jwks_kids(&s).await.contains(&new.kid.0), "published before it signs");
    let during = s.token(&id, &secret, &[]).await;
    assert_eq!(jwt_parts(&during).0["kid"], old_kid, "old key signs during the delay");

    wait_for(async || jwt_parts(&s.token(&id, &secret, &[]).await).0["kid"] == new.kid.0).await;
    assert_eq!(s.introspect(&id, &secret, &old_token).await["active"], true, "old tokens still verify");
    assert!(jwks_kids(&s).await.contains(&old_kid), "old key stays published");

    let mut listed = keys::describe(&s.store.catalog.signing_keys().await.unwrap(), warden::model::unix_now());
    listed.retain(|k| k.alg == "ES256");
    let states: Vec<&str> = listed.iter().map(|k| k.state).collect();
    assert_eq!(states, ["retiring", "active"]);
    assert!(listed[0].publish_until.unwrap() >= new.activate_at + 24 * 3600, "kept while its tokens may live");
}

#[tokio::test]
async fn a_retired_key_is_unpublished_and_purged_after_its_tokens_expire() {
    let s = TestServer::start_with(|c| {
        c.oauth.keys.rotation_delay = Duration::ZERO;
        c.oauth.access_token_lifetime = Duration::from_secs(1);
        c.oauth.max_access_token_lifetime = Duration::from_secs(1);
        // A retired key stays published for the longest token lifetime, ID tokens' included.
        c.oauth.id_token_lifetime = Duration::from_secs(1);
        c.oauth.clock_skew = Duration::ZERO;
        c.database.purge_interval = Duration::from_millis(300);
    })
    .await;
    let old = jwks_kids(&s).await;
    keys::rotate(&s.store, &s.master, &s.cfg.oauth, Alg::ES256).await.unwrap();
    wait_for(async || jwks_kids(&s).await.len() == 2).await;
    wait_for(async || jwks_kids(&s).await.len() == 1).await;
    assert_ne!(jwks_kids(&s).await, old);
    wait_for(async || {
        let n = s.store.catalog.signing_keys().await.unwrap().iter().filter(|k| k.alg == "ES256").count();
        n == 1
    })
    .await;
}

#[tokio::test]
async fn keys_are_sealed_at_rest_and_a_wrong_master_key_is_refused() {
    let s = TestServer::start().await;
    let rec = &s.store.catalog.signing_keys().await.unwrap()[0];
    let public = rec.public_jwk.to_string();
    // Nothing in the sealed bytes looks like PKCS#8 (DER SEQUENCE header) or the public key.
    assert!(!rec.sealed_private.windows(2).take(1).any(|w| w == [0x30, 0x81]));
    assert!(!String::from_utf8_lossy(&rec.sealed_private).contains(&public));
    let dir = s.stop().await;
    let master_file = std::fs::metadata(dir.path().join("master.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(master_file.permissions().mode() & 0o777, 0o600);

    let cfg = crate::support::test_config(dir.path());
    let wrong = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32]);
    let err = match warden::app::Core::open(&cfg, Some(&wrong)).await {
        Ok(_) => panic!("a wrong master key must be refused at open, before anything is written"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("WARDEN_MASTER_KEY") && err.contains("does not match"), "{err}");
}

#[tokio::test]
async fn a_key_scheduled_for_later_does_not_leave_the_server_without_a_signer() {
    // `warden keys rotate --alg EdDSA` before the first start: the key signs only later.
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut cfg = crate::support::test_config(dir.path());
    cfg.oauth.keys.access_token_alg = Alg::EdDSA;
    let core = warden::app::Core::open(&cfg, None).await.unwrap();
    let next = keys::rotate(&core.store, &core.master, &cfg.oauth, Alg::EdDSA).await.unwrap();
    assert!(next.activate_at > warden::model::unix_now());
    drop(core);

    let s = TestServer::start_in(dir, |c| c.oauth.keys.access_token_alg = Alg::EdDSA).await;
    let (id, secret) = s.cc_client().await;
    let t = s.token(&id, &secret, &[]).await;
    assert_eq!(jwt_parts(&t).0["alg"], "EdDSA");
    assert!(jwks_kids(&s).await.contains(&next.kid.0), "the scheduled key stays published");
}

/// Two rotations in one second: the second key activates strictly after the first (whatever
/// the keys of other algorithms), so the newest key is the one that ends up signing.
#[tokio::test]
async fn rotations_in_the_same_second_activate_one_after_the_other() {
    let s = TestServer::start_with(|c| c.oauth.keys.rotation_delay = Duration::ZERO).await;
    let first = keys::rotate(&s.store, &s.master, &s.cfg.oauth, Alg::ES256).await.unwrap();
    let second = keys::rotate(&s.store, &s.master, &s.cfg.oauth, Alg::ES256).await.unwrap();
    assert!(second.activate_at > first.activate_at, "{} then {}", first.activate_at, second.activate_at);
    let records = s.store.catalog.signing_keys().await.unwrap();
    assert_eq!(warden::jose::signing_record(&records, Alg::ES256, second.activate_at).unwrap().kid, second.kid);
}
