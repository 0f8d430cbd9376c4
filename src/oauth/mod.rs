//! The authorization server: OAuth 2.0 and OpenID Connect endpoints.
//!
//! The endpoint table is `handler::routes`, one line per endpoint. Protocol logic takes and
//! returns plain types ([`params::FormRequest`], wire structs); only `handler.rs` knows axum.
//!
//! | endpoint | spec | file |
//! |---|---|---|
//! | `POST /token` | RFC 6749 §3.2, §4.4 | `token/` |
//! | `POST /introspect` | RFC 7662 | `introspect.rs` |
//! | `POST /revoke` | RFC 7009 | `revoke.rs` |
//! | `POST /register`, `GET/PUT/DELETE /register/{id}` | RFC 7591, RFC 7592 | `register/` |
//! | `GET /jwks`, `GET /.well-known/*` | RFC 7517, RFC 8414, OIDC Discovery | `discovery.rs` |

mod cache;
mod client_auth;
pub mod clients;
mod discovery;
mod error;
pub mod handler;
mod introspect;
pub mod keys;
mod params;
pub mod register;
pub mod resources;
mod revoke;
mod throttle;
mod token;

pub use error::{Challenge, ErrorCode, OAuthError};
pub use params::{FormRequest, Params};

use crate::config::section::Reader;
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
}

/// `[keys]`.
#[derive(Clone, Debug, PartialEq)]
pub struct KeysConfig {
    /// Algorithm of access-token signatures.
    pub access_token_alg: Alg,
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
    /// Upper bound for any client's access-token lifetime; also how long a rotated-out key
    /// stays published.
    pub max_access_token_lifetime: Duration,
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
    /// `[registration]`.
    pub registration: RegistrationConfig,
    /// `[keys]`.
    pub keys: KeysConfig,
}

impl Config {
    pub(crate) fn resolve(root: &mut Reader<'_>) -> Config {
        let mut r = root.section("provider");
        let listen = r.socket_addr("listen", "127.0.0.1:8080");
        let default_issuer = format!(
            "http://{}",
            if listen.ip().is_unspecified() {
                SocketAddr::new([127, 0, 0, 1].into(), listen.port())
            } else {
                listen
            }
        );
        let issuer = r.string("issuer", "");
        let issuer = if issuer.is_empty() { default_issuer } else { issuer };
        if let Err(why) = check_issuer(&issuer) {
            r.invalid("issuer", why);
        }
        let default_audience = r.string("default_audience", "");
        let c = Config {
            listen,
            default_audience: if default_audience.is_empty() { issuer.clone() } else { default_audience },
            issuer,
            access_token_lifetime: r.duration("access_token_lifetime", "10m"),
            max_access_token_lifetime: r.duration("max_access_token_lifetime", "24h"),
            clock_skew: r.duration("clock_skew", "60s"),
            max_body_size: r.u64("max_body_size", 64 * 1024) as usize,
            client_cache_ttl: r.duration("client_cache_ttl", "1s"),
            store_outage_grace: r.duration("store_outage_grace", "5m"),
            auth_failures_per_client: r.u64("auth_failures_per_client", 10) as u32,
            auth_failures_per_ip: r.u64("auth_failures_per_ip", 100) as u32,
            auth_failure_window: r.duration("auth_failure_window", "1m"),
            assertion_max_lifetime: r.duration("assertion_max_lifetime", "5m"),
            registration: RegistrationConfig {
                mode: RegistrationMode::Token,
                allowed_scopes: vec![],
                allowed_audiences: vec![],
                initial_access_token_lifetime: Duration::ZERO,
            },
            keys: KeysConfig {
                access_token_alg: Alg::ES256,
                rotation_delay: Duration::ZERO,
                refresh_interval: Duration::ZERO,
            },
        };
        for (key, d) in [
            ("access_token_lifetime", c.access_token_lifetime),
            ("auth_failure_window", c.auth_failure_window),
            ("assertion_max_lifetime", c.assertion_max_lifetime),
        ] {
            if d < Duration::from_secs(1) {
                r.invalid(key, "must be at least 1s");
            }
        }
        if c.max_access_token_lifetime < c.access_token_lifetime {
            r.invalid("max_access_token_lifetime", "must not be shorter than access_token_lifetime");
        }
        if c.max_body_size < 1024 {
            r.invalid("max_body_size", "must be at least 1024 bytes");
        }
        r.finish();

        let mut r = root.section("registration");
        let mode = match r.choice("mode", "token", &["token", "open", "disabled"]).as_str() {
            "open" => RegistrationMode::Open,
            "disabled" => RegistrationMode::Disabled,
            _ => RegistrationMode::Token,
        };
        let registration = RegistrationConfig {
            mode,
            allowed_scopes: r.strings(
                "allowed_scopes",
                &["openid", "profile", "email", "address", "phone", "offline_access"],
            ),
            allowed_audiences: r.strings("allowed_audiences", &[]),
            initial_access_token_lifetime: r.duration("initial_access_token_lifetime", "24h"),
        };
        r.finish();

        let mut r = root.section("keys");
        let alg_name = r.choice("access_token_alg", "ES256", &["ES256", "RS256", "PS256", "EdDSA"]);
        let keys = KeysConfig {
            access_token_alg: Alg::parse(&alg_name).unwrap_or(Alg::ES256),
            rotation_delay: r.duration("rotation_delay", "5m"),
            refresh_interval: r.duration("refresh_interval", "10s"),
        };
        if keys.refresh_interval < Duration::from_millis(100) {
            r.invalid("refresh_interval", "must be at least 100ms");
        }
        r.finish();
        Config { registration, keys, ..c }
    }

    /// The URL of an endpoint path under the issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// RFC 8414 §2: an https URL with no query or fragment. Plain http is accepted only for
/// loopback hosts (development).
fn check_issuer(issuer: &str) -> Result<(), String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("not a URL: {e}"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    if issuer.ends_with('/') {
        return Err("must not end with /".into());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err("must be an https URL (http only for 127.0.0.1, [::1] or localhost)".into()),
    }
}

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
            cfg,
            store,
            master,
            ring,
        }
    }

    /// Periodic housekeeping of in-memory state (throttle windows, cache).
    pub fn sweep(&self) {
        self.throttle.sweep();
        self.clients.sweep();
        self.resources.sweep();
    }
}
