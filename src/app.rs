//! Assembly: opens the store and the master key, loads the keys, builds one router per role
//! and serves them until `shutdown` fires (mini-redis `server::run`). `main` and the
//! integration tests call the same functions, the tests with listeners on port 0.

pub mod reload;

use crate::config::{Config, Role};
use crate::http::layers::{self, Surface};
use crate::http::serve::serve_with;
use crate::jose::KeyRing;
use crate::model::unix_now;
use crate::oauth::{self, Provider, keys::KeyError};
use crate::secrets::{KeySource, MasterKey, SecretError};
use crate::store::{Store, StoreError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Start-up and serving failures. Messages name what to fix; they go to the operator's
/// terminal, never to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The database could not be opened or migrated.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The master key could not be loaded.
    #[error("master key: {0}")]
    Secret(#[from] SecretError),
    /// No master key was given, and the store holds data sealed with one.
    #[error(
        "the store already holds data sealed with a master key, but no key was found (neither \
         WARDEN_MASTER_KEY nor {data_dir}/master.key). Set WARDEN_MASTER_KEY to this deployment's \
         key or restore master.key from your backup; Warden will not create a new key, which \
         could open none of the stored keys and secrets"
    )]
    MasterKeyMissing {
        /// Where the key file was looked for.
        data_dir: std::path::PathBuf,
    },
    /// The master key is not the one the store's data was sealed with.
    #[error(
        "the master key from {} does not match this store (its data was sealed with another \
         key). Set WARDEN_MASTER_KEY to the key every node of this deployment uses, or restore \
         master.key from the backup that belongs to this database; nothing was written",
        describe_source(from)
    )]
    MasterKeyMismatch {
        /// Where the wrong key came from.
        from: KeySource,
    },
    /// Keys could not be created or opened.
    #[error("signing keys: {0} (is WARDEN_MASTER_KEY the key these keys were sealed with?)")]
    Keys(#[from] KeyError),
    /// The gateway's routes do not compile (`warden config check` reports the same).
    #[error("gateway routes: {0}")]
    Gateway(String),
    /// The gateway's TLS certificate or key could not be loaded.
    #[error("gateway TLS: {0}")]
    Tls(String),
    /// A listener could not bind or serve.
    #[error("{role} listener on {addr}: {source}")]
    Listen {
        /// Which role.
        role: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

fn describe_source(s: &KeySource) -> String {
    match s {
        KeySource::Environment => "WARDEN_MASTER_KEY".into(),
        KeySource::File(p) => p.display().to_string(),
        KeySource::Created(p) => format!("{} (created just now)", p.display()),
    }
}

/// What every command needs: the store and the master key.
pub struct Core {
    /// Storage.
    pub store: Store,
    /// The master key.
    pub master: Arc<MasterKey>,
    /// Where the master key came from.
    pub key_source: KeySource,
}

/// The catalog setting that identifies the master key the store's data is sealed with.
const MASTER_KEY_CHECK: &str = "master_key_check";

impl Core {
    /// Opens the configured store (applying migrations), then the master key, and checks that
    /// the two belong together:
    /// - the data directory is created with mode 0700 (it holds the key file and, by default,
    ///   the SQLite file);
    /// - no key in the environment or the key file, and the store already holds records →
    ///   refused: a new key could open none of them;
    /// - the catalog's check value must match the key (constant time); a store from before
    ///   check values gets one once the key has opened one of its signing keys;
    /// - the first process on an empty store writes its key's check value; of two fresh nodes
    ///   with different keys, the second is refused.
    pub async fn open(cfg: &Config, master_key_env: Option<&str>) -> Result<Core, AppError> {
        crate::secrets::create_private_dir(&cfg.data_dir).map_err(|source| {
            AppError::Secret(SecretError::KeyFile { path: cfg.data_dir.clone(), source })
        })?;
        let store = Store::open(&cfg.database, &cfg.data_dir).await?;
        let (master, key_source) = match MasterKey::load(master_key_env, &cfg.data_dir)? {
            Some(found) => found,
            None if store.catalog.holds_records().await? => {
                return Err(AppError::MasterKeyMissing { data_dir: cfg.data_dir.clone() });
            }
            None => MasterKey::create(&cfg.data_dir)?,
        };
        check_master_key(&store, &master, &key_source).await?;
        Ok(Core { store, master: Arc::new(master), key_source })
    }
}

async fn check_master_key(store: &Store, master: &MasterKey, source: &KeySource) -> Result<(), AppError> {
    let mismatch = || AppError::MasterKeyMismatch { from: source.clone() };
    let matches = |stored: &str| if master.matches_check_value(stored) { Ok(()) } else { Err(mismatch()) };
    if let Some(stored) = store.catalog.setting(MASTER_KEY_CHECK).await? {
        return matches(&stored);
    }
    let keys = store.catalog.signing_keys().await?;
    if !keys.is_empty() && !keys.iter().any(|r| master.open(&r.sealed_private, r.kid.as_str().as_bytes()).is_ok()) {
        return Err(mismatch());
    }
    if store.catalog.init_setting(MASTER_KEY_CHECK, &master.check_value()).await? {
        return Ok(());
    }
    // Another process wrote its check value first (settings are never deleted): compare
    // against the winner's.
    match store.catalog.setting(MASTER_KEY_CHECK).await? {
        Some(stored) => matches(&stored),
        None => Err(AppError::Store(crate::store::StoreError::Corrupt("the master-key check value vanished".into()))),
    }
}

/// A bound listener per role.
pub struct Listeners(pub Vec<(Role, TcpListener)>);

impl Listeners {
    /// Binds the configured address of every configured role.
    pub async fn bind(cfg: &Config) -> Result<Listeners, AppError> {
        let mut out = Vec::new();
        for role in &cfg.roles {
            let addr = listen_addr(cfg, *role);
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| AppError::Listen { role: role.as_str(), addr, source })?;
            out.push((*role, l));
        }
        Ok(Listeners(out))
    }

    /// With `provider.listen` on port 0 and the issuer left at its default, the issuer (and the
    /// default audience) follow the port the system picked.
    pub fn adopt_ephemeral_ports(&self, cfg: &mut Config) {
        let Some((_, bound)) = self.addrs().into_iter().find(|(r, _)| *r == Role::Provider) else { return };
        let default_issuer = format!("http://{}", cfg.oauth.listen);
        if cfg.oauth.listen.port() == 0 && cfg.oauth.issuer == default_issuer {
            let issuer = format!("http://{bound}");
            if cfg.oauth.default_audience == default_issuer {
                cfg.oauth.default_audience = issuer.clone();
            }
            cfg.oauth.issuer = issuer;
        }
    }

    /// The bound addresses.
    pub fn addrs(&self) -> Vec<(Role, SocketAddr)> {
        self.0.iter().filter_map(|(r, l)| l.local_addr().ok().map(|a| (*r, a))).collect()
    }
}

fn listen_addr(cfg: &Config, role: Role) -> SocketAddr {
    match role {
        Role::Provider => cfg.oauth.listen,
        Role::Gateway => cfg.gateway.listen,
        Role::Admin => cfg.admin.listen,
    }
}

/// Serves every listener until `shutdown` is cancelled, then lets in-flight requests finish.
pub async fn run(cfg: Config, core: Core, listeners: Listeners, shutdown: CancellationToken) -> Result<(), AppError> {
    run_with(cfg, core, listeners, shutdown, None).await
}

/// [`run`]; with a `source`, the gateway's configuration also reloads on `SIGHUP` and when
/// the file changes (`app/reload.rs`).
pub async fn run_with(
    cfg: Config,
    core: Core,
    listeners: Listeners,
    shutdown: CancellationToken,
    source: Option<reload::ConfigSource>,
) -> Result<(), AppError> {
    let ring = Arc::new(KeyRing::default());
    let fallback = oauth::keys::ensure(&core.store, &core.master, &cfg.oauth, &ring).await?;
    let mut provider = Provider::new(cfg.oauth.clone(), core.store.clone(), core.master.clone(), ring);
    provider.access_token_fallback = fallback;
    let provider = Arc::new(provider);
    let background = spawn_housekeeping(&cfg, provider.clone(), shutdown.clone());
    let probe = spawn_store_probe(core.store.clone(), shutdown.clone());

    let mut servers = tokio::task::JoinSet::new();
    let trusted = Arc::new(cfg.trusted_proxies.clone());
    let mut reloader = None;
    let gateway = match cfg.roles.contains(&Role::Gateway) {
        true => {
            // The gateway accepts this deployment's tokens with the provider's own key ring
            // (refreshed by the housekeeping loop on every node, gateway-only ones included)
            // and a revocation set fed from the same store; both outlive reloads.
            let warden = reload::WardenParts {
                ring: provider.ring.clone(),
                revocations: Arc::default(),
                issuer: cfg.oauth.issuer.clone(),
                audience: cfg.oauth.default_audience.clone(),
                clock_skew: cfg.oauth.clock_skew,
            };
            // API keys and Basic: an in-memory index of the store's consumers, keyed hashes
            // under the master key, followed like the revocation set.
            let consumers = Arc::new(crate::gateway::consumers::ConsumerIndex::new(core.master.clone()));
            let g = crate::gateway::Gateway::with_consumers(&cfg.gateway, trusted.clone(), Some(warden.tokens()), Some(consumers)).map_err(|errors| {
                let describe = |e: &crate::gateway::route::RouteError| match e.index {
                    usize::MAX => format!("{} ({})", e.message, e.key),
                    i => format!("routes[{i}].{}: {}", e.key, e.message),
                };
                AppError::Gateway(errors.iter().map(describe).collect::<Vec<_>>().join("; "))
            })?;
            g.prepare(Some(&core.store)).await;
            let stop = shutdown.child_token();
            let tasks = g.spawn_background(Some(core.store.clone()), stop.clone());
            let live = Arc::new(crate::gateway::LiveGateway::new(Arc::new(g)));
            let r = Arc::new(reload::Reloader::new(
                source.as_ref(),
                &cfg,
                live.clone(),
                trusted.clone(),
                warden,
                core.store.clone(),
                shutdown.clone(),
                tasks,
                stop,
            ));
            if let Some(s) = &source {
                s.handle.attach(r.clone());
            }
            reloader = Some(r);
            Some(live)
        }
        false => None,
    };
    let triggers = source.as_ref().map(|s| reload::spawn_triggers(s, shutdown.clone()));
    let gateway_tls = match (&cfg.gateway.tls, cfg.roles.contains(&Role::Gateway)) {
        (Some(files), true) => Some(crate::http::tls::acceptor(files).map_err(AppError::Tls)?),
        _ => None,
    };
    for (role, listener) in listeners.0 {
        let timeout = cfg.http.request_timeout;
        let health = core.store.health.clone();
        let health = crate::http::health::routes(role.as_str(), move || health.is_available());
        let router = match role {
            Role::Provider => layers::apply(oauth::handler::routes(provider.clone()).merge(health), Surface::OAuth, timeout),
            Role::Gateway => {
                let gateway = gateway.clone().expect("built above for the gateway role");
                layers::apply(crate::gateway::live_router(gateway).merge(health), Surface::Problem, timeout)
            }
            Role::Admin => layers::apply(crate::admin::router().merge(health), Surface::Problem, timeout),
        };
        let addr = listener.local_addr().map_err(|source| AppError::Listen { role: role.as_str(), addr: listen_addr(&cfg, role), source })?;
        let (stop, http, trusted) = (shutdown.clone(), cfg.http.clone(), trusted.clone());
        let tls = if role == Role::Gateway { gateway_tls.clone() } else { None };
        servers.spawn(async move {
            serve_with(listener, router, http, trusted, tls, stop)
                .await
                .map_err(|source| AppError::Listen { role: role.as_str(), addr, source })
        });
    }
    let mut result = Ok(());
    while let Some(done) = servers.join_next().await {
        if let Ok(Err(e)) = done {
            shutdown.cancel();
            result = Err(e);
        }
    }
    shutdown.cancel();
    let _ = background.await;
    let _ = probe.await;
    if let Some(t) = triggers {
        let _ = t.await;
    }
    if let Some(r) = reloader {
        r.finish().await;
    }
    result
}

/// How often the store is probed while it answers; a failing store call also triggers a probe.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How often while it does not, so recovery shows within about a second.
const PROBE_INTERVAL_DOWN: Duration = Duration::from_millis(500);

/// Keeps `store.health` current without a query per request: a cheap probe every
/// `PROBE_INTERVAL`, at once when a store call fails, and every `PROBE_INTERVAL_DOWN` while the
/// store is unavailable, until one succeeds (recovery needs no restart: the pools reconnect by
/// themselves).
fn spawn_store_probe(store: Store, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if store.health.is_available() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(PROBE_INTERVAL) => {}
                    _ = store.health.failure_noticed() => {}
                }
            } else {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(PROBE_INTERVAL_DOWN) => {}
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = store.health.probe() => {}
            }
        }
    })
}

