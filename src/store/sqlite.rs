//! The embedded default backend: one SQLite file in WAL mode.

use super::{ArtifactKind, StoreError, sql};
use crate::model::{Client, ClientId, InitialAccessToken, Resource, SecretHash, SigningKeyRecord};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;

pub(super) struct SqliteStore {
    pool: sqlx::SqlitePool,
}

/// How long opening the file and applying migrations may wait for another process's lock.
const OPEN_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl SqliteStore {
    /// Opens (creating if missing) the database file and applies migrations. WAL lets CLI
    /// commands write while a server reads. Afterwards a writer waits for a lock at most
    /// `timeout` (SQLite's `busy_timeout`, so a locked file fails a request within it rather
    /// than queue it for long); migrations, run once at start, may wait longer.
    pub(super) async fn open(path: &Path, max_connections: u32, timeout: Duration) -> Result<Self, StoreError> {
        create_private(path).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(OPEN_BUSY_TIMEOUT)
            .foreign_keys(true);
        // Two processes opening a fresh file at once (a CLI command beside a starting server)
        // can collide: switching the file to WAL needs an exclusive lock that is not waited
        // for, and SQLite has no advisory lock for migrations, so the loser fails with "database
        // is locked" or "table exists". Trying again finds the file ready.
        let migrator = super::migrator(super::migrations!("sqlite"));
        let mut attempt = 0;
        loop {
            let opened = async {
                // A pool of one, as `Migrator::run` on a bare connection makes this future not
                // `Send`.
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(OPEN_BUSY_TIMEOUT)
                    .connect_with(options.clone())
                    .await?;
                migrator.run(&pool).await?;
                pool.close().await;
                Ok::<_, StoreError>(())
            };
            match opened.await {
                Ok(()) => break,
                Err(_) if attempt < 8 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(25 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(timeout)
            .connect_with(options.busy_timeout(timeout))
            .await?;
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

/// Takes the write lock and lets it go: a locked or unwritable file fails this even though
/// it may still serve reads.
#[async_trait::async_trait]
impl super::guard::Probe for SqliteStore {
    async fn probe(&self) -> Result<(), StoreError> {
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        tx.rollback().await?;
        Ok(())
    }
}

sql::impl_sql_store!(SqliteStore);
super::consumers::impl_consumers_store!(SqliteStore);
