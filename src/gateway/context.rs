//! The per-request context and the policy contract (pingora's typed context per request;
//! Envoy's and Caddy's filters that say Continue or Stop).
//!
//! A request goes through phases, each of which reads and extends one [`RequestContext`]:
//!
//! 1. **normalise** the path (`path.rs`) — a refusal is a 400 before anything else;
//! 2. **match** a route (`route.rs`) — 404 / 405 otherwise; the captured `{params}` land in
//!    the context;
//! 3. **request policies**, in the route's order: each gets the context and the request
//!    head and answers [`Flow::Continue`] or [`Flow::Stop`] with a [`Denial`]; the first Stop
//!    ends the request (it never reaches the upstream) and is recorded as the decision;
//! 4. **body**, only when a policy of the route asks for it ([`Policy::body_limit`]): the
//!    body is read up to the smallest limit asked (413 past it, on `Content-Length` before
//!    reading or while reading a chunked body), each policy's [`Policy::on_body`] runs, and
//!    the buffered bytes are what the upstream gets; otherwise the body streams;
//! 5. **upstream** (`proxy.rs`);
//! 6. **response phase** (`response.rs`): the route's response policies and the gateway's
//!    security headers see the same context, on the upstream's answer and on a denial;
//!    audit and metrics read it too.
//!
//! Policies are built ("provisioned") from the configuration before they serve, so a bad
//! policy setting is a configuration error, never a request-time surprise.

use crate::http::client_ip::ClientAddr;
use crate::http::problem::Problem;
use hyper::header::{HeaderName, HeaderValue};
use hyper::http::request::Parts;
use std::sync::Arc;

/// Who the caller is, as far as the authentication policies found out.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Identity {
    /// No authentication policy has run yet.
    #[default]
    Unknown,
    /// The route allows anonymous access, and the caller used it.
    Anonymous,
    /// The caller presented a token that verified, or a consumer credential (API key, Basic).
    Token(Arc<Caller>),
}

/// A caller identified by a verified token or a consumer credential: what later policies (authorization, rate limits,
/// audit) read. Never holds the token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Who issued the token (`warden` or `issuer:NAME`), or how a consumer authenticated
    /// (`api_key`, `basic`).
    pub source: Arc<str>,
    /// `sub`.
    pub sub: Option<String>,
    /// `client_id` (RFC 9068), else `azp`.
    pub client_id: Option<String>,
    /// The gateway consumer (an app known by its API key or Basic credentials), when the
    /// caller authenticated as one.
    pub consumer: Option<Arc<str>>,
    /// The consumer's plan (`warden consumer create --plan`), for per-plan policies.
    pub plan: Option<Arc<str>>,
    /// The space-delimited `scope` (or `scp` array) split into scopes.
    pub scopes: Vec<String>,
    /// Every claim of the token, for claim conditions and object rules.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// What decided a request's outcome, for audit (issue #7 item 11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The phase or policy that decided (`path`, `route`, `anonymous`, `upstream`, …).
    pub by: &'static str,
    /// Why, in a few words; never secrets.
    pub reason: String,
}

/// Everything the gateway learned about one request so far.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The `x-request-id` (set by `http::layers`, passed upstream).
    pub request_id: String,
    /// The TCP peer and the client behind trusted proxies.
    pub client: ClientAddr,
    /// The request came over TLS.
    pub secure: bool,
    /// The request's host, lower-cased, without port.
    pub host: String,
    /// The normalised path: what was matched and what the upstream receives.
    pub path: String,
    /// The route's id, once matched.
    pub route: Option<Arc<str>>,
    /// `{name}` parameters captured by the route's path template, in pattern order.
    pub params: Vec<(Arc<str>, String)>,
    /// The caller, once an authentication policy has decided.
    pub identity: Identity,
    /// The phase or policy that decided the outcome.
    pub decision: Option<Decision>,
    /// Headers a request policy adds to the upstream's response when it passes (the rate
    /// limit's `RateLimit` / `RateLimit-Policy`).
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
}

impl RequestContext {
    /// A request's context before any phase has run: no host, path, route or caller yet.
    pub fn new(request_id: String, client: ClientAddr, secure: bool) -> Self {
        Self {
            request_id,
            client,
            secure,
            host: String::new(),
            path: String::new(),
            route: None,
            params: Vec::new(),
            identity: Identity::Unknown,
            decision: None,
            response_headers: Vec::new(),
        }
    }

    /// A captured path parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| &**n == name).map(|(_, v)| v.as_str())
    }

    /// Records who decided and why.
    pub fn decide(&mut self, by: &'static str, reason: impl Into<String>) {
        self.decision = Some(Decision { by, reason: reason.into() });
    }
}

/// A refusal: a problem document plus headers it needs (`Allow`, `WWW-Authenticate`, …).
#[derive(Debug)]
pub struct Denial {
    /// The RFC 9457 body and status.
    pub problem: Problem,
    /// Extra response headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Close the connection after answering (ambiguous framing).
    pub close: bool,
    /// Extension members of the problem document (RFC 9457 §3.2), e.g. `errors`.
    pub extensions: Vec<(&'static str, serde_json::Value)>,
}

impl Denial {
    /// A denial with no extra headers.
    pub fn new(status: u16, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self { problem: Problem { kind, title, status, detail: Some(detail.into()) }, headers: Vec::new(), close: false, extensions: Vec::new() }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Adds an extension member to the problem document.
    pub fn with_extension(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.extensions.push((name, value));
        self
    }
}

/// What a policy says about a request.
#[derive(Debug)]
pub enum Flow {
    /// Go on with the next policy (or the upstream after the last one).
    Continue,
    /// Answer now with this denial; the upstream is never reached.
    Stop(Denial),
}

/// One step of a route's request pipeline. Implementations are built from configuration
/// before serving and shared by all requests (`Arc<dyn Policy>`), so they hold compiled
/// state (keys, schemas, limiters) and must not allocate per request without need.
#[async_trait::async_trait]
pub trait Policy: Send + Sync + std::fmt::Debug {
    /// A short stable name, recorded as the deciding policy (`anonymous`, `jwt`, …).
    fn name(&self) -> &'static str;

    /// Inspects (and may amend) the request head; says Continue or Stop.
    async fn on_request(&self, ctx: &mut RequestContext, head: &mut Parts) -> Flow;

    /// The body phase: `Some(limit)` when this policy needs the request's body (read whole,
    /// at most `limit` bytes: longer is a 413) to decide; `None` (the default) lets it stream.
    /// Asked after every `on_request` said Continue.
    fn body_limit(&self, _head: &Parts) -> Option<usize> {
        None
    }

    /// Inspects the buffered body (only called when a policy of the route asked for it with
    /// [`Policy::body_limit`]); says Continue or Stop. The upstream gets these exact bytes.
    async fn on_body(&self, _ctx: &mut RequestContext, _head: &Parts, _body: &bytes::Bytes) -> Flow {
        Flow::Continue
    }
}
