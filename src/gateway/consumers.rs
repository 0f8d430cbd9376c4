//! Consumers at the gateway (issue #7 item 3): apps identified by an API key, and legacy
//! callers by Basic authentication (`auth = ["api_key"]`, `["basic"]`).
//!
//! **The index.** The gateway never queries the store per request: [`ConsumerIndex`] holds,
//! in memory, every live consumer (id, name, plan, enabled, Basic password hash) and the
//! keyed hash of every unrevoked API key. It is loaded before serving and follows the store
//! by polling [`Consumers::consumers_changed_since`] and
//! [`Consumers::api_keys_changed_since`] every `revocation_poll_interval` (500 ms), with the
//! same cursor rule as the revocation set (`revocation.rs`: the newest `changed_at` seen
//! minus a margin). A key revoked, a consumer disabled or deleted on any node is refused by
//! every node within one interval plus a query. Until the first poll succeeds, consumer
//! credentials get 503.
//!
//! **API keys** (`wk_` + 256 random bits, base64url) are looked up by their HMAC-SHA-256
//! under the master key, as client secrets are stored (`secrets::MasterKey::hash_secret`):
//! the index holds no key, only keyed hashes, and a look-up by hash reveals nothing about a
//! key through its timing. The header (`[gateway] api_key_header`, `x-api-key` by default)
//! is removed before forwarding.
//!
//! **Basic** (RFC 7617), per request, in order:
//! 1. over plain HTTP from anywhere but loopback (the client address behind
//!    `trusted_proxies`): 403, the password is never checked (and a Basic-only route answers
//!    a request without credentials from there with the same 403, not a challenge);
//! 2. malformed (not base64, no `:`, not UTF-8): 401;
//! 3. the (name, address) or the address has failed too often: 429 with `Retry-After`
//!    (`http::throttle`, 10 failures per consumer and address, 100 per address, in 15
//!    minutes; failures are counted, successes are not);
//! 4. a success remembered for [`BASIC_CACHE_TTL`], keyed by an HMAC of name and password
//!    (never the plaintext), while the consumer is enabled and its password hash unchanged;
//! 5. otherwise Argon2id on the blocking pool (`secrets::password::verify`; an unknown
//!    consumer or one without a password costs the same as a wrong password);
//! 6. `Authorization` is removed before forwarding.
//!
//! A caller lands in the context as a [`Caller`] with `consumer` (the consumer id), `plan`
//! and the source `api_key` or `basic`; the upstream gets `x-warden-consumer`. Refusals are
//! problem+json with `Cache-Control: no-store` and challenges for every kind the route
//! accepts (`Basic realm="warden"`, `ApiKey header="x-api-key"`).

use super::context::{Caller, Denial, Flow, Identity, Policy, RequestContext};
use super::credentials::{self, IDENTITY_HEADERS};
use super::revocation::MARGIN;
use crate::http::throttle::Throttle;
use crate::model::{ApiKey, Consumer, PasswordHash, check_consumer_name, consumer_name_key};
use crate::secrets::MasterKey;
use crate::secrets::password::{self, Password};
use crate::store::{Store, StoreError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use lru::LruCache;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How long a verified Basic credential is remembered.
pub const BASIC_CACHE_TTL: Duration = Duration::from_secs(60);
/// The header that names the consumer to the upstream (one of `IDENTITY_HEADERS`, whose
/// incoming copies every route removes).
pub const CONSUMER_HEADER: HeaderName = HeaderName::from_static("x-warden-consumer");

/// One live consumer, as requests need it.
struct Entry {
    name_key: String,
    disabled: bool,
    password_hash: Option<PasswordHash>,
    by_key: Arc<Caller>,
    by_basic: Arc<Caller>,
    header: Option<HeaderValue>,
}

#[derive(Default)]
struct Index {
    consumers: HashMap<Box<str>, Arc<Entry>>,
    names: HashMap<String, Box<str>>,
    keys: HashMap<[u8; 32], Box<str>>,
}

/// The in-memory index of consumers and API keys (module doc).
pub struct ConsumerIndex {
    master: Arc<MasterKey>,
    index: RwLock<Index>,
    consumer_cursor: AtomicI64,
    key_cursor: AtomicI64,
    loaded: AtomicBool,
}

impl std::fmt::Debug for ConsumerIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerIndex").field("loaded", &self.is_loaded()).finish()
    }
}

