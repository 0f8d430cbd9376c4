//! Configuration: `warden.toml` (version 1) plus `WARDEN_<SECTION>__<KEY>` environment
//! overrides, resolved into one [`Config`] with every default applied.
//!
//! Nothing is required: with no file Warden runs on 127.0.0.1 with its data in
//! `./warden-data/`. Resolution reports *all* errors, each with its key, so `warden config
//! check` can list them at once. `warden.example.toml` at the repository root shows every key
//! with its default; a test keeps the two in step.

mod gateway;
mod provider;
mod raw;
mod validate;

use crate::http::client_ip::TrustedProxies;
use crate::http::serve::ServeConfig;
use crate::{gateway as gw, oauth, store, telemetry};
use raw::{Reader, Sink};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One configuration problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path, e.g. `provider.issuer`.
    pub key: String,
    /// The environment variable the value came from, if any.
    pub origin: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(var) => write!(f, "{} (from {var}): {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// The roles one process can play (see ARCHITECTURE.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The OAuth 2.0 / OpenID Connect provider.
    Provider,
    /// The API gateway.
    Gateway,
    /// The admin API and console.
    Admin,
}

impl Role {
    /// Every role, in start-up order.
    pub const ALL: [Role; 3] = [Role::Provider, Role::Gateway, Role::Admin];

    /// The role's name in config and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::Gateway => "gateway",
            Self::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }
}

/// `[admin]`: where a listener binds.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerConfig {
    /// Socket address to bind.
    pub listen: SocketAddr,
}

/// The resolved configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Where the SQLite file and the master key file live.
    pub data_dir: PathBuf,
    /// Roles this process runs.
    pub roles: Vec<Role>,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` / PROXY protocol are believed.
    pub trusted_proxies: TrustedProxies,
    /// `[http]`: guards of every listener.
    pub http: ServeConfig,
    /// `[provider]`, `[registration]`, `[keys]`.
    pub oauth: oauth::Config,
    /// `[gateway]` and `[[gateway.routes]]`.
    pub gateway: gw::Config,
    /// `[admin]`.
    pub admin: ListenerConfig,
    /// `[database]`.
    pub database: store::Config,
    /// `[log]`.
    pub log: telemetry::Config,
}

/// Command-line values that take precedence over the file and the environment.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--data-dir` / `WARDEN_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--role`.
    pub roles: Option<Vec<Role>>,
}

/// The configuration version this Warden reads.
pub const VERSION: i64 = 1;

impl Config {
    /// Loads `file` (if any), lays the environment over it and resolves. Errors list every
    /// problem found.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, Vec<ConfigError>> {
        let text = match file {
            None => None,
            Some(p) => Some(std::fs::read_to_string(p).map_err(|e| {
                vec![ConfigError {
                    key: p.display().to_string(),
                    origin: None,
                    message: format!("cannot read the file: {e}"),
                }]
            })?),
        };
        Self::from_toml(text.as_deref(), env, overrides).0
    }

    /// Resolves from TOML text; also returns every key path the resolver knows.
    fn from_toml(
        text: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> (Result<Config, Vec<ConfigError>>, Vec<String>) {
        let mut root = match text.map(|t| t.parse::<toml::Table>()) {
            None => toml::Table::new(),
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                let err = ConfigError {
                    key: "(file)".into(),
                    origin: None,
                    message: format!("not valid TOML: {}", e.message()),
                };
                return (Err(vec![err]), vec![]);
            }
        };
        let mut sink = Sink::default();
        if text.is_some() && !root.contains_key("version") {
            sink.errors.push(ConfigError {
                key: "version".into(),
                origin: None,
                message: format!("missing: a configuration file starts with version = {VERSION}"),
            });
        }
        sink.origins = raw::overlay_env(&mut root, env);
        let config = resolve(Reader::new(root, &mut sink), overrides);
        let seen = sink.seen.iter().cloned().collect();
        if sink.errors.is_empty() { (Ok(config), seen) } else { (Err(sink.errors), seen) }
    }
}

