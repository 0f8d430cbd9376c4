//! The authentication policy (issue #7 item 3): who the caller is.
//!
//! A route lists the kinds of caller it accepts (`auth = ["warden", "issuer:partner",
//! "anonymous"]`). Per request, in order:
//! 1. incoming copies of the identity headers (`x-warden-*`) are removed;
//! 2. the credential is read (`credentials.rs`: one `Authorization` header, Bearer or DPoP,
//!    size limit, no `?access_token=`);
//! 3. no credential: `anonymous` routes continue with an anonymous identity; others answer
//!    401 with a challenge and no `error` (RFC 6750 §3.1). A route whose only entry is
//!    `anonymous` skips steps 2–7: it does not look at credentials, which reach the
//!    upstream untouched;
//! 4. the token is verified ([`Verifiers::verify`]) by the source whose issuer its `iss`
//!    names among the route's sources — or found in the verified-claims cache; a token that
//!    is not a JWT (or any token of an issuer that says `introspect = "always"`) is asked
//!    about at the issuer's RFC 7662 endpoint instead (`introspection.rs`: cached no longer
//!    than its `exp`, 503 when the endpoint is down). A route lists at most one introspecting
//!    issuer, so an opaque token is never shown to an issuer it may not belong to;
//! 5. `aud` contains the route's audience (or the source's default);
//! 6. Warden's tokens: not revoked (the in-memory set, checked on every request, cached or
//!    not; 503 until the set has loaded once);
//! 7. DPoP (RFC 9449 §7): a token bound to a key (`cnf.jkt`) must come with the `DPoP`
//!    scheme and one `DPoP` proof for this request, signed by that key, carrying the token's
//!    hash (`ath`), not seen before; a bound token sent as Bearer, or an unbound one as
//!    DPoP, is refused. The proof's `htu` is compared with the URL the client used: the
//!    configured `public_url`, or behind a trusted proxy its forwarded proto and host. The
//!    memory of proofs seen is per node: behind a load balancer without affinity a proof
//!    could be replayed once at each other node within its short lifetime. It never
//!    forgets a proof inside its window: full of live ones, it refuses new ones with 429
//!    (`replay.rs`, `[gateway] replay_memory`);
//! 8. the caller goes into the context, and `x-warden-sub`, `x-warden-client-id` and
//!    `x-warden-scope` are set for the upstream.
//!
//! **Verification** (step 4) never lets the token choose the key or algorithm: `jose::verify`
//! with the one key found by `kid` among the source's trusted keys (the shared key ring for
//! Warden; the configured JWKS for other issuers, refetched on an unknown `kid` with a
//! cooldown), `alg` among the issuer's allowed algorithms and the key's own; `none`, HMAC,
//! `jku`, `x5u`, `jwk`, `x5c` and unknown `crit` never pass. Then: `iss` exact, `exp`
//! required, `nbf` and `iat` not in the future beyond the skew, `typ` (`at+jwt` for
//! Warden), and ID tokens (a `nonce` or `at_hash` claim) are not access tokens.
//!
//! **The cache.** One ES256 verification costs ~75 µs; a token seen before costs a SHA-256,
//! a hash-map look-up and the checks of steps 5–7. Entries are keyed by the token's SHA-256,
//! kept until the token's `exp` (plus the skew) in an LRU of `token_cache_size` entries, and
//! trusted only while the key that verified the token is still the source's key for its `kid`
//! — so a key dropped from a JWKS or retired from the ring stops working at once, cached or
//! not.

