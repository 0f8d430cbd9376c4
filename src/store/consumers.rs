//! Gateway consumers and their API keys: the [`Consumers`] trait, its SQL (both backends run
//! the same text, as in `sql.rs`) and its deadline wrapper.
//!
//! Gateways never query per request: they keep an index in memory and follow changes with
//! [`Consumers::consumers_changed_since`] and [`Consumers::api_keys_changed_since`], whose
//! cursor is `changed_at` (unix milliseconds of the writer's clock, written on every change).
//! So nothing is ever deleted for real: a deleted consumer is a tombstone and a revoked key
//! keeps its row, or a gateway would never learn that they are gone.

use super::StoreError;
use super::guard::Guarded;
use crate::model::{ApiKey, Consumer, ConsumerId, PasswordHash, SecretHash};
use async_trait::async_trait;

/// Consumers and their API keys. Every method is atomic on its own.
#[async_trait]
pub trait Consumers: Send + Sync {
    /// Inserts a consumer; `Conflict` if the id or the name (ignoring case) is taken by a
    /// live consumer.
    async fn insert_consumer(&self, c: &Consumer) -> Result<(), StoreError>;
    /// A live (not deleted) consumer by id.
    async fn consumer(&self, id: &ConsumerId) -> Result<Option<Consumer>, StoreError>;
    /// A live consumer by name, ignoring case.
    async fn consumer_by_name(&self, name: &str) -> Result<Option<Consumer>, StoreError>;
    /// Every live consumer, oldest first.
    async fn consumers(&self) -> Result<Vec<Consumer>, StoreError>;
    /// Disables or enables a live consumer; `NotFound` if there is none.
    async fn set_consumer_disabled(&self, id: &ConsumerId, disabled: bool, now: i64) -> Result<(), StoreError>;
    /// Sets (or with `None` removes) a live consumer's Basic password hash; `NotFound` if there
    /// is none.
    async fn set_consumer_password(&self, id: &ConsumerId, hash: Option<&PasswordHash>, now: i64) -> Result<(), StoreError>;
    /// In one transaction: marks the consumer deleted (freeing its name, dropping its
    /// password) and revokes its keys; `NotFound` if there is no live consumer with this id.
    async fn delete_consumer(&self, id: &ConsumerId, now: i64) -> Result<(), StoreError>;
    /// Stores a new key of a live consumer; `NotFound` if there is none, `Conflict` if the id
    /// or the hash is taken.
    async fn insert_api_key(&self, k: &ApiKey) -> Result<(), StoreError>;
    /// A consumer's keys, revoked ones included, oldest first.
    async fn api_keys(&self, consumer: &ConsumerId) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes an unrevoked key of `consumer`; `NotFound` if there is none.
    async fn revoke_api_key(&self, consumer: &ConsumerId, key_id: &str, now: i64) -> Result<(), StoreError>;
    /// Consumers written after `since` (unix milliseconds), tombstones included, oldest
    /// change first.
    async fn consumers_changed_since(&self, since: i64) -> Result<Vec<Consumer>, StoreError>;
    /// Keys written after `since` (unix milliseconds), revoked ones included, oldest change
    /// first.
    async fn api_keys_changed_since(&self, since: i64) -> Result<Vec<ApiKey>, StoreError>;
}

macro_rules! select_consumers {
    ($filter:literal) => {
        concat!("SELECT id, name, plan, disabled, password_hash, deleted, created_at, updated_at, changed_at FROM consumers WHERE ", $filter)
    };
}
macro_rules! select_keys {
    ($filter:literal) => {
        concat!("SELECT id, consumer_id, key_hash, prefix, created_at, revoked_at, changed_at FROM consumer_keys WHERE ", $filter)
    };
}
pub(super) const SELECT_CONSUMER: &str = select_consumers!("id = $1 AND deleted = FALSE");
pub(super) const SELECT_CONSUMER_BY_NAME: &str = select_consumers!("name_key = $1");
pub(super) const SELECT_CONSUMERS: &str = select_consumers!("deleted = FALSE ORDER BY created_at, name_key");
pub(super) const CONSUMERS_CHANGED: &str = select_consumers!("changed_at > $1 ORDER BY changed_at, id");
pub(super) const SELECT_KEYS: &str = select_keys!("consumer_id = $1 ORDER BY created_at, id");
pub(super) const KEYS_CHANGED: &str = select_keys!("changed_at > $1 ORDER BY changed_at, id");

pub(super) const INSERT_CONSUMER: &str = "INSERT INTO consumers (id, name, name_key, plan, disabled, \
    password_hash, deleted, created_at, updated_at, changed_at) VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8, $9)";
pub(super) const SET_DISABLED: &str =
    "UPDATE consumers SET disabled = $1, updated_at = $2, changed_at = $3 WHERE id = $4 AND deleted = FALSE";
pub(super) const SET_PASSWORD: &str =
    "UPDATE consumers SET password_hash = $1, updated_at = $2, changed_at = $3 WHERE id = $4 AND deleted = FALSE";
