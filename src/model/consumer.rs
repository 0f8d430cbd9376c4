//! Gateway consumers: the apps that call the APIs behind the gateway, known by an API key or
//! (for legacy callers) a Basic password. Not OAuth clients: a consumer gets no tokens, it
//! is identified at the gateway and nothing more.

use super::{PasswordHash, SecretHash};
use serde::{Deserialize, Serialize};
use std::fmt;

string_id!(
    /// A consumer's identifier: random, never reused, what later policies and audit name.
    ConsumerId
);

/// The longest consumer name.
pub const CONSUMER_NAME_MAX: usize = 64;

/// Checks a consumer name: 1 to 64 of letters, digits, `.`, `_`, `-` (it is the Basic
/// user-id, so never a `:`). Unique ignoring case.
pub fn check_consumer_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > CONSUMER_NAME_MAX || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(format!("a consumer name is 1 to {CONSUMER_NAME_MAX} letters, digits, '.', '_' or '-'"));
    }
    Ok(())
}

/// The form of a name that is unique: lower case.
pub fn consumer_name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// A consumer as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// Identifier.
    pub id: ConsumerId,
    /// Operator's name for it (unique ignoring case; the Basic user-id).
    pub name: String,
    /// The plan later policies (rate limits) read; `None`: no plan.
    pub plan: Option<String>,
    /// A disabled consumer's credentials are refused.
    pub disabled: bool,
    /// The Argon2id hash of its Basic password; `None`: Basic is refused for it.
    pub password_hash: Option<PasswordHash>,
    /// Deleted (kept as a tombstone, so every gateway node learns of the deletion).
    pub deleted: bool,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Last change (unix seconds).
    pub updated_at: i64,
    /// When the row was last written (unix milliseconds, the writer's clock); set by the
    /// store, the marker gateways follow.
    pub changed_at: i64,
}

/// An API key as stored: never the key, only its keyed hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key's own id (shown in lists, used to revoke it).
    pub id: String,
    /// The consumer it identifies.
    pub consumer_id: ConsumerId,
    /// HMAC-SHA-256 of the key under the master key (`MasterKey::hash_secret`).
    pub key_hash: SecretHash,
    /// The first characters of the key, so an operator can tell keys apart.
    pub prefix: String,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Revocation time; a revoked key is refused.
    pub revoked_at: Option<i64>,
    /// When the row was last written (unix milliseconds); set by the store.
    pub changed_at: i64,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey").field("id", &self.id).field("consumer_id", &self.consumer_id).field("prefix", &self.prefix).field("revoked_at", &self.revoked_at).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_basic_user_ids() {
        for ok in ["billing", "Mobile-App_2", "a.b"] {
            assert!(check_consumer_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a:b", "a b", "é", &"x".repeat(65)] {
            assert!(check_consumer_name(bad).is_err(), "{bad}");
        }
        assert_eq!(consumer_name_key("Billing"), "billing");
    }
}
