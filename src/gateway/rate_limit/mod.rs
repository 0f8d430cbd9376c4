//! The rate-limit policy (issue #7 item 5): GCRA limits per route, several at once, each
//! keyed by who calls, where from, or nothing (the whole route).
//!
//! For each of the route's `[[gateway.routes.rate_limits]]`, in order:
//! 1. the bucket key: the caller's consumer (else client id, else `sub`), client id, `sub`,
//!    API-key consumer, client address (IPv6 by /64), or the route itself — always with the
//!    route's id, never the raw path, so `/api//x` and `/api/x` share a bucket;
//! 2. a caller without that key (no token, or a token without the claim) is refused (401 /
//!    403) or counted in the limit's one shared anonymous bucket — never unlimited;
//! 3. the rate: the limit's own, or its plan's when the caller's consumer has a plan or its
//!    token's `plan_claim` names one;
//! 4. one atomic check-and-count in the store (`store.rs`, `gcra.rs`): refused → 429 with
//!    `Retry-After`, `RateLimit` and `RateLimit-Policy`; a store that cannot answer → 503.
//!
//! An allowed request carries `RateLimit` / `RateLimit-Policy` of its most restrictive limit
//! (fewest requests left) back on the upstream's response (draft-ietf-httpapi-ratelimit-
//! headers-11: `RateLimit-Policy: "name";q=100;w=60`, `RateLimit: "name";r=42;t=10`, with `t`
//! the seconds until the bucket is full again). A request refused by a later limit has been
//! counted by the earlier ones, as in most gateways: each check is atomic on its own key.

pub mod gcra;
pub mod store;

use super::context::{Caller, Denial, Flow, Identity, Policy, RequestContext};
use super::credentials::{self, Scheme};
use gcra::{Gcra, Outcome};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use std::sync::Arc;
use std::time::Duration;
use store::{BucketKey, KeyValue, RateLimitStore};

pub use store::MemoryStore;

/// What a limit counts requests by (`key = "..."`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateKey {
    /// `"consumer"`: the caller's consumer (API key, Basic), else its client id, else `sub`.
    Consumer,
    /// `"client_id"`: the token's client id.
    ClientId,
    /// `"sub"`: the token's subject.
    Sub,
    /// `"api_key"`: the consumer an API key (or Basic credential) identified, only.
    ApiKey,
    /// `"ip"`: the client address behind trusted proxies (IPv6 by /64).
    Ip,
    /// `"route"`: one bucket for every caller of the route.
    Route,
}

impl RateKey {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consumer => "consumer",
            Self::ClientId => "client_id",
            Self::Sub => "sub",
            Self::ApiKey => "api_key",
            Self::Ip => "ip",
            Self::Route => "route",
        }
    }

    /// Parses the configuration spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Consumer, Self::ClientId, Self::Sub, Self::ApiKey, Self::Ip, Self::Route].into_iter().find(|k| k.as_str() == s)
    }

    /// Whether a caller can lack this key.
    pub fn needs_caller(self) -> bool {
        !matches!(self, Self::Ip | Self::Route)
    }

    fn value(self, ctx: &RequestContext) -> Option<KeyValue<'_>> {
        let caller = || match &ctx.identity {
            Identity::Token(c) => Some(c.as_ref()),
            _ => None,
        };
        fn id(s: Option<&str>) -> Option<KeyValue<'_>> {
            s.filter(|s| !s.is_empty()).map(KeyValue::Id)
        }
        match self {
            Self::Consumer => caller().and_then(|c| id(c.consumer.as_deref()).or_else(|| id(c.client_id.as_deref())).or_else(|| id(c.sub.as_deref()))),
            Self::ClientId => caller().and_then(|c| id(c.client_id.as_deref())),
            Self::Sub => caller().and_then(|c| id(c.sub.as_deref())),
            Self::ApiKey => caller().and_then(|c| id(c.consumer.as_deref())),
            Self::Ip => Some(KeyValue::Ip(store::address_group(ctx.client.ip))),
            Self::Route => Some(KeyValue::Route),
        }
    }
}

/// What happens to a request without the limit's key (`missing_key = "..."`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingKey {
    /// `"refuse"`: 401 without a token, 403 with a token that lacks the claim.
    Refuse,
    /// `"anonymous"`: counted in one bucket shared by every such request.
    Anonymous,
}

