//! Persistence: one set of traits, a SQLite and a PostgreSQL backend chosen once at start-up.
//!
//! Storage is split by lifetime (see ARCHITECTURE.md):
//! - [`Catalog`] holds durable records: clients, users, signing keys, initial access tokens.
//! - [`Artifacts`] holds ephemeral, expiring records with an atomic consume-once: revoked token
//!   ids, assertion `jti`s, codes, sessions and refresh tokens (stored under their grant, the family).
//!
//! Both backends run the same SQL (`sql.rs`) and the same test suite (`suite.rs`).

mod consumers;
mod guard;
mod sql;
mod sqlite;
#[cfg(feature = "postgres")]
mod postgres;
#[doc(hidden)]
pub mod suite;

use crate::model::{
    Claims, Client, ClientId, InitialAccessToken, PasswordHash, Resource, SecretHash,
    SigningKeyRecord, User, UserId,
};
use async_trait::async_trait;
pub use consumers::Consumers;
pub use guard::Health;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Everything a storage backend can report. Callers never see SQL text or file paths: the
/// cause is kept as `source` for logs only.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// A record with the same identity exists.
    #[error("already exists")]
    Conflict,
    /// A consume-once artifact was consumed before; carries the grant it belonged to.
    #[error("already consumed")]
    AlreadyConsumed {
        /// The grant the artifact was issued under, so its tokens can be revoked.
        grant_id: Option<String>,
    },
    /// The database could not be reached or refused the operation.
    #[error("storage unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Stored data could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Unavailable(Box::new(e)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Unavailable(Box::new(e))
    }
}

/// Kinds of ephemeral artifacts. Each kind is its own id space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A revoked JWT access token, keyed by `jti`, kept until the token would have expired.
    RevokedJti,
    /// A `jti` of a client assertion (RFC 7523 §3 replay protection), keyed by client + jti.
    AssertionJti,
    /// A DPoP proof's key thumbprint + `jti` (RFC 9449 §11.1 replay protection).
    DpopJti,
    /// An authorization code, keyed by its hash; consumed once.
    AuthorizationCode,
    /// What a grant (a code's redemption) issued, keyed by grant id: the access-token `jti`s
    /// to revoke when the code is replayed, or a marker that the grant is revoked.
    Grant,
    /// The grant an access token issued to a user belongs to, keyed by the token's `jti`:
    /// userinfo reads the grant's `claims` request from it.
    TokenGrant,
    /// An authorization request waiting for the user (login, consent), keyed by id hash.
    Interaction,
    /// A browser session, keyed by the hash of its cookie.
    Session,
    /// A user's consent to a client: `user id:client id` → granted scopes.
    Consent,
    /// A pushed authorization request (RFC 9126), keyed by the hash of its `request_uri`.
    PushedRequest,
    /// A logout request waiting for the user's confirmation.
    LogoutRequest,
    /// A refresh token, keyed by its hash, stored under its grant (the family); consumed once
    /// when it is rotated, so a second use is seen as `AlreadyConsumed`.
    RefreshToken,
    /// A marker that a grant (a refresh-token family) was revoked, keyed by grant id; never
    /// stored under the grant, so revoking the grant's artifacts leaves it in place.
    GrantRevoked,
}

impl ArtifactKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RevokedJti => "revoked_jti",
            Self::AssertionJti => "assertion_jti",
            Self::DpopJti => "dpop_jti",
            Self::AuthorizationCode => "authorization_code",
            Self::Grant => "grant",
            Self::TokenGrant => "token_grant",
            Self::Interaction => "interaction",
            Self::Session => "session",
            Self::Consent => "consent",
            Self::PushedRequest => "pushed_request",
            Self::LogoutRequest => "logout_request",
            Self::RefreshToken => "refresh_token",
            Self::GrantRevoked => "grant_revoked",
        }
    }
}

