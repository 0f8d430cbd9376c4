//! Another issuer's JWK Set (`[[gateway.issuers]]`), fetched with hyper from the configured
//! `jwks_url` only — never from a URL a token names (`jku`, `x5u`) and never a key a token
//! embeds (`jwk`, `x5c`): those headers are ignored.
//!
//! - fetched at start, then every `refresh_interval`;
//! - fetched again when a token names an unknown `kid`, at most once per cooldown (a stream
//!   of forged `kid`s cannot turn the gateway into a JWKS flooder);
//! - a failed fetch (down, non-200, not a JWK Set, no usable key) keeps the last set that
//!   loaded: tokens keep verifying while the issuer's endpoint is down;
//! - a key gone from a fetched set is gone at once: the set is replaced whole (the
//!   verified-claims cache re-checks the key on every hit, `authn.rs`);
//! - keys are read with [`jose::client_jwks`] (unsupported keys skipped, private or
//!   symmetric material refuses the set).

use super::proxy::{Upstream, roots};
use crate::jose::{self, Alg, KeyLookup, VerificationKey};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Largest JWK Set body read.
const MAX_BODY: usize = 256 * 1024;
/// One fetch, connection included.
pub(super) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP(S) client for one URL the configuration names (a JWK Set, an introspection
/// endpoint): http or https, `ca_file` the roots for https (default: the system's), connect
/// timeout [`FETCH_TIMEOUT`], HTTP/1.1.
pub(super) fn fetch_client<B>(url: &str, ca_file: Option<std::path::PathBuf>) -> Result<(Uri, Client<HttpsConnector<HttpConnector>, B>), String>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut upstream = Upstream::parse(url)?;
    upstream.ca_file = ca_file;
    let roots = roots(&upstream, &mut None)?;
    let uri: Uri = url.parse().map_err(|_| "not a valid URL".to_owned())?;
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(FETCH_TIMEOUT));
    connector.enforce_http(false);
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(connector);
    Ok((uri, Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector)))
}

/// The keys of one fetched set, each with the JWK text it came from (a key whose JWK did not
/// change keeps its parsed form, so cached verifications stay valid).
#[derive(Default)]
struct KeySet {
    keys: Vec<Arc<VerificationKey>>,
    texts: Vec<String>,
}

/// One issuer's remote key set.
pub struct RemoteKeys {
    url: Uri,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    current: RwLock<Arc<KeySet>>,
    /// When an unknown `kid` last triggered a fetch (the cooldown).
    last_refetch: Mutex<Option<Instant>>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
    cooldown: Duration,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys").field("url", &self.url).field("keys", &self.current().keys.len()).finish()
    }
}

impl RemoteKeys {
    /// A key set to fetch from `url` (http or https; `ca_file`: roots for https).
    pub fn new(url: &str, ca_file: Option<std::path::PathBuf>, cooldown: Duration) -> Result<Self, String> {
        let (uri, client) = fetch_client(url, ca_file)?;
        Ok(Self { url: uri, client, current: RwLock::default(), last_refetch: Mutex::new(None), fetching: tokio::sync::Mutex::new(()), cooldown })
    }

    fn current(&self) -> Arc<KeySet> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Least time between two fetches triggered by an unknown `kid`.
    pub fn cooldown(&self) -> Duration {
        self.cooldown
    }

    /// Whether a set has loaded.
    pub fn is_loaded(&self) -> bool {
        !self.current().keys.is_empty()
    }

    async fn download(&self) -> Result<Vec<serde_json::Value>, String> {
        let req = hyper::Request::get(self.url.clone()).header(hyper::header::ACCEPT, "application/json").body(Empty::new()).map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(FETCH_TIMEOUT, self.client.request(req)).await.map_err(|_| "timed out".to_owned())?.map_err(|e| format!("request failed: {e}"))?;
        if resp.status() != hyper::StatusCode::OK {
            return Err(format!("status {}", resp.status()));
        }
        let body = tokio::time::timeout(FETCH_TIMEOUT, Limited::new(resp.into_body(), MAX_BODY).collect())
            .await
            .map_err(|_| "timed out reading the body".to_owned())?
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        let set: serde_json::Value = serde_json::from_slice(&body).map_err(|_| "not JSON".to_owned())?;
        jose::client_jwks(&set).map_err(|e| e.to_string())?;
        Ok(set["keys"].as_array().cloned().unwrap_or_default())
    }

    /// Fetches the set now; on failure the previous set stays (last-known-good).
    pub async fn refresh(&self) -> Result<(), String> {
        let _one = self.fetching.lock().await;
        let jwks = self.download().await.inspect_err(|e| tracing::warn!(url = %self.url, error = %e, "could not fetch a JWK Set; keeping the last one that loaded"))?;
        let previous = self.current();
        let mut next = KeySet::default();
        for jwk in jwks {
            let text = jwk.to_string();
            let key = match previous.texts.iter().position(|t| *t == text) {
                Some(i) => previous.keys[i].clone(),
                None => match VerificationKey::from_jwk(&jwk) {
                    Ok(k) => Arc::new(k),
                    Err(_) => continue,
                },
            };
            next.keys.push(key);
            next.texts.push(text);
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        Ok(())
    }

    /// The trusted key for `kid` and `alg` in the current set.
    pub fn find(&self, kid: Option<&str>, alg: Alg) -> Option<Arc<VerificationKey>> {
        self.current().keys.as_slice().find(kid, alg)
    }

    /// [`find`](Self::find); when nothing matches, one refetch unless one started within
    /// the cooldown, then a second look.
    pub async fn find_or_refetch(&self, kid: Option<&str>, alg: Alg) -> Option<Arc<VerificationKey>> {
        if let Some(k) = self.find(kid, alg) {
            return Some(k);
        }
        {
            let mut last = self.last_refetch.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < self.cooldown) {
                return None;
            }
            *last = Some(Instant::now());
        }
        let _ = self.refresh().await;
        self.find(kid, alg)
    }
}

/// A key set already fetched, as a [`KeyLookup`] for `jose::verify`.
pub struct Snapshot(pub Option<Arc<VerificationKey>>);

impl KeyLookup for Snapshot {
    fn find(&self, _kid: Option<&str>, alg: Alg) -> Option<Arc<VerificationKey>> {
        let _ = alg;
        self.0.clone()
    }
}