/// One `[[gateway.routes.rate_limits]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// The policy's name in `RateLimit` headers; unique in its route (default: the key).
    pub name: String,
    /// What requests are counted by.
    pub key: RateKey,
    /// Requests per `per`, sustained.
    pub rate: u64,
    /// The period of `rate` (whole seconds).
    pub per: Duration,
    /// The most requests at once from an idle bucket (`None`: `rate`).
    pub burst: Option<u64>,
    /// Requests without the key: refused or counted together.
    pub missing_key: MissingKey,
    /// The token claim whose value names the caller's plan.
    pub plan_claim: Option<String>,
    /// `plan → rate` (per the same `per`; burst: `burst`, else the plan's rate).
    pub plans: Vec<(String, u64)>,
}

/// A limit's parameters for one rate, and its `RateLimit-Policy` item.
#[derive(Debug)]
struct Tier {
    gcra: Gcra,
    policy: HeaderValue,
}

impl Tier {
    fn new(name: &str, rate: u64, per: Duration, burst: Option<u64>) -> Self {
        let policy = HeaderValue::from_str(&format!("\"{name}\";q={rate};w={}", per.as_secs()))
            .unwrap_or(HeaderValue::from_static("\"limit\""));
        Self { gcra: Gcra::new(rate, per, burst.unwrap_or(rate)), policy }
    }
}

#[derive(Debug)]
struct Limit {
    /// `route-id/name`: the bucket namespace.
    scope: String,
    name: String,
    key: RateKey,
    missing_key: MissingKey,
    default: Tier,
    plan_claim: Option<String>,
    plans: Vec<(String, Tier)>,
}

impl Limit {
    /// The caller's plan: its consumer's (`warden consumer create --plan`), else the token's
    /// `plan_claim`; no plan, or one without a rate here: the limit's own rate.
    fn tier(&self, ctx: &RequestContext) -> &Tier {
        let Identity::Token(caller) = &ctx.identity else { return &self.default };
        let name = caller.plan.as_deref().or_else(|| self.plan_claim.as_deref().and_then(|claim| plan(caller, claim)));
        name.and_then(|p| self.plans.iter().find(|(n, _)| n == p)).map_or(&self.default, |(_, t)| t)
    }
}

fn plan<'a>(caller: &'a Caller, claim: &str) -> Option<&'a str> {
    caller.claims.get(claim).and_then(|v| v.as_str())
}

/// A route's rate limits, checked in order after authentication and authorization.
#[derive(Debug)]
pub struct RateLimit {
    limits: Vec<Limit>,
    store: Arc<dyn RateLimitStore>,
}

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

impl RateLimit {
    /// The limits of route `route` over `store` (`None` when the route has none).
    pub fn new(route: &str, limits: &[RateLimitConfig], store: Arc<dyn RateLimitStore>) -> Option<Self> {
        let limits: Vec<Limit> = limits
            .iter()
            .map(|c| Limit {
                scope: format!("{route}/{}", c.name),
                name: c.name.clone(),
                key: c.key,
                missing_key: c.missing_key,
                default: Tier::new(&c.name, c.rate, c.per, c.burst),
                plan_claim: c.plan_claim.clone(),
                plans: c.plans.iter().map(|(p, rate)| (p.clone(), Tier::new(&c.name, *rate, c.per, c.burst))).collect(),
            })
            .collect();
        (!limits.is_empty()).then_some(Self { limits, store })
    }

    async fn run(&self, ctx: &mut RequestContext) -> Result<(), Denial> {
        let mut tightest: Option<(&Limit, &Tier, Outcome)> = None;
        for limit in &self.limits {
            let value = match (limit.key.value(ctx), limit.missing_key) {
                (Some(v), _) => v,
                (None, MissingKey::Anonymous) => KeyValue::Anonymous,
                (None, MissingKey::Refuse) => return Err(missing(ctx, limit)),
            };
            let tier = limit.tier(ctx);
            let key = BucketKey { limit: &limit.scope, value };
            let outcome = self.store.check(&key, &tier.gcra).await.map_err(|e| {
                tracing::warn!(error = %e, "rate limits unavailable");
                credentials::unavailable("rate limits cannot be checked right now")
            })?;
            if !outcome.allowed {
                return Err(too_many(limit, tier, &outcome));
            }
            let tighter = tightest.as_ref().is_none_or(|(_, _, t)| (outcome.remaining, std::cmp::Reverse(outcome.reset)) < (t.remaining, std::cmp::Reverse(t.reset)));
            if tighter {
                tightest = Some((limit, tier, outcome));
            }
        }
        if let Some((limit, tier, outcome)) = tightest {
            ctx.response_headers.push((RATELIMIT_POLICY, tier.policy.clone()));
            ctx.response_headers.push((RATELIMIT, ratelimit(&limit.name, &outcome)));
        }
        Ok(())
    }
}