/// Durable records. Every method is atomic on its own.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// Inserts a new client; `Conflict` if the client id is taken.
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError>;
    /// Replaces a client's metadata and hashes if its stored `revision` is still
    /// `client.revision` (the one read), and bumps the revision. `Conflict` if someone changed
    /// it in between (read again and retry); `NotFound` if it does not exist.
    async fn update_client(&self, client: &Client) -> Result<(), StoreError>;
    /// Loads one client.
    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError>;
    /// All clients, oldest first.
    async fn clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Deletes a client; `NotFound` if it did not exist.
    async fn delete_client(&self, id: &ClientId) -> Result<(), StoreError>;

    /// All stored signing keys, oldest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// In one transaction: with `retire_until`, every current key of `new.alg` (those with no
    /// `publish_until`) gets `publish_until = retire_until`; then `new` is inserted. Without
    /// it, a plain insert (the first key of an algorithm).
    async fn rotate_signing_key(
        &self,
        new: &SigningKeyRecord,
        retire_until: Option<i64>,
    ) -> Result<(), StoreError>;
    /// Deletes keys whose `publish_until` has passed; returns how many.
    async fn delete_expired_keys(&self, now: i64) -> Result<u64, StoreError>;

    /// Stores a new initial access token.
    async fn insert_initial_access_token(&self, t: &InitialAccessToken) -> Result<(), StoreError>;
    /// Looks an initial access token up by its hash.
    async fn initial_access_token_by_hash(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<InitialAccessToken>, StoreError>;
    /// All initial access tokens, oldest first.
    async fn initial_access_tokens(&self) -> Result<Vec<InitialAccessToken>, StoreError>;
    /// Marks a token revoked; `NotFound` if there is no such unrevoked token.
    async fn revoke_initial_access_token(&self, id: &str, now: i64) -> Result<(), StoreError>;

    /// Inserts a resource; `Conflict` if the audience is taken.
    async fn insert_resource(&self, r: &Resource) -> Result<(), StoreError>;
    /// Loads one resource by audience.
    async fn resource(&self, audience: &str) -> Result<Option<Resource>, StoreError>;
    /// All resources, oldest first.
    async fn resources(&self) -> Result<Vec<Resource>, StoreError>;
    /// Deletes a resource; `NotFound` if it did not exist.
    async fn delete_resource(&self, audience: &str) -> Result<(), StoreError>;

    /// Inserts a new user; `Conflict` if the id or the username (case-insensitively) is taken.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    /// Loads one user by id (`sub`).
    async fn user(&self, id: &UserId) -> Result<Option<User>, StoreError>;
    /// Loads one user by username, case-insensitively.
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;
    /// All users, oldest first.
    async fn users(&self) -> Result<Vec<User>, StoreError>;
    /// Replaces a user's claims and sets `updated_at = now`; `NotFound` if there is no such user.
    async fn update_user_claims(&self, id: &UserId, claims: &Claims, now: i64) -> Result<(), StoreError>;
    /// Disables or enables a user; `NotFound` if there is no such user.
    async fn set_user_disabled(&self, id: &UserId, disabled: bool, now: i64) -> Result<(), StoreError>;
    /// Replaces a user's password hash; `NotFound` if there is no such user.
    async fn set_user_password(&self, id: &UserId, hash: &PasswordHash, now: i64) -> Result<(), StoreError>;
    /// Deletes a user; `NotFound` if there is no such user.
    async fn delete_user(&self, id: &UserId) -> Result<(), StoreError>;

    /// In one transaction, every current key of `alg` (no `publish_until`) gets
    /// `publish_until = until`; returns how many.
    async fn retire_signing_keys(&self, alg: &str, until: i64) -> Result<u64, StoreError>;

    /// A store-wide setting.
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Stores a setting only if it is absent. MUST be atomic: of two concurrent calls exactly
    /// one returns `true`; the other finds the winner's value with [`setting`](Self::setting).
    async fn init_setting(&self, name: &str, value: &str) -> Result<bool, StoreError>;
    /// Stores or replaces a setting.
    async fn put_setting(&self, name: &str, value: &str) -> Result<(), StoreError>;
    /// Raises an integer setting to `value` if it is absent or lower; never lowers it.
    async fn raise_setting(&self, name: &str, value: i64) -> Result<(), StoreError>;
    /// Whether the catalog holds any client, signing key, initial access token or setting —
    /// data a new master key could not open.
    async fn holds_records(&self) -> Result<bool, StoreError>;
}

