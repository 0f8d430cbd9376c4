//! The embedded default backend: one SQLite file in WAL mode.

use super::{ArtifactKind, StoreError, sql};
use crate::model::{Client, ClientId, InitialAccessToken, Resource, SecretHash, SigningKeyRecord};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;

pub(super) struct SqliteStore {
    pool: sqlx::SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file and applies migrations. WAL lets CLI
    /// commands write while a server reads; `busy_timeout` makes writers queue, not fail.
    pub(super) async fn open(path: &Path, max_connections: u32) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await?;
        super::migrator(super::migrations!("sqlite")).run(&pool).await?;
        Ok(Self { pool })
    }
}

sql::impl_sql_store!(SqliteStore);
