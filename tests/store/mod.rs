//! The storage suite (`warden::store::suite`) on every backend.

use crate::support::PgSchema;
use std::time::Duration;
use warden::store::{Config, Store, suite};

fn config(url: &str, schema: &str) -> Config {
    Config { url: url.into(), schema: schema.into(), max_connections: 8, purge_interval: Duration::from_secs(60), timeout: Duration::from_secs(1) }
}

#[tokio::test]
async fn suite_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config("", ""), dir.path()).await.unwrap();
    assert_eq!(store.backend, "sqlite");
    suite::run(&store).await;
    let fresh = Store::open(&config("", ""), &dir.path().join("ring")).await.unwrap();
    ring_survives_a_record_it_cannot_open(&fresh).await;
}

/// A signing key sealed under another master key (written by a CLI run with the wrong key,
/// before check values existed) is the newest ES256 key: the ring skips it and goes on
/// signing with the key before it, and a refresh does not fail.
async fn ring_survives_a_record_it_cannot_open(store: &Store) {
    use warden::jose::{Alg, KeyRing, generate_key_record};
    use warden::secrets::MasterKey;
    let master = MasterKey::from_bytes(&[1; 32]);
    let now = warden::model::unix_now();
    let good = generate_key_record(Alg::ES256, &master, now - 20, now - 20).unwrap();
    let bad = generate_key_record(Alg::ES256, &MasterKey::from_bytes(&[2; 32]), now - 10, now - 10).unwrap();
    store.catalog.rotate_signing_key(&good, None).await.unwrap();
    store.catalog.rotate_signing_key(&bad, None).await.unwrap();
    let ring = KeyRing::default();
    warden::oauth::keys::refresh(store, &master, &ring).await.expect("a bad record does not fail the refresh");
    let state = ring.current();
    assert_eq!(state.signer(Alg::ES256).unwrap().kid, good.kid, "the last key that opens signs");
    assert_eq!(state.skipped, vec![bad.kid.clone()]);
    assert!(!state.jwks().contains(bad.kid.as_str()));
    assert_eq!(ring.skipped_total(), 1);
}

#[tokio::test]
async fn sqlite_migrations_apply_once_and_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("nested/w.db").display());
    let store = Store::open(&config(&url, ""), dir.path()).await.unwrap();
    store.artifacts.put(warden::store::ArtifactKind::RevokedJti, "j", b"x", i64::MAX, None).await.unwrap();
    drop(store);
    let again = Store::open(&config(&url, ""), dir.path()).await.unwrap();
    assert!(again.artifacts.get(warden::store::ArtifactKind::RevokedJti, "j", 0).await.unwrap().is_some());
}

#[tokio::test]
async fn processes_opening_a_fresh_sqlite_file_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move { Store::open(&config("", ""), &path).await.map(|_| ()) })
        })
        .collect();
    for o in opens {
        o.await.unwrap().expect("every concurrent open succeeds");
    }
}

#[tokio::test]
async fn suite_on_postgres() {
    let Some(pg) = PgSchema::new("warden_suite").await else { return };
    let (url, schema) = (&pg.url, &pg.schema);
    let store = Store::open(&config(url, schema), std::path::Path::new("/nonexistent")).await.unwrap();
    assert_eq!(store.backend, "postgres");
    suite::run(&store).await;
    // Opening again finds the migrations applied and the schema in place.
    let again = Store::open(&config(url, schema), std::path::Path::new("/nonexistent")).await.unwrap();
    assert!(again.catalog.clients().await.unwrap().is_empty());
    drop((store, again));
    let Some(pg) = PgSchema::new("warden_ring").await else { return };
    let store = Store::open(&config(&pg.url, &pg.schema), std::path::Path::new("/nonexistent")).await.unwrap();
    ring_survives_a_record_it_cannot_open(&store).await;
}

#[tokio::test]
async fn unreachable_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config("postgres://nobody@127.0.0.1:1/none", "");
    let err = match Store::open(&cfg, dir.path()).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("must fail"),
    };
    assert_eq!(err, "storage unavailable");
}