/// Ephemeral records with an expiry. Expired artifacts are invisible to every read even
/// before the background purge deletes them.
#[async_trait]
pub trait Artifacts: Send + Sync {
    /// Stores or replaces an artifact.
    async fn put(
        &self,
        kind: ArtifactKind,
        id: &str,
        payload: &[u8],
        expires_at: i64,
        grant_id: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Stores an artifact only if no live one has the same id. Returns `false` when one exists
    /// (a replay). MUST be atomic: of two concurrent calls exactly one returns `true`.
    async fn put_new(
        &self,
        kind: ArtifactKind,
        id: &str,
        payload: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Reads a live, unconsumed artifact.
    async fn get(&self, kind: ArtifactKind, id: &str, now: i64)
    -> Result<Option<Vec<u8>>, StoreError>;
    /// Consumes an artifact once. MUST be atomic: of two concurrent calls exactly one gets the
    /// payload; a later call gets `AlreadyConsumed` carrying the grant id. `Ok(None)` when the
    /// artifact never existed or has expired.
    async fn consume(&self, kind: ArtifactKind, id: &str, now: i64)
    -> Result<Option<Vec<u8>>, StoreError>;
    /// Deletes an artifact (no error if absent).
    async fn delete(&self, kind: ArtifactKind, id: &str) -> Result<(), StoreError>;
    /// Deletes every artifact issued under `grant_id`; returns how many.
    async fn revoke_by_grant(&self, grant_id: &str) -> Result<u64, StoreError>;
    /// Deletes artifacts expired before `now`; returns how many.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError>;
    /// Live revoked token ids (`RevokedJti`, not expired at `now`) written after `since`
    /// (unix milliseconds of the writer's clock, `changed_at`), oldest change first — how a
    /// gateway follows revocations without a query per request. A reader keeps the largest
    /// `changed_at` it saw as its cursor (minus a margin for writes that commit late).
    async fn revoked_since(&self, since: i64, now: i64) -> Result<Vec<RevokedJti>, StoreError>;
}

/// One revoked token id, as [`Artifacts::revoked_since`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedJti {
    /// The token's `jti`.
    pub jti: String,
    /// Until when the record is kept (unix seconds): the token is dead by then anyway.
    pub expires_at: i64,
    /// When it was written (unix milliseconds, the writer's clock).
    pub changed_at: i64,
}

/// Now in unix milliseconds: the `changed_at` of a write.
fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The storage handle held by the application.
#[derive(Clone)]
pub struct Store {
    /// Durable records.
    pub catalog: Arc<dyn Catalog>,
    /// Ephemeral records.
    pub artifacts: Arc<dyn Artifacts>,
    /// Gateway consumers and their API keys.
    pub consumers: Arc<dyn Consumers>,
    /// Which backend, for logs.
    pub backend: &'static str,
    /// Whether the database answers (read without a query; see [`Health`]).
    pub health: Arc<Health>,
}

/// `[database]`: where Warden keeps its data.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `sqlite://PATH` or `postgres://…`; empty means `sqlite://<data_dir>/warden.db`.
    pub url: String,
    /// PostgreSQL schema to use (created if missing); empty means the server default.
    pub schema: String,
    /// Connection pool size.
    pub max_connections: u32,
    /// How often expired artifacts and keys are purged.
    pub purge_interval: Duration,
    /// Longest time one store operation may take, waiting for a connection (or SQLite's
    /// lock) included, before it fails as [`StoreError::Unavailable`]. Opening the store and
    /// applying migrations are not bound by it.
    pub timeout: Duration,
}

