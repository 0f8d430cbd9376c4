//! OAuth clients and their registered metadata (RFC 7591 §2).

use super::{ClientId, SecretHash};
use serde::{Deserialize, Serialize};

/// Grant types a client may be registered for (RFC 7591 §2 `grant_types`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.1.
    AuthorizationCode,
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 6749 §6.
    RefreshToken,
}

impl GrantType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
        }
    }

    /// Parses a wire name; `None` for grant types Warden does not register.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(Self::AuthorizationCode),
            "client_credentials" => Some(Self::ClientCredentials),
            "refresh_token" => Some(Self::RefreshToken),
            _ => None,
        }
    }
}

/// Token endpoint client authentication methods (RFC 7591 §2, OIDC Core §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with client id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// Client id and secret in the form body (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A JWT assertion signed with the client's own key (RFC 7523 §2.2, OIDC Core §9).
    PrivateKeyJwt,
    /// A public client: no authentication.
    None,
}

impl AuthMethod {
    /// All methods, in the order metadata lists them.
    pub const ALL: [AuthMethod; 4] =
        [Self::ClientSecretBasic, Self::ClientSecretPost, Self::PrivateKeyJwt, Self::None];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether the method authenticates with a shared secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

/// How a client came to exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Created by an operator (CLI, admin API).
    Operator,
    /// Created by RFC 7591 dynamic registration.
    Dynamic,
}

/// Registered client metadata: RFC 7591 §2 names, plus Warden's token settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientMetadata {
    /// Human-readable name shown on consent pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Exact redirection URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Grant types the client may use.
    pub grant_types: Vec<GrantType>,
    /// Response types for the authorization endpoint.
    #[serde(default)]
    pub response_types: Vec<String>,
    /// How the client authenticates at the token endpoint.
    pub token_endpoint_auth_method: AuthMethod,
    /// Scopes the client may request, in registration order.
    #[serde(default)]
    pub scope: Vec<String>,
    /// The client's public keys for `private_key_jwt` (a JWK Set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// RFC 7591 informational members, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// See RFC 7591 §2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// See RFC 7591 §2.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// See RFC 7591 §2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// See RFC 7591 §2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// See RFC 7591 §2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// See RFC 7591 §2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// Audiences (resource servers) this client's access tokens may carry; the first is the
    /// default. Empty means the server's default audience.
    #[serde(default)]
    pub audience: Vec<String>,
    /// Access-token lifetime in seconds for this client; `None` uses the server default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_lifetime: Option<u64>,
    /// Audiences this client *is* the resource server of: it may introspect tokens issued
    /// for them (RFC 7662 §4). Set by operators only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_server_for: Vec<String>,
    /// RFC 9449 §5.2: the client always uses DPoP; token requests without a proof are refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
    /// OIDC Dynamic Client Registration §2: the JWS algorithm of this client's ID tokens;
    /// `None`: the server's first `keys.id_token_algs` (RS256 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    /// An application of the operator's own: users are not asked to consent. Set by
    /// operators only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_party: bool,
    /// Web or native (OIDC Dynamic Client Registration §2).
    #[serde(default)]
    pub application_type: ApplicationType,
    /// OIDC RP-Initiated Logout §3.1: where the browser may go after signing out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    /// RFC 9126 §6: authorization requests must be pushed first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_pushed_authorization_requests: bool,
}

/// OIDC Dynamic Client Registration §2 `application_type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationType {
    /// A web application: https redirect URIs only.
    #[default]
    Web,
    /// A native (desktop or mobile) app: loopback http or private-use scheme redirect URIs
    /// (RFC 8252), or https.
    Native,
}

/// A registered client.
#[derive(Clone, Debug)]
pub struct Client {
    /// The public identifier.
    pub client_id: ClientId,
    /// Registered metadata.
    pub metadata: ClientMetadata,
    /// Keyed hash of the client secret (confidential clients with a secret method).
    pub secret_hash: Option<SecretHash>,
    /// Keyed hash of the RFC 7592 registration access token (dynamic clients).
    pub registration_token_hash: Option<SecretHash>,
    /// Who created it.
    pub origin: Origin,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Last change (unix seconds).
    pub updated_at: i64,
    /// Bumped by every update; an update must name the revision it read.
    pub revision: i64,
}

impl Client {
    /// Whether the client may use `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.metadata.grant_types.contains(&grant)
    }
}
