//! The SQL both backends run, and the one implementation of the store traits over it.
//!
//! Placeholders are `$1…$n`, first used in ascending order: PostgreSQL numbers them and SQLite
//! binds `$NNN` names by first appearance, so one text serves both. Row tuples stay here and
//! map to `model` types in one place each.

use super::StoreError;
use crate::model::{
    Claims, Client, ClientId, ClientMetadata, InitialAccessToken, Kid, Origin, PasswordHash,
    Resource, SecretHash, SigningKeyRecord, User, UserId, Username,
};

pub(super) const INSERT_CLIENT: &str = "INSERT INTO clients (client_id, metadata, secret_hash, \
    registration_token_hash, origin, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub(super) const UPDATE_CLIENT: &str = "UPDATE clients SET metadata = $1, secret_hash = $2, \
    registration_token_hash = $3, updated_at = $4, revision = revision + 1 \
    WHERE client_id = $5 AND revision = $6";
pub(super) const CLIENT_EXISTS: &str = "SELECT client_id FROM clients WHERE client_id = $1";
pub(super) const SELECT_CLIENT: &str = "SELECT client_id, metadata, secret_hash, \
    registration_token_hash, origin, created_at, updated_at, revision FROM clients \
    WHERE client_id = $1";
pub(super) const SELECT_CLIENTS: &str = "SELECT client_id, metadata, secret_hash, \
    registration_token_hash, origin, created_at, updated_at, revision FROM clients \
    ORDER BY created_at, client_id";
pub(super) const DELETE_CLIENT: &str = "DELETE FROM clients WHERE client_id = $1";

pub(super) const SELECT_KEYS: &str = "SELECT kid, alg, sealed_private, public_jwk, created_at, \
    activate_at, publish_until FROM signing_keys ORDER BY created_at, activate_at, kid";
pub(super) const RETIRE_KEYS: &str =
    "UPDATE signing_keys SET publish_until = $1 WHERE alg = $2 AND publish_until IS NULL";
pub(super) const INSERT_KEY: &str = "INSERT INTO signing_keys (kid, alg, sealed_private, \
    public_jwk, created_at, activate_at, publish_until) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub(super) const DELETE_EXPIRED_KEYS: &str =
    "DELETE FROM signing_keys WHERE publish_until IS NOT NULL AND publish_until <= $1";

pub(super) const INSERT_IAT: &str = "INSERT INTO initial_access_tokens (id, token_hash, \
    description, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub(super) const SELECT_IAT_BY_HASH: &str = "SELECT id, token_hash, description, created_at, \
    expires_at, revoked_at FROM initial_access_tokens WHERE token_hash = $1";
pub(super) const SELECT_IATS: &str = "SELECT id, token_hash, description, created_at, \
    expires_at, revoked_at FROM initial_access_tokens ORDER BY created_at, id";
pub(super) const REVOKE_IAT: &str =
    "UPDATE initial_access_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";

pub(super) const INSERT_RESOURCE: &str = "INSERT INTO resources (audience, name, \
    access_token_lifetime, created_at) VALUES ($1, $2, $3, $4)";
pub(super) const SELECT_RESOURCE: &str = "SELECT audience, name, access_token_lifetime, \
    created_at FROM resources WHERE audience = $1";
pub(super) const SELECT_RESOURCES: &str = "SELECT audience, name, access_token_lifetime, \
    created_at FROM resources ORDER BY created_at, audience";
pub(super) const DELETE_RESOURCE: &str = "DELETE FROM resources WHERE audience = $1";

pub(super) const INSERT_USER: &str = "INSERT INTO users (id, username, username_key, claims, \
    password_hash, disabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub(super) const SELECT_USER: &str = "SELECT id, username, claims, password_hash, disabled, \
    created_at, updated_at FROM users WHERE id = $1";
pub(super) const SELECT_USER_BY_NAME: &str = "SELECT id, username, claims, password_hash, \
    disabled, created_at, updated_at FROM users WHERE username_key = $1";
