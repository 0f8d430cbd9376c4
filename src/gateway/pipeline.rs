//! [`Gateway`]: the phases of one request, in order (`context.rs` describes them).

use super::authn::{Authenticate, Verifiers, WardenTokens};
use super::audit::{self, GatewayStats};
use super::authz::Authorize;
use super::consumers::{ConsumerAuth, ConsumerAuthenticate, ConsumerIndex};
use super::context::{Denial, Flow, Policy, RequestContext};
use super::metadata::Resources;
use super::path;
use super::proxy::{self, RequestBody, UpstreamClient};
use super::response::{self, OutBody, RequestFacts, ResponsePolicy, SecurityPolicy};
use super::route::{Matched, RouteError, RouteTable, host_without_port};
use super::{Auth, Config};
use crate::http::client_ip::{ClientAddr, TrustedProxies};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response};
use std::sync::Arc;

/// What a route runs besides matching: its policies, in order, and its upstream client.
#[derive(Debug)]
struct RouteRuntime {
    policies: Vec<Arc<dyn Policy>>,
    client: UpstreamClient,
    /// The response phase of the route (`response.rs`), in order.
    responders: Vec<Arc<dyn ResponsePolicy>>,
    /// Its CORS settings: preflights are answered here.
    cors: Option<super::cors::Cors>,
}

/// The compiled gateway: routes, their policies and upstream clients.
#[derive(Debug)]
pub struct Gateway {
    routes: RouteTable,
    /// Indexed like `[[gateway.routes]]`.
    runtimes: Vec<RouteRuntime>,
    trusted: Arc<TrustedProxies>,
    verifiers: Arc<Verifiers>,
    /// Outcome counters (`audit.rs`), carried over by a reload.
    stats: Arc<GatewayStats>,
    /// `gateway.access_log`: forwarded requests logged at info, not debug.
    access_log: bool,
    /// RFC 9728 metadata of the routes that accept tokens.
    resources: Resources,
    /// The upstream connection pools, handed on to the gateway that replaces this one.
    clients: proxy::Clients,
    /// API keys and Basic (`consumers.rs`); `None`: routes naming them are refused.
    consumers: Option<Arc<ConsumerAuth>>,
    /// How often the consumer index is refreshed (`revocation_poll_interval`).
    poll_interval: std::time::Duration,
    /// The rate-limit buckets of every route, carried over by a reload.
    rate_limits: Arc<dyn super::rate_limit::store::RateLimitStore>,
    /// `gateway.rate_limit_max_keys` the buckets were made for.
    rate_limit_max_keys: usize,
    /// App attestations seen, for every route (`attestation.rs`), carried over by a reload.
    attestations_seen: super::attestation::ReplayMemory,
    /// Gateway-wide response headers, on every answer.
    security: SecurityPolicy,
    /// Route id → index in `runtimes`, for the response phase.
    by_id: std::collections::HashMap<Arc<str>, usize>,
}

impl Gateway {
    /// Compiles the routes (the same checks as `warden config check`) and builds each
    /// route's policies (authentication, then authorization when it has rules) and upstream
    /// client. `warden`: how to accept this deployment's own tokens (`None`: routes that
    /// name `"warden"` are refused). Errors on issuers carry the index `usize::MAX`.
    pub fn new(cfg: &Config, trusted: Arc<TrustedProxies>, warden: Option<WardenTokens>) -> Result<Gateway, Vec<RouteError>> {
        Self::with_consumers(cfg, trusted, warden, None)
    }

    /// [`Gateway::new`] with the consumer index that routes with `auth = ["api_key"]` or
    /// `["basic"]` need (`app.rs` builds it from the store and the master key).
    pub fn with_consumers(
        cfg: &Config,
        trusted: Arc<TrustedProxies>,
        warden: Option<WardenTokens>,
        consumers: Option<Arc<ConsumerIndex>>,
    ) -> Result<Gateway, Vec<RouteError>> {
        Self::build(cfg, trusted, warden, consumers, None)
    }

