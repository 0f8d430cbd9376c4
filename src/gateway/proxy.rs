//! Forwarding to an upstream: hyper-util's pooled client (over hyper-rustls for https
//! upstreams, checked against the route's `upstream_ca_file` or the system roots), the header rewriting a reverse
//! proxy owes both sides, streamed bodies, timeouts and the one retry.
//!
//! Request, in order:
//! 1. hop-by-hop headers removed (`Connection` and every header it names, `Keep-Alive`,
//!    `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`, `Expect` — answered
//!    by our own listener — and `Proxy-Authorization`, which is meant for a proxy, i.e. us,
//!    and which we do not use: it never travels further);
//! 2. method-override (`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`) and
//!    rewrite headers (`X-Original-URL`, `X-Rewrite-URL`) removed: the upstream must act on
//!    the method and path the route was matched with;
//! 3. `Forwarded`, `X-Forwarded-For`, `-Proto`, `-Host`: from a peer in `trusted_proxies`,
//!    incoming values are kept and the peer appended; from anyone else they are replaced
//!    (and `X-Real-IP` dropped);
//! 4. `Host` becomes the upstream's; the incoming one travels in `X-Forwarded-Host`;
//! 5. `x-request-id` passed on (re-set after step 1, so `Connection: x-request-id` cannot
//!    drop it).
//!
//! Response: hop-by-hop headers, `Server` and `X-Powered-By` removed; the body streams
//! through under the route's total deadline.
//!
//! Timeouts: `connect_timeout` per connection attempt; `first_byte_timeout` from sending
//! to the response head (retry included); `total_timeout` over the whole exchange, body
//! included. Before the head: 504. After it, the body is cut (the client sees a truncated
//! response, as with any proxy). A connection that cannot be made: 502 (refused) or 504
//! (timed out). Retry: once, only for GET, HEAD, OPTIONS, PUT and DELETE, only when the
//! connection could not be established (the request was not sent, so its body is still
//! ours to send again). hyper-util itself also resends, for any method, a request that a
//! pooled keep-alive connection closed before any byte of it was written.
//!
//! Our own errors (502, 504) are problem documents that never carry upstream text; the
//! upstream's own responses then go through the response phase (`response.rs`: 5xx
//! scrubbing, field filtering, security headers, CORS).

use super::Timeouts;
use super::context::{Denial, RequestContext};
use crate::http::client_ip::TrustedProxies;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::RootCertStore;
use hyper_util::rt::TokioExecutor;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// Any error a body may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The request body the gateway forwards (the caller's, boxed once).
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

/// Request headers that name a different method or path than the one matched.
const OVERRIDES: [HeaderName; 5] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
];

/// Headers that concern one connection (RFC 9110 §7.6.1), plus `Expect` (our listener
/// answered it) and the proxy credentials/challenges meant for this hop. (`HeaderName`s, not
/// strings: removing by `&str` parses the name again on every request.)
const HOP_BY_HOP: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::EXPECT,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");
const FORWARDED: HeaderName = header::FORWARDED;
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// A parsed `upstream = "http[s]://host:port[/base]"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// `host:port`.
    pub authority: String,
    /// A path prefix without trailing `/` (empty for none).
    pub base: String,
    /// `https://`: TLS to the upstream, its certificate checked against `ca_file` or, without
    /// one, the system's roots.
    pub tls: bool,
    /// PEM file with the roots that sign the upstream's certificate (`upstream_ca_file`).
    pub ca_file: Option<std::path::PathBuf>,
}

impl Upstream {
    /// Parses and checks an upstream URL: http or https, a host, an explicit or default
    /// port, no query, fragment or credentials.
    pub fn parse(text: &str) -> Result<Upstream, String> {
        let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err("must be an http:// or https:// URL".into()),
        };
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err("must not have a query, fragment or credentials".into());
        }
        let host = url.host_str().ok_or("must name a host")?;
        let port = url.port_or_known_default().unwrap_or(if tls { 443 } else { 80 });
        let base = url.path().trim_end_matches('/').to_owned();
        if base.contains(['%', ';']) {
            return Err("the path must be plain (no %-escapes or ;)".into());
        }
        let authority = format!("{host}:{port}");
        Uri::builder().scheme("http").authority(authority.as_str()).path_and_query("/").build().map_err(|_| "not a valid host")?;
        Ok(Upstream { authority, base, tls, ca_file: None })
    }

    fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}