pub(super) const DELETE_CONSUMER: &str = "UPDATE consumers SET deleted = TRUE, name_key = NULL, \
    password_hash = NULL, updated_at = $1, changed_at = $2 WHERE id = $3 AND deleted = FALSE";
pub(super) const REVOKE_CONSUMER_KEYS: &str =
    "UPDATE consumer_keys SET revoked_at = $1, changed_at = $2 WHERE consumer_id = $3 AND revoked_at IS NULL";
/// Inserts only for a live consumer, in one statement.
pub(super) const INSERT_KEY: &str = "INSERT INTO consumer_keys (id, consumer_id, key_hash, prefix, \
    created_at, revoked_at, changed_at) SELECT $1, $2, $3, $4, $5, NULL, $6 \
    WHERE EXISTS (SELECT 1 FROM consumers WHERE id = $2 AND deleted = FALSE)";
pub(super) const REVOKE_KEY: &str = "UPDATE consumer_keys SET revoked_at = $1, changed_at = $2 \
    WHERE consumer_id = $3 AND id = $4 AND revoked_at IS NULL";

pub(super) type ConsumerRow = (String, String, Option<String>, bool, Option<String>, bool, i64, i64, i64);
pub(super) type KeyRow = (String, String, Vec<u8>, String, i64, Option<i64>, i64);

pub(super) fn consumer_from_row(r: ConsumerRow) -> Consumer {
    let (id, name, plan, disabled, password_hash, deleted, created_at, updated_at, changed_at) = r;
    Consumer { id: ConsumerId(id), name, plan, disabled, password_hash: password_hash.map(PasswordHash), deleted, created_at, updated_at, changed_at }
}

pub(super) fn key_from_row(r: KeyRow) -> Result<ApiKey, StoreError> {
    let (id, consumer_id, hash, prefix, created_at, revoked_at, changed_at) = r;
    let key_hash = SecretHash::from_slice(&hash).ok_or_else(|| StoreError::Corrupt("API key hash: wrong length".into()))?;
    Ok(ApiKey { id, consumer_id: ConsumerId(consumer_id), key_hash, prefix, created_at, revoked_at, changed_at })
}