    /// [`new`](Self::new) for a configuration reload: the new gateway takes over this one's
    /// DPoP and attestation replay memories, the outcome counters, the rate-limit buckets, the consumer index with its Basic cache and
    /// throttle, the key sets of unchanged issuers (`Verifiers::reusing`) and the connection
    /// pools of upstreams still reached the same way (`Clients::reusing`).
    pub fn rebuild(&self, cfg: &Config, trusted: Arc<TrustedProxies>, warden: Option<WardenTokens>) -> Result<Gateway, Vec<RouteError>> {
        Self::build(cfg, trusted, warden, None, Some(self))
    }

    fn build(
        cfg: &Config,
        trusted: Arc<TrustedProxies>,
        warden: Option<WardenTokens>,
        consumers: Option<Arc<ConsumerIndex>>,
        previous: Option<&Gateway>,
    ) -> Result<Gateway, Vec<RouteError>> {
        // A reload keeps the consumer index, and its Basic cache and throttle while the header stays.
        let kept = previous.and_then(|p| p.consumers.clone());
        let index = kept.as_ref().map(|c| c.index().clone()).or(consumers);
        let consumers = match (kept, index) {
            (Some(c), _) if c.header_is(&cfg.api_key_header) => Some(c),
            (_, Some(i)) => Some(Arc::new(
                ConsumerAuth::new(i, &cfg.api_key_header).map_err(|message| vec![RouteError { index: usize::MAX, key: "api_key_header", message }])?,
            )),
            (_, None) => None,
        };
        let routes = RouteTable::build(&cfg.routes)?;
        let resources = Resources::build(cfg, warden.as_ref().map(|w| w.issuer.as_str()));
        let verifiers = Verifiers::new(warden, &cfg.issuers, cfg)
            .map_err(|(i, message)| vec![RouteError { index: usize::MAX, key: "jwks_url", message: format!("issuers[{i}]: {message}") }])?
            .behind(trusted.clone(), cfg.public_url.clone());
        let verifiers = Arc::new(match previous {
            Some(p) => verifiers.reusing(&p.verifiers),
            None => verifiers,
        });
        let mut clients = previous.map_or_else(proxy::Clients::default, |p| proxy::Clients::reusing(&p.clients));
        // A reload keeps the attestations seen: a captured one stays single-use.
        let attestations_seen = previous.map_or_else(|| super::attestation::replay_memory(cfg.replay_memory), |p| p.attestations_seen.clone());
        // A reload keeps the rate-limit buckets while their bound stays.
        let rate_limits = match previous {
            Some(p) if p.rate_limit_max_keys == cfg.rate_limit_max_keys => p.rate_limits.clone(),
            _ => Arc::new(super::rate_limit::MemoryStore::new(cfg.rate_limit_max_keys)) as Arc<dyn super::rate_limit::store::RateLimitStore>,
        };
        let mut runtimes = Vec::with_capacity(cfg.routes.len());
        let mut errors = Vec::new();
        for (index, r) in cfg.routes.iter().enumerate() {
            let auth = match Authenticate::new(verifiers.clone(), &r.auth, r.audience.as_deref()) {
                Ok(a) => a,
                Err(message) => {
                    errors.push(RouteError { index, key: "auth", message });
                    continue;
                }
            };
            // Network rules first: a refused address meets nothing else (ARCHITECTURE.md).
            let mut policies: Vec<Arc<dyn Policy>> = Vec::new();
            if let Some(ip) = super::ip_rules::IpPolicy::new(&cfg.ip_rules, &r.ip_rules) {
                policies.push(Arc::new(ip));
            }
            // A forged cross-site request is refused before it can authenticate.
            if r.response.csrf == super::cors::Csrf::Origin {
                policies.push(Arc::new(super::cors::CsrfPolicy::new(r.response.cors.as_ref())));
            }
            let (api_key, basic) = (r.auth.contains(&Auth::ApiKey), r.auth.contains(&Auth::Basic));
            if api_key || basic {
                let Some(shared) = &consumers else {
                    errors.push(RouteError { index, key: "auth", message: "\"api_key\" and \"basic\" need the store's consumer list, not available here".into() });
                    continue;
                };
                // The route's other kinds answer requests without a consumer credential.
                let others = r.auth.iter().any(|a| !matches!(a, Auth::ApiKey | Auth::Basic));
                let inner = others.then(|| Arc::new(auth) as Arc<dyn Policy>);
                policies.push(Arc::new(ConsumerAuthenticate::new(shared.clone(), api_key, basic, inner)));
            } else {
                policies.push(Arc::new(auth));
            }
            // App attestation binds to the caller authentication found.
            if let Some(a) = &r.attestation {
                match super::attestation::Attest::new(a) {
                    Ok(a) => policies.push(Arc::new(a.sharing(attestations_seen.clone()))),
                    Err(message) => {
                        errors.push(RouteError { index, key: "attestation", message });
                        continue;
                    }
                }
            }
            if !r.rules.is_empty() {
                let tokens = r.auth.iter().any(|a| matches!(a, Auth::Warden | Auth::Issuer(_)));
                policies.push(Arc::new(Authorize::new(r.rules.clone(), tokens)));
            }
            // Rate limits count callers, so they run once the caller is known.
            if let Some(limits) = super::rate_limit::RateLimit::new(&r.id, &r.rate_limits, rate_limits.clone()) {
                policies.push(Arc::new(limits));
            }
            // Validation last: only a caller allowed in has its request read.
            if let Some(v) = &r.validation {
                match super::validate::Validate::new(v) {
                    Ok(v) => policies.push(Arc::new(v)),
                    Err((key, message)) => {
                        errors.push(RouteError { index, key: "validate", message: format!("{key}: {message}") });
                        continue;
                    }
                }
            }
            let responders = match r.response.policies() {
                Ok(p) => p,
                Err((key, message)) => {
                    errors.push(RouteError { index, key, message });
                    continue;
                }
            };
            let cors = r.response.cors.clone();
            match clients.client(&r.upstream, r.timeouts, r.http2) {
                Ok(client) => runtimes.push(RouteRuntime { policies, client, responders, cors }),
                Err(message) => errors.push(RouteError { index, key: "upstream_ca_file", message }),
            }
        }
        let security = SecurityPolicy::new(&cfg.security_headers)
            .map_err(|(key, message)| errors.push(RouteError { index: usize::MAX, key, message: format!("security_headers: {message}") }))
            .ok();
        let (Some(security), true) = (security, errors.is_empty()) else {
            return Err(errors);
        };
        clients.settle();
        let by_id = cfg.routes.iter().enumerate().map(|(i, r)| (Arc::from(r.id.as_str()), i)).collect();
        Ok(Gateway {
            routes,
            runtimes,
            trusted,
            verifiers,
            stats: previous.map_or_else(Arc::default, |p| p.stats.clone()),
            access_log: cfg.access_log,
            resources,
            clients,
            consumers,
            poll_interval: cfg.revocation_poll_interval,
            rate_limits,
            rate_limit_max_keys: cfg.rate_limit_max_keys,
            attestations_seen,
            security,
            by_id,
        })
    }