/// The roots an https upstream's certificate is checked against: its `ca_file`, else the
/// system's (read once, `system`). Empty for plain http.
pub fn roots(upstream: &Upstream, system: &mut Option<Arc<RootCertStore>>) -> Result<Arc<RootCertStore>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    if !upstream.tls {
        return Ok(Arc::new(RootCertStore::empty()));
    }
    if let Some(file) = &upstream.ca_file {
        let mut store = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(file)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: cannot read the certificates: {e}", file.display()))?;
        let (added, _) = store.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!("{}: no usable certificate", file.display()));
        }
        return Ok(Arc::new(store));
    }
    Ok(system
        .get_or_insert_with(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "could not read some system root certificates");
            }
            let mut store = RootCertStore::empty();
            store.add_parsable_certificates(found.certs);
            Arc::new(store)
        })
        .clone())
}

/// The client for one route's upstream, with its own pool and connect timeout.
#[derive(Debug)]
pub struct UpstreamClient {
    client: PooledClient,
    upstream: Upstream,
    timeouts: Timeouts,
    version: Version,
}

/// Builds the routes' upstream clients, sharing one connection pool among the routes that
/// reach the same upstream the same way (host and port, TLS roots, protocol, connect
/// timeout), and reading the system roots at most once.
#[derive(Default)]
pub struct Clients {
    pools: std::collections::HashMap<PoolKey, PooledClient>,
    system_roots: Option<Arc<RootCertStore>>,
    /// A replaced gateway's pools, taken over by the routes that still use them.
    carried: std::collections::HashMap<PoolKey, PooledClient>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").field("pools", &self.pools.len()).finish()
    }
}

impl Clients {
    /// For a configuration reload: the pools of `previous` (open keep-alive connections
    /// included) go on serving the upstreams still reached the same way — except those with
    /// an `upstream_ca_file`, whose file is read again — and the system roots are not read
    /// again. Pools no route uses any more are dropped with the old gateway.
    pub fn reusing(previous: &Clients) -> Clients {
        let carried = previous.pools.iter().filter(|(k, _)| k.2.is_none()).map(|(k, v)| (k.clone(), v.clone())).collect();
        Clients { pools: Default::default(), system_roots: previous.system_roots.clone(), carried }
    }

    /// Ends the carrying over: what no route took is dropped.
    pub fn settle(&mut self) {
        self.carried.clear();
    }

    /// The client of a route; the error names a CA file that does not load.
    pub fn client(&mut self, upstream: &Upstream, timeouts: Timeouts, http2: bool) -> Result<UpstreamClient, String> {
        let key = (upstream.authority.clone(), upstream.tls, upstream.ca_file.clone(), http2, timeouts.connect);
        if let Some(c) = self.carried.remove(&key) {
            self.pools.insert(key.clone(), c);
        }
        let client = match self.pools.get(&key) {
            Some(c) => c.clone(),
            None => {
                let c = pooled_client(roots(upstream, &mut self.system_roots)?, timeouts.connect, http2);
                self.pools.insert(key, c.clone());
                c
            }
        };
        let version = if http2 { Version::HTTP_2 } else { Version::HTTP_11 };
        Ok(UpstreamClient { client, upstream: upstream.clone(), timeouts, version })
    }
}

/// What makes two routes' connections interchangeable: host and port, TLS, its roots, the
/// protocol and the connect timeout.
type PoolKey = (String, bool, Option<std::path::PathBuf>, bool, Duration);
/// hyper-util's pooled client over plain TCP or rustls.
type PooledClient = Client<HttpsConnector<HttpConnector>, Outgoing>;

/// A client with a keep-alive pool; `http2`: HTTP/2 (by ALPN over TLS, with prior knowledge
/// in cleartext) instead of HTTP/1.1; `roots` check an https upstream.
fn pooled_client(roots: Arc<RootCertStore>, connect: Duration, http2: bool) -> PooledClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect));
    connector.enforce_http(false);
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http();
    let connector = if http2 { builder.enable_http2().wrap_connector(connector) } else { builder.enable_http1().wrap_connector(connector) };
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .http2_only(http2)
        .build(connector)
}

