//! Route matching: host, then path, then method — on the normalised path (`path.rs`).
//!
//! **Host.** A route with `hosts` matches only those names (exact, case-insensitive, the
//! request's port ignored); a route without `hosts` matches any host. A route that names the
//! request's host always beats one that does not.
//!
//! **Path.** A pattern is a list of segments: literals, `{name}` parameters (one non-empty
//! segment, captured), and optionally a final wildcard (`/api/` and `/api/*` are the same
//! prefix pattern: `/api/` followed by anything, `/api/` itself included, `/api` not). Among
//! the routes whose host and path match, the **most specific** wins: compare the two patterns
//! segment by segment from the left; at the first position where they differ in kind, a
//! literal beats a parameter, and a parameter beats the wildcard. So `/cars/{vin}` beats
//! `/cars/*`, `/cars/mine` beats `/cars/{vin}`, and `/api/admin/*` beats `/api/*`. Two routes
//! of the same specificity that could match the same request are a configuration error
//! (unless their methods are disjoint: `GET /api/*` to one upstream and `POST /api/*` to
//! another is fine).
//!
//! **Method.** The most specific path decides alone: if none of its routes lists the method
//! the answer is 405 with `Allow`, never a fall-back to a less specific (and maybe less
//! protected) route. `GET` implies `HEAD`.

use super::RouteConfig;
use hyper::Method;
use std::cmp::Ordering;
use std::sync::Arc;

/// One segment of a path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Matches exactly this text (lower-cased when the route is case-insensitive).
    Literal(String),
    /// Matches one non-empty segment, captured under this name.
    Param(Arc<str>),
}

impl Segment {
    fn rank(&self) -> u8 {
        match self {
            Self::Literal(_) => 2,
            Self::Param(_) => 1,
        }
    }
}

/// A compiled path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<Segment>,
    /// A final wildcard: anything may follow the segments (after a `/`).
    prefix: bool,
    case_insensitive: bool,
}

impl Pattern {
    /// Parses `/literal/{param}/...`, optionally ending in `/` or `/*` (a prefix). Literal
    /// segments must already be in normalised form (`path::normalise` leaves them alone).
    pub fn parse(text: &str, case_insensitive: bool) -> Result<Pattern, String> {
        if !text.starts_with('/') {
            return Err("must start with /".into());
        }
        let (body, prefix) = if let Some(b) = text.strip_suffix("/*") {
            (b, true)
        } else if text.len() > 1 && text.ends_with('/') {
            (&text[..text.len() - 1], true)
        } else if text == "/" {
            ("", true)
        } else {
            (text, false)
        };
        let mut segments = Vec::new();
        let mut names: Vec<Arc<str>> = Vec::new();
        for raw in body.split('/').skip(1) {
            if let Some(name) = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(format!("parameter {{{name}}} must be a name of letters, digits and _"));
                }
                if names.iter().any(|n| &**n == name) {
                    return Err(format!("parameter {{{name}}} appears twice"));
                }
                let name: Arc<str> = name.into();
                names.push(name.clone());
                segments.push(Segment::Param(name));
                continue;
            }
            if raw.is_empty() {
                return Err("empty segment (//)".into());
            }
            if raw.contains(['{', '}', '*']) {
                return Err("{name} and * must be whole segments (* only at the end)".into());
            }
            match super::path::normalise(&format!("/{raw}")) {
                Ok(n) if n[1..] == *raw => {}
                _ => return Err(format!("segment \"{raw}\" is not in normalised form (no ., .., %-escapes of letters, %2F, ;)")),
            }
            segments.push(Segment::Literal(if case_insensitive { raw.to_ascii_lowercase() } else { raw.to_owned() }));
        }
        Ok(Pattern { segments, prefix, case_insensitive })
    }

    /// Matches a normalised path; returns the captured parameters. A path that does not
    /// start with `/` (never one `path::normalise` made) matches nothing.
    pub fn matches(&self, path: &str) -> Option<Vec<(Arc<str>, String)>> {
        let mut parts = path.strip_prefix('/')?.split('/');
        let mut params = Vec::new();
        for seg in &self.segments {
            let part = parts.next()?;
            match seg {
                Segment::Literal(lit) => {
                    let equal = if self.case_insensitive { lit.eq_ignore_ascii_case(part) } else { lit == part };
                    if !equal {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    if part.is_empty() {
                        return None;
                    }
                    params.push((name.clone(), part.to_owned()));
                }
            }
        }
        match (self.prefix, parts.next()) {
            // The root pattern `/` or `/*` has no segments: every path matches.
            (true, _) if self.segments.is_empty() => Some(params),
            (true, Some(_)) => Some(params),
            (false, None) => Some(params),
            _ => None,
        }
    }

    /// Specificity (module doc): `Greater` when `self` is more specific than `other`.
    fn specificity(&self, other: &Pattern) -> Ordering {
        let kinds = |p: &Pattern| {
            let mut v: Vec<u8> = p.segments.iter().map(Segment::rank).collect();
            if p.prefix {
                v.push(0);
            }
            v
        };
        kinds(self).cmp(&kinds(other))
    }

    /// Whether the two patterns have the same shape and literals, i.e. match the same paths.
    fn same_paths(&self, other: &Pattern) -> bool {
        self.prefix == other.prefix
            && self.segments.len() == other.segments.len()
            && self.segments.iter().zip(&other.segments).all(|(a, b)| match (a, b) {
                (Segment::Param(_), Segment::Param(_)) => true,
                (Segment::Literal(x), Segment::Literal(y)) => x.eq_ignore_ascii_case(y) && (x == y || self.case_insensitive || other.case_insensitive),
                _ => false,
            })
    }
}

