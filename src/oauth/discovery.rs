//! Authorization-server metadata (RFC 8414) and the OpenID Provider configuration (OIDC
//! Discovery 1.0 §3): exactly what is implemented, nothing more.

use super::token::GRANT_TYPES_SUPPORTED;
use super::{Provider, RegistrationMode};
use crate::jose::Alg;
use serde_json::{Value, json};

impl Provider {
    /// The metadata document, shared by both well-known paths.
    pub fn metadata(&self) -> Value {
        let c = &self.cfg;
        let auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
        let signing_algs: Vec<&str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
        let mut m = json!({
            "issuer": c.issuer,
            "token_endpoint": c.endpoint("/token"),
            "jwks_uri": c.endpoint("/jwks"),
            "introspection_endpoint": c.endpoint("/introspect"),
            "revocation_endpoint": c.endpoint("/revoke"),
            "grant_types_supported": GRANT_TYPES_SUPPORTED,
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": signing_algs,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_signing_alg_values_supported": signing_algs,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_signing_alg_values_supported": signing_algs,
        });
        if c.registration.mode != RegistrationMode::Disabled {
            m["registration_endpoint"] = c.endpoint("/register").into();
        }
        m
    }
}
