//! The multi-node backend: PostgreSQL (and protocol-compatible databases).

use super::{ArtifactKind, Config, StoreError, sql};
use crate::model::{Client, ClientId, InitialAccessToken, Resource, SecretHash, SigningKeyRecord};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use std::str::FromStr;

pub(super) struct PgStore {
    pool: sqlx::PgPool,
}

impl PgStore {
    /// Connects, creates `database.schema` if one is set, and applies migrations. Migrations
    /// take PostgreSQL's advisory lock, so nodes starting together apply them once.
    pub(super) async fn open(cfg: &Config) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(&cfg.url)?;
        if !cfg.schema.is_empty() {
            let mut conn = PgConnection::connect_with(&options).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{}\"",
                cfg.schema.replace('"', "\"\"")
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await?;
            options = options.options([("search_path", cfg.schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections.max(1))
            .connect_with(options)
            .await?;
        super::migrator(super::migrations!("postgres")).run(&pool).await?;
        Ok(Self { pool })
    }
}

sql::impl_sql_store!(PgStore);
