//! The response phase (issue #7 item 7): what the gateway does to every answer before it
//! leaves — the upstream's responses and the gateway's own refusals alike.
//!
//! A [`ResponsePolicy`] has three hooks, each with a default that does nothing:
//! - [`ResponsePolicy::on_forward`]: last look at the request head before it goes upstream
//!   (field filtering asks for an uncompressed body);
//! - [`ResponsePolicy::on_response`]: the upstream's response, body included; an `Err`
//!   replaces it (a filtered route whose upstream answered too much: 502);
//! - [`ResponsePolicy::on_headers`]: the head of every answer — the upstream's (after
//!   `on_response`), a refusal's ([`Denial`]: 401, 403, 404, 502 …) and a CORS preflight's.
//!
//! Each route has its own list, in this order: error scrubbing, field filtering, CORS; then
//! the gateway-wide [`SecurityPolicy`] runs on every answer, routed or not:
//! - upstream headers that describe its software (`Server`, `X-Powered-By`,
//!   `X-AspNet-Version`, … [`LEAKY_HEADERS`]) are dropped;
//! - `X-Content-Type-Options: nosniff`;
//! - `Referrer-Policy` (configured) when the upstream set none;
//! - `Strict-Transport-Security` (configured) when the request came over TLS, never on plain
//!   HTTP (RFC 6797 §7.2);
//! - `Cache-Control: no-store` on every 401 and 403, and — unless the upstream set its own
//!   `Cache-Control` — on responses to requests that carried credentials (`Authorization`,
//!   `Cookie`, or an identity the authentication policy established), so a shared cache
//!   never keeps one user's data for another.
//!
//! Error scrubbing ([`ScrubErrors`], on unless a route says `scrub_errors = false`): an
//! upstream 5xx is replaced by a problem+json document with the same status and the request
//! id, and none of the upstream's headers but `Retry-After`. Whatever the upstream wrote —
//! a stack trace, an SQL error, a file path, a secret — never reaches the caller; the
//! request id ties the caller's report to the upstream's own logs.

use super::context::{Denial, Identity, RequestContext};
use super::filter::{Fields, Schema};
use super::proxy::BoxError;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use std::sync::Arc;

/// The body of every answer the gateway hands to its listener.
pub type OutBody = UnsyncBoxBody<Bytes, BoxError>;

/// Upstream response headers that name its software or version: dropped on every response.
pub const LEAKY_HEADERS: [&str; 12] = [
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-runtime",
    "x-version",
    "x-generator",
    "x-backend-server",
    "x-debug-token",
    "x-debug-token-link",
    "x-sourcefiles",
    "x-drupal-cache",
];

/// A header name as configuration writes it (lower-cased); `None` if it is not one.
pub fn header_name(text: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(text.trim().as_bytes()).ok()
}

/// Whether `text` can be sent as a header value.
pub fn is_header_value(text: &str) -> bool {
    HeaderValue::from_str(text).is_ok()
}

/// What the response phase needs to know about the request, read before the request head
/// goes upstream.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    /// The request method.
    pub method: Method,
    /// The one `Origin` header (`None`: absent, or more than one).
    pub origin: Option<HeaderValue>,
    /// The request carried `Authorization` or `Cookie`.
    pub credentials: bool,
    /// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    pub preflight: bool,
}

impl RequestFacts {
    /// Reads the facts off a request head.
    pub fn of(head: &Parts) -> RequestFacts {
        let mut origins = head.headers.get_all(header::ORIGIN).iter();
        let origin = match (origins.next(), origins.next()) {
            (Some(o), None) => Some(o.clone()),
            _ => None,
        };
        let preflight = head.method == Method::OPTIONS && origin.is_some() && head.headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        RequestFacts {
            method: head.method.clone(),
            origin,
            credentials: head.headers.contains_key(header::AUTHORIZATION) || head.headers.contains_key(header::COOKIE),
            preflight,
        }
    }
}

/// One step of the response phase (module doc). Built from configuration before serving and
/// shared by all requests.
#[async_trait::async_trait]
pub trait ResponsePolicy: Send + Sync + std::fmt::Debug {
    /// A short stable name (logs).
    fn name(&self) -> &'static str;