/// Key refresh (so keys rotated by the CLI or another node are picked up, and scheduled keys
/// activate on time), the artifact purge, and in-memory sweeps.
fn spawn_housekeeping(cfg: &Config, provider: Arc<Provider>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    let refresh = cfg.oauth.keys.refresh_interval;
    let purge = cfg.database.purge_interval;
    tokio::spawn(async move {
        let mut next_purge = tokio::time::Instant::now() + purge;
        // After a failed refresh: 0.5 s, doubling up to the refresh interval — never a tight
        // loop against a store that is down or a key change that keeps failing.
        let mut backoff: Option<Duration> = None;
        loop {
            let now = unix_now();
            let until_change = provider
                .ring
                .current()
                .next_change
                .map(|t| Duration::from_secs((t - now).max(0) as u64) + Duration::from_millis(50));
            let wait = match backoff {
                Some(b) => b,
                None => until_change.map_or(refresh, |d| d.min(refresh)),
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            match oauth::keys::refresh(&provider.store, &provider.master, &provider.ring).await {
                Ok(()) => backoff = None,
                Err(e) => {
                    let next = backoff.map_or(Duration::from_millis(500), |b| (b * 2).min(refresh));
                    tracing::warn!(error = %e, retry_in = ?next, "could not refresh signing keys; keeping the current set");
                    backoff = Some(next);
                }
            }
            if tokio::time::Instant::now() >= next_purge {
                next_purge = tokio::time::Instant::now() + purge;
                match provider.store.purge(unix_now()).await {
                    Ok((a, k)) if a + k > 0 => tracing::debug!(artifacts = a, keys = k, "purged expired records"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purge failed; will retry"),
                }
                provider.sweep();
            }
        }
    })
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
