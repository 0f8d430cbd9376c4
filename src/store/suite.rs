//! The backend-agnostic storage test suite (after hydra's `manager_test_helpers.go`). The
//! integration tests run it against SQLite always and PostgreSQL when one is configured, so
//! both backends keep the same contract. Panics on the first broken promise.

use super::{ArtifactKind, Store, StoreError};
use crate::model::{
    Address, AuthMethod, Claims, Client, ClientId, ClientMetadata, GrantType, InitialAccessToken,
    Kid, Origin, PasswordHash, Resource, SecretHash, SigningKeyRecord, User, UserId, Username,
};

fn client(id: &str, now: i64) -> Client {
    Client {
        client_id: ClientId(id.into()),
        metadata: ClientMetadata {
            client_name: Some(format!("app {id}")),
            redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            response_types: vec![],
            token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
            scope: vec!["read".into()],
            jwks: None,
            client_uri: None,
            logo_uri: None,
            contacts: vec![],
            tos_uri: None,
            policy_uri: None,
            software_id: None,
            software_version: None,
            audience: vec!["https://api.example".into()],
            access_token_lifetime: Some(60),
            resource_server_for: vec!["https://self.example".into()],
            dpop_bound_access_tokens: true,
            id_token_signed_response_alg: Some("ES256".into()),
            first_party: true,
            require_pushed_authorization_requests: true,
            post_logout_redirect_uris: vec!["https://app.example/bye".into()],
            application_type: crate::model::ApplicationType::Native,
        },
        secret_hash: Some(SecretHash([7; 32])),
        registration_token_hash: None,
        origin: Origin::Operator,
        created_at: now,
        updated_at: now,
        revision: 0,
    }
}

fn key(kid: &str, alg: &str, now: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: Kid(kid.into()),
        alg: alg.into(),
        sealed_private: vec![1, 2, 3, 0, 255],
        public_jwk: serde_json::json!({"kty": "EC", "kid": kid}),
        created_at: now,
        activate_at: now,
        publish_until: None,
    }
}

/// Runs every check against `store`, which must be empty.
pub async fn run(store: &Store) {
    settings(store).await;
    clients(store).await;
    signing_keys(store).await;
    initial_access_tokens(store).await;
    resources(store).await;
    users(store).await;
    artifacts(store).await;
    revoked_since(store).await;
    consume_is_atomic(store).await;
    consumers(store).await;
}

/// Settings hold the master-key check value: written once, never replaced by a racer.
async fn settings(store: &Store) {
    let c = store.catalog.as_ref();
    assert!(!c.holds_records().await.unwrap(), "a fresh store holds nothing");
    assert_eq!(c.setting("master_key_check").await.unwrap(), None);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.catalog.init_setting("race", &format!("v{i}")).await.unwrap() }));
    }
    let mut won = 0;
    for t in tasks {
        won += t.await.unwrap() as usize;
    }
    assert_eq!(won, 1, "exactly one init_setting wins");
    let winner = c.setting("race").await.unwrap().unwrap();
    assert!(!c.init_setting("race", "other").await.unwrap());
    assert_eq!(c.setting("race").await.unwrap().unwrap(), winner, "init never replaces");
    assert!(c.holds_records().await.unwrap(), "a setting is a record");

    c.raise_setting("horizon", 600).await.unwrap();
    c.raise_setting("horizon", 90_000).await.unwrap();
    c.raise_setting("horizon", 300).await.unwrap();
    assert_eq!(c.setting("horizon").await.unwrap().as_deref(), Some("90000"), "numeric, never lowered");
    c.put_setting("race", "replaced").await.unwrap();
    assert_eq!(c.setting("race").await.unwrap().as_deref(), Some("replaced"));
}