    /// Before serving: loads the revocation list and fetches the issuers' JWK Sets once.
    pub async fn prepare(&self, store: Option<&crate::store::Store>) {
        self.verifiers.prepare(store).await;
        if let (Some(c), Some(store)) = (&self.consumers, store)
            && let Err(e) = c.index().poll(store).await
        {
            tracing::warn!(error = %e, "consumer index: first load failed; API keys and Basic get 503 until it loads");
        }
    }

    /// Starts the background loops (revocation polling, JWKS refresh) until `shutdown`.
    pub fn spawn_background(&self, store: Option<crate::store::Store>, shutdown: tokio_util::sync::CancellationToken) -> tokio::task::JoinSet<()> {
        let mut tasks = self.verifiers.spawn(store.clone(), shutdown.clone());
        if let (Some(c), Some(store)) = (&self.consumers, store) {
            let (index, every) = (c.index().clone(), self.poll_interval);
            tasks.spawn(async move { index.follow(&store, every, shutdown).await });
        }
        tasks
    }

    /// The outcome counters: route × deciding policy × status family.
    pub fn stats(&self) -> &GatewayStats {
        &self.stats
    }

    /// RFC 9728 protected-resource metadata, answered before route matching and without
    /// authentication (`metadata.rs`); `None`: not a metadata request for a resource here.
    pub fn protected_resource_metadata<B>(&self, req: &Request<B>) -> Option<Result<Response<bytes::Bytes>, Denial>> {
        if !req.uri().path().starts_with(super::metadata::WELL_KNOWN) {
            return None;
        }
        let path = path::normalise(req.uri().path()).ok()?;
        self.resources.answer(req, &path)
    }