impl Store {
    /// Opens the configured backend and applies pending migrations.
    pub async fn open(cfg: &Config, data_dir: &Path) -> Result<Store, StoreError> {
        if cfg.url.starts_with("postgres://") || cfg.url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            {
                let s = Arc::new(postgres::PgStore::open(cfg).await?);
                return Ok(Store::guarded(s, "postgres", cfg.timeout));
            }
            #[cfg(not(feature = "postgres"))]
            return Err(StoreError::Unavailable(
                "this build of warden has no PostgreSQL support (cargo feature `postgres`)".into(),
            ));
        }
        let path = match cfg.url.strip_prefix("sqlite://") {
            Some(p) => p.into(),
            None if cfg.url.is_empty() => data_dir.join("warden.db"),
            None => {
                return Err(StoreError::Unavailable(
                    "database.url must start with sqlite:// or postgres://".into(),
                ));
            }
        };
        let s = Arc::new(sqlite::SqliteStore::open(&path, cfg.max_connections, cfg.timeout).await?);
        Ok(Store::guarded(s, "sqlite", cfg.timeout))
    }

    /// Puts every call of `backend` under `timeout` and wires its failures to the health.
    fn guarded<S>(backend: Arc<S>, name: &'static str, timeout: Duration) -> Store
    where
        S: Catalog + Artifacts + Consumers + guard::Probe + 'static,
    {
        let health = Arc::new(Health::new(backend.clone(), timeout));
        let g = Arc::new(guard::Guarded::new(backend, health.clone(), timeout));
        Store { catalog: g.clone(), artifacts: g.clone(), consumers: g, backend: name, health }
    }

    /// Deletes expired artifacts and signing keys no longer published.
    pub async fn purge(&self, now: i64) -> Result<(u64, u64), StoreError> {
        let artifacts = self.artifacts.purge_expired(now).await?;
        let keys = self.catalog.delete_expired_keys(now).await?;
        Ok((artifacts, keys))
    }
}

/// Migrations of one backend, embedded: `migrations/<backend>/NNNN_name.sql`.
fn migrator(files: &[(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        files
            .iter()
            .map(|(v, name, sql)| {
                Migration::new(*v, (*name).into(), MigrationType::Simple, sql.into_sql_str(), false)
            })
            .collect(),
    )
}

/// The migration list per backend; a unit test checks both have the same versions.
macro_rules! migrations {
    ($backend:literal) => {
        &[
            (1, "init", include_str!(concat!("../../migrations/", $backend, "/0001_init.sql"))),
            (2, "resources", include_str!(concat!("../../migrations/", $backend, "/0002_resources.sql"))),
            (3, "client_revision", include_str!(concat!("../../migrations/", $backend, "/0003_client_revision.sql"))),
            (4, "settings", include_str!(concat!("../../migrations/", $backend, "/0004_settings.sql"))),
            (5, "users", include_str!(concat!("../../migrations/", $backend, "/0005_users.sql"))),
            (6, "artifact_changes", include_str!(concat!("../../migrations/", $backend, "/0006_artifact_changes.sql"))),
            (7, "consumers", include_str!(concat!("../../migrations/", $backend, "/0007_consumers.sql"))),
        ]
    };
}
pub(crate) use migrations;

#[cfg(test)]
mod tests {
    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let read = |b: &str| {
            let mut v: Vec<String> = std::fs::read_dir(format!("migrations/{b}"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(read("sqlite"), read("postgres"));
        let listed: &[(i64, &str, &str)] = migrations!("sqlite");
        assert_eq!(listed.len(), read("sqlite").len(), "every migration file is embedded");
    }
}