fn caller(c: &Consumer, source: &str) -> Arc<Caller> {
    Arc::new(Caller {
        source: source.into(),
        sub: None,
        client_id: None,
        consumer: Some(c.id.as_str().into()),
        plan: c.plan.as_deref().map(Arc::from),
        scopes: Vec::new(),
        claims: Default::default(),
    })
}

impl ConsumerIndex {
    /// An empty, not yet loaded index whose key hashes are keyed by `master`.
    pub fn new(master: Arc<MasterKey>) -> Self {
        Self { master, index: RwLock::default(), consumer_cursor: AtomicI64::new(0), key_cursor: AtomicI64::new(0), loaded: AtomicBool::new(false) }
    }

    /// Whether a poll has succeeded.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies what changed in the store since the last poll; returns how many rows.
    pub async fn poll(&self, store: &Store) -> Result<usize, StoreError> {
        let consumers = store.consumers.consumers_changed_since(self.consumer_cursor.load(Ordering::Acquire)).await?;
        let keys = store.consumers.api_keys_changed_since(self.key_cursor.load(Ordering::Acquire)).await?;
        self.apply(&consumers, &keys);
        if let Some(newest) = consumers.iter().map(|c| c.changed_at).max() {
            self.consumer_cursor.fetch_max(newest - MARGIN, Ordering::AcqRel);
        }
        if let Some(newest) = keys.iter().map(|k| k.changed_at).max() {
            self.key_cursor.fetch_max(newest - MARGIN, Ordering::AcqRel);
        }
        self.loaded.store(true, Ordering::Release);
        Ok(consumers.len() + keys.len())
    }

    fn apply(&self, consumers: &[Consumer], keys: &[ApiKey]) {
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        for c in consumers {
            if let Some(old) = index.consumers.remove(c.id.as_str()) {
                index.names.remove(&old.name_key);
            }
            if c.deleted {
                continue;
            }
            let entry = Entry {
                name_key: consumer_name_key(&c.name),
                disabled: c.disabled,
                password_hash: c.password_hash.clone(),
                by_key: caller(c, "api_key"),
                by_basic: caller(c, "basic"),
                header: HeaderValue::from_str(c.id.as_str()).ok(),
            };
            index.names.insert(entry.name_key.clone(), c.id.as_str().into());
            index.consumers.insert(c.id.as_str().into(), Arc::new(entry));
        }
        for k in keys {
            if k.revoked_at.is_some() {
                index.keys.remove(&k.key_hash.0);
            } else {
                index.keys.insert(k.key_hash.0, k.consumer_id.as_str().into());
            }
        }
    }

    /// The enabled consumer an API key names.
    fn by_key(&self, key: &str) -> Option<Arc<Entry>> {
        let hash = self.master.hash_secret(key).0;
        let index = self.read();
        let id = index.keys.get(&hash)?;
        index.consumers.get(id).filter(|e| !e.disabled).cloned()
    }

    /// The live consumer called `name` (any case), enabled or not.
    fn by_name(&self, name_key: &str) -> Option<Arc<Entry>> {
        let index = self.read();
        let id = index.names.get(name_key)?;
        index.consumers.get(id).cloned()
    }

    /// Polls every `interval` until `shutdown`.
    pub async fn follow(&self, store: &Store, interval: Duration, shutdown: tokio_util::sync::CancellationToken) {
        let mut failing = false;
        loop {
            match self.poll(store).await {
                Ok(_) if failing => {
                    tracing::info!("consumer index: the store answers again");
                    failing = false;
                }
                Ok(_) => {}
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "consumer index: could not read changes; retrying");
                    }
                    failing = true;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}

/// State shared by every route's consumer authentication: the index, the Basic cache and
/// the Basic failure throttle.
pub struct ConsumerAuth {
    index: Arc<ConsumerIndex>,
    header: HeaderName,
    /// HMAC(name, password) → (the password hash that verified, until when).
    cache: Mutex<LruCache<[u8; 32], (PasswordHash, Instant)>>,
    throttle: Throttle,
}

impl std::fmt::Debug for ConsumerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerAuth").field("header", &self.header).finish()
    }
}

impl ConsumerAuth {
    /// Whether API keys are read from the header `name`.
    pub fn header_is(&self, name: &str) -> bool {
        self.header.as_str().eq_ignore_ascii_case(name)
    }