async fn clients(store: &Store) {
    let c = store.catalog.as_ref();
    let a = client("suite-a", 100);
    c.insert_client(&a).await.unwrap();
    assert!(matches!(c.insert_client(&a).await, Err(StoreError::Conflict)), "duplicate id");
    let loaded = c.client(&a.client_id).await.unwrap().expect("inserted client is found");
    assert_eq!(loaded.metadata, a.metadata);
    assert_eq!(loaded.secret_hash, a.secret_hash);
    assert_eq!(loaded.origin, Origin::Operator);

    let mut changed = loaded.clone();
    changed.metadata.scope.push("write".into());
    changed.secret_hash = Some(SecretHash([9; 32]));
    changed.updated_at = 200;
    c.update_client(&changed).await.unwrap();
    assert!(matches!(c.update_client(&changed).await, Err(StoreError::Conflict)), "stale revision");
    let reloaded = c.client(&a.client_id).await.unwrap().unwrap();
    assert_eq!(reloaded.revision, loaded.revision + 1);
    assert_eq!(reloaded.metadata.scope, vec!["read", "write"]);
    assert_eq!(reloaded.secret_hash, Some(SecretHash([9; 32])));
    assert_eq!(reloaded.updated_at, 200);

    c.insert_client(&client("suite-b", 101)).await.unwrap();
    let ids: Vec<String> = c.clients().await.unwrap().into_iter().map(|c| c.client_id.0).collect();
    assert_eq!(ids, ["suite-a", "suite-b"], "listed oldest first");

    c.delete_client(&a.client_id).await.unwrap();
    assert!(c.client(&a.client_id).await.unwrap().is_none());
    assert!(matches!(c.delete_client(&a.client_id).await, Err(StoreError::NotFound)));
    assert!(matches!(c.update_client(&a).await, Err(StoreError::NotFound)));
    c.delete_client(&ClientId("suite-b".into())).await.unwrap();
}

async fn signing_keys(store: &Store) {
    let c = store.catalog.as_ref();
    c.rotate_signing_key(&key("k1", "ES256", 10), None).await.unwrap();
    c.rotate_signing_key(&key("r1", "RS256", 11), Some(0)).await.unwrap();
    c.rotate_signing_key(&key("k2", "ES256", 12), Some(500)).await.unwrap();
    let keys = c.signing_keys().await.unwrap();
    let until: Vec<(&str, Option<i64>)> =
        keys.iter().map(|k| (k.kid.as_str(), k.publish_until)).collect();
    assert_eq!(until, [("k1", Some(500)), ("r1", None), ("k2", None)], "only ES256 retired");
    assert_eq!(keys[0].sealed_private, vec![1, 2, 3, 0, 255], "bytes round-trip");
    assert_eq!(keys[0].public_jwk["kid"], "k1");

    assert!(matches!(
        c.rotate_signing_key(&key("k2", "ES256", 13), Some(600)).await,
        Err(StoreError::Conflict)
    ));
    let after_failed = c.signing_keys().await.unwrap();
    assert_eq!(after_failed[2].publish_until, None, "a failed rotation changes nothing");
    c.rotate_signing_key(&key("k3", "ES256", 14), None).await.unwrap();
    let k2 = c.signing_keys().await.unwrap().into_iter().find(|k| k.kid.0 == "k2").unwrap();
    assert_eq!(k2.publish_until, None, "a plain insert retires nothing");

    assert_eq!(c.delete_expired_keys(499).await.unwrap(), 0);
    assert_eq!(c.delete_expired_keys(500).await.unwrap(), 1);
    let kids: Vec<String> = c.signing_keys().await.unwrap().into_iter().map(|k| k.kid.0).collect();
    assert_eq!(kids, ["r1", "k2", "k3"]);

    assert_eq!(c.retire_signing_keys("ES256", 900).await.unwrap(), 2, "k2 and k3");
    assert_eq!(c.retire_signing_keys("ES256", 950).await.unwrap(), 0, "already retiring keys keep their date");
    let until: Vec<(String, Option<i64>)> =
        c.signing_keys().await.unwrap().into_iter().map(|k| (k.kid.0, k.publish_until)).collect();
    assert_eq!(until, [("r1".into(), None), ("k2".into(), Some(900)), ("k3".into(), Some(900))]);
}

