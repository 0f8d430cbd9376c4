//! The authorization server, by specification.

mod interop_openidconnect;
mod keys;
mod multi_node;
mod outage;
mod oidc_id_token;
mod oidc_userinfo;
mod restart;
mod rfc6749_authorization_code;
mod rfc6749_authorize;
mod rfc6749_client_credentials;
mod rfc6749_errors;
mod rfc7009_revoke;
mod rfc7523_private_key_jwt;
mod rfc7591_register;
mod rfc7662_introspect;
mod oidc_login_consent;
mod oidc_logout;
mod rfc8414_discovery;
mod rfc9126_par;
mod rfc9449_dpop;