/// A route ready for matching: its configuration plus the compiled pattern and methods.
#[derive(Debug)]
pub struct Route {
    /// The configuration it came from (id, upstream, timeouts, authentication).
    pub config: RouteConfig,
    /// Position in `[[gateway.routes]]`.
    index: usize,
    pattern: Pattern,
    methods: Vec<Method>,
}

impl Route {
    /// Whether the route lists `method` (GET implies HEAD).
    pub fn allows(&self, method: &Method) -> bool {
        self.methods.iter().any(|m| m == method) || (method == Method::HEAD && self.methods.contains(&Method::GET))
    }

    /// Position in `[[gateway.routes]]`.
    pub fn index(&self) -> usize {
        self.index
    }

    fn host_matches(&self, host: &str) -> bool {
        self.config.hosts.is_empty() || self.config.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// Why a route table could not be built: the route's index, the key and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteError {
    /// Index in `[[gateway.routes]]`.
    pub index: usize,
    /// The key at fault (`path`, `methods`, …).
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

/// What matching a request found.
#[derive(Debug)]
pub enum Matched<'t> {
    /// A route for host, path and method, with the captured path parameters.
    Route(&'t Arc<Route>, Vec<(Arc<str>, String)>),
    /// Host and path match routes, none of which lists the method; `allow` lists theirs.
    MethodNotAllowed {
        /// The `Allow` header value.
        allow: String,
    },
    /// No route for this host and path.
    NotFound,
}

/// The compiled routes, most specific first.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
}

/// The host a request names, lower-cased, without port; `[v6]` keeps its brackets.
pub fn host_without_port(host: &str) -> String {
    let h = if host.starts_with('[') {
        host.split_once(']').map_or(host, |(a, _)| &host[..a.len() + 1])
    } else {
        host.rsplit_once(':').map_or(host, |(a, _)| a)
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

impl RouteTable {
    /// Compiles and orders the routes; reports every bad route.
    pub fn build(configs: &[RouteConfig]) -> Result<RouteTable, Vec<RouteError>> {
        let mut errors = Vec::new();
        let mut routes: Vec<Arc<Route>> = Vec::new();
        for (index, c) in configs.iter().enumerate() {
            let pattern = match Pattern::parse(&c.path, c.case_insensitive) {
                Ok(p) => p,
                Err(message) => {
                    errors.push(RouteError { index, key: "path", message });
                    continue;
                }
            };
            let mut methods = Vec::new();
            for m in &c.methods {
                match Method::from_bytes(m.as_bytes()) {
                    Ok(method) if m.bytes().all(|b| b.is_ascii_uppercase()) => methods.push(method),
                    _ => errors.push(RouteError { index, key: "methods", message: format!("\"{m}\" is not an upper-case method name") }),
                }
            }
            if c.methods.is_empty() {
                errors.push(RouteError { index, key: "methods", message: "must list at least one method (e.g. [\"GET\"])".into() });
            }
            routes.push(Arc::new(Route { config: c.clone(), index, pattern, methods }));
        }
        // Overlaps: same host scope, same paths, a shared method.
        for (i, a) in routes.iter().enumerate() {
            for b in &routes[..i] {
                let hosts_overlap = (a.config.hosts.is_empty() && b.config.hosts.is_empty())
                    || a.config.hosts.iter().any(|h| b.config.hosts.iter().any(|g| g.eq_ignore_ascii_case(h)));
                let shared = a.methods.iter().find(|m| b.methods.contains(m));
                if hosts_overlap
                    && a.pattern.same_paths(&b.pattern)
                    && let Some(m) = shared
                {
                    errors.push(RouteError {
                        index: a.index,
                        key: "path",
                        message: format!("overlaps route \"{}\" (same hosts, path and method {m}): which one applies would be ambiguous", b.config.id),
                    });
                }
            }
        }
        let mut seen_ids: Vec<&str> = Vec::new();
        for (index, c) in configs.iter().enumerate() {
            if seen_ids.contains(&c.id.as_str()) {
                errors.push(RouteError { index, key: "id", message: format!("\"{}\" is used by another route", c.id) });
            }
            seen_ids.push(&c.id);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        routes.sort_by(|a, b| {
            let host = (!b.config.hosts.is_empty()).cmp(&!a.config.hosts.is_empty());
            host.then_with(|| b.pattern.specificity(&a.pattern))
        });
        Ok(RouteTable { routes })
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Finds the route for a request (module doc). `host` comes without port, lower-cased
    /// (`host_without_port`); `path` is normalised.
    pub fn find(&self, host: &str, path: &str, method: &Method) -> Matched<'_> {
        let mut first: Option<&Arc<Route>> = None;
        let mut allow: Vec<&Method> = Vec::new();
        for route in &self.routes {
            if let Some(best) = first {
                // Routes are ordered; the candidates of the winning specificity are adjacent.
                if best.config.hosts.is_empty() != route.config.hosts.is_empty() || best.pattern.specificity(&route.pattern) != Ordering::Equal {
                    break;
                }
            }
            if !route.host_matches(host) {
                continue;
            }
            let Some(params) = route.pattern.matches(path) else { continue };
            if route.allows(method) {
                return Matched::Route(route, params);
            }
            first.get_or_insert(route);
            allow.extend(route.methods.iter());
        }
        if first.is_none() {
            return Matched::NotFound;
        }
        let mut names: Vec<&str> = allow.iter().map(|m| m.as_str()).collect();
        if names.contains(&"GET") {
            names.push("HEAD");
        }
        names.sort_unstable();
        names.dedup();
        Matched::MethodNotAllowed { allow: names.join(", ") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::Upstream;

    fn route(id: &str, hosts: &[&str], path: &str, methods: &[&str]) -> RouteConfig {
        RouteConfig { hosts: hosts.iter().map(|h| h.to_string()).collect(), ..RouteConfig::new(id, path, methods, Upstream::parse("http://127.0.0.1:1").unwrap()) }
    }

    fn id(t: &RouteTable, host: &str, path: &str, method: Method) -> String {
        match t.find(host, path, &method) {
            Matched::Route(r, params) => {
                let p: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                if p.is_empty() { r.config.id.clone() } else { format!("{} {}", r.config.id, p.join(",")) }
            }
            Matched::MethodNotAllowed { allow } => format!("405 {allow}"),
            Matched::NotFound => "404".into(),
        }
    }

    #[test]
    fn the_most_specific_path_wins_whatever_the_order() {
        let mut routes = vec![
            route("all", &[], "/*", &["GET"]),
            route("api", &[], "/api/", &["GET"]),
            route("car", &[], "/cars/{vin}", &["GET"]),
            route("cars", &[], "/cars/*", &["GET"]),
            route("mine", &[], "/cars/mine", &["GET"]),
            route("admin", &[], "/api/admin/*", &["GET"]),
            route("trips", &[], "/cars/{vin}/trips/{trip}", &["GET"]),
        ];
        for _ in 0..2 {
            let t = RouteTable::build(&routes).unwrap();
            assert_eq!(id(&t, "h", "/cars/1HGCM", Method::GET), "car vin=1HGCM");
            assert_eq!(id(&t, "h", "/cars/mine", Method::GET), "mine");
            assert_eq!(id(&t, "h", "/cars/1/trips/7", Method::GET), "trips vin=1,trip=7");
            assert_eq!(id(&t, "h", "/cars/1/other", Method::GET), "cars");
            assert_eq!(id(&t, "h", "/cars/", Method::GET), "cars", "an empty segment is no {{vin}}");
            assert_eq!(id(&t, "h", "/api/admin/x", Method::GET), "admin");
            assert_eq!(id(&t, "h", "/api/admin/", Method::GET), "admin");
            assert_eq!(id(&t, "h", "/api/admin", Method::GET), "api");
            assert_eq!(id(&t, "h", "/api", Method::GET), "all", "a prefix /api/ does not match /api");
            assert_eq!(id(&t, "h", "/", Method::GET), "all");
            routes.reverse();
        }
    }

    #[test]
    fn hosts_match_exactly_ignoring_case_and_port_and_beat_any_host() {
        let t = RouteTable::build(&[route("any", &[], "/*", &["GET"]), route("a", &["api.example"], "/*", &["GET"])]).unwrap();
        assert_eq!(id(&t, &host_without_port("API.Example:8443"), "/x", Method::GET), "a");
        assert_eq!(id(&t, &host_without_port("api.example."), "/x", Method::GET), "a");
        assert_eq!(id(&t, "other.example", "/x", Method::GET), "any");
        assert_eq!(id(&t, "api.example.evil", "/x", Method::GET), "any");
        assert_eq!(host_without_port("[::1]:8000"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
        let only = RouteTable::build(&[route("a", &["api.example"], "/*", &["GET"])]).unwrap();
        assert_eq!(id(&only, "other.example", "/x", Method::GET), "404");
    }

    #[test]
    fn the_method_is_decided_by_the_most_specific_path_alone() {
        let t = RouteTable::build(&[
            route("read", &[], "/api/*", &["GET"]),
            route("write", &[], "/api/*", &["POST", "PUT"]),
            route("item", &[], "/api/items/{id}", &["GET"]),
            route("all", &[], "/*", &["DELETE"]),
        ])
        .unwrap();
        assert_eq!(id(&t, "h", "/api/x", Method::POST), "write");
        assert_eq!(id(&t, "h", "/api/x", Method::HEAD), "read", "GET implies HEAD");
        assert_eq!(id(&t, "h", "/api/x", Method::DELETE), "405 GET, HEAD, POST, PUT");
        assert_eq!(id(&t, "h", "/api/items/9", Method::DELETE), "405 GET, HEAD", "no fall-back to /api/* or /*");
    }

    #[test]
    fn case_insensitive_routes_match_any_case() {
        let mut r = route("ci", &[], "/Api/Admin", &["GET"]);
        r.case_insensitive = true;
        let t = RouteTable::build(&[r, route("cs", &[], "/docs/*", &["GET"])]).unwrap();
        assert_eq!(id(&t, "h", "/API/ADMIN", Method::GET), "ci");
        assert_eq!(id(&t, "h", "/api/admin", Method::GET), "ci");
        assert_eq!(id(&t, "h", "/DOCS/x", Method::GET), "404");
    }

    #[test]
    fn bad_patterns_and_overlaps_are_reported_with_their_route() {
        for bad in ["api", "/a//b", "/a/{}", "/a/{1x}", "/a/{x}/{x}", "/a/b*", "/a/*/c", "/a/./b", "/a/%61", "/a;b", "/a/{x"] {
            let e = RouteTable::build(&[route("r", &[], bad, &["GET"])]).unwrap_err();
            assert_eq!((e[0].index, e[0].key), (0, "path"), "{bad}");
        }
        let e = RouteTable::build(&[route("r", &[], "/a", &["get"])]).unwrap_err();
        assert_eq!(e[0].key, "methods");
        let e = RouteTable::build(&[route("r", &[], "/a", &[])]).unwrap_err();
        assert_eq!(e[0].key, "methods");
        let e = RouteTable::build(&[route("a", &[], "/x/{id}", &["GET"]), route("b", &[], "/x/{other}", &["GET", "POST"])]).unwrap_err();
        assert_eq!((e[0].index, e[0].key), (1, "path"));
        assert!(e[0].message.contains("\"a\""));
        let e = RouteTable::build(&[route("a", &[], "/x", &["GET"]), route("a", &["h"], "/y", &["GET"])]).unwrap_err();
        assert_eq!((e[0].index, e[0].key), (1, "id"));
        // Disjoint methods or hosts are fine.
        assert!(RouteTable::build(&[route("a", &[], "/x/*", &["GET"]), route("b", &[], "/x/*", &["POST"])]).is_ok());
        assert!(RouteTable::build(&[route("a", &["h1"], "/x", &["GET"]), route("b", &["h2"], "/x", &["GET"])]).is_ok());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Matching never panics, and a matched route's pattern really matches the path.
            #[test]
            fn matching_arbitrary_normalised_paths(raw in "/[a-z{}/.%0-9]{0,30}") {
                let t = RouteTable::build(&[
                    route("a", &[], "/a/{x}", &["GET"]),
                    route("b", &[], "/a/*", &["GET"]),
                    route("c", &[], "/{y}/b", &["GET"]),
                ]).unwrap();
                if let Ok(p) = crate::gateway::path::normalise(&raw)
                    && let Matched::Route(r, params) = t.find("h", &p, &Method::GET)
                {
                    prop_assert!(r.pattern.matches(&p).is_some());
                    prop_assert!(params.iter().all(|(_, v)| !v.is_empty() && !v.contains('/')));
                }
            }

            /// Against a brute-force oracle: for random route sets and requests, `find` answers
            /// what checking every route pairwise says — the most specific matching route
            /// (hosts first) that lists the method, else 405 from that group, else 404.
            #[test]
            fn find_agrees_with_a_brute_force_oracle(
                specs in prop::collection::vec((
                    prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("{p}")], 0..3),
                    any::<bool>(),
                    any::<bool>(),
                    prop::sample::subsequence(vec!["GET", "POST", "PUT"], 1..3),
                ), 1..6),
                requests in prop::collection::vec((
                    prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c"), Just("")], 0..4),
                    any::<bool>(),
                    prop::sample::select(vec![Method::GET, Method::POST, Method::PUT, Method::DELETE]),
                ), 1..8),
            ) {
                let configs: Vec<RouteConfig> = specs
                    .iter()
                    .enumerate()
                    .map(|(i, (segs, prefix, with_host, methods))| {
                        let segs: Vec<String> = segs.iter().enumerate().map(|(j, s)| if *s == "{p}" { format!("{{p{j}}}") } else { s.to_string() }).collect();
                        let mut path = format!("/{}", segs.join("/"));
                        if *prefix && path != "/" {
                            path.push_str("/*");
                        }
                        let hosts: &[&str] = if *with_host { &["h"] } else { &[] };
                        route(&format!("r{i}"), hosts, &path, methods)
                    })
                    .collect();
                let Ok(table) = RouteTable::build(&configs) else { return Ok(()) };
                for (segs, other_host, method) in requests {
                    let path = format!("/{}", segs.join("/"));
                    let host = if other_host { "x" } else { "h" };
                    let matching: Vec<&Arc<Route>> = table
                        .routes
                        .iter()
                        .filter(|r| r.host_matches(host) && r.pattern.matches(&path).is_some())
                        .collect();
                    let key = |r: &Route| (!r.config.hosts.is_empty(), r.pattern.clone());
                    let best = matching.iter().copied().filter(|r| {
                        matching.iter().all(|o| {
                            let (rh, rp) = key(r);
                            let (oh, op) = key(o);
                            (rh && !oh) || (rh == oh && rp.specificity(&op) != Ordering::Less)
                        })
                    });
                    let top: Vec<&Arc<Route>> = best.collect();
                    let expected = if matching.is_empty() {
                        "404".to_owned()
                    } else if let Some(r) = top.iter().find(|r| r.allows(&method)) {
                        r.config.id.clone()
                    } else {
                        "405".to_owned()
                    };
                    let got = match table.find(host, &path, &method) {
                        Matched::Route(r, _) => r.config.id.clone(),
                        Matched::MethodNotAllowed { .. } => "405".to_owned(),
                        Matched::NotFound => "404".to_owned(),
                    };
                    prop_assert_eq!(got, expected, "{} {} on {:?}", method, path, configs.iter().map(|c| (&c.path, &c.hosts, &c.methods)).collect::<Vec<_>>());
                }
            }
        }
    }
}