    /// Amends the request head just before it is forwarded.
    fn on_forward(&self, _head: &mut Parts) {}

    /// The upstream's response; an `Err` is answered instead (and goes through
    /// [`ResponsePolicy::on_headers`] like any refusal).
    async fn on_response(&self, _ctx: &RequestContext, _req: &RequestFacts, _resp: &mut Response<OutBody>) -> Result<(), Denial> {
        Ok(())
    }

    /// The head of every answer: the upstream's response, a refusal, a preflight.
    fn on_headers(&self, _ctx: &RequestContext, _req: &RequestFacts, _status: StatusCode, _headers: &mut HeaderMap) {}
}

/// `[gateway.security_headers]`: the headers every gateway answer gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityHeaders {
    /// `Strict-Transport-Security` value on TLS listeners (empty: not sent).
    pub hsts: String,
    /// `Referrer-Policy` when the upstream set none.
    pub referrer_policy: String,
    /// `Cache-Control: no-store` on responses to requests with credentials when the upstream
    /// set no `Cache-Control` (401 and 403 always get it).
    pub no_store_authenticated: bool,
}

impl Default for SecurityHeaders {
    fn default() -> Self {
        Self { hsts: "max-age=31536000; includeSubDomains".into(), referrer_policy: "no-referrer".into(), no_store_authenticated: true }
    }
}

/// A route's response and browser rules (`scrub_errors`, `response_schema`,
/// `response_fields`, `response_max_body`, `cors`, `csrf`).
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseRules {
    /// Replace upstream 5xx bodies (default on).
    pub scrub_errors: bool,
    /// A JSON Schema the route's JSON responses are trimmed to.
    pub schema: Option<serde_json::Value>,
    /// Fields (JSON pointers or dotted paths) the route's JSON responses are trimmed to.
    pub fields: Vec<String>,
    /// Largest response body buffered for filtering, bytes (larger: 502).
    pub max_body: usize,
    /// Cross-origin resource sharing; `None`: the gateway answers no preflight and sends no
    /// CORS headers.
    pub cors: Option<super::cors::Cors>,
    /// Cross-site request forgery check on state-changing requests.
    pub csrf: super::cors::Csrf,
}

impl Default for ResponseRules {
    fn default() -> Self {
        Self { scrub_errors: true, schema: None, fields: Vec::new(), max_body: 1 << 20, cors: None, csrf: super::cors::Csrf::Off }
    }
}

impl ResponseRules {
    /// The route's response policies, in order (module doc); the error concerns
    /// `response_schema` or `response_fields`.
    pub fn policies(&self) -> Result<Vec<Arc<dyn ResponsePolicy>>, (&'static str, String)> {
        let mut out: Vec<Arc<dyn ResponsePolicy>> = Vec::new();
        if self.scrub_errors {
            out.push(Arc::new(ScrubErrors));
        }
        let schema = self.schema.clone().map(Schema::new).transpose().map_err(|e| ("response_schema", e))?;
        let fields = (!self.fields.is_empty()).then(|| Fields::new(&self.fields)).transpose().map_err(|e| ("response_fields", e))?;
        if schema.is_some() || fields.is_some() {
            out.push(Arc::new(FilterFields { schema, fields, max_body: self.max_body }));
        }
        if let Some(cors) = &self.cors {
            out.push(Arc::new(cors.clone()));
        }
        Ok(out)
    }
}

/// A response extension marking an answer the gateway wrote itself (a preflight), which
/// skips `on_response`.
#[derive(Clone, Copy, Debug)]
pub struct GatewayAnswer;

