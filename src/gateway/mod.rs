//! The API gateway: request → path normalisation → route → policies → upstream.
//!
//! # Layout
//!
//! - `mod.rs` (this file): the section struct [`Config`] (resolved by `config/gateway.rs`;
//!   the gateway never reads configuration) and the axum glue — the only file here that
//!   knows axum;
//! - `pipeline.rs`: [`Gateway`], the per-request phases in order;
//! - `context.rs`: the typed per-request [`RequestContext`], [`Policy`] (Continue / Stop)
//!   and [`Denial`];
//! - `path.rs`: path normalisation (pure);
//! - `route.rs`: route matching (pure); `route_props.rs`: its property tests;
//! - `proxy.rs`: the upstream client, header rewriting, timeouts and the retry;
//! - `credentials.rs`: reading the `Authorization` header (one, Bearer or DPoP, size limit,
//!   no query tokens) and the 400 / 401 / 403 answers with their challenges;
//! - `authn.rs`: the authentication policy — Warden's own tokens (shared key ring,
//!   revocation set), other issuers' tokens (`jwks.rs`), DPoP, the verified-claims cache;
//! - `revocation.rs`: the in-memory set of revoked `jti`s, fed from the store;
//! - `jwks.rs`: another issuer's JWK Set: fetched, cached, refreshed, last-known-good;
//! - `authz.rs`: the authorization policy — scopes, claim conditions, object rules;
//! - `audit.rs`: every request's outcome recorded — counters and audit / access events.
//! - `live.rs`: [`LiveGateway`], the gateway in service, swapped whole on a reload;
//! - `metadata.rs`: RFC 9728 protected-resource metadata and the `resource_metadata`
//!   challenge parameter.
//! - `consumers.rs`: consumers — API keys and Basic authentication, the in-memory index fed
//!   from the store, the Basic cache and throttle;
//! - `rate_limit/`: the rate-limit policy — GCRA (`gcra.rs`) over a [`RateLimitStore`]
//!   (`store.rs`: the trait and the sharded in-memory store).
//! - `introspection.rs`: opaque tokens, asked about at the issuer's RFC 7662 endpoint, with
//!   a cache bounded by the token's `exp`;
//! - `attestation.rs`: app attestation — a short-lived, single-use JWT from an attestation
//!   service, bound to the calling client (WHAT is calling, not only WHO);
//! - `body.rs`: the body phase — reading a body whole up to a limit (413);
//! - `validate.rs`: the validation policy — JSON Schema for bodies, path and query
//!   parameters and headers; content types (415), body size (413), strict JSON;
//! - `openapi.rs`: OpenAPI 3.0 / 3.1 → route TOML (`warden gateway import-openapi`).
//! - `response.rs`: the response phase — error scrubbing, field filtering (`filter.rs`),
//!   security headers — run on upstream responses and on the gateway's own refusals;
//! - `cors.rs`: CORS (preflights answered here) and the CSRF check for browsers.
//!
//! The listener itself is `http::serve` with `http::layers` (request id, security headers,
//! panic catch, request timeout), as for every role; `/livez` and `/healthz` are answered
//! before any route.
//!
//! Framing: hyper's parser refuses differing `Content-Length`s, malformed lengths, transfer
//! codings other than a final `chunked`, `Transfer-Encoding` in HTTP/1.0, obs-fold and
//! oversized heads (400 / 431, connection closed); the gateway reads a body's first frame
//! before contacting the upstream, so a bad first chunk is a 400 too. `Content-Length` with
//! `Transfer-Encoding` is the one case hyper accepts (RFC 9112 §6.1 allows it): it drops the
//! length before the request reaches us, decodes the chunked body and closes the connection
//! after the response, so the upstream gets one request framed by the chunked encoding alone
//! and nothing after it is read as a second request (`tests/gateway/smuggling.rs`).

pub mod audit;
pub mod authn;
pub mod authz;
pub mod consumers;
mod body;
pub mod context;
pub mod cors;
mod credentials;
pub mod filter;
pub mod jwks;
pub mod live;
pub mod metadata;
pub mod introspection;
pub mod attestation;
pub mod ip_rules;
pub mod path;
mod pipeline;
pub mod proxy;
pub mod rate_limit;
pub mod replay;
pub mod response;
pub mod revocation;
pub mod route;
#[cfg(test)]
mod route_props;
pub mod openapi;
pub mod validate;

