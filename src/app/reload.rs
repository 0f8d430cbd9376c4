//! Reloading the gateway's configuration without a restart (issue #7 item 9).
//!
//! Triggers: `SIGHUP`, and a change of the configuration file — its modification time, size
//! and SHA-256 are looked at every [`ConfigSource::poll`] (`gateway.config_watch_interval`,
//! 1 s; zero: `SIGHUP` only). Both call [`ReloadHandle::reload`], which tests call directly.
//!
//! One reload, in order (one at a time):
//! 1. the file is read and the **whole** configuration resolved by `Config::load`, the code
//!    `warden config check` runs; any error → [`Outcome::Rejected`]: each error is logged
//!    (`warn`, with its key), the rejected counter goes up, the running gateway stays;
//! 2. settings that only a restart applies — listener addresses, the gateway's TLS files
//!    (their *contents* already reload on change, `http/tls.rs`), roles, `[http]`, trusted
//!    proxies, `[provider]` and keys, `[admin]`, `[database]`, `[log]`, `data_dir` — are
//!    compared with what runs, and each change is logged as needing a restart;
//! 3. the gateway section without `listen` and TLS (routes, issuers, policies, IP rules,
//!    token settings) unchanged → [`Outcome::Unchanged`];
//! 4. otherwise a new `Gateway` is compiled (`Gateway::rebuild`: DPoP replay memory and the
//!    key sets of unchanged issuers are taken over; the revocation set is the same `Arc`),
//!    prepared (new issuers' keys fetched), its background loops started, and it is swapped in
//!    ([`LiveGateway`]); the old gateway's loops are stopped at once (no task survives a
//!    reload) while its in-flight requests finish on it.

use crate::config::{Config, ConfigError, Overrides};
use crate::gateway::revocation::Revocations;
use crate::gateway::{self, LiveGateway, WardenTokens};
use crate::http::client_ip::TrustedProxies;
use crate::jose::KeyRing;
use crate::store::Store;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Where a reloading server's configuration comes from. (No `Debug`: `env` may hold
/// `WARDEN_MASTER_KEY`.)
#[derive(Clone)]
pub struct ConfigSource {
    /// The configuration file.
    pub file: PathBuf,
    /// The `WARDEN_*` environment variables laid over the file (as at start).
    pub env: Vec<(String, String)>,
    /// Command-line overrides (as at start).
    pub overrides: Overrides,
    /// The configuration as resolved from the file at start, before any port-0 adjustment:
    /// what later versions of the file are compared with.
    pub loaded: Config,
    /// How often the file is looked at (zero: never; `SIGHUP` only).
    pub poll: Duration,
    /// The handle reloads go through (the signal handler's, the watcher's, a test's).
    pub handle: ReloadHandle,
}

impl ConfigSource {
    /// The `WARDEN_*` variables of this process's environment.
    pub fn warden_env() -> Vec<(String, String)> {
        std::env::vars().filter(|(k, _)| k.starts_with("WARDEN_")).collect()
    }
}

/// What a reload did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A new gateway serves, with this many routes.
    Applied {
        /// Routes of the new gateway.
        routes: usize,
    },
    /// The gateway section did not change (settings that need a restart may have; they were
    /// logged).
    Unchanged,
    /// The file does not resolve (or the gateway does not compile): nothing changed.
    Rejected(Vec<ConfigError>),
    /// No gateway is being served by this handle's server.
    NotServing,
}

/// Reloads so far, for operators and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReloadStats {
    /// Reloads that swapped in a new gateway.
    pub applied: u64,
    /// Reloads refused because the configuration was invalid.
    pub rejected: u64,
}

/// The entry point of a reload, shared by the signal handler, the file watcher and tests.
#[derive(Clone, Default)]
pub struct ReloadHandle(Arc<Mutex<Option<Arc<Reloader>>>>);

impl ReloadHandle {
    /// Re-reads the file and swaps in a new gateway if its section changed (module doc).
    pub async fn reload(&self) -> Outcome {
        let reloader = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match reloader {
            Some(r) => r.reload().await,
            None => Outcome::NotServing,
        }
    }