/// Runs the response phase on an answer: `on_response` of the route's policies on an
/// upstream response, then `on_headers` of the route's and the gateway's policies.
pub async fn respond(
    ctx: &RequestContext,
    req: &RequestFacts,
    route: &[Arc<dyn ResponsePolicy>],
    gateway: &SecurityPolicy,
    result: Result<Response<OutBody>, Denial>,
) -> Result<Response<OutBody>, Denial> {
    let mut result = result;
    if let Ok(resp) = &mut result
        && resp.extensions().get::<GatewayAnswer>().is_none()
    {
        for p in route {
            if let Err(denial) = p.on_response(ctx, req, resp).await {
                tracing::warn!(request_id = %ctx.request_id, route = ctx.route.as_deref().unwrap_or("-"), policy = p.name(), status = denial.problem.status, "upstream response refused");
                result = Err(denial);
                break;
            }
        }
    }
    let heads = route.iter().map(|p| &**p as &dyn ResponsePolicy).chain(std::iter::once(gateway as &dyn ResponsePolicy));
    match result {
        Ok(mut resp) => {
            let status = resp.status();
            for p in heads {
                p.on_headers(ctx, req, status, resp.headers_mut());
            }
            Ok(resp)
        }
        Err(mut denial) => {
            let status = StatusCode::from_u16(denial.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut map = HeaderMap::new();
            for (name, value) in denial.headers.drain(..) {
                map.append(name, value);
            }
            for p in heads {
                p.on_headers(ctx, req, status, &mut map);
            }
            let mut last: Option<HeaderName> = None;
            for (name, value) in map {
                if let Some(n) = name {
                    last = Some(n);
                }
                if let Some(n) = &last {
                    denial.headers.push((n.clone(), value));
                }
            }
            Err(denial)
        }
    }
}

/// The gateway-wide security headers (module doc).
#[derive(Debug)]
pub struct SecurityPolicy {
    hsts: Option<HeaderValue>,
    referrer_policy: Option<HeaderValue>,
    no_store_authenticated: bool,
}

impl SecurityPolicy {
    /// Compiles the settings; the error names the key whose value is not a header value.
    pub fn new(cfg: &SecurityHeaders) -> Result<SecurityPolicy, (&'static str, String)> {
        let value = |key: &'static str, v: &str| {
            (!v.is_empty()).then(|| HeaderValue::from_str(v).map_err(|_| (key, format!("\"{v}\" is not a valid header value")))).transpose()
        };
        Ok(SecurityPolicy {
            hsts: value("hsts", &cfg.hsts)?,
            referrer_policy: value("referrer_policy", &cfg.referrer_policy)?,
            no_store_authenticated: cfg.no_store_authenticated,
        })
    }
}

impl ResponsePolicy for SecurityPolicy {
    fn name(&self) -> &'static str {
        "security_headers"
    }

    fn on_headers(&self, ctx: &RequestContext, req: &RequestFacts, status: StatusCode, headers: &mut HeaderMap) {
        for name in LEAKY_HEADERS {
            headers.remove(name);
        }
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if let Some(v) = &self.referrer_policy
            && !headers.contains_key(header::REFERRER_POLICY)
        {
            headers.insert(header::REFERRER_POLICY, v.clone());
        }
        if !ctx.secure {
            // RFC 6797 §7.2: not over plain HTTP, not even the upstream's own.
            headers.remove(header::STRICT_TRANSPORT_SECURITY);
        } else if let Some(v) = &self.hsts {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, v.clone());
        }
        let auth_error = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
        let credentialed = self.no_store_authenticated
            && (req.credentials || matches!(ctx.identity, Identity::Token(_)))
            && !headers.contains_key(header::CACHE_CONTROL);
        if auth_error || credentialed {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
}

/// Upstream 5xx bodies replaced (module doc).
#[derive(Debug)]
pub struct ScrubErrors;

/// A problem document for an upstream failure, carrying the request id.
pub fn upstream_error(status: StatusCode, request_id: &str) -> Response<OutBody> {
    let body = serde_json::json!({
        "type": "urn:warden:problem:upstream-error",
        "title": status.canonical_reason().unwrap_or("Upstream Error"),
        "status": status.as_u16(),
        "detail": "the upstream service failed to handle the request; quote the request id when reporting it",
        "request_id": request_id,
    });
    let bytes = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    let mut resp = Response::new(full(bytes.clone()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    resp
}

fn full(bytes: Bytes) -> OutBody {
    Full::new(bytes).map_err(|e: std::convert::Infallible| match e {}).boxed_unsync()
}

#[async_trait::async_trait]
impl ResponsePolicy for ScrubErrors {
    fn name(&self) -> &'static str {
        "scrub_errors"
    }

    async fn on_response(&self, ctx: &RequestContext, _req: &RequestFacts, resp: &mut Response<OutBody>) -> Result<(), Denial> {
        if !resp.status().is_server_error() {
            return Ok(());
        }
        tracing::info!(request_id = %ctx.request_id, route = ctx.route.as_deref().unwrap_or("-"), status = resp.status().as_u16(), "upstream error body replaced");
        let mut clean = upstream_error(resp.status(), &ctx.request_id);
        if let Some(retry) = resp.headers().get(header::RETRY_AFTER)
            && retry.as_bytes().iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b',' | b':'))
        {
            clean.headers_mut().insert(header::RETRY_AFTER, retry.clone());
        }
        // The upstream's body is dropped unread: its connection is not reused.
        *resp = clean;
        Ok(())
    }
}