async fn initial_access_tokens(store: &Store) {
    let c = store.catalog.as_ref();
    let t = InitialAccessToken {
        id: "iat1".into(),
        token_hash: SecretHash([3; 32]),
        description: "ci".into(),
        created_at: 5,
        expires_at: Some(1000),
        revoked_at: None,
    };
    c.insert_initial_access_token(&t).await.unwrap();
    let found = c.initial_access_token_by_hash(&SecretHash([3; 32])).await.unwrap().unwrap();
    assert_eq!(found.id, "iat1");
    assert!(found.is_usable(999) && !found.is_usable(1000));
    assert!(c.initial_access_token_by_hash(&SecretHash([4; 32])).await.unwrap().is_none());
    c.revoke_initial_access_token("iat1", 50).await.unwrap();
    assert!(matches!(c.revoke_initial_access_token("iat1", 51).await, Err(StoreError::NotFound)));
    let all = c.initial_access_tokens().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].revoked_at, Some(50));
    assert!(!all[0].is_usable(60));
}

async fn resources(store: &Store) {
    let c = store.catalog.as_ref();
    let api = Resource {
        audience: "https://api.example".into(),
        name: Some("API".into()),
        access_token_lifetime: Some(300),
        created_at: 7,
    };
    c.insert_resource(&api).await.unwrap();
    assert!(matches!(c.insert_resource(&api).await, Err(StoreError::Conflict)));
    let other = Resource { audience: "urn:other".into(), name: None, access_token_lifetime: None, created_at: 8 };
    c.insert_resource(&other).await.unwrap();
    assert_eq!(c.resource("https://api.example").await.unwrap(), Some(api.clone()));
    assert_eq!(c.resources().await.unwrap(), vec![api, other]);
    c.delete_resource("urn:other").await.unwrap();
    assert!(matches!(c.delete_resource("urn:other").await, Err(StoreError::NotFound)));
    assert_eq!(c.resource("urn:other").await.unwrap(), None);
}

fn user(id: &str, username: &str, now: i64) -> User {
    User {
        id: UserId(id.into()),
        username: Username::parse(username).unwrap(),
        disabled: false,
        claims: Claims {
            name: Some("Ada Lovelace".into()),
            email: Some("ada@example.com".into()),
            email_verified: true,
            address: Some(Address { country: Some("UK".into()), ..Default::default() }),
            ..Default::default()
        },
        password_hash: Some(PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into())),
        created_at: now,
        updated_at: now,
    }
}