pub(super) fn one_row(done: u64) -> Result<(), StoreError> {
    if done == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

/// Implements [`Consumers`] for a backend struct with a `pool` field (as `sql::impl_sql_store`).
macro_rules! impl_consumers_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::consumers::Consumers for $store {
            async fn insert_consumer(&self, c: &$crate::model::Consumer) -> Result<(), StoreError> {
                use $crate::store::consumers as q;
                sqlx::query(q::INSERT_CONSUMER)
                    .bind(c.id.as_str())
                    .bind(c.name.as_str())
                    .bind($crate::model::consumer_name_key(&c.name))
                    .bind(c.plan.as_deref())
                    .bind(c.disabled)
                    .bind(c.password_hash.as_ref().map(|h| h.0.as_str()))
                    .bind(c.created_at)
                    .bind(c.updated_at)
                    .bind($crate::store::now_millis())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn consumer(&self, id: &$crate::model::ConsumerId) -> Result<Option<$crate::model::Consumer>, StoreError> {
                use $crate::store::consumers as q;
                Ok(sqlx::query_as::<_, q::ConsumerRow>(q::SELECT_CONSUMER)
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(q::consumer_from_row))
            }

            async fn consumer_by_name(&self, name: &str) -> Result<Option<$crate::model::Consumer>, StoreError> {
                use $crate::store::consumers as q;
                Ok(sqlx::query_as::<_, q::ConsumerRow>(q::SELECT_CONSUMER_BY_NAME)
                    .bind($crate::model::consumer_name_key(name))
                    .fetch_optional(&self.pool)
                    .await?
                    .map(q::consumer_from_row))
            }

            async fn consumers(&self) -> Result<Vec<$crate::model::Consumer>, StoreError> {
                use $crate::store::consumers as q;
                Ok(sqlx::query_as::<_, q::ConsumerRow>(q::SELECT_CONSUMERS)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(q::consumer_from_row)
                    .collect())
            }

            async fn set_consumer_disabled(&self, id: &$crate::model::ConsumerId, disabled: bool, now: i64) -> Result<(), StoreError> {
                use $crate::store::consumers as q;
                let done = sqlx::query(q::SET_DISABLED)
                    .bind(disabled)
                    .bind(now)
                    .bind($crate::store::now_millis())
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await?;
                q::one_row(done.rows_affected())
            }

            async fn set_consumer_password(
                &self,
                id: &$crate::model::ConsumerId,
                hash: Option<&$crate::model::PasswordHash>,
                now: i64,
            ) -> Result<(), StoreError> {
                use $crate::store::consumers as q;
                let done = sqlx::query(q::SET_PASSWORD)
                    .bind(hash.map(|h| h.0.as_str()))
                    .bind(now)
                    .bind($crate::store::now_millis())
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await?;
                q::one_row(done.rows_affected())
            }

            async fn delete_consumer(&self, id: &$crate::model::ConsumerId, now: i64) -> Result<(), StoreError> {
                use $crate::store::consumers as q;
                let changed = $crate::store::now_millis();
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(q::DELETE_CONSUMER).bind(now).bind(changed).bind(id.as_str()).execute(&mut *tx).await?;
                q::one_row(done.rows_affected())?;
                sqlx::query(q::REVOKE_CONSUMER_KEYS).bind(now).bind(changed).bind(id.as_str()).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn insert_api_key(&self, k: &$crate::model::ApiKey) -> Result<(), StoreError> {
                use $crate::store::consumers as q;
                let done = sqlx::query(q::INSERT_KEY)
                    .bind(k.id.as_str())
                    .bind(k.consumer_id.as_str())
                    .bind(k.key_hash.0.to_vec())
                    .bind(k.prefix.as_str())
                    .bind(k.created_at)
                    .bind($crate::store::now_millis())
                    .execute(&self.pool)
                    .await?;
                q::one_row(done.rows_affected())
            }

            async fn api_keys(&self, consumer: &$crate::model::ConsumerId) -> Result<Vec<$crate::model::ApiKey>, StoreError> {
                use $crate::store::consumers as q;
                sqlx::query_as::<_, q::KeyRow>(q::SELECT_KEYS)
                    .bind(consumer.as_str())
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(q::key_from_row)
                    .collect()
            }

            async fn revoke_api_key(&self, consumer: &$crate::model::ConsumerId, key_id: &str, now: i64) -> Result<(), StoreError> {
                use $crate::store::consumers as q;
                let done = sqlx::query(q::REVOKE_KEY)
                    .bind(now)
                    .bind($crate::store::now_millis())
                    .bind(consumer.as_str())
                    .bind(key_id)
                    .execute(&self.pool)
                    .await?;
                q::one_row(done.rows_affected())
            }

            async fn consumers_changed_since(&self, since: i64) -> Result<Vec<$crate::model::Consumer>, StoreError> {
                use $crate::store::consumers as q;
                Ok(sqlx::query_as::<_, q::ConsumerRow>(q::CONSUMERS_CHANGED)
                    .bind(since)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(q::consumer_from_row)
                    .collect())
            }

            async fn api_keys_changed_since(&self, since: i64) -> Result<Vec<$crate::model::ApiKey>, StoreError> {
                use $crate::store::consumers as q;
                sqlx::query_as::<_, q::KeyRow>(q::KEYS_CHANGED)
                    .bind(since)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(q::key_from_row)
                    .collect()
            }
        }
    };
}
pub(super) use impl_consumers_store;

#[async_trait]
impl<S: Consumers + 'static> Consumers for Guarded<S> {
    async fn insert_consumer(&self, c: &Consumer) -> Result<(), StoreError> {
        self.run(self.inner.insert_consumer(c)).await
    }
    async fn consumer(&self, id: &ConsumerId) -> Result<Option<Consumer>, StoreError> {
        self.run(self.inner.consumer(id)).await
    }
    async fn consumer_by_name(&self, name: &str) -> Result<Option<Consumer>, StoreError> {
        self.run(self.inner.consumer_by_name(name)).await
    }
    async fn consumers(&self) -> Result<Vec<Consumer>, StoreError> {
        self.run(self.inner.consumers()).await
    }
    async fn set_consumer_disabled(&self, id: &ConsumerId, disabled: bool, now: i64) -> Result<(), StoreError> {
        self.run(self.inner.set_consumer_disabled(id, disabled, now)).await
    }
    async fn set_consumer_password(&self, id: &ConsumerId, hash: Option<&PasswordHash>, now: i64) -> Result<(), StoreError> {
        self.run(self.inner.set_consumer_password(id, hash, now)).await
    }
    async fn delete_consumer(&self, id: &ConsumerId, now: i64) -> Result<(), StoreError> {
        self.run(self.inner.delete_consumer(id, now)).await
    }
    async fn insert_api_key(&self, k: &ApiKey) -> Result<(), StoreError> {
        self.run(self.inner.insert_api_key(k)).await
    }
    async fn api_keys(&self, consumer: &ConsumerId) -> Result<Vec<ApiKey>, StoreError> {
        self.run(self.inner.api_keys(consumer)).await
    }
    async fn revoke_api_key(&self, consumer: &ConsumerId, key_id: &str, now: i64) -> Result<(), StoreError> {
        self.run(self.inner.revoke_api_key(consumer, key_id, now)).await
    }
    async fn consumers_changed_since(&self, since: i64) -> Result<Vec<Consumer>, StoreError> {
        self.run(self.inner.consumers_changed_since(since)).await
    }
    async fn api_keys_changed_since(&self, since: i64) -> Result<Vec<ApiKey>, StoreError> {
        self.run(self.inner.api_keys_changed_since(since)).await
    }
}