    /// The settings that changed in the file at the last reload that read it, and that only
    /// a restart applies (each also logged).
    pub fn pending_restart(&self) -> Vec<&'static str> {
        match &*self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(r) => r.pending_restart.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            None => Vec::new(),
        }
    }

    /// Counts of applied and rejected reloads.
    pub fn stats(&self) -> ReloadStats {
        match &*self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(r) => ReloadStats { applied: r.applied.load(Ordering::Relaxed), rejected: r.rejected.load(Ordering::Relaxed) },
            None => ReloadStats::default(),
        }
    }

    pub(super) fn attach(&self, reloader: Arc<Reloader>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(reloader);
    }
}

/// What the gateway needs from the rest of the process to accept Warden's own tokens; the
/// same for every gateway built (provider settings need a restart).
pub(super) struct WardenParts {
    pub ring: Arc<KeyRing>,
    pub revocations: Arc<Revocations>,
    pub issuer: String,
    pub audience: String,
    pub clock_skew: Duration,
}

impl WardenParts {
    pub fn tokens(&self) -> WardenTokens {
        WardenTokens {
            ring: self.ring.clone(),
            revocations: self.revocations.clone(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            clock_skew: self.clock_skew,
        }
    }
}

/// What identifies a version of the file: modification time, size, SHA-256.
type Stamp = (Option<SystemTime>, u64, Vec<u8>);

fn stamp(file: &std::path::Path) -> Option<Stamp> {
    let meta = std::fs::metadata(file).ok()?;
    let bytes = std::fs::read(file).ok()?;
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref().to_vec();
    Some((meta.modified().ok(), meta.len(), hash))
}

struct State {
    /// The configuration that runs, as resolved from the file (gateway section: the last
    /// one applied).
    loaded: Config,
    /// The current gateway's background loops and their stop signal.
    tasks: JoinSet<()>,
    stop: CancellationToken,
}

/// Rebuilds and swaps the gateway (module doc).
pub(super) struct Reloader {
    file: Option<PathBuf>,
    env: Vec<(String, String)>,
    overrides: Overrides,
    live: Arc<LiveGateway>,
    trusted: Arc<TrustedProxies>,
    warden: WardenParts,
    store: Store,
    shutdown: CancellationToken,
    state: tokio::sync::Mutex<State>,
    applied: AtomicU64,
    rejected: AtomicU64,
    pending_restart: Mutex<Vec<&'static str>>,
}

/// The gateway section as far as a reload applies it: everything but `listen` and `tls`.
fn reloadable(g: &gateway::Config) -> gateway::Config {
    gateway::Config { listen: ([0, 0, 0, 0], 0).into(), tls: None, config_watch_interval: Duration::ZERO, ..g.clone() }
}

/// The settings a reload does not apply that differ between `running` and `next`.
fn needing_restart(running: &Config, next: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |key: &'static str, same: bool| {
        if !same {
            changed.push(key);
        }
    };
    check("data_dir", running.data_dir == next.data_dir);
    check("roles", running.roles == next.roles);
    check("trusted_proxies", running.trusted_proxies == next.trusted_proxies);
    check("http", running.http == next.http);
    check("provider (and keys, registration)", running.oauth == next.oauth);
    check("gateway.listen", running.gateway.listen == next.gateway.listen);
    check("gateway.tls_cert_file / gateway.tls_key_file", running.gateway.tls == next.gateway.tls);
    check("gateway.config_watch_interval", running.gateway.config_watch_interval == next.gateway.config_watch_interval);
    check("admin", running.admin == next.admin);
    check("database", running.database == next.database);
    check("log", running.log == next.log);
    changed
}

