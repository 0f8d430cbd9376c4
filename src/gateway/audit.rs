//! Decisions recorded (issue #7 item 11): every request's outcome, once, at its end.
//!
//! [`Gateway::handle`](super::Gateway::handle) ends every request — refused or forwarded —
//! with [`record`], which reads the [`RequestContext`] and:
//!
//! 1. counts it in [`GatewayStats`] by route × deciding policy × status family (bounded:
//!    route ids come from the configuration, policy names are `&'static str`, five families);
//! 2. writes one structured event:
//!    - a **refusal by the gateway** (a phase or policy said Stop: `path`, `route`,
//!      `ip_rules`, `authenticate`, `authorize`, …) is an audit event, `target: "audit"`,
//!      `event = "gateway_denied"`, at `info`;
//!    - anything else (the upstream answered, or failed: 502 / 504) is an access line,
//!      `target: "access"`, `event = "gateway_request"`, at `info` when `gateway.access_log`
//!      is on, else at `debug`.
//!
//! Both carry the request id, client address, method, route, normalised path (the path as
//! sent when it was refused, cut at 256 bytes), status, the
//! deciding policy and its reason, the latency to the response head, and who called (token
//! source, `sub`, client id, consumer). Never a token, key, password or query string: the
//! context holds none of them (`Caller` keeps claims, never the credential).

use super::context::{Identity, RequestContext};
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `by` when the upstream's answer (or its failure) decided the outcome.
pub const UPSTREAM: &str = "upstream";

/// The key of one counter.
type Key = (std::sync::Arc<str>, &'static str, u8);

/// In-process counters of request outcomes by route × deciding policy × status family.
/// Cheap on the hot path (a read lock and an atomic add once a key exists); read with
/// [`GatewayStats::snapshot`] (the admin / metrics issue will expose it).
#[derive(Debug, Default)]
pub struct GatewayStats {
    counters: RwLock<HashMap<Key, AtomicU64>>,
}

/// One counter of a [`GatewayStats::snapshot`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutcomeCount {
    /// The route id, `-` when no route matched.
    pub route: String,
    /// The deciding phase or policy (`route`, `authenticate`, `authorize`, [`UPSTREAM`], …).
    pub by: &'static str,
    /// `2xx` … `5xx` (`1xx` never happens here).
    pub status: &'static str,
    /// Requests counted.
    pub count: u64,
}

impl OutcomeCount {
    /// Whether the gateway itself refused these requests (a policy or phase, not the upstream).
    pub fn denied(&self) -> bool {
        self.by != UPSTREAM
    }
}

const FAMILIES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