    /// `header`: the API key header (`[gateway] api_key_header`, validated by the config).
    pub fn new(index: Arc<ConsumerIndex>, header: &str) -> Result<Self, String> {
        let header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| format!("\"{header}\" is not a header name"))?;
        Ok(Self {
            index,
            header,
            cache: Mutex::new(LruCache::new(NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN))),
            throttle: Throttle::new(Duration::from_secs(15 * 60), 10, 100),
        })
    }

    /// The index (for the gateway's background loop).
    pub fn index(&self) -> &Arc<ConsumerIndex> {
        &self.index
    }
}

/// A route's authentication when it accepts consumers: API keys and/or Basic first, then
/// the route's other kinds (`inner`: tokens, anonymous) for requests without a consumer
/// credential.
#[derive(Debug)]
pub struct ConsumerAuthenticate {
    shared: Arc<ConsumerAuth>,
    api_key: bool,
    basic: bool,
    inner: Option<Arc<dyn Policy>>,
}

impl ConsumerAuthenticate {
    /// The policy; `inner` runs when no consumer credential was sent (`None`: such a request
    /// is refused with 401).
    pub fn new(shared: Arc<ConsumerAuth>, api_key: bool, basic: bool, inner: Option<Arc<dyn Policy>>) -> Self {
        Self { shared, api_key, basic, inner }
    }

    fn challenges(&self, ctx: &RequestContext, mut d: Denial) -> Denial {
        if self.basic && basic_allowed(ctx) {
            d = d.with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"warden\", charset=\"UTF-8\""));
        }
        if self.api_key
            && let Ok(v) = HeaderValue::from_str(&format!("ApiKey header=\"{}\"", self.shared.header))
        {
            d = d.with_header(header::WWW_AUTHENTICATE, v);
        }
        d
    }

    fn unauthorized(&self, ctx: &RequestContext, detail: &str) -> Denial {
        let d = Denial::new(401, "urn:warden:problem:unauthorized", "Unauthorized", detail);
        self.challenges(ctx, d).with_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
    }

    fn admit(ctx: &mut RequestContext, head: &mut Parts, entry: &Entry, basic: bool) {
        ctx.identity = Identity::Token(if basic { entry.by_basic.clone() } else { entry.by_key.clone() });
        if let Some(v) = &entry.header {
            head.headers.insert(CONSUMER_HEADER, v.clone());
        }
    }

    async fn run(&self, ctx: &mut RequestContext, head: &mut Parts) -> Result<Option<()>, Denial> {
        let shared = &self.shared;
        if self.api_key && head.headers.contains_key(&shared.header) {
            let mut values = head.headers.get_all(&shared.header).iter();
            let (Some(value), None) = (values.next(), values.next()) else {
                return Err(bad_request("more than one API key header"));
            };
            if !shared.index.is_loaded() {
                return Err(credentials::unavailable("the consumer list is not loaded yet; retry shortly"));
            }
            let entry = value.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 512).and_then(|k| shared.index.by_key(k));
            let Some(entry) = entry else {
                ctx.decide("api_key", "unknown, revoked or disabled API key");
                return Err(self.unauthorized(ctx, "the API key is not valid"));
            };
            head.headers.remove(&shared.header);
            Self::admit(ctx, head, &entry, false);
            return Ok(Some(()));
        }
        if self.basic && let Some(basic) = basic_credential(head)? {
            if !basic_allowed(ctx) {
                ctx.decide("basic", "Basic over plain HTTP from a non-loopback address");
                return Err(tls_required());
            }
            // A name that no consumer can have, or a password longer than any policy allows, is
            // malformed: never looked up, hashed or logged.
            let basic = basic.filter(|(n, p)| check_consumer_name(n).is_ok() && p.chars().count() <= password::MAX_CHARS);
            let Some((name, password)) = basic else {
                ctx.decide("basic", "malformed credentials");
                return Err(self.unauthorized(ctx, "the Basic credentials are malformed"));
            };
            let entry = self.check_basic(ctx, &name, password).await?;
            head.headers.remove(header::AUTHORIZATION);
            Self::admit(ctx, head, &entry, true);
            return Ok(Some(()));
        }
        Ok(None)
    }

    async fn check_basic(&self, ctx: &mut RequestContext, name: &str, password: Zeroizing<String>) -> Result<Arc<Entry>, Denial> {
        let shared = &self.shared;
        let ip = ctx.client.ip;
        let name_key = consumer_name_key(name);
        if let Some(wait) = shared.throttle.blocked(Some(&name_key), ip) {
            ctx.decide("basic", "too many failed attempts");
            return Err(too_many(wait));
        }
        if !shared.index.is_loaded() {
            return Err(credentials::unavailable("the consumer list is not loaded yet; retry shortly"));
        }
        let entry = shared.index.by_name(&name_key);
        let mut keyed = Zeroizing::new(String::with_capacity(name_key.len() + password.len() + 8));
        keyed.push_str("basic\u{0}");
        keyed.push_str(&name_key);
        keyed.push('\u{0}');
        keyed.push_str(&password);
        let cache_key = shared.index.master.hash_secret(&keyed).0;
        drop(keyed);
        if let Some(e) = &entry {
            let now = Instant::now();
            let hit = shared.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&cache_key).cloned();
            if let Some((hash, until)) = hit
                && until > now
                && !e.disabled
                && e.password_hash.as_ref() == Some(&hash)
            {
                return Ok(e.clone());
            }
        }
        let hash = entry.as_ref().and_then(|e| e.password_hash.clone());
        let ok = password::verify(Password::new(password.to_string()), hash.clone()).await;
        match (&entry, ok, hash) {
            (Some(e), true, Some(hash)) if !e.disabled => {
                let until = Instant::now() + BASIC_CACHE_TTL;
                shared.cache.lock().unwrap_or_else(|p| p.into_inner()).put(cache_key, (hash, until));
                Ok(e.clone())
            }
            _ => {
                ctx.decide("basic", "unknown consumer, wrong password or disabled consumer");
                tracing::info!(target: "audit", event = "basic_auth_failed", consumer = %name_key, client = %ip);
                if let Err(wait) = shared.throttle.count(Some(&name_key), ip) {
                    return Err(too_many(wait));
                }
                Err(self.unauthorized(ctx, "the Basic credentials are not valid"))
            }
        }
    }
}