fn resolve(mut r: Reader<'_>, overrides: &Overrides) -> Config {
    let version = r.u64("version", VERSION as u64);
    if version != VERSION as u64 {
        r.invalid("version", format!("this Warden reads version = {VERSION}, found {version}"));
    }
    let data_dir = PathBuf::from(r.string("data_dir", "./warden-data"));
    let role_names = r.strings("roles", &["provider", "gateway", "admin"]);
    let mut roles = Vec::new();
    for name in &role_names {
        match Role::parse(name) {
            Some(role) if !roles.contains(&role) => roles.push(role),
            Some(_) => {}
            None => r.invalid("roles", format!("unknown role \"{name}\" (provider, gateway, admin)")),
        }
    }
    let trusted_proxies = TrustedProxies::parse(&r.strings("trusted_proxies", &[])).unwrap_or_else(|why| {
        r.invalid("trusted_proxies", why);
        TrustedProxies::default()
    });
    let http = http_config(r.section("http"));
    let oauth = provider::resolve(&mut r);
    let gateway = gateway::resolve(r.section("gateway"), &http);
    let admin = ListenerConfig { listen: r.section("admin").listen("127.0.0.1:9090") };
    let database = store_config(r.section("database"));
    let log = log_config(r.section("log"));
    r.finish();
    Config {
        data_dir: overrides.data_dir.clone().unwrap_or(data_dir),
        roles: overrides.roles.clone().unwrap_or(roles),
        trusted_proxies,
        http,
        oauth,
        gateway,
        admin,
        database,
        log,
    }
}

impl Reader<'_> {
    /// A section's `listen` key, then the unknown-key check of the section.
    fn listen(mut self, default: &str) -> SocketAddr {
        let addr = self.socket_addr("listen", default);
        self.finish();
        addr
    }
}

fn store_config(mut r: Reader<'_>) -> store::Config {
    let url = r.string("url", "");
    if !(url.is_empty()
        || url.starts_with("sqlite://")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        r.invalid("url", "must be empty (SQLite in data_dir), sqlite://PATH or postgres://…");
    }
    let c = store::Config {
        url,
        schema: r.string("schema", ""),
        max_connections: r.uint("max_connections", 8, 1..=1000) as u32,
        purge_interval: r.duration("purge_interval", "60s"),
        timeout: r.duration("timeout", "1s"),
    };
    if c.purge_interval < Duration::from_secs(1) {
        r.invalid("purge_interval", "must be at least 1s");
    }
    if c.timeout < Duration::from_millis(100) || c.timeout > Duration::from_secs(60) {
        r.invalid("timeout", "must be between 100ms and 60s");
    }
    r.finish();
    c
}

fn http_config(mut r: Reader<'_>) -> ServeConfig {
    let d = ServeConfig::default();
    let c = ServeConfig {
        header_read_timeout: r.duration("header_read_timeout", "10s"),
        idle_timeout: r.duration("idle_timeout", "75s"),
        max_connections: r.uint("max_connections", d.max_connections as u64, 1..=1_000_000) as usize,
        max_header_size: r.uint("max_header_size", d.max_header_size as u64, 8192..=1024 * 1024) as usize,
        request_timeout: r.duration("request_timeout", "30s"),
        proxy_protocol: r.bool("proxy_protocol", false),
    };
    for (key, v) in [
        ("header_read_timeout", c.header_read_timeout),
        ("idle_timeout", c.idle_timeout),
        ("request_timeout", c.request_timeout),
    ] {
        if v < Duration::from_millis(100) || v > Duration::from_secs(3600) {
            r.invalid(key, "must be between 100ms and 1h");
        }
    }
    // While a handler runs, the connection's read side waits too (hyper watches for the
    // client going away), so a shorter idle timeout would cut requests that are still allowed.
    if c.idle_timeout < c.request_timeout {
        r.invalid("idle_timeout", "must not be shorter than request_timeout");
    }
    r.finish();
    c
}

