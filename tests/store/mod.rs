//! The storage suite (`warden::store::suite`) on every backend.

use crate::support::{postgres_url, unique_schema};
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
    let Some(url) = postgres_url().await else { return };
    let schema = unique_schema("warden_suite");
    let store = Store::open(&config(&url, &schema), std::path::Path::new("/nonexistent")).await.unwrap();
    assert_eq!(store.backend, "postgres");
    suite::run(&store).await;
    // Opening again finds the migrations applied and the schema in place.
    let again = Store::open(&config(&url, &schema), std::path::Path::new("/nonexistent")).await.unwrap();
    assert!(again.catalog.clients().await.unwrap().is_empty());
    drop_schema(&url, &schema).await;
}

pub async fn drop_schema(url: &str, schema: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE"))).execute(&mut conn).await.unwrap();
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