impl Reloader {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: Option<&ConfigSource>,
        running: &Config,
        live: Arc<LiveGateway>,
        trusted: Arc<TrustedProxies>,
        warden: WardenParts,
        store: Store,
        shutdown: CancellationToken,
        tasks: JoinSet<()>,
        stop: CancellationToken,
    ) -> Self {
        Self {
            file: source.map(|s| s.file.clone()),
            env: source.map(|s| s.env.clone()).unwrap_or_default(),
            overrides: source.map(|s| s.overrides.clone()).unwrap_or_default(),
            live,
            trusted,
            warden,
            store,
            shutdown,
            state: tokio::sync::Mutex::new(State { loaded: source.map_or_else(|| running.clone(), |s| s.loaded.clone()), tasks, stop }),
            applied: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            pending_restart: Mutex::default(),
        }
    }

    fn reject(&self, errors: Vec<ConfigError>) -> Outcome {
        for e in &errors {
            tracing::warn!(key = %e.key, env = e.origin.as_deref().unwrap_or("-"), error = %e.message, "configuration reload: invalid setting");
        }
        let total = self.rejected.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(errors = errors.len(), rejected_total = total, "configuration reload rejected; the running gateway configuration is kept");
        Outcome::Rejected(errors)
    }

    pub async fn reload(&self) -> Outcome {
        let Some(file) = &self.file else {
            tracing::info!("configuration reload requested, but the server was started without a configuration file");
            return Outcome::Unchanged;
        };
        let mut state = self.state.lock().await;
        let next = match Config::load(Some(file), self.env.clone(), &self.overrides) {
            Ok(c) => c,
            Err(errors) => return self.reject(errors),
        };
        let restart = needing_restart(&state.loaded, &next);
        for key in &restart {
            tracing::warn!(key, "configuration reload: this setting changed in the file but takes effect only after a restart");
        }
        *self.pending_restart.lock().unwrap_or_else(|p| p.into_inner()) = restart;
        if reloadable(&state.loaded.gateway) == reloadable(&next.gateway) {
            tracing::debug!("configuration reload: the gateway section did not change");
            return Outcome::Unchanged;
        }
        let current = self.live.current();
        let built = current.rebuild(&next.gateway, self.trusted.clone(), Some(self.warden.tokens()));
        let g = match built {
            Ok(g) => g,
            Err(errors) => {
                let errors = errors
                    .into_iter()
                    .map(|e| ConfigError {
                        key: match e.index {
                            usize::MAX => format!("gateway.issuers ({})", e.key),
                            i => format!("gateway.routes[{i}].{}", e.key),
                        },
                        origin: None,
                        message: e.message,
                    })
                    .collect();
                return self.reject(errors);
            }
        };
        g.prepare(Some(&self.store)).await;
        let stop = self.shutdown.child_token();
        let tasks = g.spawn_background(Some(self.store.clone()), stop.clone());
        let routes = next.gateway.routes.len();
        self.live.swap(Arc::new(g));
        // The old loops end now (dropping a JoinSet aborts its tasks); its requests in
        // flight still hold the old gateway and finish on it.
        state.stop.cancel();
        state.stop = stop;
        state.tasks = tasks;
        let kept = &state.loaded.gateway;
        state.loaded.gateway = gateway::Config { listen: kept.listen, tls: kept.tls.clone(), config_watch_interval: kept.config_watch_interval, ..next.gateway };
        let total = self.applied.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(routes, reloads_total = total, "configuration reload: new gateway configuration in service");
        Outcome::Applied { routes }
    }

    /// After shutdown: waits for the current gateway's loops to end.
    pub async fn finish(&self) {
        let mut state = self.state.lock().await;
        state.stop.cancel();
        while state.tasks.join_next().await.is_some() {}
    }
}

/// Reloads on `SIGHUP` and when the file changes, until `shutdown`.
pub(super) fn spawn_triggers(source: &ConfigSource, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    let (handle, file, poll) = (source.handle.clone(), source.file.clone(), source.poll);
    // Installed before serving starts: from then on SIGHUP reloads instead of ending the
    // process (its default).
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; the configuration reloads on file changes only");
            None
        }
    };
    tokio::spawn(async move {
        let mut last = stamp(&file);
        loop {
            #[cfg(unix)]
            let signalled = async {
                match &mut hangup {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let signalled = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = signalled => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    last = stamp(&file);
                    handle.reload().await;
                }
                _ = tokio::time::sleep(poll), if !poll.is_zero() => {
                    // A file being replaced may be missing for a moment: wait for it.
                    let Some(now) = stamp(&file) else { continue };
                    if last.as_ref() != Some(&now) {
                        tracing::info!(file = %file.display(), "the configuration file changed: reloading");
                        last = Some(now);
                        handle.reload().await;
                    }
                }
            }
        }
    })
}