pub(super) const SELECT_USERS: &str = "SELECT id, username, claims, password_hash, disabled, \
    created_at, updated_at FROM users ORDER BY created_at, username_key";
pub(super) const UPDATE_USER_CLAIMS: &str =
    "UPDATE users SET claims = $1, updated_at = $2 WHERE id = $3";
pub(super) const SET_USER_DISABLED: &str =
    "UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3";
pub(super) const SET_USER_PASSWORD: &str =
    "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3";
pub(super) const DELETE_USER: &str = "DELETE FROM users WHERE id = $1";

pub(super) const SELECT_SETTING: &str = "SELECT value FROM settings WHERE name = $1";
pub(super) const INIT_SETTING: &str =
    "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
pub(super) const PUT_SETTING: &str = "INSERT INTO settings (name, value) VALUES ($1, $2) \
    ON CONFLICT (name) DO UPDATE SET value = excluded.value";
pub(super) const RAISE_SETTING: &str = "INSERT INTO settings (name, value) VALUES ($1, $2) \
    ON CONFLICT (name) DO UPDATE SET value = excluded.value \
    WHERE CAST(settings.value AS BIGINT) < CAST(excluded.value AS BIGINT)";
pub(super) const COUNT_RECORDS: &str = "SELECT (SELECT COUNT(*) FROM clients) \
    + (SELECT COUNT(*) FROM signing_keys) + (SELECT COUNT(*) FROM initial_access_tokens) \
    + (SELECT COUNT(*) FROM settings)";

pub(super) const PUT_ARTIFACT: &str = "INSERT INTO artifacts (kind, id, payload, expires_at, \
    grant_id, consumed_at, changed_at) VALUES ($1, $2, $3, $4, $5, NULL, $6) ON CONFLICT (kind, id) \
    DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at, \
    grant_id = excluded.grant_id, consumed_at = NULL, changed_at = excluded.changed_at";
/// Inserts, or takes over an id whose artifact has expired but is not purged yet.
pub(super) const PUT_NEW_ARTIFACT: &str = "INSERT INTO artifacts (kind, id, payload, \
    expires_at, grant_id, consumed_at, changed_at) VALUES ($1, $2, $3, $4, NULL, NULL, $6) \
    ON CONFLICT (kind, id) DO UPDATE SET payload = excluded.payload, \
    expires_at = excluded.expires_at, grant_id = NULL, consumed_at = NULL, \
    changed_at = excluded.changed_at WHERE artifacts.expires_at <= $5";
pub(super) const GET_ARTIFACT: &str = "SELECT payload FROM artifacts WHERE kind = $1 AND id = $2 \
    AND expires_at > $3 AND consumed_at IS NULL";
/// Marks consumed and returns the payload in one statement, so two racing consumers cannot
/// both succeed; the row stays as a tombstone until it expires, to detect reuse.
pub(super) const CONSUME_ARTIFACT: &str = "UPDATE artifacts SET consumed_at = $1 \
    WHERE kind = $2 AND id = $3 AND consumed_at IS NULL AND expires_at > $1 RETURNING payload";
pub(super) const CONSUMED_ARTIFACT: &str = "SELECT grant_id FROM artifacts WHERE kind = $1 \
    AND id = $2 AND expires_at > $3 AND consumed_at IS NOT NULL";
pub(super) const DELETE_ARTIFACT: &str = "DELETE FROM artifacts WHERE kind = $1 AND id = $2";
pub(super) const DELETE_GRANT: &str = "DELETE FROM artifacts WHERE grant_id = $1";
pub(super) const PURGE_ARTIFACTS: &str = "DELETE FROM artifacts WHERE expires_at <= $1";
pub(super) const REVOKED_SINCE: &str = "SELECT id, expires_at, changed_at FROM artifacts \
    WHERE kind = $1 AND changed_at > $2 AND expires_at > $3 AND consumed_at IS NULL \
    ORDER BY changed_at, id";

