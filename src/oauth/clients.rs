//! Client records: the cached lookup the token endpoint reads through, and the operator
//! operations (create, rotate secret, delete) shared by the CLI and, later, the admin API.

use super::register::metadata::{Policy, RegistrationRequest, check_client_metadata};
use super::{OAuthError, Provider};
use crate::model::{Client, ClientId, Origin, unix_now};
use crate::secrets::{self, MasterKey};
use crate::store::{Store, StoreError};
use std::sync::Arc;

impl Provider {
    /// The client with this id, through the cache.
    ///
    /// **Store outage grace.** While the store is unavailable, for `provider.store_outage_grace`
    /// from the moment this node first saw a store call or probe fail (call it U), a client is
    /// answered from the cache if its entry had been read from the store less than
    /// `client_cache_ttl` before U — it was still a fresh entry when the outage became visible —
    /// without asking the store again. Exactly:
    /// - a deletion or secret rotation this node made itself (it drops the entry) or had read
    ///   before U is always honoured: the cache only holds the latest read, and a cached "no
    ///   such client" stays a refusal;
    /// - one committed elsewhere (CLI, another node) more than `client_cache_ttl` before U is
    ///   honoured too — the same propagation delay as in normal operation, never more;
    /// - one committed within `client_cache_ttl` before U, or while this node alone cannot
    ///   reach the store (a partition), may be missed until the store answers again or the
    ///   grace ends, whichever is first.
    ///
    /// Only reads take this path: authenticating a client with a secret and issuing a
    /// client-credentials token then need nothing else from the store, while introspection
    /// and revocation still read or write the revocation list, and `private_key_jwt` must
    /// record its `jti`, so they fail closed with 503.
    pub(super) async fn load_client(&self, id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
        let down_since = || self.store.health.down_since();
        let fetch = || async { self.store.catalog.client(&ClientId(id.to_owned())).await };
        Ok(self.clients.read_through(id, down_since, self.cfg.store_outage_grace, fetch).await?)
    }

    /// Forgets a cached client after this process changed it.
    pub(super) fn forget_client(&self, id: &ClientId) {
        self.clients.invalidate(id.as_str());
    }
}

/// A client just created, with the secrets shown only now.
pub struct Created {
    /// The stored client.
    pub client: Client,
    /// The client secret (secret-based auth methods).
    pub client_secret: Option<String>,
    /// The RFC 7592 registration access token (dynamic registration).
    pub registration_access_token: Option<String>,
}

/// A new client id: 128 random bits, base64url, starting with a letter or digit — an id
/// starting with `-` would read as an option on a command line (`warden client show -x…`).
fn new_client_id() -> Result<ClientId, OAuthError> {
    loop {
        let id = secrets::random_text(16).map_err(OAuthError::server_error)?;
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Ok(ClientId(id));
        }
    }
}

/// Validates `req` under `policy` and stores a new client. A secret is generated for
/// secret-based methods unless `secret` is supplied (it must be as strong as a generated one).
pub async fn create(
    store: &Store,
    master: &MasterKey,
    req: RegistrationRequest,
    policy: &Policy<'_>,
    origin: Origin,
    secret: Option<String>,
) -> Result<Created, OAuthError> {
    let metadata = check_client_metadata(req, policy)?;
    let client_secret = match (metadata.token_endpoint_auth_method.uses_secret(), secret) {
        (true, Some(s)) => {
            secrets::check_secret_strength(&s).map_err(OAuthError::invalid_client_metadata)?;
            Some(s)
        }
        (true, None) => Some(secrets::generate_secret().map_err(OAuthError::server_error)?),
        (false, Some(_)) => {
            return Err(OAuthError::invalid_client_metadata(
                "a client secret only goes with client_secret_basic or client_secret_post",
            ));
        }
        (false, None) => None,
    };
    let registration_access_token = match origin {
        Origin::Dynamic => Some(secrets::generate_secret().map_err(OAuthError::server_error)?),
        Origin::Operator => None,
    };
    let now = unix_now();
    let client = Client {
        client_id: new_client_id()?,
        metadata,
        secret_hash: client_secret.as_deref().map(|s| master.hash_secret(s)),
        registration_token_hash: registration_access_token.as_deref().map(|t| master.hash_secret(t)),
        origin,
        created_at: now,
        updated_at: now,
        revision: 0,
    };
    store.catalog.insert_client(&client).await?;
    Ok(Created { client, client_secret, registration_access_token })
}

fn not_found(id: &ClientId) -> OAuthError {
    OAuthError::invalid_request(format!("no client with id \"{id}\""))
}

/// Replaces a client's secret with a new generated one; the old one stops working at once.
pub async fn rotate_secret(store: &Store, master: &MasterKey, id: &ClientId) -> Result<(Client, String), OAuthError> {
    let secret = secrets::generate_secret().map_err(OAuthError::server_error)?;
    let client = update_with_retry(store, id, |client| {
        if !client.metadata.token_endpoint_auth_method.uses_secret() {
            return Err(OAuthError::invalid_request(format!(
                "client \"{id}\" authenticates with {}, not a secret",
                client.metadata.token_endpoint_auth_method.as_str()
            )));
        }
        client.secret_hash = Some(master.hash_secret(&secret));
        Ok(())
    })
    .await?;
    Ok((client, secret))
}

/// Read-modify-write of a client that survives concurrent writers: `change` is applied to a
/// fresh read and the write names the revision read; if another writer got in between, it
/// starts over (a few times) rather than overwrite their change.
pub(super) async fn update_with_retry(
    store: &Store,
    id: &ClientId,
    mut change: impl FnMut(&mut Client) -> Result<(), OAuthError>,
) -> Result<Client, OAuthError> {
    for _ in 0..5 {
        let mut client = store.catalog.client(id).await?.ok_or_else(|| not_found(id))?;
        change(&mut client)?;
        client.updated_at = unix_now();
        match store.catalog.update_client(&client).await {
            Ok(()) => return Ok(client),
            Err(StoreError::Conflict) => continue,
            Err(StoreError::NotFound) => return Err(not_found(id)),
            Err(e) => return Err(e.into()),
        }
    }
    Err(OAuthError::new(super::ErrorCode::TemporarilyUnavailable, "the client is being changed concurrently; retry"))
}

/// Deletes a client.
pub async fn delete(store: &Store, id: &ClientId) -> Result<(), OAuthError> {
    match store.catalog.delete_client(id).await {
        Err(StoreError::NotFound) => Err(not_found(id)),
        other => Ok(other?),
    }
}

/// Loads a client or says it does not exist.
pub async fn show(store: &Store, id: &ClientId) -> Result<Client, OAuthError> {
    store.catalog.client(id).await?.ok_or_else(|| not_found(id))
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_ids_never_start_with_a_character_a_shell_or_cli_reads_as_an_option() {
        // 1 in 32 random ids would start with '-' or '_'; 2000 draws all but surely meet one.
        for _ in 0..2000 {
            let id = super::new_client_id().unwrap();
            assert!(id.as_str().starts_with(|c: char| c.is_ascii_alphanumeric()), "{}", id.as_str());
            assert_eq!(id.as_str().len(), 22);
        }
    }
}