/// `RateLimit: "name";r=R;t=T`.
fn ratelimit(name: &str, o: &Outcome) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{name}\";r={};t={}", o.remaining, store::ceil_secs(o.reset))).unwrap_or(HeaderValue::from_static("\"limit\";r=0"))
}

/// 429 with `Retry-After` and the limit's `RateLimit` headers.
fn too_many(limit: &Limit, tier: &Tier, o: &Outcome) -> Denial {
    let wait = store::ceil_secs(o.retry_after).max(1);
    Denial::new(429, "urn:warden:problem:rate-limited", "Too Many Requests", format!("the rate limit \"{}\" is exhausted; retry in {wait} s", limit.name))
        .with_header(header::RETRY_AFTER, HeaderValue::from(wait))
        .with_header(RATELIMIT_POLICY, tier.policy.clone())
        .with_header(RATELIMIT, ratelimit(&limit.name, o))
}

/// A request without the limit's key, under `missing_key = "refuse"`.
fn missing(ctx: &RequestContext, limit: &Limit) -> Denial {
    match ctx.identity {
        Identity::Token(_) => credentials::forbidden(format!("the access token carries no {}, which this API's rate limit \"{}\" counts by", limit.key.as_str(), limit.name)),
        _ => credentials::unauthorized(&[Scheme::Bearer], None, "this API's rate limits count requests per caller: the request needs an access token"),
    }
}

