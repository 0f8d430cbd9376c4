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
        create_private(path).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // Two processes opening a fresh file at once (a CLI command beside a starting server)
        // can collide: switching the file to WAL needs an exclusive lock that is not waited
        // for, and SQLite has no advisory lock for migrations, so the loser fails with "database
        // is locked" or "table exists". Trying again finds the file ready.
        let migrator = super::migrator(super::migrations!("sqlite"));
        let mut attempt = 0;
        let pool = loop {
            let opened = async {
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections.max(1))
                    .connect_with(options.clone())
                    .await?;
                migrator.run(&pool).await?;
                Ok::<_, StoreError>(pool)
            };
            match opened.await {
                Ok(pool) => break pool,
                Err(_) if attempt < 8 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(25 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Self { pool })
    }
}

/// Creates the file's directory (mode 0700) and the file itself (mode 0600) when missing, so
/// the database never exists readable by other users, not even for a moment; SQLite gives its
/// `-wal` and `-shm` files the database file's mode. An existing file keeps its mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

sql::impl_sql_store!(SqliteStore);
