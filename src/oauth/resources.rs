//! Protected resources (APIs) and their access-token policy: a token's lifetime is the
//! shortest of the client's (or the default) and those of every resource in its audience.

use super::{OAuthError, Provider};
use crate::model::{Resource, unix_now};
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

impl Provider {
    /// The resource registered for `audience`, through the cache; during a store outage
    /// with the same grace and guarantee as [`Provider::load_client`].
    pub(super) async fn load_resource(&self, audience: &str) -> Result<Option<Arc<Resource>>, OAuthError> {
        let down_since = || self.store.health.down_since();
        let fetch = || self.store.catalog.resource(audience);
        Ok(self.resources.read_through(audience, down_since, self.cfg.store_outage_grace, fetch).await?)
    }

    /// The lifetime (seconds) of a token for `client_lifetime` (the client's own, if set) and
    /// `audience`: the shortest that applies, never above the configured maximum.
    pub(super) async fn token_lifetime(&self, client_lifetime: Option<u64>, audience: &[String]) -> Result<u64, OAuthError> {
        let mut lifetime = client_lifetime.unwrap_or(self.cfg.access_token_lifetime.as_secs());
        for aud in audience {
            if let Some(limit) = self.load_resource(aud).await?.and_then(|r| r.access_token_lifetime) {
                lifetime = lifetime.min(limit);
            }
        }
        Ok(lifetime.min(self.cfg.max_access_token_lifetime.as_secs()).max(1))
    }
}

/// Registers a resource. The audience must be an absolute URI or a URN-like name without
/// whitespace; a lifetime must not exceed `max_lifetime`.
pub async fn create(
    store: &Store,
    audience: &str,
    name: Option<String>,
    lifetime: Option<Duration>,
    max_lifetime: Duration,
) -> Result<Resource, OAuthError> {
    if audience.is_empty() || audience.chars().any(|c| c.is_whitespace() || c.is_control()) || url::Url::parse(audience).is_err() {
        return Err(OAuthError::invalid_request("the audience must be an absolute URI, e.g. https://api.example.com"));
    }
    if let Some(l) = lifetime
        && (l.as_secs() == 0 || l > max_lifetime) {
            return Err(OAuthError::invalid_request(format!(
                "the access-token lifetime must be between 1s and {}",
                humantime::format_duration(max_lifetime)
            )));
        }
    let r = Resource { audience: audience.to_owned(), name, access_token_lifetime: lifetime.map(|l| l.as_secs()), created_at: unix_now() };
    match store.catalog.insert_resource(&r).await {
        Err(StoreError::Conflict) => Err(OAuthError::invalid_request(format!("a resource \"{audience}\" exists already"))),
        other => Ok(other.map(|()| r)?),
    }
}

/// Deletes a resource.
pub async fn delete(store: &Store, audience: &str) -> Result<(), OAuthError> {
    match store.catalog.delete_resource(audience).await {
        Err(StoreError::NotFound) => Err(OAuthError::invalid_request(format!("no resource \"{audience}\""))),
        other => Ok(other?),
    }
}
