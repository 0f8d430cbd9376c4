//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).
//!
//! Registration needs an initial access token (created with `warden registration-token
//! create`) unless `registration.mode = "open"`. Each registered client gets a registration
//! access token for reading, updating and deleting its own registration.

pub mod metadata;

use super::clients::{self, Created};
use super::{OAuthError, Provider, RegistrationMode};
use crate::model::{Client, ClientId, InitialAccessToken, Origin, unix_now};
use crate::secrets::{self, MasterKey};
use crate::store::Store;
use metadata::{Policy, RegistrationRequest, check_client_metadata};
use serde_json::{Value, json};
use std::net::IpAddr;

/// A bearer token from an `Authorization: Bearer …` header (RFC 6750 §2.1).
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

fn invalid_token() -> OAuthError {
    OAuthError::invalid_token("the access token is invalid, expired or revoked")
}

/// RFC 6750 §3.1: a request with no token gets a challenge without an error code.
fn missing_token() -> OAuthError {
    let mut e = OAuthError::invalid_token("this endpoint needs an access token (Authorization: Bearer)");
    e.challenge = Some(super::Challenge::Bearer);
    e
}

impl Provider {
    fn dynamic_policy<'a>(&'a self, signing_algs: &'a [crate::jose::Alg]) -> Policy<'a> {
        Policy {
            scopes: Some(&self.cfg.registration.allowed_scopes),
            audiences: Some(&self.cfg.registration.allowed_audiences),
            max_lifetime: None,
            signing_algs,
        }
    }

    /// The registration response (RFC 7591 §3.2.1, RFC 7592 §3): metadata plus ids and URIs.
    fn registration_response(&self, client: &Client, secret: Option<&str>, token: Option<&str>) -> Value {
        let mut v = serde_json::to_value(&client.metadata).unwrap_or_else(|_| json!({}));
        v["client_id"] = client.client_id.0.clone().into();
        v["client_id_issued_at"] = client.created_at.into();
        v["scope"] = client.metadata.scope.join(" ").into();
        v["grant_types"] = client.metadata.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>().into();
        if let Some(s) = secret {
            v["client_secret"] = s.into();
        }
        if client.metadata.token_endpoint_auth_method.uses_secret() {
            v["client_secret_expires_at"] = 0.into();
        }
        if let Some(t) = token {
            v["registration_access_token"] = t.into();
        }
        v["registration_client_uri"] = self.cfg.endpoint(&format!("/register/{}", client.client_id)).into();
        v
    }

    /// `POST /register`. Returns the 201 body.
    /// - every request counts against its source address (`registration.per_address` per
    ///   `registration.window`; over it: 429 with `Retry-After`), so open registration cannot
    ///   be used to fill the catalog;
    /// - then the initial access token (mode `token`), the metadata, and the client is stored.
    pub async fn register(&self, authorization: Option<&str>, body: &[u8], peer: IpAddr) -> Result<Value, OAuthError> {
        if let Err(retry) = self.registrations.count(None, peer) {
            let mut e = OAuthError::new(super::ErrorCode::RateLimited, "too many registrations from this address; retry later");
            e.retry_after = Some(retry);
            return Err(e);
        }
        match self.cfg.registration.mode {
            RegistrationMode::Disabled => {
                return Err(OAuthError::invalid_request("dynamic registration is disabled"));
            }
            RegistrationMode::Token => {
                let token = bearer(authorization).ok_or_else(missing_token)?;
                let hash = self.master.hash_secret(token);
                let found = self.store.catalog.initial_access_token_by_hash(&hash).await?;
                if !found.is_some_and(|t| t.is_usable(unix_now())) {
                    return Err(invalid_token());
                }
            }
            RegistrationMode::Open => {}
        }
        let req = parse_metadata(body)?;
        if req.client_id.is_some() || req.client_secret.is_some() {
            return Err(OAuthError::invalid_client_metadata("client_id and client_secret are assigned by the server"));
        }
        let Created { client, client_secret, registration_access_token } =
            clients::create(&self.store, &self.master, req, &self.dynamic_policy(&self.cfg.keys.signing_algs()), Origin::Dynamic, None).await?;
        tracing::info!(target: "audit", event = "client_registered", client_id = %client.client_id);
        Ok(self.registration_response(&client, client_secret.as_deref(), registration_access_token.as_deref()))
    }