    /// One request through every phase. A denial never reached the upstream (except the
    /// upstream's own failures: 502, 504).
    pub async fn handle(&self, req: Request<RequestBody>) -> Result<Response<OutBody>, Denial> {
        let started = std::time::Instant::now();
        let (head, body) = req.into_parts();
        let facts = RequestFacts::of(&head);
        let client = head.extensions.get::<ClientAddr>().copied().unwrap_or(ClientAddr {
            peer: ([0, 0, 0, 0], 0).into(),
            ip: [0, 0, 0, 0].into(),
        });
        let request_id = head.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let mut ctx = RequestContext::new(request_id, client, head.extensions.get::<crate::http::serve::Secure>().is_some());
        let (method, uri) = (head.method.clone(), head.uri.clone());
        let result = self.phases(&mut ctx, head, body).await;
        // The response phase, on the upstream's answer and on our own refusals alike.
        let responders = ctx.route.as_ref().and_then(|id| self.by_id.get(id)).map_or(&[][..], |&i| &self.runtimes[i].responders[..]);
        let result = response::respond(&ctx, &facts, responders, &self.security, result).await;
        let status = match &result {
            Ok(resp) => resp.status().as_u16(),
            Err(denial) => {
                if ctx.decision.is_none() {
                    ctx.decide(audit::UPSTREAM, audit::reason(denial));
                }
                denial.problem.status
            }
        };
        audit::record(&self.stats, &mut ctx, method.as_str(), uri.path(), status, started.elapsed(), self.access_log);
        result
    }