impl GatewayStats {
    /// Counts one outcome.
    pub fn count(&self, route: Option<&std::sync::Arc<str>>, by: &'static str, status: u16) {
        let family = (status / 100).clamp(1, 5) as u8;
        let route = route.cloned().unwrap_or_else(|| "-".into());
        let key = (route, by, family);
        // A poisoned lock only means a panic elsewhere mid-insert; the map is still valid.
        if let Some(c) = self.counters.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.counters.write().unwrap_or_else(|e| e.into_inner()).entry(key).or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// Every counter, sorted by route, policy and status family.
    pub fn snapshot(&self) -> Vec<OutcomeCount> {
        let map = self.counters.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<OutcomeCount> = map
            .iter()
            .map(|((route, by, family), c)| OutcomeCount { route: route.to_string(), by, status: FAMILIES[usize::from(*family) - 1], count: c.load(Ordering::Relaxed) })
            .collect();
        out.sort();
        out
    }
}

/// Why a denial was given, for its decision: its problem detail (what the client reads, so
/// never a secret), else its problem type.
pub fn reason(denial: &super::Denial) -> String {
    denial.problem.detail.clone().unwrap_or_else(|| denial.problem.kind.to_owned())
}

/// Records the outcome of one request (module doc). `raw_path` is the request's path as
/// sent, logged (at most 256 bytes) only when it never normalised; `status` is what the client
/// gets; `latency` runs from the request's arrival to its response head.
pub fn record(stats: &GatewayStats, ctx: &mut RequestContext, method: &str, raw_path: &str, status: u16, latency: Duration, access_log: bool) {
    if ctx.decision.is_none() {
        ctx.decide(UPSTREAM, if status < 400 { "forwarded" } else { "upstream error" });
    }
    let (by, reason) = ctx.decision.as_ref().map_or((UPSTREAM, ""), |d| (d.by, d.reason.as_str()));
    stats.count(ctx.route.as_ref(), by, status);
    let (source, sub, client_id, consumer) = match &ctx.identity {
        Identity::Token(c) => (&*c.source, c.sub.as_deref().unwrap_or("-"), c.client_id.as_deref().unwrap_or("-"), c.consumer.as_deref().unwrap_or("-")),
        Identity::Anonymous => ("anonymous", "-", "-", "-"),
        Identity::Unknown => ("-", "-", "-", "-"),
    };
    let route = ctx.route.as_deref().unwrap_or("-");
    // A refused path is logged as sent (the attempt is what an audit wants), cut short.
    let path = if ctx.path.is_empty() { raw_path.get(..raw_path.len().min(256)).unwrap_or("-") } else { ctx.path.as_str() };
    // Microsecond precision is enough (and keeps the lines short).
    let latency_ms = (latency.as_secs_f64() * 1e6).round() / 1e3;
    macro_rules! event {
        ($level:expr, $target:literal, $event:literal) => {
            tracing::event!(
                target: $target,
                $level,
                event = $event,
                request_id = %ctx.request_id,
                client = %ctx.client.ip,
                peer = %ctx.client.peer,
                method,
                route,
                path,
                status,
                policy = by,
                reason,
                latency_ms,
                source,
                sub,
                client_id,
                consumer,
            )
        };
    }
    if by != UPSTREAM {
        event!(tracing::Level::INFO, "audit", "gateway_denied");
    } else if access_log {
        event!(tracing::Level::INFO, "access", "gateway_request");
    } else {
        event!(tracing::Level::DEBUG, "access", "gateway_request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counters_are_keyed_by_route_policy_and_status_family() {
        let s = GatewayStats::default();
        let cars: Arc<str> = "cars".into();
        s.count(Some(&cars), "authorize", 403);
        s.count(Some(&cars), "authorize", 403);
        s.count(Some(&cars), "authenticate", 401);
        s.count(Some(&cars), UPSTREAM, 200);
        s.count(Some(&cars), UPSTREAM, 204);
        s.count(None, "route", 404);
        s.count(None, "route", 0);
        let snap = s.snapshot();
        let row = |route: &str, by: &str, status: &str| snap.iter().find(|c| c.route == route && c.by == by && c.status == status).map(|c| c.count);
        assert_eq!(row("cars", "authorize", "4xx"), Some(2));
        assert_eq!(row("cars", "authenticate", "4xx"), Some(1));
        assert_eq!(row("cars", UPSTREAM, "2xx"), Some(2), "200 and 204 share a family");
        assert_eq!(row("-", "route", "4xx"), Some(1));
        assert_eq!(row("-", "route", "1xx"), Some(1), "an out-of-range status is clamped, never a panic");
        assert_eq!(snap.len(), 5);
        assert_eq!(snap.iter().filter(|c| c.denied()).map(|c| c.count).sum::<u64>(), 5);
    }

    #[test]
    fn concurrent_counting_loses_nothing() {
        let s = Arc::new(GatewayStats::default());
        let route: Arc<str> = "r".into();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let (s, route) = (s.clone(), route.clone());
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        s.count(Some(&route), if i % 2 == 0 { "authorize" } else { UPSTREAM }, 200 + (i as u16) * 100);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.snapshot().iter().map(|c| c.count).sum::<u64>(), 4000);
        assert_eq!(s.snapshot().len(), 4);
    }
}
