//! Domain types shared by every module: clients, users, signing-key records, registration
//! tokens.
//!
//! Nothing here knows HTTP or SQL. Identifiers are newtypes so that a client id is never
//! passed where a key id is expected.

mod client;

pub use client::{ApplicationType, AuthMethod, Client, ClientMetadata, GrantType, Origin, response_type_set};


use serde::{Deserialize, Serialize};
use std::fmt;

/// Seconds since the Unix epoch, the one time unit stored and compared everywhere.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

mod user;
mod consumer;

pub use consumer::{ApiKey, CONSUMER_NAME_MAX, Consumer, ConsumerId, check_consumer_name, consumer_name_key};

pub use user::{
    Address, CLAIM_MAX, Claims, PasswordHash, USERNAME_MAX, User, UserId, Username, username_key,
};

string_id!(
    /// An OAuth `client_id` (RFC 6749 §2.2).
    ClientId
);
string_id!(
    /// A JWK key id (`kid`), the RFC 7638 thumbprint of the public key.
    Kid
);

/// Whether `s` can be an identifier we issued or accept (a client id, a `jti`): 1 to 255
/// printable ASCII characters (RFC 6749 Appendix A `VSCHAR`). Anything else is refused before
/// it reaches a cache, a log line or the database.
pub fn is_vschar_id(s: &str) -> bool {
    (1..=255).contains(&s.len()) && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// A keyed hash (HMAC-SHA-256) of a secret: client secret, registration or initial access
/// token. Only these are stored; the secrets themselves are shown once.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

impl SecretHash {
    /// Parses the stored form; `None` when the length is wrong.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

/// A signing key as stored: the private half sealed with the master key.
#[derive(Clone)]
pub struct SigningKeyRecord {
    /// RFC 7638 thumbprint of the public key.
    pub kid: Kid,
    /// JWS algorithm name (`ES256`, `RS256`, `PS256`, `EdDSA`).
    pub alg: String,
    /// PKCS#8 private key, sealed (AES-256-GCM) under the master key with the kid as AAD.
    pub sealed_private: Vec<u8>,
    /// The public JWK, as published.
    pub public_jwk: serde_json::Value,
    /// When the key was created.
    pub created_at: i64,
    /// From when the key may sign (it is published before that).
    pub activate_at: i64,
    /// Until when the key stays published; `None` while it is the current key of its algorithm.
    pub publish_until: Option<i64>,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("activate_at", &self.activate_at)
            .field("publish_until", &self.publish_until)
            .finish_non_exhaustive()
    }
}

/// An initial access token (RFC 7591 §3) that lets its holder register one or more clients.
#[derive(Clone, Debug)]
pub struct InitialAccessToken {
    /// Public identifier, used to list and revoke it.
    pub id: String,
    /// Keyed hash of the token.
    pub token_hash: SecretHash,
    /// Operator's note.
    pub description: String,
    /// Creation time.
    pub created_at: i64,
    /// Expiry; `None` never expires.
    pub expires_at: Option<i64>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

impl InitialAccessToken {
    /// Whether the token may be used at `now`.
    pub fn is_usable(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// `aud`: one string or a list (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, serialized as a string.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// A string for one value, a list otherwise.
    pub fn from_list(mut list: Vec<String>) -> Self {
        if list.len() == 1 { Audience::One(list.remove(0)) } else { Audience::Many(list) }
    }

    /// Whether `aud` names `who`.
    pub fn contains(&self, who: &str) -> bool {
        match self {
            Audience::One(a) => a == who,
            Audience::Many(l) => l.iter().any(|a| a == who),
        }
    }
}

/// The claims of a Warden access token (RFC 9068 §2.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the resource owner, or the client itself for client credentials.
    pub sub: String,
    /// Audience: the resource servers the token is for.
    pub aud: Audience,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Unique token id; the key of the revocation list.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The key the token is bound to (RFC 9449 §6.1 `cnf.jkt`), for DPoP-bound tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// When the user authenticated (RFC 9068 §2.2.1), for tokens issued to a user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// A token's confirmation claim (RFC 7800 §3.1): the key its holder must prove possession of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The RFC 7638 thumbprint (SHA-256, base64url) of the DPoP key (RFC 9449 §6.1).
    pub jkt: String,
}

/// [`AccessTokenClaims`] borrowed from the request's data, for signing: the same JSON
/// (members, order, omissions) without copying the strings.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AccessTokenClaimsRef<'a> {
    /// Issuer.
    pub iss: &'a str,
    /// Subject.
    pub sub: &'a str,
    /// Audience: a string for one value, a list otherwise (as [`Audience::from_list`]).
    pub aud: AudienceRef<'a>,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Unique token id.
    pub jti: &'a str,
    /// The client the token was issued to.
    pub client_id: &'a str,
    /// Granted scopes, space-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'a str>,
    /// The DPoP key the token is bound to, serialized as `{"jkt": ...}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<ConfirmationRef<'a>>,
}

/// A borrowed [`Confirmation`].
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ConfirmationRef<'a> {
    /// See [`Confirmation::jkt`].
    pub jkt: &'a str,
}

/// A borrowed `aud`: serialized like [`Audience`].
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(untagged)]
pub enum AudienceRef<'a> {
    /// A single audience, serialized as a string.
    One(&'a str),
    /// Several audiences (or none), serialized as a list.
    Many(&'a [String]),
}

impl<'a> AudienceRef<'a> {
    /// A string for one value, a list otherwise.
    pub fn from_list(list: &'a [String]) -> Self {
        match list {
            [one] => AudienceRef::One(one),
            _ => AudienceRef::Many(list),
        }
    }
}

/// A protected resource (an API) that access tokens are issued for, identified by its
/// audience value (RFC 8707 resource indicator). Lets operators set per-API token policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// The `aud` value, usually the API's base URL.
    pub audience: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Longest lifetime (seconds) of access tokens for this resource; `None`: no own limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_lifetime: Option<u64>,
    /// Creation time (unix seconds).
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_claims_serialize_like_the_owned_ones() {
        for (aud, scope, jkt) in [
            (vec!["https://a".to_owned()], Some("read write"), None),
            (vec!["https://a".into(), "https://b".into()], None, Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")),
        ] {
            let owned = AccessTokenClaims {
                iss: "https://issuer".into(),
                sub: "c\"1".into(),
                aud: Audience::from_list(aud.clone()),
                exp: 20,
                iat: 10,
                jti: "j".into(),
                client_id: "c\"1".into(),
                scope: scope.map(str::to_owned),
                cnf: jkt.map(|jkt: &str| Confirmation { jkt: jkt.to_owned() }),
                auth_time: None,
            };
            let borrowed = AccessTokenClaimsRef {
                iss: "https://issuer",
                sub: "c\"1",
                aud: AudienceRef::from_list(&aud),
                exp: 20,
                iat: 10,
                jti: "j",
                client_id: "c\"1",
                scope,
                cnf: jkt.map(|jkt| ConfirmationRef { jkt }),
            };
            assert_eq!(serde_json::to_string(&borrowed).unwrap(), serde_json::to_string(&owned).unwrap());
        }
    }
}