    async fn phases(
        &self,
        ctx: &mut RequestContext,
        mut head: hyper::http::request::Parts,
        body: RequestBody,
    ) -> Result<Response<OutBody>, Denial> {
        ctx.host = request_host(&head).inspect_err(|_| ctx.decide("host", "missing or ambiguous host"))?;
        ctx.path = path::normalise(head.uri.path()).map_err(|e| {
            ctx.decide("path", e.to_string());
            Denial::new(400, "urn:warden:problem:bad-path", "Bad Request", e.to_string())
        })?;
        if let Some(answer) = self.preflight(ctx, &mut head).await {
            return answer;
        }
        let route = match self.routes.find(&ctx.host, &ctx.path, &head.method) {
            Matched::Route(route, params) => {
                ctx.params = params;
                ctx.route = Some(route.config.id.as_str().into());
                route
            }
            Matched::NotFound => {
                ctx.decide("route", "no route");
                return Err(Denial::new(404, "urn:warden:problem:not-found", "Not Found", "no route for this request"));
            }
            Matched::MethodNotAllowed { allow } => {
                ctx.decide("route", "method not allowed");
                let value = HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static(""));
                return Err(Denial::new(405, "urn:warden:problem:method-not-allowed", "Method Not Allowed", "the route does not allow this method")
                    .with_header(header::ALLOW, value));
            }
        };
        let runtime = &self.runtimes[route.index()];
        for policy in &runtime.policies {
            if let Flow::Stop(mut denial) = policy.on_request(ctx, &mut head).await {
                if ctx.decision.is_none() {
                    ctx.decide(policy.name(), audit::reason(&denial));
                }
                let probe = Request::from_parts(head, ());
                self.resources.annotate(route.index(), &probe, &mut denial);
                return Err(denial);
            }
        }
        // The body phase: read whole only when a policy needs it (the smallest limit wins).
        let body = match runtime.policies.iter().filter_map(|p| p.body_limit(&head)).min() {
            None => proxy::prime(body).await.inspect_err(|_| ctx.decide("body", "malformed request body"))?,
            Some(limit) => {
                let bytes = super::body::read(body, limit).await.inspect_err(|d| ctx.decide("body", d.problem.title))?;
                for policy in &runtime.policies {
                    if let Flow::Stop(denial) = policy.on_body(ctx, &head, &bytes).await {
                        if ctx.decision.is_none() {
                            ctx.decide(policy.name(), audit::reason(&denial));
                        }
                        return Err(denial);
                    }
                }
                super::body::full(bytes)
            }
        };
        for r in &runtime.responders {
            r.on_forward(&mut head);
        }
        let mut resp = runtime.client.forward(ctx, head, body, &self.trusted).await?;
        for (name, value) in ctx.response_headers.drain(..) {
            resp.headers_mut().append(name, value);
        }
        Ok(resp.map(http_body_util::BodyExt::boxed_unsync))
    }

    /// A CORS preflight for a route with `cors` (`cors.rs`): answered here, before
    /// authentication and whatever methods the route lists — after the IP rules, which no
    /// request escapes. `None`: not a preflight, or for a route without `cors` (which then
    /// handles `OPTIONS` like any method).
    async fn preflight(&self, ctx: &mut RequestContext, head: &mut hyper::http::request::Parts) -> Option<Result<Response<OutBody>, Denial>> {
        if head.method != hyper::Method::OPTIONS {
            return None;
        }
        let facts = RequestFacts::of(head);
        if !facts.preflight {
            return None;
        }
        let requested = head.headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
        let method = hyper::Method::from_bytes(requested.as_bytes()).ok()?;
        // The route that would serve the requested method; failing that, a CORS route on the
        // same path (its rules then refuse the method: 403, not 405).
        use hyper::Method as M;
        let (route, params) = [method, M::GET, M::POST, M::PUT, M::PATCH, M::DELETE].iter().find_map(|m| match self.routes.find(&ctx.host, &ctx.path, m) {
            Matched::Route(r, p) if self.runtimes[r.index()].cors.is_some() => Some((r, p)),
            _ => None,
        })?;
        let runtime = &self.runtimes[route.index()];
        let cors = runtime.cors.as_ref()?;
        ctx.params = params;
        ctx.route = Some(route.config.id.as_str().into());
        for policy in runtime.policies.iter().filter(|p| p.name() == "ip_rules") {
            if let Flow::Stop(denial) = policy.on_request(ctx, head).await {
                return Some(Err(denial));
            }
        }
        Some(cors.preflight(head, &facts).inspect_err(|_| ctx.decide("cors", "preflight refused")).map(|mut resp| {
            resp.extensions_mut().insert(response::GatewayAnswer);
            resp
        }))
    }
}