pub use authn::WardenTokens;
pub use authz::{ClaimCondition, ObjectRule, ParamSource, Rules};
pub use context::{Denial, Flow, Policy, RequestContext};
pub use live::LiveGateway;
pub use pipeline::Gateway;
pub use proxy::Upstream;
pub use rate_limit::store::RateLimitStore;
pub use rate_limit::{MissingKey, RateKey, RateLimitConfig};
pub use introspection::{ClientSecret, IntrospectionConfig};
pub use attestation::AttestationConfig;
pub use validate::{ValidationConfig, ValidationRules};
pub use cors::{Cors, Csrf};
pub use response::{ResponseRules, SecurityHeaders};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// `[gateway]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Socket address to bind.
    pub listen: SocketAddr,
    /// TLS termination (certificate and key files); `None`: plain HTTP.
    pub tls: Option<crate::http::tls::TlsFiles>,
    /// Default upstream timeouts (each route may override them).
    pub timeouts: Timeouts,
    /// `[[gateway.routes]]`, in file order.
    pub routes: Vec<RouteConfig>,
    /// `[[gateway.issuers]]`: other token issuers routes may trust (`auth = ["issuer:NAME"]`).
    pub issuers: Vec<IssuerConfig>,
    /// Longest `Authorization` credential accepted, bytes (longer: 401).
    pub max_token_size: usize,
    /// Verified tokens whose claims are kept (until their `exp`), least recently used out.
    pub token_cache_size: usize,
    /// How often the store is asked for new revocations of Warden's tokens.
    pub revocation_poll_interval: Duration,
    /// Least time between two JWKS fetches triggered by an unknown `kid`.
    pub jwks_refetch_cooldown: Duration,
    /// How old a DPoP proof (its `iat`) may be, beyond the clock skew.
    pub dpop_proof_max_age: Duration,
    /// IP rules for every route.
    pub ip_rules: IpRules,
    /// `access_log`: forwarded requests are logged (`target: "access"`) at info rather than
    /// debug. Refusals are always audit events at info (`audit.rs`).
    pub access_log: bool,
    /// How often `warden serve --config FILE` looks at the file for a change to reload
    /// (`config_watch_interval`; zero: only on `SIGHUP`). Read at start.
    pub config_watch_interval: Duration,
    /// The request header that carries a consumer's API key (routes with `auth =
    /// ["api_key"]`); removed before forwarding.
    pub api_key_header: String,
    /// Most rate-limit buckets kept in memory (all routes together); past it, buckets whose
    /// limit has fully refilled go first, then the least recently used.
    pub rate_limit_max_keys: usize,
    /// Single-use proofs each node remembers, per kind (DPoP proofs, app attestations); when
    /// every one remembered is still inside its window, new ones are refused with 429.
    pub replay_memory: usize,
    /// `public_url`: the scheme and authority clients use to reach the gateway (behind a
    /// TLS proxy), for DPoP proofs' `htu`. `None`: the request's own, or the forwarded
    /// proto and host when the peer is a trusted proxy.
    pub public_url: Option<String>,
    /// `[gateway.security_headers]`: headers every gateway answer gets.
    pub security_headers: SecurityHeaders,
    /// `[gateway.identity_headers]`: where the caller's identity travels upstream.
    pub identity_headers: IdentityHeaders,
}

/// `[gateway.identity_headers]`: the request headers the gateway sets from a verified
/// caller (`sub`, `client_id`, `scope`) for the upstream; copies sent by the caller are
/// always removed, so an upstream can trust them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityHeaders {
    /// The token's `sub`.
    pub sub: axum::http::HeaderName,
    /// Its `client_id` (or `azp`).
    pub client_id: axum::http::HeaderName,
    /// Its scopes, space-delimited.
    pub scope: axum::http::HeaderName,
}

impl IdentityHeaders {
    /// The names in order: sub, client id, scope.
    pub fn names(&self) -> [axum::http::HeaderName; 3] {
        [self.sub.clone(), self.client_id.clone(), self.scope.clone()]
    }
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        let [sub, client_id, scope, _consumer] = credentials::IDENTITY_HEADERS;
        Self { sub, client_id, scope }
    }
}