pub(super) type ClientRow =
    (String, String, Option<Vec<u8>>, Option<Vec<u8>>, String, i64, i64, i64);
pub(super) type KeyRow = (String, String, Vec<u8>, String, i64, i64, Option<i64>);
pub(super) type IatRow = (String, Vec<u8>, String, i64, Option<i64>, Option<i64>);
pub(super) type ResourceRow = (String, Option<String>, Option<i64>, i64);
pub(super) type UserRow = (String, String, String, Option<String>, bool, i64, i64);

pub(super) fn resource_from_row(r: ResourceRow) -> Resource {
    let (audience, name, lifetime, created_at) = r;
    Resource { audience, name, access_token_lifetime: lifetime.map(|l| l.max(0) as u64), created_at }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn hash_from(bytes: Option<Vec<u8>>, what: &str) -> Result<Option<SecretHash>, StoreError> {
    bytes
        .map(|b| SecretHash::from_slice(&b).ok_or_else(|| corrupt(what, "wrong hash length")))
        .transpose()
}

pub(super) fn client_metadata_json(c: &Client) -> Result<String, StoreError> {
    serde_json::to_string(&c.metadata).map_err(|e| corrupt("client metadata", e))
}

pub(super) fn origin_str(o: Origin) -> &'static str {
    match o {
        Origin::Operator => "operator",
        Origin::Dynamic => "dynamic",
    }
}

pub(super) fn client_from_row(r: ClientRow) -> Result<Client, StoreError> {
    let (client_id, metadata, secret_hash, reg_hash, origin, created_at, updated_at, revision) = r;
    let metadata: ClientMetadata =
        serde_json::from_str(&metadata).map_err(|e| corrupt("client metadata", e))?;
    let origin = match origin.as_str() {
        "operator" => Origin::Operator,
        "dynamic" => Origin::Dynamic,
        other => return Err(corrupt("client origin", other)),
    };
    Ok(Client {
        client_id: ClientId(client_id),
        metadata,
        secret_hash: hash_from(secret_hash, "client secret hash")?,
        registration_token_hash: hash_from(reg_hash, "registration token hash")?,
        origin,
        created_at,
        updated_at,
        revision,
    })
}

pub(super) fn claims_json(c: &Claims) -> Result<String, StoreError> {
    serde_json::to_string(c).map_err(|e| corrupt("user claims", e))
}

pub(super) fn user_from_row(r: UserRow) -> Result<User, StoreError> {
    let (id, username, claims, password_hash, disabled, created_at, updated_at) = r;
    Ok(User {
        id: UserId(id),
        username: Username::parse(&username).map_err(|e| corrupt("username", e))?,
        disabled,
        claims: serde_json::from_str(&claims).map_err(|e| corrupt("user claims", e))?,
        password_hash: password_hash.map(PasswordHash),
        created_at,
        updated_at,
    })
}

pub(super) fn key_from_row(r: KeyRow) -> Result<SigningKeyRecord, StoreError> {
    let (kid, alg, sealed_private, public_jwk, created_at, activate_at, publish_until) = r;
    Ok(SigningKeyRecord {
        kid: Kid(kid),
        alg,
        sealed_private,
        public_jwk: serde_json::from_str(&public_jwk).map_err(|e| corrupt("public jwk", e))?,
        created_at,
        activate_at,
        publish_until,
    })
}

pub(super) fn iat_from_row(r: IatRow) -> Result<InitialAccessToken, StoreError> {
    let (id, hash, description, created_at, expires_at, revoked_at) = r;
    Ok(InitialAccessToken {
        id,
        token_hash: hash_from(Some(hash), "initial access token hash")?
            .ok_or_else(|| corrupt("initial access token", "missing hash"))?,
        description,
        created_at,
        expires_at,
        revoked_at,
    })
}