    /// RFC 7592 §2: the registration access token must match the client's. A missing client
    /// gets the same 401 as a wrong token. Returns the client and the token presented.
    async fn managed_client<'a>(&self, id: &str, authorization: Option<&'a str>) -> Result<(Client, &'a str), OAuthError> {
        let token = bearer(authorization).ok_or_else(missing_token)?;
        if !crate::model::is_vschar_id(id) {
            return Err(invalid_token());
        }
        let client = self.store.catalog.client(&ClientId(id.to_owned())).await?.ok_or_else(invalid_token)?;
        match &client.registration_token_hash {
            Some(h) if self.master.verify_secret(token, h) => Ok((client, token)),
            _ => Err(invalid_token()),
        }
    }

    /// `GET /register/{client_id}` (RFC 7592 §2.1). The response carries the registration
    /// access token and URI as §3 requires.
    pub async fn registration_read(&self, id: &str, authorization: Option<&str>) -> Result<Value, OAuthError> {
        let (client, token) = self.managed_client(id, authorization).await?;
        Ok(self.registration_response(&client, None, Some(token)))
    }

    /// `PUT /register/{client_id}` (RFC 7592 §2.2): the body replaces the metadata; omitted
    /// fields take their defaults.
    pub async fn registration_update(&self, id: &str, authorization: Option<&str>, body: &[u8]) -> Result<Value, OAuthError> {
        let (client, token) = self.managed_client(id, authorization).await?;
        let req = parse_metadata(body)?;
        if req.client_id.as_deref() != Some(id) {
            return Err(OAuthError::invalid_request("the body must carry this client's client_id"));
        }
        if req.registration_access_token.is_some()
            || req.registration_client_uri.is_some()
            || req.client_id_issued_at.is_some()
            || req.client_secret_expires_at.is_some()
        {
            return Err(OAuthError::invalid_request(
                "registration_access_token, registration_client_uri, client_id_issued_at and \
                 client_secret_expires_at must not be sent",
            ));
        }
        if let Some(s) = &req.client_secret
            && !client.secret_hash.as_ref().is_some_and(|h| self.master.verify_secret(s, h)) {
                return Err(OAuthError::invalid_request("client_secret does not match"));
            }
        let metadata = check_client_metadata(req, &self.dynamic_policy(&self.cfg.keys.signing_algs()))?;
        let mut new_secret = None;
        let updated = clients::update_with_retry(&self.store, &client.client_id, |c| {
            new_secret = None;
            if metadata.token_endpoint_auth_method.uses_secret() && c.secret_hash.is_none() {
                let s = secrets::generate_secret().map_err(OAuthError::server_error)?;
                c.secret_hash = Some(self.master.hash_secret(&s));
                new_secret = Some(s);
            } else if !metadata.token_endpoint_auth_method.uses_secret() {
                c.secret_hash = None;
            }
            c.metadata = metadata.clone();
            Ok(())
        })
        .await
        // Deleted in between: the token no longer names a client.
        .map_err(|e| if e.code == super::ErrorCode::InvalidRequest { invalid_token() } else { e })?;
        self.forget_client(&updated.client_id);
        Ok(self.registration_response(&updated, new_secret.as_deref(), Some(token)))
    }

    /// `DELETE /register/{client_id}` (RFC 7592 §2.3).
    pub async fn registration_delete(&self, id: &str, authorization: Option<&str>) -> Result<(), OAuthError> {
        let (client, _) = self.managed_client(id, authorization).await?;
        clients::delete(&self.store, &client.client_id).await?;
        self.forget_client(&client.client_id);
        tracing::info!(target: "audit", event = "client_deleted", client_id = %client.client_id);
        Ok(())
    }
}

fn parse_metadata(body: &[u8]) -> Result<RegistrationRequest, OAuthError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| OAuthError::invalid_client_metadata("the body must be a JSON object"))?;
    if !v.is_object() {
        return Err(OAuthError::invalid_client_metadata("the body must be a JSON object"));
    }
    serde_json::from_value(v).map_err(|e| OAuthError::invalid_client_metadata(format!("malformed metadata: {e}")))
}

/// An initial access token just created; the token is shown only now.
pub struct NewInitialAccessToken {
    /// The stored record.
    pub record: InitialAccessToken,
    /// The bearer token.
    pub token: String,
}

/// Creates an initial access token valid for `lifetime` seconds (`None`: never expires).
pub async fn create_initial_access_token(
    store: &Store,
    master: &MasterKey,
    description: &str,
    lifetime: Option<u64>,
) -> Result<NewInitialAccessToken, OAuthError> {
    let token = secrets::generate_secret().map_err(OAuthError::server_error)?;
    let now = unix_now();
    let record = InitialAccessToken {
        id: secrets::random_text(9).map_err(OAuthError::server_error)?,
        token_hash: master.hash_secret(&token),
        description: description.to_owned(),
        created_at: now,
        expires_at: lifetime.map(|l| now + l as i64),
        revoked_at: None,
    };
    store.catalog.insert_initial_access_token(&record).await?;
    Ok(NewInitialAccessToken { record, token })
}