fn log_config(mut r: Reader<'_>) -> telemetry::Config {
    let c = telemetry::Config {
        level: r.string("level", "info"),
        json: r.choice("format", "text", &["text", "json"]) == "json",
    };
    if tracing_subscriber::EnvFilter::try_new(&c.level).is_err() {
        r.invalid("level", "not a valid filter (e.g. \"info\" or \"warden=debug,info\")");
    }
    r.finish();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, Vec<ConfigError>> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::from_toml(Some(text), env, &Overrides::default()).0
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::from_toml(None, [], &Overrides::default()).0.unwrap();
        assert_eq!(c.oauth.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./warden-data"));
        assert_eq!(c.roles, Role::ALL);
        assert_eq!(c.oauth.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn reports_every_error_with_its_key() {
        let errors = load(
            "version = 1\nbogus = 1\n[provider]\nissuer = \"ftp://x\"\naccess_token_lifetime = \"soon\"\n[database]\nmax_connections = -3\n[nope]\n",
            &[("WARDEN_KEYS__ACCESS_TOKEN_ALG", "HS256")],
        )
        .unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "bogus",
            "provider.issuer",
            "provider.access_token_lifetime",
            "database.max_connections",
            "nope",
            "keys.access_token_alg",
        ] {
            assert!(keys.contains(&k), "missing error for {k} in {errors:?}");
        }
        let env_err = errors.iter().find(|e| e.key == "keys.access_token_alg").unwrap();
        assert_eq!(env_err.origin.as_deref(), Some("WARDEN_KEYS__ACCESS_TOKEN_ALG"));
    }

    #[test]
    fn refresh_token_lifetimes_default_and_are_checked() {
        let c = Config::from_toml(None, [], &Overrides::default()).0.unwrap();
        assert_eq!(c.oauth.refresh_token_idle_lifetime, Duration::from_secs(14 * 24 * 3600));
        assert_eq!(c.oauth.refresh_token_max_lifetime, Duration::from_secs(90 * 24 * 3600));
        let c = load("version = 1\n[provider]\nrefresh_token_idle_lifetime = \"1h\"\nrefresh_token_max_lifetime = \"1d\"\n", &[]).unwrap();
        assert_eq!(c.oauth.refresh_token_idle_lifetime, Duration::from_secs(3600));
        let key_of = |text: &str| load(text, &[]).unwrap_err().into_iter().map(|e| e.key).collect::<Vec<_>>();
        assert_eq!(key_of("version = 1\n[provider]\nrefresh_token_idle_lifetime = \"100d\"\n"), ["provider.refresh_token_idle_lifetime"], "longer than the maximum");
        assert_eq!(key_of("version = 1\n[provider]\nrefresh_token_max_lifetime = \"0s\"\nrefresh_token_idle_lifetime = \"0s\"\n").len(), 2, "zero");
        assert_eq!(key_of("version = 1\n[provider]\nrefresh_token_max_lifetime = \"2000d\"\n"), ["provider.refresh_token_max_lifetime"]);
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = load(
            "version = 1\n[provider]\nissuer = \"https://a.example\"\n",
            &[
                ("WARDEN_PROVIDER__ISSUER", "https://b.example"),
                ("WARDEN_DATABASE__MAX_CONNECTIONS", "3"),
                ("WARDEN_REGISTRATION__ALLOWED_SCOPES", "read, write"),
                ("WARDEN_MASTER_KEY", "not a config key"),
            ],
        )
        .unwrap();
        assert_eq!(c.oauth.issuer, "https://b.example");
        assert_eq!(c.database.max_connections, 3);
        assert_eq!(c.oauth.registration.allowed_scopes, ["read", "write"]);
    }

    /// Issue #5 item 6: before, `max_connections = 5000` was clamped to 1000 and
    /// `auth_failures_per_client = 2^32` wrapped to 0 without a word.
    #[test]
    fn numbers_out_of_range_are_errors_not_silently_changed() {
        for (text, key) in [
            ("[database]\nmax_connections = 5000", "database.max_connections"),
            ("[database]\nmax_connections = 0", "database.max_connections"),
            ("[provider]\nauth_failures_per_client = 4294967296", "provider.auth_failures_per_client"),
            ("[provider]\nmax_body_size = 100", "provider.max_body_size"),
            ("[http]\nmax_header_size = 1024", "http.max_header_size"),
            ("[http]\nheader_read_timeout = \"0s\"", "http.header_read_timeout"),
            ("[http]\nidle_timeout = \"10s\"", "http.idle_timeout"),
            ("[registration]\nper_address = 0", "registration.per_address"),
        ] {
            let errors = load(&format!("version = 1\n{text}\n"), &[]).unwrap_err();
            assert_eq!(errors.len(), 1, "{text}: {errors:?}");
            assert_eq!(errors[0].key, key);
        }
        let c = load("version = 1\n[database]\nmax_connections = 1000\n", &[]).unwrap();
        assert_eq!(c.database.max_connections, 1000);
    }

    #[test]
    fn a_listener_off_loopback_needs_an_explicit_issuer() {
        for listen in ["0.0.0.0:8080", "[::]:8080", "10.1.2.3:8080"] {
            let errors = load(&format!("version = 1\n[provider]\nlisten = \"{listen}\"\n"), &[]).unwrap_err();
            assert_eq!(errors[0].key, "provider.issuer", "{listen}");
            assert!(errors[0].message.contains("https"));
            let ok = load(&format!("version = 1\n[provider]\nlisten = \"{listen}\"\nissuer = \"https://auth.example\"\n"), &[]);
            assert!(ok.is_ok(), "{listen} with an issuer");
        }
        let local = load("version = 1\n[provider]\nlisten = \"[::1]:9000\"\n", &[]).unwrap();
        assert_eq!(local.oauth.issuer, "http://[::1]:9000");
    }

    #[test]
    fn trusted_proxies_come_from_the_file_or_warden_trusted_proxies() {
        let c = load("version = 1\ntrusted_proxies = [\"10.0.0.0/8\"]\n", &[]).unwrap();
        assert!(c.trusted_proxies.contains("10.1.1.1".parse().unwrap()));
        let c = load("version = 1\n", &[("WARDEN_TRUSTED_PROXIES", "192.168.0.0/16, 2001:db8::/32")]).unwrap();
        assert!(c.trusted_proxies.contains("192.168.3.4".parse().unwrap()));
        assert!(c.trusted_proxies.contains("2001:db8::9".parse().unwrap()));
        let errors = load("version = 1\n", &[("WARDEN_TRUSTED_PROXIES", "10.0.0.0/40")]).unwrap_err();
        assert_eq!((errors[0].key.as_str(), errors[0].origin.as_deref()), ("trusted_proxies", Some("WARDEN_TRUSTED_PROXIES")));
    }

    #[test]
    fn wrong_version_is_refused() {
        let errors = load("version = 2\n", &[]).unwrap_err();
        assert_eq!(errors[0].key, "version");
    }

    #[test]
    fn insecure_issuer_is_refused_except_on_loopback() {
        assert!(load("version = 1\n[provider]\nissuer = \"http://auth.example\"\n", &[]).is_err());
        assert!(load("version = 1\n[provider]\nissuer = \"http://localhost:9000\"\n", &[]).is_ok());
        assert!(load("version = 1\n[provider]\nissuer = \"https://a.example/\"\n", &[]).is_err());
        assert!(load("version = 1\n[provider]\nissuer = \"https://a.example/t?x=1\"\n", &[]).is_err());
    }

    /// The example file shows every key, commented out, with its real default: uncommented it
    /// must resolve to exactly the built-in defaults, and it must mention every known key.
    #[test]
    fn example_config_matches_the_defaults() {
        let text = std::fs::read_to_string("warden.example.toml").unwrap();
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if !rest.starts_with(' ') && !rest.is_empty() => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let (example, seen) = Config::from_toml(Some(&uncommented), [], &Overrides::default());
        let defaults = Config::from_toml(None, [], &Overrides::default()).0.unwrap();
        assert_eq!(example.unwrap(), defaults);
        let parsed: toml::Table = uncommented.parse().unwrap();
        for key in seen {
            let mut v = toml::Value::Table(parsed.clone());
            for part in key.split('.') {
                v = v.get(part).unwrap_or_else(|| panic!("example lacks {key}")).clone();
            }
        }
    }
}