/// Implements [`Catalog`](super::Catalog) and [`Artifacts`](super::Artifacts) for a backend
/// struct with a `pool: sqlx::Pool<DB>` field. The SQL and the row mapping above are shared;
/// only the connection setup and the migrations differ per backend.
macro_rules! impl_sql_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::Catalog for $store {
            async fn insert_client(&self, c: &Client) -> Result<(), StoreError> {
                sqlx::query(sql::INSERT_CLIENT)
                    .bind(c.client_id.as_str())
                    .bind(sql::client_metadata_json(c)?)
                    .bind(c.secret_hash.as_ref().map(|h| h.0.to_vec()))
                    .bind(c.registration_token_hash.as_ref().map(|h| h.0.to_vec()))
                    .bind(sql::origin_str(c.origin))
                    .bind(c.created_at)
                    .bind(c.updated_at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn update_client(&self, c: &Client) -> Result<(), StoreError> {
                let done = sqlx::query(sql::UPDATE_CLIENT)
                    .bind(sql::client_metadata_json(c)?)
                    .bind(c.secret_hash.as_ref().map(|h| h.0.to_vec()))
                    .bind(c.registration_token_hash.as_ref().map(|h| h.0.to_vec()))
                    .bind(c.updated_at)
                    .bind(c.client_id.as_str())
                    .bind(c.revision)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 1 {
                    return Ok(());
                }
                let exists = sqlx::query_as::<_, (String,)>(sql::CLIENT_EXISTS)
                    .bind(c.client_id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                Err(if exists.is_some() { StoreError::Conflict } else { StoreError::NotFound })
            }

            async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
                sqlx::query_as::<_, sql::ClientRow>(sql::SELECT_CLIENT)
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(sql::client_from_row)
                    .transpose()
            }

            async fn clients(&self) -> Result<Vec<Client>, StoreError> {
                sqlx::query_as::<_, sql::ClientRow>(sql::SELECT_CLIENTS)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(sql::client_from_row)
                    .collect()
            }

            async fn delete_client(&self, id: &ClientId) -> Result<(), StoreError> {
                let done =
                    sqlx::query(sql::DELETE_CLIENT).bind(id.as_str()).execute(&self.pool).await?;
                if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }

            async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
                sqlx::query_as::<_, sql::KeyRow>(sql::SELECT_KEYS)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(sql::key_from_row)
                    .collect()
            }

            async fn rotate_signing_key(
                &self,
                new: &SigningKeyRecord,
                retire_until: Option<i64>,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                if let Some(until) = retire_until {
                    sqlx::query(sql::RETIRE_KEYS)
                        .bind(until)
                        .bind(new.alg.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(sql::INSERT_KEY)
                    .bind(new.kid.as_str())
                    .bind(new.alg.as_str())
                    .bind(new.sealed_private.as_slice())
                    .bind(new.public_jwk.to_string())
                    .bind(new.created_at)
                    .bind(new.activate_at)
                    .bind(new.publish_until)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_expired_keys(&self, now: i64) -> Result<u64, StoreError> {
                let done =
                    sqlx::query(sql::DELETE_EXPIRED_KEYS).bind(now).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn insert_initial_access_token(
                &self,
                t: &InitialAccessToken,
            ) -> Result<(), StoreError> {
                sqlx::query(sql::INSERT_IAT)
                    .bind(t.id.as_str())
                    .bind(t.token_hash.0.to_vec())
                    .bind(t.description.as_str())
                    .bind(t.created_at)
                    .bind(t.expires_at)
                    .bind(t.revoked_at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn initial_access_token_by_hash(
                &self,
                hash: &SecretHash,
            ) -> Result<Option<InitialAccessToken>, StoreError> {
                sqlx::query_as::<_, sql::IatRow>(sql::SELECT_IAT_BY_HASH)
                    .bind(hash.0.to_vec())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(sql::iat_from_row)
                    .transpose()
            }

            async fn initial_access_tokens(&self) -> Result<Vec<InitialAccessToken>, StoreError> {
                sqlx::query_as::<_, sql::IatRow>(sql::SELECT_IATS)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(sql::iat_from_row)
                    .collect()
            }

            async fn revoke_initial_access_token(
                &self,
                id: &str,
                now: i64,
            ) -> Result<(), StoreError> {
                let done =
                    sqlx::query(sql::REVOKE_IAT).bind(now).bind(id).execute(&self.pool).await?;
                if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }

            async fn insert_resource(&self, r: &Resource) -> Result<(), StoreError> {
                sqlx::query(sql::INSERT_RESOURCE)
                    .bind(r.audience.as_str())
                    .bind(r.name.as_deref())
                    .bind(r.access_token_lifetime.map(|l| l.min(i64::MAX as u64) as i64))
                    .bind(r.created_at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn resource(&self, audience: &str) -> Result<Option<Resource>, StoreError> {
                Ok(sqlx::query_as::<_, sql::ResourceRow>(sql::SELECT_RESOURCE)
                    .bind(audience)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(sql::resource_from_row))
            }

            async fn resources(&self) -> Result<Vec<Resource>, StoreError> {
                Ok(sqlx::query_as::<_, sql::ResourceRow>(sql::SELECT_RESOURCES)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(sql::resource_from_row)
                    .collect())
            }

            async fn delete_resource(&self, audience: &str) -> Result<(), StoreError> {
                let done =
                    sqlx::query(sql::DELETE_RESOURCE).bind(audience).execute(&self.pool).await?;
                if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }

            async fn insert_user(&self, u: &crate::model::User) -> Result<(), StoreError> {
                sqlx::query(sql::INSERT_USER)
                    .bind(u.id.as_str())
                    .bind(u.username.as_str())
                    .bind(u.username.key())
                    .bind(sql::claims_json(&u.claims)?)
                    .bind(u.password_hash.as_ref().map(|h| h.0.as_str()))
                    .bind(u.disabled)
                    .bind(u.created_at)
                    .bind(u.updated_at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn user(&self, id: &crate::model::UserId) -> Result<Option<crate::model::User>, StoreError> {
                sqlx::query_as::<_, sql::UserRow>(sql::SELECT_USER)
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(sql::user_from_row)
                    .transpose()
            }

            async fn user_by_username(&self, username: &str) -> Result<Option<crate::model::User>, StoreError> {
                sqlx::query_as::<_, sql::UserRow>(sql::SELECT_USER_BY_NAME)
                    .bind(crate::model::username_key(username))
                    .fetch_optional(&self.pool)
                    .await?
                    .map(sql::user_from_row)
                    .transpose()
            }

            async fn users(&self) -> Result<Vec<crate::model::User>, StoreError> {
                sqlx::query_as::<_, sql::UserRow>(sql::SELECT_USERS)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(sql::user_from_row)
                    .collect()
            }

            async fn update_user_claims(
                &self,
                id: &crate::model::UserId,
                claims: &crate::model::Claims,
                now: i64,
            ) -> Result<(), StoreError> {
                let done = sqlx::query(sql::UPDATE_USER_CLAIMS)
                    .bind(sql::claims_json(claims)?)
                    .bind(now)
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }

            async fn set_user_disabled(&self, id: &crate::model::UserId, disabled: bool, now: i64) -> Result<(), StoreError> {
                let done = sqlx::query(sql::SET_USER_DISABLED)
                    .bind(disabled)
                    .bind(now)
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }

            async fn set_user_password(
                &self,
                id: &crate::model::UserId,
                hash: &crate::model::PasswordHash,
                now: i64,
            ) -> Result<(), StoreError> {
                let done = sqlx::query(sql::SET_USER_PASSWORD)
                    .bind(hash.0.as_str())
                    .bind(now)
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }

            async fn delete_user(&self, id: &crate::model::UserId) -> Result<(), StoreError> {
                let done = sqlx::query(sql::DELETE_USER).bind(id.as_str()).execute(&self.pool).await?;
                if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }

            async fn retire_signing_keys(&self, alg: &str, until: i64) -> Result<u64, StoreError> {
                let done =
                    sqlx::query(sql::RETIRE_KEYS).bind(until).bind(alg).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_as::<_, (String,)>(sql::SELECT_SETTING)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|(v,)| v))
            }

            async fn init_setting(&self, name: &str, value: &str) -> Result<bool, StoreError> {
                let done = sqlx::query(sql::INIT_SETTING).bind(name).bind(value).execute(&self.pool).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn put_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
                sqlx::query(sql::PUT_SETTING).bind(name).bind(value).execute(&self.pool).await?;
                Ok(())
            }

            async fn raise_setting(&self, name: &str, value: i64) -> Result<(), StoreError> {
                sqlx::query(sql::RAISE_SETTING).bind(name).bind(value.to_string()).execute(&self.pool).await?;
                Ok(())
            }

            async fn holds_records(&self) -> Result<bool, StoreError> {
                let (n,) = sqlx::query_as::<_, (i64,)>(sql::COUNT_RECORDS).fetch_one(&self.pool).await?;
                Ok(n > 0)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Artifacts for $store {
            async fn put(
                &self,
                kind: ArtifactKind,
                id: &str,
                payload: &[u8],
                expires_at: i64,
                grant_id: Option<&str>,
            ) -> Result<(), StoreError> {
                sqlx::query(sql::PUT_ARTIFACT)
                    .bind(kind.as_str())
                    .bind(id)
                    .bind(payload)
                    .bind(expires_at)
                    .bind(grant_id)
                    .bind($crate::store::now_millis())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn put_new(
                &self,
                kind: ArtifactKind,
                id: &str,
                payload: &[u8],
                expires_at: i64,
                now: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(sql::PUT_NEW_ARTIFACT)
                    .bind(kind.as_str())
                    .bind(id)
                    .bind(payload)
                    .bind(expires_at)
                    .bind(now)
                    .bind($crate::store::now_millis())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get(
                &self,
                kind: ArtifactKind,
                id: &str,
                now: i64,
            ) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(sqlx::query_as::<_, (Vec<u8>,)>(sql::GET_ARTIFACT)
                    .bind(kind.as_str())
                    .bind(id)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|(p,)| p))
            }

            async fn consume(
                &self,
                kind: ArtifactKind,
                id: &str,
                now: i64,
            ) -> Result<Option<Vec<u8>>, StoreError> {
                let taken = sqlx::query_as::<_, (Vec<u8>,)>(sql::CONSUME_ARTIFACT)
                    .bind(now)
                    .bind(kind.as_str())
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                if let Some((payload,)) = taken {
                    return Ok(Some(payload));
                }
                let tombstone = sqlx::query_as::<_, (Option<String>,)>(sql::CONSUMED_ARTIFACT)
                    .bind(kind.as_str())
                    .bind(id)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                match tombstone {
                    Some((grant_id,)) => Err(StoreError::AlreadyConsumed { grant_id }),
                    None => Ok(None),
                }
            }

            async fn delete(&self, kind: ArtifactKind, id: &str) -> Result<(), StoreError> {
                sqlx::query(sql::DELETE_ARTIFACT)
                    .bind(kind.as_str())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn revoke_by_grant(&self, grant_id: &str) -> Result<u64, StoreError> {
                let done =
                    sqlx::query(sql::DELETE_GRANT).bind(grant_id).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
                let done =
                    sqlx::query(sql::PURGE_ARTIFACTS).bind(now).execute(&self.pool).await?;
                Ok(done.rows_affected())
            }

            async fn revoked_since(
                &self,
                since: i64,
                now: i64,
            ) -> Result<Vec<$crate::store::RevokedJti>, StoreError> {
                let rows = sqlx::query_as::<_, (String, i64, i64)>(sql::REVOKED_SINCE)
                    .bind(ArtifactKind::RevokedJti.as_str())
                    .bind(since)
                    .bind(now)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(jti, expires_at, changed_at)| $crate::store::RevokedJti { jti, expires_at, changed_at })
                    .collect())
            }
        }
    };
}
pub(super) use impl_sql_store;
