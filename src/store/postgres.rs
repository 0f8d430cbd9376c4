//! The multi-node backend: PostgreSQL (and protocol-compatible databases).

use super::{ArtifactKind, Config, StoreError, sql};
use crate::model::{Client, ClientId, InitialAccessToken, Resource, SecretHash, SigningKeyRecord};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

pub(super) struct PgStore {
    pool: sqlx::PgPool,
}

/// How long opening one connection at start-up may take (schema creation and migrations run
/// on their own connection, without the per-request limits).
const OPEN_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

async fn connect_once(options: &PgConnectOptions) -> Result<PgConnection, StoreError> {
    match tokio::time::timeout(OPEN_CONNECT_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(StoreError::Unavailable("connecting to PostgreSQL timed out".into())),
    }
}

impl PgStore {
    /// Connects, creates `database.schema` if one is set, and applies migrations. Migrations
    /// take PostgreSQL's advisory lock, so nodes starting together apply them once; they run
    /// on a connection of their own, which may wait for that lock as long as it takes.
    ///
    /// The request pool then fails fast (`database.timeout`): acquiring a connection, opening
    /// one included, is bounded by it; the server cancels a statement that runs longer
    /// (`statement_timeout`) and ends a transaction left idle (a client gone mid-transaction
    /// holds no locks for long); and a connection handed back to the pool must answer a ping
    /// within it or is dropped, so connections to a silent (black-holed) server never clog the
    /// pool and it recovers by itself once the server answers again.
    pub(super) async fn open(cfg: &Config) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(&cfg.url)?;
        if !cfg.schema.is_empty() {
            let mut conn = connect_once(&options).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{}\"",
                cfg.schema.replace('"', "\"\"")
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await?;
            options = options.options([("search_path", cfg.schema.as_str())]);
        }
        // A pool of one, as `Migrator::run` on a bare connection makes this future not `Send`.
        let migrations = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(OPEN_CONNECT_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        super::migrator(super::migrations!("postgres")).run(&migrations).await?;
        migrations.close().await;

        let timeout = cfg.timeout;
        let idle_in_transaction = timeout.max(Duration::from_secs(10));
        let options = options.options([
            ("statement_timeout", timeout.as_millis().to_string()),
            ("idle_in_transaction_session_timeout", idle_in_transaction.as_millis().to_string()),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections.max(1))
            .acquire_timeout(timeout)
            .after_release(move |conn, _| {
                Box::pin(async move {
                    match tokio::time::timeout(timeout, conn.ping()).await {
                        Ok(Ok(())) => Ok(true),
                        Ok(Err(e)) => Err(e),
                        // A silent peer: close without waiting for it.
                        Err(_) => Err(sqlx::Error::PoolTimedOut),
                    }
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }
}

/// One round trip.
#[async_trait::async_trait]
impl super::guard::Probe for PgStore {
    async fn probe(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

sql::impl_sql_store!(PgStore);
super::consumers::impl_consumers_store!(PgStore);