use super::context::{Caller, Flow, Identity, Policy, RequestContext};
use super::credentials::{self, Presented, Scheme};
use super::introspection::{self, Failure as IntrospectionFailure, Introspector};
use super::jwks::{RemoteKeys, Snapshot};
use super::replay::FirstUse;
use super::revocation::Revocations;
use super::{Auth, IssuerConfig};
use crate::jose::{self, Alg, Expectations, KeyLookup, KeyRing, VerificationKey};
use crate::http::client_ip::TrustedProxies;
use crate::model::unix_now;
use crate::store::Store;
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::header::HeaderValue;
use hyper::http::request::Parts;
use lru::LruCache;
use serde_json::{Map, Value};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the gateway needs to accept this deployment's own access tokens (built by `app.rs`
/// from the provider's settings: the gateway never reads configuration).
pub struct WardenTokens {
    /// The key ring the provider signs with (refreshed by the housekeeping loop of every
    /// node, gateway-only nodes included).
    pub ring: Arc<KeyRing>,
    /// The revocation set, fed from the store.
    pub revocations: Arc<Revocations>,
    /// The provider's issuer.
    pub issuer: String,
    /// The `aud` routes require by default (`provider.default_audience`).
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf`, `iat`.
    pub clock_skew: Duration,
}

impl std::fmt::Debug for WardenTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WardenTokens").field("issuer", &self.issuer).field("audience", &self.audience).finish()
    }
}

/// RFC 9068 §2.1 `typ` values.
const AT_JWT: &[&str] = &["at+jwt", "application/at+jwt"];
/// Claims of RFC 9068 tokens Warden always issues.
const WARDEN_REQUIRED: &[&str] = &["sub", "aud", "iat", "jti", "client_id"];

/// A source of tokens.
#[derive(Debug)]
enum Source {
    Warden(WardenTokens),
    /// `keys`: its JWK Set, when it has a `jwks_url`; `introspector`: when it has an
    /// `introspection_url` (`introspection.rs`).
    Issuer { cfg: Box<IssuerConfig>, keys: Option<Arc<RemoteKeys>>, introspector: Option<Box<Introspector<Arc<Verified>>>> },
}

impl Source {
    fn issuer(&self) -> &str {
        match self {
            Self::Warden(w) => &w.issuer,
            Self::Issuer { cfg, .. } => &cfg.issuer,
        }
    }

    fn leeway(&self) -> u64 {
        match self {
            Self::Warden(w) => w.clock_skew.as_secs(),
            Self::Issuer { cfg, .. } => cfg.clock_skew.as_secs(),
        }
    }

    /// The source's current key for `kid`, without fetching.
    fn current_key(&self, kid: Option<&str>, alg: Alg) -> Option<Arc<VerificationKey>> {
        match self {
            Self::Warden(w) => w.ring.current().find(kid, alg),
            Self::Issuer { keys, .. } => keys.as_ref()?.find(kid, alg),
        }
    }
}

/// A token that verified (or that its issuer's introspection endpoint vouched for), as
/// cached. (`Debug` leaves the key out.)
pub(super) struct Verified {
    source: usize,
    kid: Option<String>,
    alg: Alg,
    /// The key that verified it; `None` for an introspected token.
    key: Option<Arc<VerificationKey>>,
    /// Last second the token is accepted (`exp` + skew).
    until: i64,
    jti: Option<String>,
    aud: Vec<String>,
    jkt: Option<String>,
    caller: Arc<Caller>,
    /// `x-warden-sub`, `-client-id`, `-scope`, built once.
    identity_headers: Vec<(hyper::header::HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified").field("source", &self.source).field("kid", &self.kid).field("until", &self.until).field("caller", &self.caller).finish()
    }
}

/// The key of a token in the caches: its SHA-256 (the token itself is never kept).
fn token_hash(token: &str) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    hash
}

/// Every token source, the verified-claims cache and the DPoP replay memory, shared by all
/// routes.
pub struct Verifiers {
    sources: Vec<(Arc<str>, Source)>,
    cache: Mutex<LruCache<[u8; 32], Arc<Verified>>>,
    /// DPoP proofs seen (`jkt:jti` → until when a replay would still pass); handed on to
    /// the gateway that replaces this one on a reload, so a proof cannot be replayed across it.
    proofs: Arc<super::replay::ReplayMemory>,
    max_token_size: usize,
    dpop_max_age: u64,
    revocation_poll: Duration,
    refresh_intervals: Vec<Duration>,
    /// Whose forwarded proto and host are believed for DPoP's `htu`.
    trusted: Arc<TrustedProxies>,
    /// `[gateway] public_url`, which wins over the request's and forwarded origins.
    public_url: Option<String>,
    /// The names of the identity headers (`[gateway.identity_headers]`): sub, client id, scope.
    identity: [hyper::header::HeaderName; 3],
}

impl std::fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifiers").field("sources", &self.sources.iter().map(|(n, _)| n).collect::<Vec<_>>()).finish()
    }
}

/// The parts of a JWT read before verification, to pick the source and key.
struct Peek {
    iss: Option<String>,
    kid: Option<String>,
    alg: Option<Alg>,
}

fn peek(token: &str) -> Option<Peek> {
    let mut parts = token.split('.');
    let (h, p) = (parts.next()?, parts.next()?);
    let header: Map<String, Value> = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let payload: Map<String, Value> = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    Some(Peek {
        iss: payload.get("iss").and_then(Value::as_str).map(str::to_owned),
        kid: header.get("kid").and_then(Value::as_str).map(str::to_owned),
        alg: header.get("alg").and_then(Value::as_str).and_then(Alg::parse),
    })
}

/// The proto and host the nearest proxy forwarded: the last `Forwarded` element's
/// `proto=` and `host=`, else the last values of `X-Forwarded-Proto` and `X-Forwarded-Host`.
fn forwarded_origin(headers: &hyper::HeaderMap) -> (Option<String>, Option<String>) {
    let last = |name: &str| -> Option<String> {
        let all: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        all.last().and_then(|v| v.rsplit(',').next()).map(|s| s.trim().trim_matches('"').to_owned())
    };
    if let Some(element) = last("forwarded") {
        let param = |key: &str| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case(key).then(|| v.trim().trim_matches('"').to_owned())
            })
        };
        return (param("proto"), param("host"));
    }
    (last("x-forwarded-proto"), last("x-forwarded-host"))
}

fn describe(e: &jose::JoseError) -> &'static str {
    use jose::JoseError as E;
    match e {
        E::Malformed => "the access token is malformed",
        E::UnsupportedCritical => "the access token has a critical header that is not understood",
        E::WrongType => "the token is not an access token (typ)",
        E::BadSignature => "the access token's signature does not verify",
        E::UnknownKid => "the access token is signed by an unknown key",
        E::Expired => "the access token has expired",
        E::NotYetValid => "the access token is not valid yet",
        E::WrongIssuer => "the access token's issuer is not accepted",
        E::WrongAudience => "the access token is not meant for this API",
        E::AlgNotAllowed => "the access token's algorithm is not allowed",
        E::MissingClaim(_) => "the access token lacks a required claim",
        E::Key(_) => "the access token cannot be verified",
    }
}

impl Verifiers {
    /// The sources: Warden's own tokens (when given) and every configured issuer. An
    /// issuer's `jwks_url` that cannot be used is an error naming it.
    pub fn new(warden: Option<WardenTokens>, issuers: &[IssuerConfig], cfg: &super::Config) -> Result<Self, (usize, String)> {
        let mut sources: Vec<(Arc<str>, Source)> = Vec::new();
        let mut refresh_intervals = Vec::new();
        if let Some(w) = warden {
            sources.push(("warden".into(), Source::Warden(w)));
        }
        for (i, c) in issuers.iter().enumerate() {
            let keys = match c.jwks_url.is_empty() {
                true => None,
                false => Some(Arc::new(RemoteKeys::new(&c.jwks_url, c.jwks_ca_file.clone(), cfg.jwks_refetch_cooldown).map_err(|e| (i, e))?)),
            };
            let introspector = match &c.introspection {
                None => None,
                Some(ic) => Some(Box::new(Introspector::new(ic, cfg.token_cache_size).map_err(|e| (i, format!("introspection_url: {e}")))?)),
            };
            refresh_intervals.push(c.refresh_interval);
            sources.push((format!("issuer:{}", c.name).into(), Source::Issuer { cfg: Box::new(c.clone()), keys, introspector }));
        }
        let size = NonZeroUsize::new(cfg.token_cache_size.max(1)).expect("at least 1");
        Ok(Self {
            sources,
            cache: Mutex::new(LruCache::new(size)),
            proofs: Arc::new(super::replay::ReplayMemory::new(cfg.replay_memory)),
            max_token_size: cfg.max_token_size,
            dpop_max_age: cfg.dpop_proof_max_age.as_secs(),
            revocation_poll: cfg.revocation_poll_interval,
            refresh_intervals,
            trusted: Arc::default(),
            public_url: None,
            identity: cfg.identity_headers.names(),
        })
    }

    /// After a configuration reload: takes over `previous`'s DPoP replay memory and the
    /// fetched key sets of issuers whose settings did not change (no refetch, no gap).
    pub fn reusing(mut self, previous: &Verifiers) -> Self {
        self.proofs = previous.proofs.clone();
        for (name, source) in &mut self.sources {
            let Source::Issuer { cfg, keys: Some(keys), .. } = source else { continue };
            let same = previous.sources.iter().find_map(|(n, s)| match s {
                Source::Issuer { cfg: old, keys: Some(old_keys), .. } if n == name && old == cfg && old_keys.cooldown() == keys.cooldown() => Some(old_keys),
                _ => None,
            });
            if let Some(old_keys) = same {
                *keys = old_keys.clone();
            }
        }
        self
    }

    /// Where the gateway stands: the proxies whose `Forwarded` / `X-Forwarded-Proto` /
    /// `X-Forwarded-Host` are believed, and the configured `public_url`.
    pub fn behind(mut self, trusted: Arc<TrustedProxies>, public_url: Option<String>) -> Self {
        self.trusted = trusted;
        self.public_url = public_url;
        self
    }

    /// The URI a client used for this request, as a DPoP proof's `htu` names it (RFC 9449
    /// §4.3): `public_url` when configured; else, from a trusted proxy, the proto and host
    /// it forwarded (the nearest proxy's: the last `Forwarded` element, else the last
    /// `X-Forwarded-Proto` / `-Host` values); else the request's own scheme and `Host`.
    /// Forwarding headers from any other peer are ignored.
    fn public_uri(&self, head: &Parts, ctx: &RequestContext) -> String {
        let path = head.uri.path();
        if let Some(base) = &self.public_url {
            return format!("{}{path}", base.trim_end_matches('/'));
        }
        let own_host = head.headers.get(hyper::header::HOST).and_then(|h| h.to_str().ok()).or(head.uri.authority().map(|a| a.as_str())).unwrap_or("");
        let own_scheme = if ctx.secure { "https" } else { "http" };
        let (mut scheme, mut host) = (own_scheme.to_owned(), own_host.to_owned());
        if self.trusted.contains(ctx.client.peer.ip()) {
            let (proto, fhost) = forwarded_origin(&head.headers);
            if let Some(p) = proto.filter(|p| p.eq_ignore_ascii_case("https") || p.eq_ignore_ascii_case("http")) {
                scheme = p.to_ascii_lowercase();
            }
            if let Some(h) = fhost.filter(|h| !h.is_empty() && !h.contains(['/', '?', '#', '@', ' '])) {
                host = h;
            }
        }
        format!("{scheme}://{host}{path}")
    }

    /// The index of the source a route's `auth` entry names.
    fn index(&self, auth: &Auth) -> Option<usize> {
        let name = match auth {
            Auth::Warden => "warden".to_owned(),
            Auth::Issuer(n) => format!("issuer:{n}"),
            Auth::Anonymous | Auth::ApiKey | Auth::Basic => return None,
        };
        self.sources.iter().position(|(n, _)| **n == name)
    }

    fn revocations(&self) -> Option<&Arc<Revocations>> {
        self.sources.iter().find_map(|(_, s)| match s {
            Source::Warden(w) => Some(&w.revocations),
            _ => None,
        })
    }

    /// Before serving: the first revocation poll and the first JWKS fetches (failures are
    /// logged; the background loop retries).
    pub async fn prepare(&self, store: Option<&Store>) {
        if let (Some(r), Some(store)) = (self.revocations(), store)
            && let Err(e) = r.poll(store).await
        {
            tracing::warn!(error = %e, "revocation list: first load failed; Warden's tokens get 503 until it loads");
        }
        for (_, s) in &self.sources {
            // A set taken over on a reload is loaded already: its refresh loop keeps it.
            if let Source::Issuer { keys: Some(keys), .. } = s
                && !keys.is_loaded()
            {
                let _ = keys.refresh().await;
            }
        }
    }

    /// The background loops: revocation polling and each issuer's JWKS refresh.
    pub fn spawn(self: &Arc<Self>, store: Option<Store>, shutdown: tokio_util::sync::CancellationToken) -> tokio::task::JoinSet<()> {
        let mut tasks = tokio::task::JoinSet::new();
        if let (Some(_), Some(store)) = (self.revocations(), store) {
            let (me, stop) = (self.clone(), shutdown.clone());
            tasks.spawn(async move {
                if let Some(r) = me.revocations() {
                    r.follow(&store, me.revocation_poll, stop).await;
                }
            });
        }
        let mut n = 0;
        for i in 0..self.sources.len() {
            if let Source::Issuer { keys, .. } = &self.sources[i].1 {
                if keys.is_none() {
                    n += 1;
                    continue;
                }
                let (me, stop, every) = (self.clone(), shutdown.clone(), self.refresh_intervals[n]);
                n += 1;
                tasks.spawn(async move {
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(every) => {}
                        }
                        if let Source::Issuer { keys: Some(keys), .. } = &me.sources[i].1 {
                            let _ = keys.refresh().await;
                        }
                    }
                });
            }
        }
        tasks
    }

    /// Verifies `token` with the one of `allowed` sources whose issuer it names, or finds it
    /// in the cache. `Err` is the reason for the caller (no internals).
    async fn verify(&self, token: &str, allowed: &[usize]) -> Result<Arc<Verified>, &'static str> {
        let hash = token_hash(token);
        let now = unix_now();
        let hit = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&hash).cloned();
        if let Some(v) = hit {
            let (_, source) = &self.sources[v.source];
            let key_current = v.key.as_ref().is_some_and(|key| source.current_key(v.kid.as_deref(), v.alg).is_some_and(|k| Arc::ptr_eq(&k, key)));
            if !allowed.contains(&v.source) {
                return Err("the access token's issuer is not accepted here");
            }
            if now > v.until {
                self.cache.lock().unwrap_or_else(|p| p.into_inner()).pop(&hash);
                return Err("the access token has expired");
            }
            if key_current {
                return Ok(v);
            }
            self.cache.lock().unwrap_or_else(|p| p.into_inner()).pop(&hash);
        }
        let peek = peek(token).ok_or("the access token is malformed")?;
        let index = *allowed
            .iter()
            .find(|i| Some(self.sources[**i].1.issuer()) == peek.iss.as_deref())
            .ok_or("the access token's issuer is not accepted here")?;
        let source = &self.sources[index].1;
        let alg = peek.alg.ok_or("the access token's algorithm is not allowed")?;
        let key = match source {
            Source::Warden(w) => w.ring.current().find(peek.kid.as_deref(), alg),
            Source::Issuer { cfg, keys, .. } => {
                if !cfg.algorithms.contains(&alg) {
                    return Err("the access token's algorithm is not allowed");
                }
                match keys {
                    Some(keys) => keys.find_or_refetch(peek.kid.as_deref(), alg).await,
                    None => return Err("the access token is signed by an unknown key"),
                }
            }
        };
        let key = key.ok_or("the access token is signed by an unknown key")?;
        let leeway = source.leeway();
        let types: Vec<&str> = match source {
            Source::Warden(_) => AT_JWT.to_vec(),
            Source::Issuer { cfg, .. } => cfg.types.iter().map(String::as_str).collect(),
        };
        let required: &[&str] = if matches!(source, Source::Warden(_)) { WARDEN_REQUIRED } else { &["aud"] };
        let typ = types.as_slice();
        let expect = Expectations { issuer: Some(source.issuer()), audience: &[], typ, required, leeway };
        let claims: Map<String, Value> = jose::verify(token, &Snapshot(Some(key.clone())), &expect).map_err(|e| describe(&e))?;
        match claims.get("iat") {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_i64() {
                Some(iat) if i128::from(iat) <= i128::from(now) + i128::from(leeway) => {}
                Some(_) => return Err("the access token is issued in the future"),
                None => return Err("the access token is malformed"),
            },
        }
        if claims.contains_key("nonce") || claims.contains_key("at_hash") {
            return Err("an ID token is not an access token");
        }
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        let v = self.verified(index, claims, exp.saturating_add(leeway as i64), peek.kid, alg, Some(key))?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).put(hash, v.clone());
        Ok(v)
    }

    /// What the checks of a token's claims (signature verified, or introspected) keep for
    /// the request and the caches: the caller, its identity headers, `aud`, `jti`, `cnf`.
    fn verified(
        &self,
        index: usize,
        claims: Map<String, Value>,
        until: i64,
        kid: Option<String>,
        alg: Alg,
        key: Option<Arc<VerificationKey>>,
    ) -> Result<Arc<Verified>, &'static str> {
        let text = |n: &str| claims.get(n).and_then(Value::as_str).map(str::to_owned);
        let aud = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let scopes = match (claims.get("scope"), claims.get("scp")) {
            (Some(Value::String(s)), _) => s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            (_, Some(Value::Array(a))) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let jkt = claims.get("cnf").and_then(|c| c.get("jkt")).and_then(Value::as_str).map(str::to_owned);
        if claims.get("cnf").is_some() && jkt.is_none() {
            return Err("the access token is bound to a key in a way the gateway does not support");
        }
        let (jti, sub, client_id) = (text("jti"), text("sub"), text("client_id").or_else(|| text("azp")));
        let caller = Caller {
            source: self.sources[index].0.clone(),
            sub,
            client_id,
            consumer: None,
            plan: None,
            scopes,
            claims,
        };
        let scope = caller.scopes.join(" ");
        let identity_headers = [caller.sub.as_deref(), caller.client_id.as_deref(), Some(scope.as_str()).filter(|s| !s.is_empty())]
            .into_iter()
            .zip(self.identity.iter())
            .filter_map(|(value, name)| Some((name.clone(), HeaderValue::from_str(value?).ok()?)))
            .collect();
        Ok(Arc::new(Verified { identity_headers, source: index, kid, alg, key, until, jti, aud, jkt, caller: Arc::new(caller) }))
    }

    /// The introspecting source of `allowed` that answers for `token`: the one whose issuer
    /// a JWT names when it introspects always, or for an opaque token (not a JWT) the
    /// route's one introspecting source. `None`: verify locally.
    fn introspecting(&self, token: &str, allowed: &[usize]) -> Option<usize> {
        let introspects = |i: &usize| match &self.sources[*i].1 {
            Source::Issuer { introspector: Some(x), .. } => Some(x.always()),
            _ => None,
        };
        match peek(token) {
            Some(p) => allowed.iter().copied().find(|i| introspects(i) == Some(true) && Some(self.sources[*i].1.issuer()) == p.iss.as_deref()),
            None => allowed.iter().copied().find(|i| introspects(i).is_some()),
        }
    }

    /// An opaque (or `always`-introspected) token, by the issuer's introspection endpoint,
    /// through its cache (`introspection.rs` lists the checks).
    async fn introspect(&self, index: usize, token: &str) -> Result<Arc<Verified>, IntrospectionFailure> {
        let Source::Issuer { cfg, introspector: Some(x), .. } = &self.sources[index].1 else {
            return Err(IntrospectionFailure::Invalid("the access token is malformed"));
        };
        let hash = token_hash(token);
        let now = unix_now();
        if let Some(answer) = x.cached(&hash, now) {
            return answer;
        }
        let answer = x.ask(token).await?;
        let leeway = cfg.clock_skew.as_secs() as i64;
        let checked = introspection::check_answer(&answer, &cfg.issuer, now, leeway).and_then(|exp| {
            let v = self.verified(index, answer, exp.saturating_add(leeway), None, Alg::ES256, None).map_err(IntrospectionFailure::Invalid)?;
            Ok((v, exp))
        });
        match checked {
            Ok((v, exp)) => {
                x.remember(hash, v.clone(), exp, now);
                Ok(v)
            }
            Err(e) => {
                x.remember_refusal(hash, now);
                Err(e)
            }
        }
    }

    /// RFC 9449 §7: the request's one `DPoP` proof, for this method and URI, with `ath`,
    /// by the key the token is bound to, not used before.
    fn check_dpop(&self, head: &Parts, ctx: &RequestContext, token: &str, jkt: &str, leeway: u64) -> Result<(), super::Denial> {
        let mut proofs = head.headers.get_all("dpop").iter();
        let (Some(proof), None) = (proofs.next(), proofs.next()) else {
            return Err(credentials::invalid_proof("exactly one DPoP proof header is required with a DPoP-bound token"));
        };
        let proof = proof.to_str().map_err(|_| credentials::invalid_proof("the DPoP proof is not a well-formed JWT"))?;
        let uri = self.public_uri(head, ctx);
        let now = unix_now();
        let check = jose::dpop::ProofCheck { method: head.method.as_str(), uri: &uri, now, max_age: self.dpop_max_age, leeway, access_token: Some(token), nonces: None };
        let proof = jose::dpop::check_proof(proof, &check).map_err(|e| credentials::invalid_proof(&e.to_string()))?;
        if proof.jkt != jkt {
            return Err(credentials::invalid_token(Scheme::Dpop, "the DPoP proof is not signed by the key the access token is bound to"));
        }
        let until = proof.iat + (self.dpop_max_age + 2 * leeway) as i64;
        match self.proofs.first_use(proof.replay_key(), until, now) {
            FirstUse::Yes => Ok(()),
            FirstUse::Replayed => Err(credentials::invalid_proof("the DPoP proof was used before")),
            FirstUse::Full(retry_after) => Err(super::replay::full(retry_after)),
        }
    }
}

/// One route's authentication policy.
#[derive(Debug)]
pub struct Authenticate {
    verifiers: Arc<Verifiers>,
    /// Accepted sources and the audience each must name.
    allowed: Vec<usize>,
    audiences: Vec<(usize, String)>,
    anonymous: bool,
    schemes: &'static [Scheme],
}

impl Authenticate {
    /// The policy for a route; `Err` names an `auth` entry without a source (an issuer not
    /// configured, or Warden's tokens on a node without them).
    pub fn new(verifiers: Arc<Verifiers>, auth: &[Auth], audience: Option<&str>) -> Result<Self, String> {
        let mut allowed = Vec::new();
        let mut audiences = Vec::new();
        for a in auth {
            if matches!(a, Auth::Anonymous | Auth::ApiKey | Auth::Basic) {
                continue;
            }
            let i = verifiers.index(a).ok_or_else(|| format!("{a:?} names no configured token source"))?;
            let aud = audience.map(str::to_owned).unwrap_or_else(|| match &verifiers.sources[i].1 {
                Source::Warden(w) => w.audience.clone(),
                Source::Issuer { cfg, .. } => cfg.audience.clone(),
            });
            allowed.push(i);
            audiences.push((i, aud));
        }
        // An opaque token names no issuer: a route can send it to one endpoint only.
        let introspecting = allowed.iter().filter(|i| matches!(&verifiers.sources[**i].1, Source::Issuer { introspector: Some(_), .. })).count();
        if introspecting > 1 {
            return Err("more than one issuer with an introspection_url: an opaque token would be shown to all of them; list one".into());
        }
        let schemes: &'static [Scheme] = &[Scheme::Bearer, Scheme::Dpop];
        Ok(Self { verifiers, allowed, audiences, anonymous: auth.contains(&Auth::Anonymous), schemes })
    }
}

#[async_trait::async_trait]
impl Policy for Authenticate {
    fn name(&self) -> &'static str {
        "authenticate"
    }

    async fn on_request(&self, ctx: &mut RequestContext, head: &mut Parts) -> Flow {
        // The configured identity headers and the consumer's: a caller never sends its own.
        for h in self.verifiers.identity.iter().chain([&credentials::IDENTITY_HEADERS[3]]) {
            head.headers.remove(h);
        }
        match self.run(ctx, head).await {
            Ok(()) => Flow::Continue,
            Err(d) => Flow::Stop(d),
        }
    }
}

impl Authenticate {
    async fn run(&self, ctx: &mut RequestContext, head: &mut Parts) -> Result<(), super::Denial> {
        match self.identify(ctx, head).await? {
            None => ctx.identity = Identity::Anonymous,
            Some(verified) => {
                for (name, value) in &verified.identity_headers {
                    head.headers.insert(name.clone(), value.clone());
                }
                ctx.identity = Identity::Token(verified.caller.clone());
            }
        }
        Ok(())
    }

    /// Steps 2–7 of the module doc on the unchanged head (the token is borrowed from it, not
    /// copied); `None`: an anonymous caller the route lets through.
    async fn identify(&self, ctx: &RequestContext, head: &Parts) -> Result<Option<Arc<Verified>>, super::Denial> {
        let v = self.verifiers.as_ref();
        if self.allowed.is_empty() {
            // `auth = ["anonymous"]` alone: the route does not look at credentials, which
            // pass to the upstream untouched (it may authenticate callers itself).
            return Ok(None);
        }
        let schemes = self.schemes;
        let (scheme, token) = match credentials::presented(head, v.max_token_size, schemes)? {
            Presented::None if self.anonymous => return Ok(None),
            Presented::None => return Err(credentials::unauthorized(schemes, None, "this request needs an access token")),
            Presented::Token(s, t) => (s, t),
        };
        let verified = match v.introspecting(token, &self.allowed) {
            Some(i) => v.introspect(i, token).await.map_err(|e| match e {
                IntrospectionFailure::Invalid(why) => credentials::invalid_token(scheme, why),
                IntrospectionFailure::Unavailable => credentials::unavailable("the access token's issuer cannot be asked about it now; retry shortly"),
            })?,
            None => v.verify(token, &self.allowed).await.map_err(|why| credentials::invalid_token(scheme, why))?,
        };
        let audience = self.audiences.iter().find(|(i, _)| *i == verified.source).map(|(_, a)| a.as_str()).unwrap_or("");
        if !verified.aud.iter().any(|a| a == audience) {
            return Err(credentials::invalid_token(scheme, "the access token is not meant for this API"));
        }
        let (_, source) = &v.sources[verified.source];
        if let Source::Warden(w) = source {
            if !w.revocations.is_loaded() {
                return Err(credentials::unavailable("the revocation list is not loaded yet; retry shortly"));
            }
            if verified.jti.as_deref().is_some_and(|j| w.revocations.is_revoked(j)) {
                return Err(credentials::invalid_token(scheme, "the access token has been revoked"));
            }
        }
        match (&verified.jkt, scheme) {
            (Some(jkt), Scheme::Dpop) => v.check_dpop(head, ctx, token, jkt, source.leeway())?,
            (Some(_), Scheme::Bearer) => {
                return Err(credentials::invalid_token(Scheme::Dpop, "a DPoP-bound access token must be sent with the DPoP scheme and a proof"));
            }
            (None, Scheme::Dpop) => return Err(credentials::invalid_token(Scheme::Dpop, "the access token is not DPoP-bound")),
            (None, Scheme::Bearer) => {}
        }
        Ok(Some(verified))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{SigningKey, generate_key_record};
    use crate::secrets::MasterKey;
    use serde_json::json;

    fn setup() -> (Verifiers, Arc<KeyRing>, SigningKey, crate::model::SigningKeyRecord, MasterKey) {
        let master = MasterKey::from_bytes(&[5; 32]);
        let rec = generate_key_record(Alg::ES256, &master, 0, 0).unwrap();
        let ring = Arc::new(KeyRing::default());
        ring.reload(std::slice::from_ref(&rec), &master, unix_now());
        let pkcs8 = master.open(&rec.sealed_private, rec.kid.as_str().as_bytes()).unwrap();
        let key = SigningKey::from_pkcs8(rec.kid.clone(), Alg::ES256, &pkcs8).unwrap();
        let w = WardenTokens {
            ring: ring.clone(),
            revocations: Arc::default(),
            issuer: "https://w.example".into(),
            audience: "https://api.example".into(),
            clock_skew: Duration::from_secs(30),
        };
        (Verifiers::new(Some(w), &[], &super::super::Config::default()).unwrap(), ring, key, rec, master)
    }

    fn token(key: &SigningKey, extra: Value) -> String {
        let t = unix_now();
        let mut c = json!({"iss": "https://w.example", "sub": "s", "aud": "https://api.example", "exp": t + 60, "iat": t, "jti": "j", "client_id": "c"});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        key.sign_jwt("at+jwt", &c).unwrap()
    }

    /// A token is verified once, then served from the cache — until the key that verified it
    /// leaves the ring, which refuses it at once although it is cached.
    #[tokio::test]
    async fn verified_claims_are_cached_until_their_key_leaves_the_ring() {
        let (v, ring, key, rec, master) = setup();
        let t = token(&key, json!({"scope": "a b"}));
        let first = v.verify(&t, &[0]).await.unwrap();
        let second = v.verify(&t, &[0]).await.unwrap();
        assert!(Arc::ptr_eq(&first, &second), "the second request does not verify again");
        assert_eq!(first.caller.scopes, ["a", "b"]);
        assert_eq!(v.verify(&t, &[]).await.unwrap_err(), "the access token's issuer is not accepted here", "a cached token is still checked against the route's sources");
        ring.reload(&[], &master, unix_now());
        assert_eq!(v.verify(&t, &[0]).await.unwrap_err(), "the access token is signed by an unknown key");
        ring.reload(&[rec], &master, unix_now());
        assert!(v.verify(&t, &[0]).await.is_ok());
    }

    #[tokio::test]
    async fn iat_in_the_future_and_id_token_claims_are_refused() {
        let (v, _, key, _, _) = setup();
        let later = unix_now() + 120;
        assert_eq!(v.verify(&token(&key, json!({"iat": later})), &[0]).await.unwrap_err(), "the access token is issued in the future");
        assert!(v.verify(&token(&key, json!({"iat": unix_now() + 20})), &[0]).await.is_ok(), "within the skew");
        assert_eq!(v.verify(&token(&key, json!({"nonce": "n"})), &[0]).await.unwrap_err(), "an ID token is not an access token");
        assert_eq!(v.verify(&token(&key, json!({"at_hash": "h"})), &[0]).await.unwrap_err(), "an ID token is not an access token");
        assert!(v.verify(&token(&key, json!({"iat": "soon"})), &[0]).await.is_err());
        assert!(v.verify(&token(&key, json!({"cnf": {"x5t#S256": "x"}})), &[0]).await.is_err(), "an unsupported binding fails closed");
    }
}