/// Field filtering of JSON responses (`filter.rs`), buffered up to `max_body`.
///
/// - only successful (2xx) responses with a body are filtered (5xx are scrubbed; 3xx and
///   4xx pass: they describe the request, not the resource);
/// - secure by default, a filtered route passes nothing it cannot filter: a body that is not
///   JSON (`application/json` or `+json`), is compressed, is larger than `max_body`, or does
///   not parse is answered with 502, never passed through;
/// - the upstream is asked for an uncompressed body (`Accept-Encoding: identity`);
/// - the filtered body gets its own `Content-Length`; validators of the old body (`ETag`,
///   digests) are dropped.
#[derive(Debug)]
pub struct FilterFields {
    schema: Option<Schema>,
    fields: Option<Fields>,
    max_body: usize,
}

fn refuse(detail: &'static str) -> Denial {
    Denial::new(502, "urn:warden:problem:bad-gateway", "Bad Gateway", detail)
}

#[async_trait::async_trait]
impl ResponsePolicy for FilterFields {
    fn name(&self) -> &'static str {
        "response_filter"
    }

    fn on_forward(&self, head: &mut Parts) {
        head.headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }

    async fn on_response(&self, _ctx: &RequestContext, req: &RequestFacts, resp: &mut Response<OutBody>) -> Result<(), Denial> {
        let status = resp.status();
        if !status.is_success() || status == StatusCode::NO_CONTENT || status == StatusCode::RESET_CONTENT || req.method == Method::HEAD {
            return Ok(());
        }
        let h = resp.headers();
        let length = h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if length == Some(0) {
            return Ok(());
        }
        let json = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
            let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
        });
        if !json {
            return Err(refuse("the upstream's response is not JSON, and this route passes only filtered JSON"));
        }
        if h.get(header::CONTENT_ENCODING).is_some_and(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity")) {
            return Err(refuse("the upstream's response is compressed and cannot be filtered"));
        }
        if length.is_some_and(|n| n > self.max_body as u64) {
            return Err(refuse("the upstream's response is larger than this route allows"));
        }
        let mut body = std::mem::replace(resp.body_mut(), full(Bytes::new()));
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| refuse("the upstream's response could not be read"))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > self.max_body {
                    return Err(refuse("the upstream's response is larger than this route allows"));
                }
                buf.extend_from_slice(&data);
            }
        }
        let bytes = buf.freeze();
        let mut value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| refuse("the upstream's response is not valid JSON"))?;
        if let Some(s) = &self.schema {
            s.filter(&mut value);
        }
        if let Some(f) = &self.fields {
            f.filter(&mut value);
        }
        let out = Bytes::from(serde_json::to_vec(&value).map_err(|_| refuse("the upstream's response could not be filtered"))?);
        let h = resp.headers_mut();
        for name in ["etag", "content-md5", "digest", "content-digest", "repr-digest"] {
            h.remove(name);
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
        *resp.body_mut() = full(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client_ip::ClientAddr;

    fn ctx(secure: bool) -> RequestContext {
        let peer: std::net::SocketAddr = "192.0.2.1:5000".parse().unwrap();
        RequestContext { host: "api.example".into(), path: "/x".into(), ..RequestContext::new("rid-1".into(), ClientAddr { peer, ip: peer.ip() }, secure) }
    }

    fn run(p: &SecurityPolicy, secure: bool, credentials: bool, status: u16, upstream: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in upstream {
            h.append(*k, HeaderValue::from_static(v));
        }
        let req = RequestFacts { credentials, ..Default::default() };
        p.on_headers(&ctx(secure), &req, StatusCode::from_u16(status).unwrap(), &mut h);
        h
    }

    #[test]
    fn security_headers_by_status_transport_and_credentials() {
        let p = SecurityPolicy::new(&SecurityHeaders::default()).unwrap();
        let h = run(&p, false, false, 200, &[("server", "nginx/1.2"), ("x-aspnet-version", "4"), ("strict-transport-security", "max-age=1"), ("x-content-type-options", "off")]);
        assert!(!h.contains_key("server") && !h.contains_key("x-aspnet-version"));
        assert!(!h.contains_key("strict-transport-security"), "never over plain HTTP");
        assert_eq!(h["x-content-type-options"], "nosniff", "the upstream cannot turn it off");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(!h.contains_key("cache-control"));

        let h = run(&p, true, false, 200, &[("referrer-policy", "same-origin")]);
        assert_eq!(h["strict-transport-security"], "max-age=31536000; includeSubDomains");
        assert_eq!(h["referrer-policy"], "same-origin", "the upstream's own policy is kept");

        for status in [401, 403] {
            let h = run(&p, false, false, status, &[("cache-control", "public, max-age=600")]);
            assert_eq!(h["cache-control"], "no-store", "{status}: always");
        }
        assert_eq!(run(&p, false, true, 200, &[])["cache-control"], "no-store");
        assert_eq!(run(&p, false, true, 200, &[("cache-control", "private, max-age=5")])["cache-control"], "private, max-age=5");

        let off = SecurityPolicy::new(&SecurityHeaders { hsts: String::new(), no_store_authenticated: false, ..Default::default() }).unwrap();
        assert!(!run(&off, true, true, 200, &[]).contains_key("strict-transport-security"));
        assert!(!run(&off, true, true, 200, &[]).contains_key("cache-control"));
        assert!(SecurityPolicy::new(&SecurityHeaders { hsts: "max-age=1\n".into(), ..Default::default() }).is_err());
    }

    #[tokio::test]
    async fn refusals_get_the_headers_too_and_keep_their_own() {
        let p = SecurityPolicy::new(&SecurityHeaders::default()).unwrap();
        let denial = Denial::new(401, "urn:warden:problem:unauthorized", "Unauthorized", "no token")
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("DPoP algs=\"ES256\""));
        let d = respond(&ctx(true), &RequestFacts::default(), &[], &p, Err(denial)).await.unwrap_err();
        let get = |n: &str| d.headers.iter().filter(|(k, _)| k == n).map(|(_, v)| v.to_str().unwrap()).collect::<Vec<_>>();
        assert_eq!(get("www-authenticate"), ["Bearer", "DPoP algs=\"ES256\""], "every challenge kept, in order");
        assert_eq!(get("cache-control"), ["no-store"]);
        assert_eq!(get("strict-transport-security").len(), 1);
        assert_eq!(get("x-content-type-options"), ["nosniff"]);
    }

    #[tokio::test]
    async fn a_5xx_is_scrubbed_and_other_statuses_pass() {
        let upstream = |status: u16| {
            let mut r = Response::new(full(Bytes::from_static(b"at /srv/app.py line 3")));
            *r.status_mut() = StatusCode::from_u16(status).unwrap();
            r.headers_mut().insert("set-cookie", HeaderValue::from_static("debug=1"));
            r
        };
        let mut r = upstream(502);
        ScrubErrors.on_response(&ctx(false), &RequestFacts::default(), &mut r).await.unwrap();
        assert_eq!(r.status(), 502);
        assert!(!r.headers().contains_key("set-cookie"));
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["request_id"], "rid-1");
        assert!(!String::from_utf8_lossy(&body).contains("/srv"));
        let mut r = upstream(404);
        ScrubErrors.on_response(&ctx(false), &RequestFacts::default(), &mut r).await.unwrap();
        assert_eq!(r.into_body().collect().await.unwrap().to_bytes(), "at /srv/app.py line 3");
    }
}