async fn users(store: &Store) {
    let c = store.catalog.as_ref();
    let ada = user("sub-ada", "Ada", 100);
    c.insert_user(&ada).await.unwrap();
    assert!(matches!(c.insert_user(&user("sub-other", " ADA ", 101)).await, Err(StoreError::Conflict)), "username taken, any case");
    assert!(matches!(c.insert_user(&user("sub-ada", "someone", 101)).await, Err(StoreError::Conflict)), "id taken");

    let loaded = c.user_by_username("aDa").await.unwrap().expect("case-insensitive look-up");
    assert_eq!(loaded.id, ada.id);
    assert_eq!(loaded.username.as_str(), "Ada", "the display form is kept");
    assert_eq!(loaded.claims, ada.claims);
    assert_eq!(loaded.password_hash, ada.password_hash, "hash round trip");
    assert!(!loaded.disabled);
    assert_eq!((loaded.created_at, loaded.updated_at), (100, 100));
    assert_eq!(c.user(&ada.id).await.unwrap().unwrap().username.key(), "ada");
    assert!(c.user_by_username("nobody").await.unwrap().is_none());
    assert!(c.user(&UserId("ada".into())).await.unwrap().is_none(), "the username is not the id");

    c.set_user_disabled(&ada.id, true, 200).await.unwrap();
    let u = c.user(&ada.id).await.unwrap().unwrap();
    assert!(u.disabled);
    assert_eq!(u.updated_at, 200);
    c.set_user_disabled(&ada.id, false, 201).await.unwrap();
    assert!(!c.user(&ada.id).await.unwrap().unwrap().disabled);

    let new_hash = PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3aGFzaA".into());
    c.set_user_password(&ada.id, &new_hash, 300).await.unwrap();
    assert_eq!(c.user(&ada.id).await.unwrap().unwrap().password_hash, Some(new_hash.clone()));

    let claims = Claims { nickname: Some("ada".into()), phone_number: Some("+44 20".into()), phone_number_verified: true, ..Default::default() };
    c.update_user_claims(&ada.id, &claims, 400).await.unwrap();
    let u = c.user(&ada.id).await.unwrap().unwrap();
    assert_eq!(u.claims, claims);
    assert_eq!(u.updated_at, 400);
    assert_eq!(u.password_hash, Some(new_hash.clone()), "claims do not touch the password");

    c.insert_user(&user("sub-bob", "bob", 90)).await.unwrap();
    let names: Vec<String> = c.users().await.unwrap().into_iter().map(|u| u.username.to_string()).collect();
    assert_eq!(names, ["bob", "Ada"], "listed oldest first");

    c.delete_user(&ada.id).await.unwrap();
    assert!(c.user(&ada.id).await.unwrap().is_none());
    assert!(c.user_by_username("ada").await.unwrap().is_none());
    let gone = UserId("sub-ada".into());
    assert!(matches!(c.delete_user(&gone).await, Err(StoreError::NotFound)));
    assert!(matches!(c.set_user_disabled(&gone, true, 1).await, Err(StoreError::NotFound)));
    assert!(matches!(c.set_user_password(&gone, &new_hash, 1).await, Err(StoreError::NotFound)));
    assert!(matches!(c.update_user_claims(&gone, &claims, 1).await, Err(StoreError::NotFound)));
    c.insert_user(&user("sub-ada-2", "ADA", 500)).await.unwrap();
    c.delete_user(&UserId("sub-ada-2".into())).await.unwrap();
    c.delete_user(&UserId("sub-bob".into())).await.unwrap();
    assert!(c.users().await.unwrap().is_empty());
}

