//! Who is calling: the client address behind trusted proxies.
//!
//! A deployment usually has a TLS proxy or load balancer in front, so the TCP peer of most
//! requests is the proxy. Throttling, audit and (later) the gateway's IP rules need the
//! address of the client itself, which the proxy reports in `Forwarded` (RFC 7239) or
//! `X-Forwarded-For`, or in a PROXY protocol header before the first request. Anyone can
//! send those headers, so they are believed only when they were written by a proxy the
//! operator listed in the top-level `trusted_proxies` setting:
//!
//! - the peer is not trusted → the client is the peer, whatever the headers say;
//! - the peer is trusted → walk the forwarding chain from the right (the entry the nearest
//!   proxy appended) and take the first address that is not itself a trusted proxy; an entry
//!   that is not an address (`unknown`, an obfuscated identifier, garbage) stops the walk and
//!   the last trusted hop stands in for the client;
//! - `Forwarded` wins over `X-Forwarded-For` when a request carries both; repeated headers
//!   are read as one list, in order (RFC 9110 §5.3).

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The peer of a connection and the client it stands for; a request extension set by the
/// listener for every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr {
    /// The TCP peer (or the source a trusted PROXY protocol header named).
    pub peer: SocketAddr,
    /// The client, after trusted `Forwarded` / `X-Forwarded-For` headers.
    pub ip: IpAddr,
}

/// The proxies whose forwarding headers are believed (`trusted_proxies`, CIDR list).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses CIDR blocks or single addresses (`10.0.0.0/8`, `2001:db8::/32`, `127.0.0.1`).
    pub fn parse(items: &[String]) -> Result<Self, String> {
        let mut nets = Vec::with_capacity(items.len());
        for item in items {
            let item = item.trim();
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("\"{item}\" is not an address or CIDR block (e.g. 10.0.0.0/8)"))?;
            nets.push(net);
        }
        Ok(Self(nets))
    }

    /// Whether `ip` belongs to a trusted proxy. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client address of a request that came from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let forwarded = headers.get_all("forwarded");
        let chain: Vec<Option<IpAddr>> = if forwarded.iter().next().is_some() {
            forwarded
                .iter()
                .flat_map(|v| v.to_str().ok().unwrap_or("unknown").split(','))
                .map(forwarded_for)
                .collect()
        } else {
            headers
                .get_all("x-forwarded-for")
                .iter()
                .flat_map(|v| v.to_str().ok().unwrap_or("unknown").split(','))
                .map(|s| parse_node(s.trim()))
                .collect()
        };
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop {
                Some(ip) if self.contains(*ip) => client = *ip,
                Some(ip) => return *ip,
                None => return client,
            }
        }
        client
    }
}

/// The `for=` node of one `Forwarded` element (RFC 7239 §4), as an address if it is one.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| parse_node(v.trim().trim_matches('"')))?
    })
}

/// RFC 7239 §6 node: `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`, `[2001:db8::1]:80`, or a
/// bare IPv6 address as `X-Forwarded-For` writes it. `unknown` and obfuscated names are `None`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = node.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    let inner = node.strip_prefix('[')?.split(']').next()?;
    inner.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(t.client_ip(ip("192.0.2.9"), &h), ip("192.0.2.9"));
        assert_eq!(TrustedProxies::default().client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let t = trusted(&["10.0.0.0/8", "192.168.1.1"]);
        // The client forged the first entry; the proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 192.168.1.1")]);
        assert_eq!(t.client_ip(ip("10.1.2.3"), &h), ip("203.0.113.7"));
        let split = headers(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(t.client_ip(ip("10.1.2.3"), &split), ip("203.0.113.7"), "repeated headers form one list");
    }

    #[test]
    fn forwarded_wins_and_its_nodes_parse() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=192.0.2.60;proto=https, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.1"),
        ]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &h), ip("2001:db8:cafe::17"));
        let v4port = headers(&[("forwarded", "for=\"192.0.2.43:47011\"")]);
        assert_eq!(t.client_ip(ip("10.0.0.2"), &v4port), ip("192.0.2.43"));
    }

    #[test]
    fn unknown_or_garbage_stops_at_the_last_trusted_hop() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.7, unknown, 10.0.0.5")]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.5"));
        let h = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        let all_trusted = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.5")]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &all_trusted), ip("10.9.9.9"));
        assert_eq!(t.client_ip(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"), "no header: the proxy itself");
    }

    #[test]
    fn mapped_addresses_count_as_ipv4_and_bad_entries_are_refused() {
        let t = trusted(&["10.0.0.0/8", "2001:db8::/32"]);
        assert!(t.contains(ip("::ffff:10.1.1.1")));
        assert!(t.contains(ip("2001:db8::1")));
        assert!(!t.contains(ip("2001:db9::1")));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.example".into()]).is_err());
    }
}
