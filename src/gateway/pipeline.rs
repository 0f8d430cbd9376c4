//! [`Gateway`]: the phases of one request, in order (`context.rs` describes them).

use super::authn::{Authenticate, Verifiers, WardenTokens};
use super::authz::Authorize;
use super::context::{Denial, Flow, Policy, RequestContext};
use super::path;
use super::proxy::{self, RequestBody, UpstreamClient};
use super::response::{self, OutBody, RequestFacts, ResponsePolicy, SecurityPolicy};
use super::route::{Matched, RouteError, RouteTable, host_without_port};
use super::Config;
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
        let routes = RouteTable::build(&cfg.routes)?;
        let verifiers = Arc::new(
            Verifiers::new(warden, &cfg.issuers, cfg)
                .map_err(|(i, message)| vec![RouteError { index: usize::MAX, key: "jwks_url", message: format!("issuers[{i}]: {message}") }])?,
        );
        let mut clients = proxy::Clients::default();
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
            policies.push(Arc::new(auth));
            if !r.rules.is_empty() {
                let tokens = r.auth.iter().any(|a| *a != super::Auth::Anonymous);
                policies.push(Arc::new(Authorize::new(r.rules.clone(), tokens)));
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
        let by_id = cfg.routes.iter().enumerate().map(|(i, r)| (Arc::from(r.id.as_str()), i)).collect();
        Ok(Gateway { routes, runtimes, trusted, verifiers, security, by_id })
    }

    /// Before serving: loads the revocation list and fetches the issuers' JWK Sets once.
    pub async fn prepare(&self, store: Option<&crate::store::Store>) {
        self.verifiers.prepare(store).await;
    }

    /// Starts the background loops (revocation polling, JWKS refresh) until `shutdown`.
    pub fn spawn_background(&self, store: Option<crate::store::Store>, shutdown: tokio_util::sync::CancellationToken) -> tokio::task::JoinSet<()> {
        self.verifiers.spawn(store, shutdown)
    }

    /// One request through every phase. A denial never reached the upstream (except the
    /// upstream's own failures: 502, 504).
    pub async fn handle(&self, req: Request<RequestBody>) -> Result<Response<OutBody>, Denial> {
        let (head, body) = req.into_parts();
        let facts = RequestFacts::of(&head);
        let client = head.extensions.get::<ClientAddr>().copied().unwrap_or(ClientAddr {
            peer: ([0, 0, 0, 0], 0).into(),
            ip: [0, 0, 0, 0].into(),
        });
        let request_id = head.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let mut ctx = RequestContext {
            request_id,
            client,
            secure: head.extensions.get::<crate::http::serve::Secure>().is_some(),
            host: String::new(),
            path: String::new(),
            route: None,
            params: Vec::new(),
            identity: Default::default(),
            decision: None,
        };
        let result = self.phases(&mut ctx, head, body).await;
        // The response phase, on the upstream's answer and on our own refusals alike.
        let responders = ctx.route.as_ref().and_then(|id| self.by_id.get(id)).map_or(&[][..], |&i| &self.runtimes[i].responders[..]);
        let result = response::respond(&ctx, &facts, responders, &self.security, result).await;
        if let Err(denial) = &result {
            if ctx.decision.is_none() {
                ctx.decide("upstream", denial.problem.kind);
            }
            tracing::debug!(
                request_id = %ctx.request_id,
                client = %ctx.client.ip,
                route = ctx.route.as_deref().unwrap_or("-"),
                status = denial.problem.status,
                decision = ?ctx.decision,
                "request refused"
            );
        }
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
            if let Flow::Stop(denial) = policy.on_request(ctx, &mut head).await {
                if ctx.decision.is_none() {
                    ctx.decide(policy.name(), denial.problem.kind);
                }
                return Err(denial);
            }
        }
        let body = proxy::prime(body).await.inspect_err(|_| ctx.decide("body", "malformed request body"))?;
        for r in &runtime.responders {
            r.on_forward(&mut head);
        }
        let resp = runtime.client.forward(ctx, head, body, &self.trusted).await?;
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
    use crate::gateway::{RouteConfig, Timeouts, Upstream};
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
        let cfg = Config {
            routes: vec![RouteConfig {
                id: "cars".into(),
                hosts: vec![],
                path: "/cars/{vin}".into(),
                methods: vec!["GET".into()],
                upstream: Upstream::parse(upstream).unwrap(),
                case_insensitive: false,
                http2: false,
                auth: vec![crate::gateway::Auth::Anonymous],
                audience: None,
                rules: Default::default(),
                timeouts: Timeouts::default(),
                ip_rules: Default::default(),
                response: Default::default(),
            }],
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
}
