//! The authorization server: OAuth 2.0 and OpenID Connect endpoints.
//!
//! The endpoint table is `handler::routes`, one line per endpoint. Protocol logic takes and
//! returns plain types ([`params::FormRequest`], wire structs); only `handler.rs` knows axum.
//!
//! | endpoint | spec | file |
//! |---|---|---|
//! | `GET/POST /authorize` | RFC 6749 §4.1.1, OIDC Core §3.1.2 (checks only, so far) | `authorize/`, `pages.rs` |
//! | `POST /token` | RFC 6749 §3.2, §4.1.3, §4.4, RFC 9449 §5 (DPoP), OIDC Core §3.1.3 (ID token) | `token/`, `dpop.rs`, `id_token.rs`, `grants.rs` |
//! | `GET/POST /userinfo` | OIDC Core §5.3, RFC 6750, RFC 9449 §7 (not advertised yet) | `userinfo.rs`, `claims.rs` |
//! | `POST /introspect` | RFC 7662 | `introspect.rs` |
//! | `POST /revoke` | RFC 7009 | `revoke.rs` |
//! | `POST /register`, `GET/PUT/DELETE /register/{id}` | RFC 7591, RFC 7592 | `register/` |
//! | `GET /jwks`, `GET /.well-known/oauth-authorization-server` | RFC 7517, RFC 8414 | `discovery.rs` |

pub mod authorize;
mod cache;
mod claims;
mod client_auth;
pub mod clients;
mod discovery;
mod dpop;
mod error;
mod grants;
pub mod handler;
mod id_token;
pub mod interaction;
mod introspect;
pub mod keys;
pub mod pages;
mod params;
pub mod register;
pub mod resources;
mod revoke;
use crate::http::throttle;
mod token;
pub mod userinfo;
pub mod users;

pub use error::{Challenge, ErrorCode, OAuthError};
pub use params::{DpopHeader, FormRequest, Params};

use crate::jose::{Alg, KeyRing};
use crate::secrets::MasterKey;
use crate::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How clients may register dynamically (RFC 7591).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationMode {
    /// Registration requires an initial access token (the default).
    Token,
    /// Anyone may register.
    Open,
    /// No registration endpoint.
    Disabled,
}

/// `[registration]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RegistrationConfig {
    /// Who may register.
    pub mode: RegistrationMode,
    /// Scopes a dynamically registered client may ask for.
    pub allowed_scopes: Vec<String>,
    /// Audiences a dynamically registered client may ask for (besides the default).
    pub allowed_audiences: Vec<String>,
    /// Default lifetime of initial access tokens created by the CLI.
    pub initial_access_token_lifetime: Duration,
    /// Whether a dynamically registered client that names no audience may get tokens for the
    /// issuer itself (off: it must register an audience from `allowed_audiences`).
    pub issuer_audience: bool,
    /// Registration requests accepted per source address per `window`.
    pub per_address: u32,
    /// The window of `per_address`.
    pub window: Duration,
}

/// Who may introspect a token (RFC 7662 §4: the server should know which protected
/// resource is asking).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntrospectionPolicy {
    /// The token's own client, and clients registered as the resource server of an audience
    /// the token carries (`resource_server_for`). The default.
    Restricted,
    /// Any authenticated client.
    AnyClient,
}

/// `[branding]`: how the sign-in pages look.
#[derive(Clone, Debug, PartialEq)]
pub struct Branding {
    /// The product name on every page.
    pub name: String,
    /// A logo shown instead of the name (an https or `data:image/` URL).
    pub logo_url: Option<String>,
    /// The accent colour (`#rrggbb`) of buttons and links.
    pub accent_color: Option<String>,
    /// A directory whose `*.html` files replace the built-in templates of the same name.
    pub template_dir: Option<std::path::PathBuf>,
}

/// `[keys]`.
#[derive(Clone, Debug, PartialEq)]
pub struct KeysConfig {
    /// Algorithm of access-token signatures.
    pub access_token_alg: Alg,
    /// Algorithms of ID-token signatures, each with its own key; the first is the default
    /// for clients that do not choose one (`id_token_signed_response_alg`).
    pub id_token_algs: Vec<Alg>,
    /// Time between publishing a rotated key and signing with it.
    pub rotation_delay: Duration,
    /// How often each node re-reads the key set from the store.
    pub refresh_interval: Duration,
}