impl UpstreamClient {
    /// Forwards a request whose head was already checked by the route's policies.
    pub async fn forward(
        &self,
        ctx: &RequestContext,
        mut head: hyper::http::request::Parts,
        body: RequestBody,
        trusted: &TrustedProxies,
    ) -> Result<Response<ResponseBody>, Denial> {
        let started = Instant::now();
        let total_deadline = started + self.timeouts.total;
        let head_deadline = (started + self.timeouts.first_byte).min(total_deadline);

        let original_host = head
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| head.uri.authority().map(|a| a.to_string()));
        let uri = self.upstream_uri(ctx, head.uri.query())?;
        let headers = &mut head.headers;
        // The id is normally the header's own value (set by `http::layers`): keep that value
        // (a reference count, not a copy) unless the context says otherwise.
        let request_id = headers
            .get(&X_REQUEST_ID)
            .filter(|v| v.as_bytes() == ctx.request_id.as_bytes())
            .cloned()
            .or_else(|| HeaderValue::from_str(&ctx.request_id).ok());
        strip_hop_by_hop(headers);
        if headers.keys().any(|n| is_override(n.as_str())) {
            for name in &OVERRIDES {
                headers.remove(name);
            }
        }
        headers.remove(header::HOST);
        set_forwarding(headers, ctx, trusted, original_host.as_deref());
        if let Some(id) = request_id {
            headers.insert(X_REQUEST_ID, id);
        }

        let slot = Arc::new(Mutex::new(Some(body)));
        let retryable = matches!(head.method, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE);
        // Only a request that may be retried keeps copies of its head (a POST pays nothing).
        let spare = retryable.then(|| (head.headers.clone(), uri.clone()));
        let mut attempt = self.request(head.method.clone(), uri, head.headers, &slot);
        let mut retried = false;
        let result = loop {
            match tokio::time::timeout_at(head_deadline, self.client.request(attempt)).await {
                Err(_) => break Err(timeout_denial("the upstream did not answer in time")),
                Ok(Ok(resp)) => break Ok(resp),
                Ok(Err(e)) if e.is_connect() => {
                    let body_unsent = slot.lock().map(|s| s.is_some()).unwrap_or(false);
                    match &spare {
                        Some((h, uri)) if !retried && body_unsent => {
                            tracing::debug!(route = ?ctx.route, error = %e, "upstream connection failed; retrying once");
                            retried = true;
                            attempt = self.request(head.method.clone(), uri.clone(), h.clone(), &slot);
                        }
                        _ => {
                            tracing::warn!(route = ?ctx.route, error = %e, "could not connect to the upstream");
                            break Err(if timed_out(&e) {
                                timeout_denial("the upstream did not accept a connection in time")
                            } else {
                                bad_gateway()
                            });
                        }
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(route = ?ctx.route, error = %e, "upstream request failed");
                    break Err(bad_gateway());
                }
            }
        };
        let resp = result?;
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::SERVER);
        parts.headers.remove(X_POWERED_BY);
        Ok(Response::from_parts(parts, ResponseBody { inner: body, deadline: total_deadline, timer: None }))
    }

    fn request(&self, method: Method, uri: Uri, headers: HeaderMap, slot: &Arc<Mutex<Option<RequestBody>>>) -> Request<Outgoing> {
        let (hint, end) = match slot.lock() {
            Ok(guard) => guard.as_ref().map_or((SizeHint::with_exact(0), true), |b| (b.size_hint(), b.is_end_stream())),
            Err(_) => (SizeHint::with_exact(0), true),
        };
        let mut req = Request::new(Outgoing { state: State::Waiting(slot.clone()), hint, end });
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        *req.version_mut() = self.version;
        req
    }

    fn upstream_uri(&self, ctx: &RequestContext, query: Option<&str>) -> Result<Uri, Denial> {
        let mut pq = String::with_capacity(self.upstream.base.len() + ctx.path.len() + query.map_or(0, |q| q.len() + 1));
        pq.push_str(&self.upstream.base);
        pq.push_str(&ctx.path);
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        Uri::builder()
            .scheme(self.upstream.scheme())
            .authority(self.upstream.authority.as_str())
            .path_and_query(pq)
            .build()
            .map_err(|_| bad_gateway())
    }
}

fn bad_gateway() -> Denial {
    Denial::new(502, "urn:warden:problem:bad-gateway", "Bad Gateway", "the upstream service could not be reached")
}

fn timeout_denial(detail: &str) -> Denial {
    Denial::new(504, "urn:warden:problem:gateway-timeout", "Gateway Timeout", detail)
}

