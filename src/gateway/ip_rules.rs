//! IP allow and deny lists (issue #7 item 8): global (`[gateway] allow_ips`, `deny_ips`) and per
//! route. The address is the client's as the listener resolved it — behind `trusted_proxies`
//! the forwarded client, never a header an untrusted peer sent. The first policy of every
//! route that has rules: a refused address never meets authentication or the upstream.

use super::IpRules;
use super::context::{Denial, Flow, Policy, RequestContext};
use hyper::http::request::Parts;
use std::net::IpAddr;

/// The global and the route's lists, applied together:
/// 1. an address in either deny list is refused;
/// 2. a non-empty allow list (global or the route's) refuses every address not in it.
#[derive(Debug)]
pub struct IpPolicy {
    global: IpRules,
    route: IpRules,
}

impl IpPolicy {
    /// `None` when neither list has a rule (no policy to run).
    pub fn new(global: &IpRules, route: &IpRules) -> Option<Self> {
        let empty = |r: &IpRules| r.allow.is_empty() && r.deny.is_empty();
        (!empty(global) || !empty(route)).then(|| Self { global: global.clone(), route: route.clone() })
    }

    /// Whether `ip` may pass.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let listed = |nets: &[ipnet::IpNet]| nets.iter().any(|n| n.contains(&ip));
        if listed(&self.global.deny) || listed(&self.route.deny) {
            return false;
        }
        (self.global.allow.is_empty() || listed(&self.global.allow)) && (self.route.allow.is_empty() || listed(&self.route.allow))
    }
}

#[async_trait::async_trait]
impl Policy for IpPolicy {
    fn name(&self) -> &'static str {
        "ip_rules"
    }

    async fn on_request(&self, ctx: &mut RequestContext, _head: &mut Parts) -> Flow {
        if self.allows(ctx.client.ip) {
            return Flow::Continue;
        }
        ctx.decide("ip_rules", "the client address is not allowed");
        Flow::Stop(Denial::new(403, "urn:warden:problem:forbidden-address", "Forbidden", "requests from this address are not allowed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> IpRules {
        IpRules { allow: allow.iter().map(|n| n.parse().unwrap()).collect(), deny: deny.iter().map(|n| n.parse().unwrap()).collect() }
    }

    #[test]
    fn deny_wins_and_every_non_empty_allow_list_must_match() {
        let p = IpPolicy::new(&rules(&["10.0.0.0/8", "2001:db8::/32"], &["10.9.0.0/16"]), &rules(&["10.1.0.0/16", "2001:db8::/32"], &[])).unwrap();
        assert!(p.allows("10.1.2.3".parse().unwrap()));
        assert!(!p.allows("10.2.2.3".parse().unwrap()), "in the global allow list but not the route's");
        assert!(!p.allows("192.0.2.1".parse().unwrap()));
        assert!(p.allows("2001:db8::1".parse().unwrap()));
        assert!(p.allows("::ffff:10.1.2.3".parse().unwrap()), "IPv4-mapped addresses count as IPv4");
        let p = IpPolicy::new(&rules(&[], &["10.9.0.0/16"]), &rules(&[], &["192.0.2.7/32"])).unwrap();
        assert!(!p.allows("10.9.1.1".parse().unwrap()));
        assert!(!p.allows("192.0.2.7".parse().unwrap()));
        assert!(p.allows("192.0.2.8".parse().unwrap()), "only deny lists: everyone else passes");
        assert!(IpPolicy::new(&IpRules::default(), &IpRules::default()).is_none());
    }
}