fn bad_request(detail: &str) -> Denial {
    Denial::new(400, "urn:warden:problem:bad-request", "Bad Request", detail).with_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

fn tls_required() -> Denial {
    Denial::new(403, "urn:warden:problem:tls-required", "Forbidden", "Basic authentication is accepted only over TLS")
        .with_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// Basic is accepted over TLS, or over plain HTTP from loopback.
fn basic_allowed(ctx: &RequestContext) -> bool {
    ctx.secure || ctx.client.ip.to_canonical().is_loopback()
}

fn too_many(wait: Duration) -> Denial {
    let secs = wait.as_secs().max(1).to_string();
    let d = Denial::new(429, "urn:warden:problem:too-many-attempts", "Too Many Requests", "too many failed attempts; retry later")
        .with_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match HeaderValue::from_str(&secs) {
        Ok(v) => d.with_header(header::RETRY_AFTER, v),
        Err(_) => d,
    }
}

/// A Basic user-id and password.
type BasicPair = (String, Zeroizing<String>);

/// The request's Basic credential: `None` when `Authorization` is absent or another scheme;
/// `Some(None)` when it is Basic but malformed; two `Authorization` headers are a 400.
fn basic_credential(head: &Parts) -> Result<Option<Option<BasicPair>>, Denial> {
    let mut values = head.headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Ok(None) };
    let Some((scheme, rest)) = value.to_str().ok().and_then(|t| t.split_once(' ')) else { return Ok(None) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    if values.next().is_some() {
        return Err(bad_request("more than one Authorization header"));
    }
    let decoded = STANDARD.decode(rest.trim()).ok().map(Zeroizing::new);
    let text = decoded.as_ref().and_then(|d| std::str::from_utf8(d).ok());
    Ok(Some(text.and_then(|t| t.split_once(':')).map(|(n, p)| (n.to_owned(), Zeroizing::new(p.to_owned())))))
}

#[async_trait::async_trait]
impl Policy for ConsumerAuthenticate {
    fn name(&self) -> &'static str {
        "authenticate"
    }

    async fn on_request(&self, ctx: &mut RequestContext, head: &mut Parts) -> Flow {
        for h in &IDENTITY_HEADERS {
            head.headers.remove(h);
        }
        match self.run(ctx, head).await {
            Ok(Some(())) => Flow::Continue,
            Err(d) => Flow::Stop(d),
            Ok(None) => match &self.inner {
                Some(inner) => match inner.on_request(ctx, head).await {
                    Flow::Stop(d) if d.problem.status == 401 => Flow::Stop(self.challenges(ctx, d)),
                    flow => flow,
                },
                // Basic alone, where it is not accepted: no invitation to send a password in clear.
                None if !self.api_key && !basic_allowed(ctx) => {
                    ctx.decide("basic", "plain HTTP from a non-loopback address");
                    Flow::Stop(tls_required())
                }
                None => {
                    ctx.decide("authenticate", "no credentials");
                    Flow::Stop(self.unauthorized(ctx, "this request needs credentials"))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConsumerId, SecretHash};

    fn consumer(id: &str, name: &str) -> Consumer {
        Consumer {
            id: ConsumerId(id.into()),
            name: name.into(),
            plan: Some("gold".into()),
            disabled: false,
            password_hash: None,
            deleted: false,
            created_at: 0,
            updated_at: 0,
            changed_at: 1,
        }
    }

    fn key(master: &MasterKey, text: &str, consumer: &str) -> ApiKey {
        ApiKey {
            id: "k".into(),
            consumer_id: ConsumerId(consumer.into()),
            key_hash: master.hash_secret(text),
            prefix: String::new(),
            created_at: 0,
            revoked_at: None,
            changed_at: 1,
        }
    }

    /// The index follows changes: a key names its consumer while both live; revoking the key,
    /// disabling or deleting the consumer ends it.
    #[test]
    fn the_index_follows_revocation_disabling_and_deletion() {
        let master = Arc::new(MasterKey::from_bytes(&[3; 32]));
        let index = ConsumerIndex::new(master.clone());
        let k = key(&master, "wk_secret", "c1");
        index.apply(&[consumer("c1", "Billing")], std::slice::from_ref(&k));
        let e = index.by_key("wk_secret").expect("a live key");
        assert_eq!(e.by_key.consumer.as_deref(), Some("c1"));
        assert_eq!(e.by_key.plan.as_deref(), Some("gold"));
        assert_eq!(&*e.by_basic.source, "basic");
        assert!(index.by_key("wk_other").is_none());
        assert!(index.by_name("billing").is_some(), "names are looked up by their key");

        index.apply(&[Consumer { disabled: true, ..consumer("c1", "Billing") }], &[]);
        assert!(index.by_key("wk_secret").is_none(), "disabled");
        index.apply(&[consumer("c1", "Billing")], &[]);
        assert!(index.by_key("wk_secret").is_some(), "enabled again");
        index.apply(&[], &[ApiKey { revoked_at: Some(5), ..k.clone() }]);
        assert!(index.by_key("wk_secret").is_none(), "revoked");
        index.apply(&[], &[k]);
        index.apply(&[Consumer { deleted: true, ..consumer("c1", "Billing") }], &[]);
        assert!(index.by_key("wk_secret").is_none(), "deleted");
        assert!(index.by_name("billing").is_none());
        assert_ne!(master.hash_secret("wk_secret"), SecretHash([0; 32]));
    }

    fn head(values: &[&str]) -> Parts {
        let mut b = hyper::Request::get("/");
        for v in values {
            b = b.header("authorization", *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn basic_credentials_are_parsed_strictly() {
        let ok = basic_credential(&head(&["basic YmlsbGluZzpwYTpzcw=="])).unwrap().unwrap().unwrap();
        assert_eq!((ok.0.as_str(), ok.1.as_str()), ("billing", "pa:ss"), "the password may hold a colon");
        assert!(basic_credential(&head(&[])).unwrap().is_none());
        assert!(basic_credential(&head(&["Bearer abc"])).unwrap().is_none(), "another scheme is not ours");
        assert!(basic_credential(&head(&["Basic !!!"])).unwrap().unwrap().is_none(), "not base64");
        assert!(basic_credential(&head(&["Basic YmlsbGluZw=="])).unwrap().unwrap().is_none(), "no colon");
        assert_eq!(basic_credential(&head(&["Basic YTpi", "Basic YTpi"])).unwrap_err().problem.status, 400);
    }
}