async fn artifacts(store: &Store) {
    let a = store.artifacts.as_ref();
    let k = ArtifactKind::RevokedJti;
    a.put(k, "x", b"one", 100, Some("g1")).await.unwrap();
    assert_eq!(a.get(k, "x", 99).await.unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(a.get(k, "x", 100).await.unwrap(), None, "expired is invisible");
    assert_eq!(a.get(ArtifactKind::AssertionJti, "x", 0).await.unwrap(), None, "kinds apart");

    assert!(!a.put_new(k, "x", b"two", 200, 50).await.unwrap(), "live id is a replay");
    assert!(a.put_new(k, "x", b"two", 200, 100).await.unwrap(), "expired id can be reused");
    assert_eq!(a.get(k, "x", 150).await.unwrap().as_deref(), Some(&b"two"[..]));
    assert!(a.put_new(k, "y", b"y", 200, 100).await.unwrap());

    a.put(k, "c", b"code", 300, Some("grant-7")).await.unwrap();
    assert_eq!(a.consume(k, "c", 10).await.unwrap().as_deref(), Some(&b"code"[..]));
    match a.consume(k, "c", 11).await {
        Err(StoreError::AlreadyConsumed { grant_id }) => assert_eq!(grant_id.as_deref(), Some("grant-7")),
        other => panic!("second consume must report reuse, got {other:?}"),
    }
    assert_eq!(a.get(k, "c", 12).await.unwrap(), None, "consumed is invisible");
    assert_eq!(a.consume(k, "never", 10).await.unwrap(), None);

    a.put(k, "g-a", b"1", 300, Some("grant-9")).await.unwrap();
    a.put(k, "g-b", b"2", 300, Some("grant-9")).await.unwrap();
    assert_eq!(a.revoke_by_grant("grant-9").await.unwrap(), 2);
    assert_eq!(a.get(k, "g-a", 0).await.unwrap(), None);

    a.delete(k, "y").await.unwrap();
    a.delete(k, "y").await.unwrap();
    assert_eq!(a.get(k, "y", 0).await.unwrap(), None);
    assert_eq!(a.purge_expired(1_000).await.unwrap(), 2, "x and the consumed c");
    assert_eq!(a.consume(k, "c", 12).await.unwrap(), None, "purged tombstone is gone");
}

/// The revocation feed: live `RevokedJti` rows written after a cursor, in write order;
/// other kinds, expired rows and rows at or before the cursor are not listed.
async fn revoked_since(store: &Store) {
    let a = store.artifacts.as_ref();
    let start = super::now_millis();
    assert!(a.revoked_since(start - 1, 0).await.unwrap().is_empty());
    a.put(ArtifactKind::RevokedJti, "feed-1", b"", 500, None).await.unwrap();
    a.put(ArtifactKind::AssertionJti, "feed-other", b"", 500, None).await.unwrap();
    a.put(ArtifactKind::RevokedJti, "feed-short", b"", 50, None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(a.put_new(ArtifactKind::RevokedJti, "feed-2", b"", 600, 0).await.unwrap());
    let all = a.revoked_since(start - 1, 100).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.jti.as_str()).collect();
    assert_eq!(ids, ["feed-1", "feed-2"], "only live revocations, in write order");
    assert_eq!(all[0].expires_at, 500);
    assert!(all[0].changed_at >= start && all[1].changed_at > all[0].changed_at, "{all:?}");
    let after = a.revoked_since(all[0].changed_at, 100).await.unwrap();
    assert_eq!(after.iter().map(|r| r.jti.as_str()).collect::<Vec<_>>(), ["feed-2"], "the cursor is exclusive");
    assert!(a.revoked_since(all[1].changed_at, 100).await.unwrap().is_empty());
    // Writing again moves a row past the cursor.
    a.put(ArtifactKind::RevokedJti, "feed-1", b"", 700, None).await.unwrap();
    let again = a.revoked_since(all[1].changed_at, 100).await.unwrap();
    assert_eq!((again.len(), again[0].jti.as_str(), again[0].expires_at), (1, "feed-1", 700));
    for id in ["feed-1", "feed-2", "feed-short"] {
        a.delete(ArtifactKind::RevokedJti, id).await.unwrap();
    }
    a.delete(ArtifactKind::AssertionJti, "feed-other").await.unwrap();
}

async fn consume_is_atomic(store: &Store) {
    let k = ArtifactKind::AssertionJti;
    for round in 0..5 {
        let id = format!("race-{round}");
        store.artifacts.put(k, &id, b"p", 10_000, None).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = store.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move { s.artifacts.consume(k, &id, 1).await }));
        }
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(Some(_)) => won += 1,
                Ok(None) | Err(StoreError::AlreadyConsumed { .. }) => {}
                Err(e) => panic!("consume failed: {e:?}"),
            }
        }
        assert_eq!(won, 1, "exactly one consumer wins");

        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = store.clone();
            let id = format!("new-{round}");
            tasks.push(tokio::spawn(async move {
                s.artifacts.put_new(k, &id, b"p", 10_000, 1).await.unwrap()
            }));
        }
        let mut inserted = 0;
        for t in tasks {
            inserted += t.await.unwrap() as usize;
        }
        assert_eq!(inserted, 1, "exactly one put_new wins");
    }
}