/// `[provider]` and the sections it owns.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Listener address.
    pub listen: SocketAddr,
    /// The issuer identifier (`iss`), an https URL (http only on loopback).
    pub issuer: String,
    /// Default access-token lifetime.
    pub access_token_lifetime: Duration,
    /// Upper bound for any client's access-token lifetime; with `id_token_lifetime`, how long a
    /// rotated-out key stays published (the longer of the two, plus `clock_skew`).
    pub max_access_token_lifetime: Duration,
    /// Lifetime of ID tokens (`exp` − `iat`).
    pub id_token_lifetime: Duration,
    /// How long a refresh token stays usable without being used (each rotation starts it
    /// again).
    pub refresh_token_idle_lifetime: Duration,
    /// How long a refresh-token family lives at most, counted from the user's authentication
    /// (`auth_time`): no refresh token of the grant outlives it, however often it is used.
    pub refresh_token_max_lifetime: Duration,
    /// `aud` of access tokens for clients without their own audience list.
    pub default_audience: String,
    /// Allowed clock skew when checking `exp`/`nbf`/`iat`.
    pub clock_skew: Duration,
    /// Largest accepted request body, bytes.
    pub max_body_size: usize,
    /// How long a client record is cached in memory.
    pub client_cache_ttl: Duration,
    /// How long after the store became unavailable this node keeps issuing client-credentials
    /// tokens to clients it holds in its cache (exactly which: `Provider::load_client` in
    /// `clients.rs`); zero turns this off.
    pub store_outage_grace: Duration,
    /// Failed client authentications per client id and source address per window before
    /// 429 (keyed on both, so a stranger cannot lock a client out).
    pub auth_failures_per_client: u32,
    /// Failed client authentications per source address per window before 429.
    pub auth_failures_per_ip: u32,
    /// The throttling window.
    pub auth_failure_window: Duration,
    /// Longest accepted lifetime (`exp` − now) of a `private_key_jwt` assertion.
    pub assertion_max_lifetime: Duration,
    /// Transition setting: also accept `private_key_jwt` assertions whose `aud` is the token
    /// endpoint URL or an array (draft-ietf-oauth-rfc7523bis requires the issuer as a single
    /// string). Off by default.
    pub assertion_audience_transition: bool,
    /// How old (`iat`) a DPoP proof may be (RFC 9449 §11.1), besides `clock_skew`.
    pub dpop_proof_max_age: Duration,
    /// Whether DPoP proofs must carry a server-provided nonce (RFC 9449 §8).
    pub dpop_nonce: bool,
    /// How long a browser session lasts after sign-in.
    pub session_lifetime: Duration,
    /// Every client must push its authorization requests (RFC 9126 §5).
    pub require_pushed_authorization_requests: bool,
    /// Who may introspect a token (RFC 7662 §4).
    pub introspection: IntrospectionPolicy,
    /// `[registration]`.
    pub registration: RegistrationConfig,
    /// `[keys]`.
    pub keys: KeysConfig,
    /// `[branding]`.
    pub branding: Branding,
}

impl KeysConfig {
    /// Every algorithm this server signs with: the access-token one, then the ID-token ones.
    pub fn signing_algs(&self) -> Vec<Alg> {
        let mut out = vec![self.access_token_alg];
        out.extend(self.id_token_algs.iter().filter(|a| **a != self.access_token_alg));
        out
    }
}

impl Config {
    /// The URL of an endpoint path under the issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// The path of the issuer URL without a trailing slash (empty for an issuer at the root).
pub(crate) fn issuer_path(issuer: &str) -> String {
    url::Url::parse(issuer).map(|u| u.path().trim_end_matches('/').to_owned()).unwrap_or_default()
}

/// Whether a URL's host is a loopback address or `localhost`.
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// The provider's shared state: configuration, storage, keys, caches.
pub struct Provider {
    /// Resolved configuration.
    pub cfg: Config,
    /// Storage.
    pub store: Store,
    /// The master key (sealing, secret hashes).
    pub master: Arc<MasterKey>,
    /// Signing and verification keys.
    pub ring: Arc<KeyRing>,
    clients: cache::TtlCache<crate::model::Client>,
    resources: cache::TtlCache<crate::model::Resource>,
    throttle: throttle::Throttle,
    registrations: throttle::Throttle,
    /// Server-provided DPoP nonces, when `dpop_nonce` is on.
    dpop_nonces: Option<crate::jose::dpop::Nonces>,
    /// Page templates of the browser flows.
    pages: pages::Pages,
    /// CSRF tokens of the login and consent forms.
    csrf: interaction::csrf::Csrf,
    /// Failed logins per (username, address) and per address.
    logins: throttle::Throttle,
    /// The algorithm that signs access tokens until the configured one's first key activates
    /// (what [`keys::ensure`] returned).
    pub access_token_fallback: Option<Alg>,
}

impl Provider {
    /// Assembles the provider. Keys must have been loaded into `ring`
    /// ([`keys::ensure`]).
    pub fn new(cfg: Config, store: Store, master: Arc<MasterKey>, ring: Arc<KeyRing>) -> Self {
        Self {
            clients: cache::TtlCache::new(cfg.client_cache_ttl, cfg.store_outage_grace),
            resources: cache::TtlCache::new(cfg.client_cache_ttl, cfg.store_outage_grace),
            throttle: throttle::Throttle::new(
                cfg.auth_failure_window,
                cfg.auth_failures_per_client,
                cfg.auth_failures_per_ip,
            ),
            registrations: throttle::Throttle::new(cfg.registration.window, u32::MAX, cfg.registration.per_address),
            // Keyed from the master key, so every node issues and accepts the same nonces.
            dpop_nonces: cfg.dpop_nonce.then(|| {
                crate::jose::dpop::Nonces::new(&master.hash_secret("warden/dpop-nonce-key/v1").0, dpop::NONCE_PERIOD_SECS)
            }),
            access_token_fallback: None,
            csrf: interaction::csrf::Csrf::new(&master.hash_secret("warden/csrf-key/v1").0),
            // Like client authentication: never per account alone, so a stranger cannot lock
            // a user out; 10 failures per account from one address, 100 per address, per 15 min.
            logins: throttle::Throttle::new(Duration::from_secs(15 * 60), 10, 100),
            pages: pages::Pages::new(&cfg.branding, &format!("{}/assets", issuer_path(&cfg.issuer))).unwrap_or_else(|e| {
                // `config check` and start-up compiled the templates already; this is a file
                // changed since. The built-in pages serve meanwhile.
                tracing::error!(error = %e, "a branding template does not compile; the built-in pages are used");
                pages::Pages::built_in(&cfg.branding.name, &format!("{}/assets", issuer_path(&cfg.issuer)))
            }),
            cfg,
            store,
            master,
            ring,
        }
    }

    /// Periodic housekeeping of in-memory state (throttle windows, cache).
    pub fn sweep(&self) {
        self.throttle.sweep();
        self.registrations.sweep();
        self.logins.sweep();
        self.clients.sweep();
        self.resources.sweep();
    }
}