/// The host the request names: `Host`, or the authority of an absolute-form / HTTP/2
/// target. Both present and different is ambiguous: refused.
fn request_host(head: &hyper::http::request::Parts) -> Result<String, Denial> {
    let from_header = head.headers.get(header::HOST).map(|h| h.to_str().map(host_without_port));
    let from_uri = head.uri.authority().map(|a| host_without_port(a.as_str()));
    let bad = || {
        let mut d = Denial::new(400, "urn:warden:problem:bad-request", "Bad Request", "the request's host is ambiguous");
        d.close = true;
        d
    };
    match (from_header, from_uri) {
        (Some(Err(_)), _) => Err(bad()),
        (Some(Ok(h)), Some(u)) if h != u => Err(bad()),
        (Some(Ok(h)), _) => Ok(h),
        (None, Some(u)) => Ok(u),
        (None, None) => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{RouteConfig, Upstream};
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its calls and answers Continue or Stop.
    #[derive(Debug)]
    struct Probe {
        calls: AtomicUsize,
        stop: bool,
    }

    #[async_trait::async_trait]
    impl Policy for Probe {
        fn name(&self) -> &'static str {
            "probe"
        }

        async fn on_request(&self, ctx: &mut RequestContext, _head: &mut hyper::http::request::Parts) -> Flow {
            self.calls.fetch_add(1, Ordering::SeqCst);
            assert_eq!(ctx.param("vin"), Some("1HGCM"), "captured parameters reach the policies");
            assert_eq!(ctx.identity, crate::gateway::context::Identity::Anonymous, "the route's authentication ran first");
            if self.stop { Flow::Stop(Denial::new(403, "urn:warden:problem:forbidden", "Forbidden", "probe says no")) } else { Flow::Continue }
        }
    }

    fn gateway(upstream: &str) -> Gateway {
        gateway_for(upstream, "GET")
    }

    fn gateway_for(upstream: &str, method: &str) -> Gateway {
        let cfg = Config {
            routes: vec![RouteConfig::new("cars", "/cars/{vin}", &[method], Upstream::parse(upstream).unwrap())],
            ..Config::default()
        };
        Gateway::new(&cfg, Arc::default(), None).unwrap()
    }

    fn get(path: &str) -> Request<RequestBody> {
        let body = http_body_util::Empty::new().map_err(|e: std::convert::Infallible| match e {}).boxed_unsync();
        Request::get(path).header("host", "h").body(body).unwrap()
    }

    /// Policies run in order; the first Stop answers, and neither later policies nor the
    /// upstream (here a closed port, which would give 502) are reached.
    #[tokio::test]
    async fn the_first_policy_that_says_stop_decides_and_nothing_after_it_runs() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut g = gateway(&format!("http://{closed}"));
        let (pass, stop, never) = (
            Arc::new(Probe { calls: AtomicUsize::new(0), stop: false }),
            Arc::new(Probe { calls: AtomicUsize::new(0), stop: true }),
            Arc::new(Probe { calls: AtomicUsize::new(0), stop: true }),
        );
        g.runtimes[0].policies.extend([pass.clone() as Arc<dyn Policy>, stop.clone(), never.clone()]);
        let denial = g.handle(get("/cars/1HGCM")).await.unwrap_err();
        assert_eq!(denial.problem.status, 403);
        assert_eq!((pass.calls.load(Ordering::SeqCst), stop.calls.load(Ordering::SeqCst), never.calls.load(Ordering::SeqCst)), (1, 1, 0));

        // All Continue: the request goes on to the upstream (unreachable here: 502).
        let mut g = gateway(&format!("http://{closed}"));
        g.runtimes[0].policies.push(pass.clone());
        assert_eq!(g.handle(get("/cars/1HGCM")).await.unwrap_err().problem.status, 502);
        assert_eq!(pass.calls.load(Ordering::SeqCst), 2);
    }

    /// Asks for the body (up to `limit`), records what it got, and says Stop or Continue.
    #[derive(Debug)]
    struct BodyProbe {
        limit: Option<usize>,
        seen: std::sync::Mutex<Vec<bytes::Bytes>>,
        stop: bool,
    }

    #[async_trait::async_trait]
    impl Policy for BodyProbe {
        fn name(&self) -> &'static str {
            "body-probe"
        }

        async fn on_request(&self, _ctx: &mut RequestContext, _head: &mut hyper::http::request::Parts) -> Flow {
            Flow::Continue
        }

        fn body_limit(&self, _head: &hyper::http::request::Parts) -> Option<usize> {
            self.limit
        }

        async fn on_body(&self, _ctx: &mut RequestContext, _head: &hyper::http::request::Parts, body: &bytes::Bytes) -> Flow {
            self.seen.lock().unwrap().push(body.clone());
            if self.stop { Flow::Stop(Denial::new(400, "urn:warden:problem:bad-request", "Bad Request", "probe says no")) } else { Flow::Continue }
        }
    }

    /// The body phase runs only when a policy asks for it, reads at most the smallest limit
    /// asked for (413 past it), hands every policy the same bytes, and a Stop there keeps
    /// the request from the upstream (a closed port: 502 when reached).
    #[tokio::test]
    async fn the_body_is_read_only_when_asked_and_only_up_to_the_smallest_limit() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let post = |body: &'static str| {
            let body = http_body_util::Full::new(bytes::Bytes::from_static(body.as_bytes())).map_err(|e: std::convert::Infallible| match e {}).boxed_unsync();
            Request::post("/cars/1HGCM").header("host", "h").body(body).unwrap()
        };
        let probe = |limit, stop| Arc::new(BodyProbe { limit, seen: Default::default(), stop });
        let mut g = gateway_for(&format!("http://{closed}"), "POST");
        let (never_asks, big, small) = (probe(None, false), probe(Some(100), false), probe(Some(8), true));
        g.runtimes[0].policies.extend([never_asks.clone() as Arc<dyn Policy>, big.clone(), small.clone()]);
        assert_eq!(g.handle(post("0123456789")).await.unwrap_err().problem.status, 413);
        assert!(big.seen.lock().unwrap().is_empty());
        assert_eq!(g.handle(post("01234567")).await.unwrap_err().problem.status, 400);
        assert_eq!(*big.seen.lock().unwrap(), ["01234567"]);
        assert_eq!(*small.seen.lock().unwrap(), ["01234567"]);
        assert_eq!(never_asks.seen.lock().unwrap().len(), 1, "on_body runs for every policy once the body is read");
    }

    #[tokio::test]
    async fn refusals_before_the_route_run_no_policy() {
        let mut g = gateway("http://127.0.0.1:1");
        let probe = Arc::new(Probe { calls: AtomicUsize::new(0), stop: false });
        g.runtimes[0].policies.push(probe.clone());
        for (path, status) in [("/cars/%2561", 400), ("/cars/1/x", 404), ("/cars/a;b", 400)] {
            assert_eq!(g.handle(get(path)).await.unwrap_err().problem.status, status, "{path}");
        }
        let mut post = get("/cars/1HGCM");
        *post.method_mut() = hyper::Method::POST;
        let denial = g.handle(post).await.unwrap_err();
        assert_eq!(denial.problem.status, 405);
        assert_eq!(denial.headers[0].1, "GET, HEAD");
        assert_eq!(probe.calls.load(Ordering::SeqCst), 0);
    }

    /// Every request ends with one recorded outcome: refusals counted under the phase or
    /// policy that decided, upstream answers (and failures) under `upstream`.
    #[tokio::test]
    async fn every_outcome_is_counted_under_its_route_and_deciding_policy() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut g = gateway(&format!("http://{closed}"));
        let stop = Arc::new(Probe { calls: AtomicUsize::new(0), stop: true });
        g.runtimes[0].policies.push(stop);
        let _ = g.handle(get("/cars/1HGCM")).await;
        let _ = g.handle(get("/cars/1HGCM")).await;
        let _ = g.handle(get("/nowhere")).await;
        let _ = g.handle(get("/cars/%2561")).await;
        let counts: Vec<(String, &str, &str, u64)> = g.stats().snapshot().into_iter().map(|c| (c.route, c.by, c.status, c.count)).collect();
        assert_eq!(counts, [("-".to_owned(), "path", "4xx", 1), ("-".to_owned(), "route", "4xx", 1), ("cars".to_owned(), "probe", "4xx", 2)]);

        // Without the stopping policy the upstream (a closed port) decides: 502.
        let g = gateway(&format!("http://{closed}"));
        assert_eq!(g.handle(get("/cars/1HGCM")).await.unwrap_err().problem.status, 502);
        let snap = g.stats().snapshot();
        assert_eq!((snap[0].by, snap[0].status, snap[0].denied()), ("upstream", "5xx", false));
    }
}