/// Whether a connect error was a timeout (the connector's `connect_timeout`).
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Removes the hop-by-hop headers, including every header `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over their few names instead of ten removals.
    if !headers.keys().any(|n| is_hop_by_hop(n.as_str())) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("").split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Whether a header name is one of [`HOP_BY_HOP`].
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection" | "keep-alive" | "proxy-connection" | "te" | "trailer" | "transfer-encoding" | "upgrade" | "expect" | "proxy-authorization" | "proxy-authenticate"
    )
}

/// Whether a header name is one of [`OVERRIDES`].
fn is_override(name: &str) -> bool {
    matches!(name, "x-http-method-override" | "x-http-method" | "x-method-override" | "x-original-url" | "x-rewrite-url")
}

/// Appends the `for=` node of an address (RFC 7239 §6: IPv6 bracketed and quoted).
fn push_forwarded_node(out: &mut String, ip: std::net::IpAddr) {
    use std::fmt::Write;
    let _ = match ip {
        std::net::IpAddr::V4(v4) => write!(out, "{v4}"),
        std::net::IpAddr::V6(v6) => write!(out, "\"[{v6}]\""),
    };
}

/// A header value from a string built for it (no copy; `None` if it is not a valid value).
fn value_of(text: String) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(Bytes::from(text)).ok()
}

/// `old, new` for the values of a header (all of its lines, in order), or `new` alone.
fn appended(headers: &HeaderMap, name: &HeaderName, new: &str) -> String {
    let mut out = String::new();
    for v in headers.get_all(name).iter().filter_map(|v| v.to_str().ok()) {
        out.push_str(v);
        out.push_str(", ");
    }
    out.push_str(new);
    out
}

/// Step 3 of the module doc. Builds each value once, straight into the string the header
/// keeps (this runs for every request).
fn set_forwarding(headers: &mut HeaderMap, ctx: &RequestContext, trusted: &TrustedProxies, host: Option<&str>) {
    use std::fmt::Write;
    let peer = ctx.client.peer.ip().to_canonical();
    let keep = trusted.contains(peer);
    let proto = if ctx.secure { "https" } else { "http" };
    let quotable = host.filter(|h| !h.contains(['"', '\\']));
    let mut element = String::with_capacity(64 + quotable.map_or(0, str::len));
    element.push_str("for=");
    push_forwarded_node(&mut element, peer);
    if let Some(h) = quotable {
        element.push_str(";host=\"");
        element.push_str(h);
        element.push('"');
    }
    element.push_str(";proto=");
    element.push_str(proto);
    let mut peer_text = String::with_capacity(40);
    let _ = write!(peer_text, "{peer}");
    let (forwarded, xff) = if keep {
        (appended(headers, &FORWARDED, &element), appended(headers, &X_FORWARDED_FOR, &peer_text))
    } else {
        headers.remove(&X_FORWARDED_PROTO);
        headers.remove(&X_FORWARDED_HOST);
        headers.remove(&X_REAL_IP);
        (element, peer_text)
    };
    if let Some(v) = value_of(forwarded) {
        headers.insert(FORWARDED, v);
    }
    if let Some(v) = value_of(xff) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if let Some(h) = original_host_value(host, headers) {
        headers.insert(X_FORWARDED_HOST, h);
    }
}

/// `X-Forwarded-Host` to set: the request's host, unless a trusted proxy already set one.
fn original_host_value(host: Option<&str>, headers: &HeaderMap) -> Option<HeaderValue> {
    if headers.contains_key(&X_FORWARDED_HOST) {
        return None;
    }
    HeaderValue::from_str(host?).ok()
}

/// The request body as sent upstream: taken from a shared slot on the first poll, so when
/// a connection attempt fails before anything was sent, the body is still in the slot for
/// the retry. Size hint and end-of-stream are fixed at creation (before any poll), so hyper
/// frames the request as the caller did.
pub struct Outgoing {
    state: State,
    hint: SizeHint,
    end: bool,
}

enum State {
    Waiting(Arc<Mutex<Option<RequestBody>>>),
    Active(RequestBody),
    Done,
}

impl Body for Outgoing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let State::Waiting(slot) = &this.state {
            let taken = slot.lock().ok().and_then(|mut s| s.take());
            this.state = match taken {
                Some(body) => State::Active(body),
                None => State::Done,
            };
        }
        match &mut this.state {
            State::Active(body) => Pin::new(body).poll_frame(cx),
            _ => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Waiting(_) => self.end,
            State::Active(b) => b.is_end_stream(),
            State::Done => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Active(b) => b.size_hint(),
            _ => self.hint,
        }
    }
}

/// The upstream's response body, cut at the route's total deadline. The timer is made only
/// when the body has to wait for the upstream: a response whose body has already arrived
/// (most small ones) costs no timer at all.
#[derive(Debug)]
pub struct ResponseBody {
    inner: Incoming,
    deadline: Instant,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The total deadline passed while the response body was streaming.
#[derive(Debug, thiserror::Error)]
#[error("the upstream response exceeded the route's total timeout")]
pub struct TotalTimeout;

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::warn!("upstream response body cut at the total timeout");
                Poll::Ready(Some(Err(Box::new(TotalTimeout))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Reads the first frame of the caller's body before anything goes upstream, so a body whose
/// framing is broken from the start (a bad first chunk size) is refused while no upstream has
/// seen the request. Later framing errors cut the upstream request short (it never completes).
pub async fn prime(mut body: RequestBody) -> Result<RequestBody, Denial> {
    use http_body_util::BodyExt;
    if body.is_end_stream() {
        return Ok(body);
    }
    let hint = body.size_hint();
    match body.frame().await {
        None => Ok(http_body_util::Empty::new().map_err(|e: std::convert::Infallible| match e {}).boxed_unsync()),
        Some(Err(e)) => {
            tracing::debug!(error = %e, "malformed request body");
            let mut d = Denial::new(400, "urn:warden:problem:bad-request", "Bad Request", "the request body is malformed");
            d.close = true;
            Err(d)
        }
        Some(Ok(first)) => Ok(Primed { first: Some(first), rest: body, hint }.boxed_unsync()),
    }
}

/// A body whose first frame was read ahead.
struct Primed {
    first: Option<Frame<Bytes>>,
    rest: RequestBody,
    hint: SizeHint,
}

impl Body for Primed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(f) = self.first.take() {
            return Poll::Ready(Some(Ok(f)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.first {
            // Before the first frame is handed out, the whole body is still ahead.
            Some(_) => self.hint,
            None => self.rest.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client_ip::ClientAddr;

    fn ctx(peer: &str) -> RequestContext {
        let peer: std::net::SocketAddr = peer.parse().unwrap();
        RequestContext { host: "api.example".into(), path: "/x".into(), ..RequestContext::new("rid".into(), ClientAddr { peer, ip: peer.ip() }, false) }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn connection_named_headers_and_hop_by_hop_headers_go() {
        let mut h = headers(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("connection", "close"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic eDp5"),
            ("authorization", "Bearer t"),
        ]);
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["authorization"]);
    }

    #[test]
    fn the_fast_checks_name_exactly_the_removed_headers() {
        for name in &HOP_BY_HOP {
            assert!(is_hop_by_hop(name.as_str()), "{name}");
        }
        for name in &OVERRIDES {
            assert!(is_override(name.as_str()) && !is_hop_by_hop(name.as_str()), "{name}");
        }
        for other in ["authorization", "host", "x-request-id", "content-length", "connectionx"] {
            assert!(!is_hop_by_hop(other) && !is_override(other), "{other}");
        }
        let mut h = headers(&[("x-http-method-override", "DELETE"), ("accept", "*/*")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 2, "no hop-by-hop header: nothing removed");
    }

    #[test]
    fn forwarding_headers_are_replaced_for_strangers_and_extended_for_trusted_proxies() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let forged = [("x-forwarded-for", "6.6.6.6"), ("forwarded", "for=6.6.6.6"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "evil"), ("x-real-ip", "6.6.6.6")];
        let mut h = headers(&forged);
        set_forwarding(&mut h, &ctx("192.0.2.1:5000"), &trusted, Some("api.example:8000"));
        assert_eq!(h["x-forwarded-for"], "192.0.2.1");
        assert_eq!(h["forwarded"], "for=192.0.2.1;host=\"api.example:8000\";proto=http");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example:8000");
        assert!(h.get("x-real-ip").is_none());

        let mut h = headers(&forged);
        set_forwarding(&mut h, &ctx("10.0.0.7:5000"), &trusted, Some("api.example"));
        assert_eq!(h["x-forwarded-for"], "6.6.6.6, 10.0.0.7");
        assert_eq!(h["forwarded"], "for=6.6.6.6, for=10.0.0.7;host=\"api.example\";proto=http");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "evil");

        let mut h = HeaderMap::new();
        set_forwarding(&mut h, &ctx("[2001:db8::1]:5000"), &trusted, None);
        assert_eq!(h["forwarded"], "for=\"[2001:db8::1]\";proto=http");
        assert_eq!(h["x-forwarded-for"], "2001:db8::1");
    }

    #[test]
    fn upstream_urls_are_http_with_a_host() {
        let up = |authority: &str, base: &str, tls| Upstream { authority: authority.into(), base: base.into(), tls, ca_file: None };
        assert_eq!(Upstream::parse("http://127.0.0.1:9000").unwrap(), up("127.0.0.1:9000", "", false));
        assert_eq!(Upstream::parse("http://svc/v1/").unwrap(), up("svc:80", "/v1", false));
        assert_eq!(Upstream::parse("https://svc/v1").unwrap(), up("svc:443", "/v1", true));
        for bad in ["ftp://svc", "http://u:p@svc", "http://svc?x=1", "http://svc#f", "svc:80", "http://svc/a%2Fb"] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }
}
