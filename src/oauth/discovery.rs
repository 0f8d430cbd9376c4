//! Authorization-server metadata (RFC 8414) and the OpenID Provider configuration (OIDC
//! Discovery 1.0 §3): one document, served at both well-known paths, listing exactly what
//! works and nothing more.
//!
//! Every member, and why it is there or not:
//! - endpoints: `issuer`, `authorization_endpoint`, `token_endpoint`, `userinfo_endpoint`,
//!   `jwks_uri`, `registration_endpoint` (when registration is on), `introspection_endpoint`,
//!   `revocation_endpoint`, `pushed_authorization_request_endpoint` (RFC 9126),
//!   `end_session_endpoint` (RP-Initiated Logout);
//! - `response_types_supported: ["code"]` and `response_modes_supported` (query, fragment,
//!   form_post); `grant_types_supported` lists what any client may register for (the legacy
//!   implicit and password grants, enabled per client by an operator, are not advertised);
//! - `subject_types_supported: ["public"]`; `id_token_signing_alg_values_supported`: the
//!   algorithms this server holds keys for (`keys.access_token_alg` + `keys.id_token_algs`),
//!   never `none`;
//! - client authentication methods and their signing algorithms for the token, introspection
//!   and revocation endpoints (`none` only at the token endpoint, for public clients);
//! - `scopes_supported` (the OIDC scopes), `claims_supported`, `claims_parameter_supported`;
//!   `request_parameter_supported` and `request_uri_parameter_supported` false (request
//!   objects are refused explicitly; PAR's `request_uri` is RFC 9126's, advertised by its own
//!   endpoint member); `code_challenge_methods_supported: ["S256"]` (`plain` is refused);
//!   `authorization_response_iss_parameter_supported` (RFC 9207);
//!   `require_pushed_authorization_requests` when the server requires PAR;
//!   `dpop_signing_alg_values_supported` (RFC 9449);
//! - left out: userinfo/request-object signing and encryption (unsigned JSON only),
//!   front-/back-channel logout, `display_values_supported`, `ui_locales_supported` (one page
//!   style, English), `acr_values_supported` (`acr` is `"1"` for a fresh login and `"0"` for a
//!   reused session, but `acr_values` cannot ask for more). No member is an empty array
//!   (RFC 8414 §3.2).

use super::token::GRANT_TYPES_SUPPORTED;
use super::{Provider, RegistrationMode};
use crate::jose::Alg;
use serde_json::{Value, json};

/// The claims an ID token or userinfo response may carry.
const CLAIMS_SUPPORTED: &[&str] = &["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "acr", "amr", "at_hash", "sid"];

impl Provider {
    /// The metadata document.
    pub fn metadata(&self) -> Value {
        let c = &self.cfg;
        let auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
        let token_auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"];
        let signing_algs: Vec<&str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
        let id_token_algs: Vec<&str> = c.keys.signing_algs().iter().map(|a| a.as_str()).collect();
        let mut claims: Vec<&str> = CLAIMS_SUPPORTED.to_vec();
        for (_, names) in super::claims::SCOPE_CLAIMS {
            claims.extend_from_slice(names);
        }
        let mut m = json!({
            "issuer": c.issuer,
            "authorization_endpoint": c.endpoint("/authorize"),
            "token_endpoint": c.endpoint("/token"),
            "userinfo_endpoint": c.endpoint("/userinfo"),
            "jwks_uri": c.endpoint("/jwks"),
            "pushed_authorization_request_endpoint": c.endpoint("/par"),
            "end_session_endpoint": c.endpoint("/logout"),
            "introspection_endpoint": c.endpoint("/introspect"),
            "revocation_endpoint": c.endpoint("/revoke"),
            "scopes_supported": ["openid", "profile", "email", "address", "phone", "offline_access"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "grant_types_supported": GRANT_TYPES_SUPPORTED,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": id_token_algs,
            "token_endpoint_auth_methods_supported": token_auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": signing_algs,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_signing_alg_values_supported": signing_algs,
            // RFC 7009 §2.1: a public client revokes its own refresh token by client_id alone.
            "revocation_endpoint_auth_methods_supported": token_auth_methods,
            "revocation_endpoint_auth_signing_alg_values_supported": signing_algs,
            "claims_supported": claims,
            "claims_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "dpop_signing_alg_values_supported": signing_algs,
        });
        if c.registration.mode != RegistrationMode::Disabled {
            m["registration_endpoint"] = c.endpoint("/register").into();
        }
        if c.require_pushed_authorization_requests {
            m["require_pushed_authorization_requests"] = true.into();
        }
        m
    }
}
