//! `[provider]`, `[registration]` and `[keys]` → [`oauth::Config`]. The protocol code takes
//! the resolved struct and never reads configuration itself.

use super::raw::Reader;
use crate::jose::Alg;
use crate::oauth::{self, IntrospectionPolicy, KeysConfig, RegistrationConfig, RegistrationMode, is_loopback};
use std::time::Duration;

pub(super) fn resolve(root: &mut Reader<'_>) -> oauth::Config {
    let mut r = root.section("provider");
    let listen = r.socket_addr("listen", "127.0.0.1:8080");
    let configured_issuer = r.string("issuer", "");
    let issuer = if configured_issuer.is_empty() {
        if !listen.ip().is_loopback() {
            r.invalid(
                "issuer",
                format!(
                    "required when provider.listen ({listen}) is not a loopback address: set the \
                     https URL clients reach the provider at, e.g. https://auth.example.com"
                ),
            );
        }
        format!("http://{listen}")
    } else {
        configured_issuer
    };
    if let Err(why) = check_issuer(&issuer) {
        r.invalid("issuer", why);
    }
    let default_audience = r.string("default_audience", "");
    let introspection = match r.choice("introspection", "restricted", &["restricted", "any_client"]).as_str() {
        "any_client" => IntrospectionPolicy::AnyClient,
        _ => IntrospectionPolicy::Restricted,
    };
    let c = oauth::Config {
        listen,
        default_audience: if default_audience.is_empty() { issuer.clone() } else { default_audience },
        issuer,
        access_token_lifetime: r.duration("access_token_lifetime", "10m"),
        max_access_token_lifetime: r.duration("max_access_token_lifetime", "24h"),
        id_token_lifetime: r.duration("id_token_lifetime", "10m"),
        clock_skew: r.duration("clock_skew", "60s"),
        max_body_size: r.uint("max_body_size", 64 * 1024, 1024..=16 * 1024 * 1024) as usize,
        client_cache_ttl: r.duration("client_cache_ttl", "1s"),
        store_outage_grace: r.duration("store_outage_grace", "5m"),
        auth_failures_per_client: r.uint("auth_failures_per_client", 10, 1..=1_000_000) as u32,
        auth_failures_per_ip: r.uint("auth_failures_per_ip", 100, 1..=1_000_000) as u32,
        auth_failure_window: r.duration("auth_failure_window", "1m"),
        assertion_max_lifetime: r.duration("assertion_max_lifetime", "1h"),
        assertion_audience_transition: r.bool("assertion_audience_transition", false),
        dpop_proof_max_age: r.duration("dpop_proof_max_age", "60s"),
        dpop_nonce: r.bool("dpop_nonce", false),
        session_lifetime: r.duration("session_lifetime", "10h"),
        require_pushed_authorization_requests: r.bool("require_pushed_authorization_requests", false),
        introspection,
        registration: RegistrationConfig {
            mode: RegistrationMode::Token,
            allowed_scopes: vec![],
            allowed_audiences: vec![],
            initial_access_token_lifetime: Duration::ZERO,
            issuer_audience: false,
            per_address: 0,
            window: Duration::ZERO,
        },
        keys: KeysConfig {
            access_token_alg: Alg::ES256,
            id_token_algs: vec![],
            rotation_delay: Duration::ZERO,
            refresh_interval: Duration::ZERO,
        },
    };
    for (key, d) in [
        ("access_token_lifetime", c.access_token_lifetime),
        ("id_token_lifetime", c.id_token_lifetime),
        ("auth_failure_window", c.auth_failure_window),
        ("assertion_max_lifetime", c.assertion_max_lifetime),
        ("dpop_proof_max_age", c.dpop_proof_max_age),
        ("session_lifetime", c.session_lifetime),
    ] {
        if d < Duration::from_secs(1) {
            r.invalid(key, "must be at least 1s");
        }
    }
    if c.max_access_token_lifetime < c.access_token_lifetime {
        r.invalid("max_access_token_lifetime", "must not be shorter than access_token_lifetime");
    }
    if c.max_access_token_lifetime > Duration::from_secs(366 * 24 * 3600) {
        r.invalid("max_access_token_lifetime", "must be at most a year");
    }
    if c.id_token_lifetime > Duration::from_secs(24 * 3600) {
        r.invalid("id_token_lifetime", "must be at most 24h");
    }
    if c.dpop_proof_max_age > Duration::from_secs(3600) {
        r.invalid("dpop_proof_max_age", "must be at most 1h");
    }
    if c.clock_skew > Duration::from_secs(3600) {
        r.invalid("clock_skew", "must be at most 1h");
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
        allowed_scopes: r.strings("allowed_scopes", &["openid", "profile", "email", "address", "phone", "offline_access"]),
        allowed_audiences: r.strings("allowed_audiences", &[]),
        initial_access_token_lifetime: r.duration("initial_access_token_lifetime", "24h"),
        issuer_audience: r.bool("issuer_audience", false),
        per_address: r.uint("per_address", 20, 1..=1_000_000) as u32,
        window: r.duration("window", "1h"),
    };
    if registration.window < Duration::from_secs(1) {
        r.invalid("window", "must be at least 1s");
    }
    r.finish();

    let mut r = root.section("keys");
    let alg_name = r.choice("access_token_alg", "ES256", &["ES256", "RS256", "PS256", "EdDSA"]);
    let id_token_algs: Vec<Alg> = r
        .strings("id_token_algs", &["RS256"])
        .iter()
        .filter_map(|a| match Alg::parse(a) {
            Some(alg) => Some(alg),
            None => {
                r.invalid("id_token_algs", format!("\"{a}\" is not one of ES256, RS256, PS256, EdDSA"));
                None
            }
        })
        .fold(Vec::new(), |mut v, a| {
            if !v.contains(&a) {
                v.push(a);
            }
            v
        });
    if id_token_algs.is_empty() {
        r.invalid("id_token_algs", "name at least one algorithm (OpenID Connect requires RS256 support)");
    }
    let keys = KeysConfig {
        access_token_alg: Alg::parse(&alg_name).unwrap_or(Alg::ES256),
        id_token_algs,
        rotation_delay: r.duration("rotation_delay", "5m"),
        refresh_interval: r.duration("refresh_interval", "10s"),
    };
    if keys.refresh_interval < Duration::from_millis(100) {
        r.invalid("refresh_interval", "must be at least 100ms");
    }
    r.finish();
    oauth::Config { registration, keys, ..c }
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