/// Consumers: names unique ignoring case among live ones; keys only for live consumers;
/// every change (disable, password, revoke, delete) moves `changed_at`, so a gateway that
/// follows the changes sees each of them, deletions included.
async fn consumers(store: &Store) {
    use crate::model::{ApiKey, Consumer, ConsumerId};
    let c = store.consumers.as_ref();
    let now = 1_700_000_000;
    let consumer = |id: &str, name: &str| Consumer {
        id: ConsumerId(id.into()),
        name: name.into(),
        plan: Some("gold".into()),
        disabled: false,
        password_hash: None,
        deleted: false,
        created_at: now,
        updated_at: now,
        changed_at: 0,
    };
    let key = |id: &str, consumer: &str, byte: u8| ApiKey {
        id: id.into(),
        consumer_id: ConsumerId(consumer.into()),
        key_hash: SecretHash([byte; 32]),
        prefix: "wk_abcd".into(),
        created_at: now,
        revoked_at: None,
        changed_at: 0,
    };
    let before = super::now_millis() - 1;
    c.insert_consumer(&consumer("c1", "Billing")).await.unwrap();
    assert!(matches!(c.insert_consumer(&consumer("c2", "billing")).await, Err(StoreError::Conflict)), "names are unique ignoring case");
    assert!(matches!(c.insert_consumer(&consumer("c1", "other")).await, Err(StoreError::Conflict)));
    let got = c.consumer_by_name("BILLING").await.unwrap().unwrap();
    assert_eq!((got.id.as_str(), got.name.as_str(), got.plan.as_deref(), got.deleted), ("c1", "Billing", Some("gold"), false));
    assert!(got.changed_at > before);
    assert_eq!(c.consumer(&ConsumerId("c1".into())).await.unwrap().unwrap().name, "Billing");
    assert!(c.consumer(&ConsumerId("nope".into())).await.unwrap().is_none());

    c.insert_api_key(&key("k1", "c1", 1)).await.unwrap();
    c.insert_api_key(&key("k2", "c1", 2)).await.unwrap();
    assert!(matches!(c.insert_api_key(&key("k3", "c1", 1)).await, Err(StoreError::Conflict)), "a hash is unique");
    assert!(matches!(c.insert_api_key(&key("k3", "nope", 3)).await, Err(StoreError::NotFound)));
    let keys = c.api_keys(&ConsumerId("c1".into())).await.unwrap();
    assert_eq!(keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), ["k1", "k2"]);
    assert_eq!(keys[0].key_hash, SecretHash([1; 32]));

    let changed = c.consumers_changed_since(before).await.unwrap();
    assert_eq!(changed.len(), 1);
    let mark = changed[0].changed_at;
    let key_mark = c.api_keys_changed_since(before).await.unwrap().iter().map(|k| k.changed_at).max().unwrap();
    assert!(c.consumers_changed_since(mark).await.unwrap().is_empty());
    assert!(c.api_keys_changed_since(key_mark).await.unwrap().is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;

    let id = ConsumerId("c1".into());
    c.set_consumer_disabled(&id, true, now + 1).await.unwrap();
    c.set_consumer_password(&id, Some(&PasswordHash("$argon2id$x".into())), now + 1).await.unwrap();
    let got = c.consumer(&id).await.unwrap().unwrap();
    assert!(got.disabled);
    assert_eq!(got.password_hash, Some(PasswordHash("$argon2id$x".into())));
    assert_eq!(c.consumers_changed_since(mark).await.unwrap().len(), 1, "a change moves changed_at");
    assert!(matches!(c.set_consumer_disabled(&ConsumerId("nope".into()), true, now).await, Err(StoreError::NotFound)));

    c.revoke_api_key(&id, "k1", now + 2).await.unwrap();
    assert!(matches!(c.revoke_api_key(&id, "k1", now + 2).await, Err(StoreError::NotFound)), "revoked once");
    let revoked = c.api_keys_changed_since(key_mark).await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!((revoked[0].id.as_str(), revoked[0].revoked_at), ("k1", Some(now + 2)));

    c.delete_consumer(&id, now + 3).await.unwrap();
    assert!(matches!(c.delete_consumer(&id, now + 3).await, Err(StoreError::NotFound)));
    assert!(c.consumer(&id).await.unwrap().is_none());
    assert!(c.consumers().await.unwrap().is_empty());
    let tomb = c.consumers_changed_since(mark).await.unwrap();
    assert!(tomb[0].deleted && tomb[0].password_hash.is_none(), "the deletion is seen by followers");
    let keys = c.api_keys_changed_since(key_mark).await.unwrap();
    assert!(keys.iter().all(|k| k.revoked_at.is_some()) && keys.iter().any(|k| k.id == "k2"), "its keys are revoked with it");
    assert!(matches!(c.insert_api_key(&key("k4", "c1", 4)).await, Err(StoreError::NotFound)), "no key for a deleted consumer");
    c.insert_consumer(&consumer("c3", "billing")).await.unwrap();
    assert_eq!(c.consumers().await.unwrap().len(), 1, "a deleted consumer's name is free again");
}
