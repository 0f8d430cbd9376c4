//! Authorization-server metadata (RFC 8414): exactly what is implemented, nothing more.
//!
//! Only `/.well-known/oauth-authorization-server` is served. The OpenID Provider configuration
//! (`/.well-known/openid-configuration`, OIDC Discovery 1.0 §3) needs members Warden cannot
//! fill yet (`authorization_endpoint`, `subject_types_supported`,
//! `id_token_signing_alg_values_supported` are REQUIRED there), so that path answers the same
//! 404 as any unknown path until the browser flow and ID tokens exist.
//!
//! ## `response_types_supported` is omitted, a deliberate deviation from RFC 8414 §2
//!
//! RFC 8414 §2 marks it REQUIRED: "JSON array containing a list of the OAuth 2.0
//! "response_type" values that this authorization server supports." Response types are what
//! a client sends to the authorization endpoint (RFC 7591 §2.1 maps `client_credentials` to
//! no response type), and Warden has no authorization endpoint, so the true list is empty.
//! But RFC 8414 §3.2 says "Claims with zero elements MUST be omitted from the response", so
//! `[]` breaks a MUST too, and listing `code` would advertise a flow that does not exist. No
//! document satisfies both sections; we omit the member, which is what RFC 8414 erratum 7793
//! proposes ("REQUIRED unless no grant types are supported that use the authorization
//! endpoint", the same condition §2 already puts on `authorization_endpoint`) and what
//! OpenID4VCI 1.0 allows a server whose only grant skips the authorization endpoint. Strict
//! validators (Authlib's `AuthorizationServerMetadata`) report exactly this one member;
//! `conformance/interop.py` asserts that it is their only complaint. Once the
//! authorization-code grant lands, the member becomes `["code"]` and the deviation ends.
//!
//! The other §2 members, one by one: `issuer`, `token_endpoint` (REQUIRED) are present;
//! `authorization_endpoint` is omitted, as §2 allows when no grant type uses it;
//! `jwks_uri`, `registration_endpoint` (when registration is enabled), `grant_types_supported`
//! (its default would claim `authorization_code` and `implicit`), the endpoint auth methods
//! and their signing algorithms (required by §2 because `private_key_jwt` is listed), and
//! the revocation and introspection endpoints are present, and so is RFC 9449 §5.1's
//! `dpop_signing_alg_values_supported`; `scopes_supported`
//! (RECOMMENDED, and §2 lets a server not advertise scopes), `response_modes_supported`,
//! `code_challenge_methods_supported` and the informational URLs are omitted: nothing true
//! to say yet. No member is a zero-element array (§3.2).

use super::token::GRANT_TYPES_SUPPORTED;
use super::{Provider, RegistrationMode};
use crate::jose::Alg;
use serde_json::{Value, json};

impl Provider {
    /// The RFC 8414 metadata document.
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
            "token_endpoint_auth_methods_supported": auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": signing_algs,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_signing_alg_values_supported": signing_algs,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_signing_alg_values_supported": signing_algs,
            "dpop_signing_alg_values_supported": signing_algs,
        });
        if c.registration.mode != RegistrationMode::Disabled {
            m["registration_endpoint"] = c.endpoint("/register").into();
        }
        m
    }
}