/// CIDR allow and deny lists (`allow_ips`, `deny_ips`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IpRules {
    /// When not empty, only these addresses pass.
    pub allow: Vec<ipnet::IpNet>,
    /// These never pass.
    pub deny: Vec<ipnet::IpNet>,
}

/// One `[[gateway.issuers]]` entry: a trusted token issuer other than Warden itself.
#[derive(Clone, Debug, PartialEq)]
pub struct IssuerConfig {
    /// Name routes use (`auth = ["issuer:NAME"]`).
    pub name: String,
    /// Required `iss`, exactly.
    pub issuer: String,
    /// Where its JWK Set is fetched (never from a URL a token names); empty for an issuer
    /// whose tokens are introspected only.
    pub jwks_url: String,
    /// PEM roots for an https `jwks_url` (default: the system's).
    pub jwks_ca_file: Option<std::path::PathBuf>,
    /// Algorithms accepted from this issuer.
    pub algorithms: Vec<crate::jose::Alg>,
    /// Required `aud` (one of its values) unless the route names its own `audience`.
    pub audience: String,
    /// Accepted `typ` header values (empty: any; `["at+jwt"]` for RFC 9068 issuers).
    pub types: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf`, `iat`.
    pub clock_skew: Duration,
    /// How often the JWK Set is fetched again.
    pub refresh_interval: Duration,
    /// RFC 7662 introspection of its opaque tokens (`introspection_url` and its keys).
    pub introspection: Option<IntrospectionConfig>,
}

impl Default for Config {
    /// The built-in defaults with no routes (what an empty `[gateway]` resolves to).
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8000).into(),
            tls: None,
            timeouts: Timeouts::default(),
            routes: Vec::new(),
            issuers: Vec::new(),
            max_token_size: 8192,
            token_cache_size: 10_000,
            revocation_poll_interval: Duration::from_millis(500),
            jwks_refetch_cooldown: Duration::from_secs(30),
            dpop_proof_max_age: Duration::from_secs(60),
            ip_rules: IpRules::default(),
            public_url: None,
            access_log: false,
            config_watch_interval: Duration::from_secs(1),
            api_key_header: "x-api-key".into(),
            rate_limit_max_keys: 100_000,
            replay_memory: 100_000,
            security_headers: SecurityHeaders::default(),
            identity_headers: IdentityHeaders::default(),
        }
    }
}

/// Upstream timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// One attempt to open a connection.
    pub connect: Duration,
    /// From sending the request until the response head (a retry included).
    pub first_byte: Duration,
    /// The whole exchange, response body included.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(5), first_byte: Duration::from_secs(25), total: Duration::from_secs(60) }
    }
}

/// One way a route lets callers authenticate (`auth = [...]`). Deny by default: every route
/// must list at least one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// `"warden"`: access tokens from this deployment's own provider.
    Warden,
    /// `"issuer:NAME"`: access tokens from the `[[gateway.issuers]]` entry `NAME`.
    Issuer(String),
    /// `"anonymous"`: callers without credentials are let through (a caller that sends a
    /// token must still send a good one).
    Anonymous,
    /// `"api_key"`: a consumer's API key in the `api_key_header`.
    ApiKey,
    /// `"basic"`: a consumer's name and password (RFC 7617), over TLS or from loopback.
    Basic,
}

/// One `[[gateway.routes]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteConfig {
    /// Unique id (logs, audit, later the admin API).
    pub id: String,
    /// Host names this route serves (lower-case, no port); empty: any host.
    pub hosts: Vec<String>,
    /// Path prefix (`/api/`, `/api/*`) or template (`/cars/{vin}`).
    pub path: String,
    /// Methods, upper-case; `GET` implies `HEAD`.
    pub methods: Vec<String>,
    /// Where requests go.
    pub upstream: Upstream,
    /// Match the path case-insensitively (for upstreams that do).
    pub case_insensitive: bool,
    /// Speak HTTP/2 to the upstream (cleartext, prior knowledge) instead of HTTP/1.1.
    pub http2: bool,
    /// Authentication: the accepted kinds of caller.
    pub auth: Vec<Auth>,
    /// The `aud` a token must carry for this route (default: the issuer's audience; for
    /// Warden's tokens the provider's `default_audience`).
    pub audience: Option<String>,
    /// Authorization: scopes, claim conditions, object rules.
    pub rules: Rules,
    /// Upstream timeouts.
    pub timeouts: Timeouts,
    /// The route's IP rules (applied with the global ones).
    pub ip_rules: IpRules,
    /// Response and browser rules: error scrubbing, field filtering, CORS, CSRF.
    pub response: ResponseRules,
    /// `[[gateway.routes.rate_limits]]`: every one applies, in order.
    pub rate_limits: Vec<RateLimitConfig>,
    /// `[gateway.routes.attestation]`: an app attestation required after authentication.
    pub attestation: Option<AttestationConfig>,
    /// Request validation (`[gateway.routes.validate]`); `None`: none, bodies stream.
    pub validation: Option<validate::ValidationConfig>,
    /// How the route describes itself as an RFC 9728 protected resource (`metadata.rs`).
    pub resource: ProtectedResource,
}

impl RouteConfig {
    /// A route of `methods` on `path` to `upstream` with every other setting at its default:
    /// any host, anonymous callers only, no other policy, the default timeouts.
    pub fn new(id: &str, path: &str, methods: &[&str], upstream: Upstream) -> Self {
        Self {
            id: id.into(),
            hosts: Vec::new(),
            path: path.into(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            upstream,
            case_insensitive: false,
            http2: false,
            auth: vec![Auth::Anonymous],
            audience: None,
            rules: Rules::default(),
            timeouts: Timeouts::default(),
            ip_rules: IpRules::default(),
            resource: ProtectedResource::default(),
            rate_limits: Vec::new(),
            attestation: None,
            validation: None,
            response: ResponseRules::default(),
        }
    }
}

/// A route's `resource` and `resource_name` (RFC 9728 §2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProtectedResource {
    /// The resource identifier clients use (`https://api.example.com/cars`); `None`: derived
    /// from each request's scheme and host and the route's path.
    pub identifier: Option<String>,
    /// Human-readable name (default: the route's id).
    pub name: Option<String>,
}

/// The gateway's router: every request that is not a health check goes through the pipeline.
pub fn router(gateway: Arc<Gateway>) -> Router {
    live_router(Arc::new(LiveGateway::new(gateway)))
}

/// [`router`] over a gateway that a configuration reload may replace: each request reads the
/// current one once and finishes on it.
pub fn live_router(live: Arc<LiveGateway>) -> Router {
    Router::new().fallback(proxy).with_state(live)
}

async fn proxy(State(live): State<Arc<LiveGateway>>, req: Request) -> Response {
    let gateway = live.current();
    if let Some(answer) = gateway.protected_resource_metadata(&req) {
        return match answer {
            Ok(resp) => resp.map(Body::from),
            Err(denial) => denial_response(denial),
        };
    }
    let req = req.map(|b| b.map_err(Into::into).boxed_unsync());
    match gateway.handle(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(denial) => denial_response(denial),
    }
}

fn denial_response(denial: Denial) -> Response {
    let mut resp = if denial.extensions.is_empty() { denial.problem.into_response() } else { problem_with_extensions(denial.problem, denial.extensions) };
    for (name, value) in denial.headers {
        // Challenges add up; a denial's own Retry-After replaces the generic 503 one.
        if name == axum::http::header::RETRY_AFTER {
            resp.headers_mut().insert(name, value);
        } else {
            resp.headers_mut().append(name, value);
        }
    }
    if denial.close {
        resp.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    resp
}

/// A problem document with extension members (`errors`, …) beside the standard ones.
fn problem_with_extensions(problem: crate::http::problem::Problem, extensions: Vec<(&'static str, serde_json::Value)>) -> Response {
    let status = axum::http::StatusCode::from_u16(problem.status).unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    let mut doc = serde_json::to_value(&problem).unwrap_or_default();
    if let Some(members) = doc.as_object_mut() {
        for (name, value) in extensions {
            members.entry(name).or_insert(value);
        }
    }
    let mut resp = (status, axum::Json(doc)).into_response();
    resp.headers_mut().insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/problem+json"));
    resp
}