#[async_trait::async_trait]
impl Policy for RateLimit {
    fn name(&self) -> &'static str {
        "rate_limit"
    }

    async fn on_request(&self, ctx: &mut RequestContext, _head: &mut Parts) -> Flow {
        match self.run(ctx).await {
            Ok(()) => Flow::Continue,
            Err(d) => Flow::Stop(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client_ip::ClientAddr;

    fn ctx(identity: Identity, ip: &str) -> RequestContext {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        RequestContext { route: Some("r".into()), identity, ..RequestContext::new(String::new(), ClientAddr { peer: (ip, 1).into(), ip }, false) }
    }

    fn caller(consumer: Option<&str>, client_id: Option<&str>, sub: Option<&str>, plan: Option<&str>) -> Identity {
        let mut claims = serde_json::Map::new();
        if let Some(p) = plan {
            claims.insert("plan".into(), p.into());
        }
        Identity::Token(Arc::new(Caller {
            source: "warden".into(),
            sub: sub.map(Into::into),
            client_id: client_id.map(Into::into),
            consumer: consumer.map(Into::into),
            plan: None,
            scopes: vec![],
            claims,
        }))
    }

    fn limit(key: RateKey, rate: u64, burst: Option<u64>) -> RateLimitConfig {
        RateLimitConfig {
            name: key.as_str().into(),
            key,
            rate,
            per: Duration::from_secs(60),
            burst,
            missing_key: MissingKey::Refuse,
            plan_claim: None,
            plans: vec![],
        }
    }

    fn policy(limits: &[RateLimitConfig]) -> RateLimit {
        RateLimit::new("r", limits, Arc::new(MemoryStore::new(1000))).unwrap()
    }

    /// Runs `n` requests; returns the statuses (200 for allowed).
    async fn hammer(p: &RateLimit, mk: impl Fn() -> RequestContext, n: usize) -> Vec<u16> {
        let mut out = Vec::new();
        for _ in 0..n {
            let mut c = mk();
            out.push(p.run(&mut c).await.map_or_else(|d| d.problem.status, |()| 200));
        }
        out
    }

    #[test]
    fn keys_resolve_from_the_caller_with_the_consumer_fallbacks() {
        let full = ctx(caller(Some("app"), Some("cid"), Some("u1"), None), "192.0.2.9");
        let token_only = ctx(caller(None, Some("cid"), Some("u1"), None), "192.0.2.9");
        let sub_only = ctx(caller(None, None, Some("u1"), None), "2001:db8:1:2::5");
        let anon = ctx(Identity::Anonymous, "192.0.2.9");
        assert_eq!(RateKey::Consumer.value(&full), Some(KeyValue::Id("app")));
        assert_eq!(RateKey::Consumer.value(&token_only), Some(KeyValue::Id("cid")));
        assert_eq!(RateKey::Consumer.value(&sub_only), Some(KeyValue::Id("u1")));
        assert_eq!(RateKey::Consumer.value(&anon), None);
        assert_eq!(RateKey::ApiKey.value(&full), Some(KeyValue::Id("app")));
        assert_eq!(RateKey::ApiKey.value(&token_only), None, "api_key is the consumer only");
        assert_eq!(RateKey::ClientId.value(&sub_only), None);
        assert_eq!(RateKey::Sub.value(&token_only), Some(KeyValue::Id("u1")));
        assert_eq!(RateKey::Ip.value(&sub_only), Some(KeyValue::Ip("2001:db8:1:2::".parse().unwrap())));
        assert_eq!(RateKey::Route.value(&anon), Some(KeyValue::Route));
        for k in ["consumer", "client_id", "sub", "api_key", "ip", "route"] {
            assert_eq!(RateKey::parse(k).unwrap().as_str(), k);
        }
        assert_eq!(RateKey::parse("path"), None);
    }

    #[tokio::test]
    async fn a_missing_key_is_refused_or_shares_one_anonymous_bucket() {
        let p = policy(&[limit(RateKey::ClientId, 2, None)]);
        assert_eq!(hammer(&p, || ctx(Identity::Anonymous, "192.0.2.1"), 1).await, [401]);
        assert_eq!(hammer(&p, || ctx(caller(None, None, Some("u"), None), "192.0.2.1"), 1).await, [403]);
        let p = policy(&[RateLimitConfig { missing_key: MissingKey::Anonymous, ..limit(RateKey::ClientId, 2, None) }]);
        // Two anonymous callers from different addresses share the bucket of 2…
        assert_eq!(hammer(&p, || ctx(Identity::Anonymous, "192.0.2.1"), 1).await, [200]);
        assert_eq!(hammer(&p, || ctx(Identity::Anonymous, "198.51.100.1"), 2).await, [200, 429]);
        // …and a caller with the key has its own.
        assert_eq!(hammer(&p, || ctx(caller(None, Some("c"), None, None), "192.0.2.1"), 3).await, [200, 200, 429]);
    }

    #[tokio::test]
    async fn a_plan_claim_selects_the_plan_rate_and_unknown_plans_get_the_default() {
        let p = policy(&[RateLimitConfig {
            plan_claim: Some("plan".into()),
            plans: vec![("gold".into(), 5)],
            ..limit(RateKey::ClientId, 2, None)
        }]);
        let statuses = |s: &[u16]| s.iter().filter(|s| **s == 200).count();
        assert_eq!(statuses(&hammer(&p, || ctx(caller(None, Some("a"), None, Some("gold")), "192.0.2.1"), 8).await), 5);
        assert_eq!(statuses(&hammer(&p, || ctx(caller(None, Some("b"), None, Some("platinum")), "192.0.2.1"), 8).await), 2);
        assert_eq!(statuses(&hammer(&p, || ctx(caller(None, Some("c"), None, None), "192.0.2.1"), 8).await), 2);
        let mut c = ctx(caller(None, Some("d"), None, Some("gold")), "192.0.2.1");
        p.run(&mut c).await.unwrap();
        assert_eq!(c.response_headers[0].1, "\"client_id\";q=5;w=60");
        // A consumer's own plan (an API key's app) counts before any claim.
        let consumer = |id: &str| {
            let Identity::Token(c) = caller(Some(id), Some(id), None, Some("platinum")) else { unreachable!() };
            Identity::Token(Arc::new(Caller { plan: Some("gold".into()), ..(*c).clone() }))
        };
        assert_eq!(statuses(&hammer(&p, || ctx(consumer("e"), "192.0.2.1"), 8).await), 5);
    }

    #[tokio::test]
    async fn the_headers_name_the_most_restrictive_limit_and_a_refusal_its_own() {
        let p = policy(&[
            RateLimitConfig { name: "per-ip".into(), ..limit(RateKey::Ip, 100, None) },
            RateLimitConfig { name: "route".into(), ..limit(RateKey::Route, 3, Some(2)) },
        ]);
        let mut c = ctx(Identity::Anonymous, "192.0.2.1");
        p.run(&mut c).await.unwrap();
        let h: Vec<(String, String)> = c.response_headers.iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned())).collect();
        // 3 per minute: 20 s per request; 1 of a burst of 2 left, full again in 20 s.
        assert_eq!(h, [("ratelimit-policy".into(), "\"route\";q=3;w=60".into()), ("ratelimit".into(), "\"route\";r=1;t=20".into())]);
        p.run(&mut ctx(Identity::Anonymous, "192.0.2.1")).await.unwrap();
        let d = p.run(&mut ctx(Identity::Anonymous, "192.0.2.1")).await.unwrap_err();
        assert_eq!(d.problem.status, 429);
        let get = |n: &str| d.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.to_str().unwrap().to_owned());
        assert_eq!(get("retry-after").as_deref(), Some("20"));
        assert_eq!(get("ratelimit").as_deref(), Some("\"route\";r=0;t=40"));
        assert_eq!(get("ratelimit-policy").as_deref(), Some("\"route\";q=3;w=60"));
    }
}
