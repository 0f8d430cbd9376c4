//! `[gateway]` and `[[gateway.routes]]` → [`gateway::Config`]. The route table is compiled
//! here with the gateway's own code (`RouteTable::build`), so `warden config check` reports
//! exactly what `serve` would refuse, each error under its key (`gateway.routes[2].path`).

use super::raw::Reader;
use crate::gateway::route::RouteTable;
use crate::gateway::{self, Auth, RouteConfig, Timeouts, Upstream};
use crate::http::serve::ServeConfig;
use crate::http::tls::TlsFiles;
use std::time::Duration;

const MIN: Duration = Duration::from_millis(10);
const MAX: Duration = Duration::from_secs(24 * 3600);

pub(super) fn resolve(mut r: Reader<'_>, http: &ServeConfig) -> gateway::Config {
    let listen = r.socket_addr("listen", "127.0.0.1:8000");
    let cert = r.string("tls_cert_file", "");
    let key = r.string("tls_key_file", "");
    let tls = match (cert.is_empty(), key.is_empty()) {
        (true, true) => None,
        (false, false) => Some(TlsFiles { cert: cert.into(), key: key.into() }),
        (false, true) => {
            r.invalid("tls_key_file", "required with tls_cert_file");
            None
        }
        (true, false) => {
            r.invalid("tls_cert_file", "required with tls_key_file");
            None
        }
    };
    let timeouts = Timeouts {
        connect: r.duration("connect_timeout", "5s"),
        first_byte: r.duration("first_byte_timeout", "25s"),
        total: r.duration("total_timeout", "60s"),
    };
    let mut routes = Vec::new();
    let mut indexes = Vec::new();
    // `routes = []` in the example file is the same as none.
    r.tables("routes", |i, route| {
        if let Some(c) = resolve_route(route, timeouts, http) {
            routes.push(c);
            indexes.push(i);
        }
    });
    // Against http.request_timeout only when a route uses the defaults: a shorter listener
    // timeout on a deployment without routes is no error.
    let used = routes.iter().any(|c| c.timeouts.first_byte == timeouts.first_byte);
    check_timeouts(&mut r, &timeouts, used.then_some(http));
    if let Err(errors) = RouteTable::build(&routes) {
        for e in errors {
            r.invalid(&format!("routes[{}].{}", indexes[e.index], e.key), e.message);
        }
    }
    // The CA files are read as `serve` will read them (the system roots are not: they are
    // the machine's, not the configuration's).
    for (route, i) in routes.iter().zip(&indexes) {
        if route.upstream.ca_file.is_some()
            && let Err(message) = gateway::proxy::roots(&route.upstream, &mut None)
        {
            r.invalid(&format!("routes[{i}].upstream_ca_file"), message);
        }
    }
    r.finish();
    gateway::Config { listen, tls, timeouts, routes }
}

fn check_timeouts(r: &mut Reader<'_>, t: &Timeouts, http: Option<&ServeConfig>) {
    for (key, v) in [("connect_timeout", t.connect), ("first_byte_timeout", t.first_byte), ("total_timeout", t.total)] {
        if !(MIN..=MAX).contains(&v) {
            r.invalid(key, "must be between 10ms and 24h");
        }
    }
    if t.first_byte > t.total {
        r.invalid("first_byte_timeout", "must not be longer than total_timeout");
    }
    // The listener answers 503 when a request's handler runs longer than this; the
    // gateway's own 504 must come first.
    if let Some(http) = http
        && t.first_byte >= http.request_timeout
    {
        r.invalid("first_byte_timeout", format!("must be shorter than http.request_timeout ({})", humantime::format_duration(http.request_timeout)));
    }
}

/// One route; `None` when a key was unusable (its error is recorded).
fn resolve_route(mut r: Reader<'_>, defaults: Timeouts, http: &ServeConfig) -> Option<RouteConfig> {
    let mut ok = true;
    let id = r.string("id", "");
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        r.invalid("id", "required: letters, digits, -, _ and . (e.g. \"orders-api\")");
        ok = false;
    }
    let hosts: Vec<String> = r.strings("hosts", &[]).into_iter().map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase()).collect();
    for h in &hosts {
        let valid = !h.is_empty()
            && (h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
                || (h.starts_with('[') && h.ends_with(']') && h[1..h.len() - 1].parse::<std::net::Ipv6Addr>().is_ok()));
        if !valid {
            r.invalid("hosts", format!("\"{h}\" is not a host name (no scheme, port or path)"));
            ok = false;
        }
    }
    if !r.has("path") {
        r.invalid("path", "required: a prefix (\"/api/\") or a template (\"/cars/{vin}\")");
        ok = false;
    }
    let path = r.string("path", "/");
    if !r.has("methods") {
        r.invalid("methods", "required: e.g. [\"GET\", \"POST\"]");
        ok = false;
    }
    let methods = r.strings("methods", &[]);
    let upstream_text = r.string("upstream", "");
    let upstream = match Upstream::parse(&upstream_text) {
        Ok(u) => Some(u),
        Err(why) => {
            r.invalid("upstream", if upstream_text.is_empty() { "required: e.g. \"http://127.0.0.1:9000\"".into() } else { why });
            None
        }
    };
    let ca_file = r.string("upstream_ca_file", "");
    let upstream = upstream.map(|mut u| {
        u.ca_file = (!ca_file.is_empty()).then(|| ca_file.clone().into());
        u
    });
    if !ca_file.is_empty() && upstream.as_ref().is_some_and(|u| !u.tls) {
        r.invalid("upstream_ca_file", "only for an https:// upstream");
    }
    let case_insensitive = r.bool("case_insensitive", false);
    let http2 = r.bool("http2", false);
    // Deny by default: a route must name how callers authenticate. Until authentication
    // policies exist, the only choice is the explicit opt-out.
    let anonymous = r.bool("anonymous", false);
    if !anonymous {
        r.invalid(
            "anonymous",
            "the route has no authentication: set anonymous = true to let anyone call it (deny by default)",
        );
        ok = false;
    }
    let timeouts = Timeouts {
        connect: r.duration_opt("connect_timeout").unwrap_or(defaults.connect),
        first_byte: r.duration_opt("first_byte_timeout").unwrap_or(defaults.first_byte),
        total: r.duration_opt("total_timeout").unwrap_or(defaults.total),
    };
    if timeouts != defaults {
        check_timeouts(&mut r, &timeouts, Some(http));
    }
    r.finish();
    Some(RouteConfig { id, hosts, path, methods, upstream: upstream?, case_insensitive, http2, auth: Auth::Anonymous, timeouts }).filter(|_| ok)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, Overrides};

    fn load(text: &str) -> Result<Config, Vec<ConfigError>> {
        Config::from_toml(Some(text), [], &Overrides::default()).0
    }

    const ROUTE: &str = "version = 1\n[[gateway.routes]]\nid = \"cars\"\npath = \"/cars/{vin}\"\nmethods = [\"GET\"]\nupstream = \"http://127.0.0.1:9000/v1\"\nanonymous = true\n";

    #[test]
    fn a_route_resolves_with_the_default_timeouts() {
        let c = load(ROUTE).unwrap();
        let r = &c.gateway.routes[0];
        assert_eq!((r.id.as_str(), r.path.as_str(), r.upstream.authority.as_str(), r.upstream.base.as_str()), ("cars", "/cars/{vin}", "127.0.0.1:9000", "/v1"));
        assert_eq!(r.timeouts, c.gateway.timeouts);
        let c = load(&format!("{ROUTE}total_timeout = \"2m\"\nhosts = [\"API.example.\"]\n")).unwrap();
        assert_eq!(c.gateway.routes[0].timeouts.total, std::time::Duration::from_secs(120));
        assert_eq!(c.gateway.routes[0].hosts, ["api.example"]);
    }

    #[test]
    fn deny_by_default_a_route_must_opt_in_to_anonymous_access() {
        for text in [ROUTE.replace("anonymous = true\n", ""), ROUTE.replace("anonymous = true", "anonymous = false")] {
            let errors = load(&text).unwrap_err();
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].key, "gateway.routes[0].anonymous");
            assert!(errors[0].message.contains("deny by default"));
        }
    }

    #[test]
    fn every_route_error_has_its_key_path() {
        // Alone, a first-byte timeout past the listener's request timeout is no error…
        assert!(load("version = 1\n[gateway]\nfirst_byte_timeout = \"40s\"\ntotal_timeout = \"1m\"\n").is_ok());
        // …but with routes that use it, it is.
        let text = "version = 1\n[gateway]\nfirst_byte_timeout = \"40s\"\n\
            [[gateway.routes]]\nid = \"a\"\npath = \"/a/./b\"\nmethods = [\"GET\"]\nupstream = \"ftp://x\"\nanonymous = true\nbogus = 1\n\
            [[gateway.routes]]\nid = \"b b\"\nmethods = [\"get\"]\nupstream = \"http://x\"\nanonymous = true\nhosts = [\"x:80\"]\n\
            [[gateway.routes]]\nid = \"c\"\npath = \"/c/{id}\"\nmethods = [\"GET\"]\nupstream = \"http://x\"\nanonymous = true\n\
            [[gateway.routes]]\nid = \"d\"\npath = \"/c/{other}\"\nmethods = [\"GET\"]\nupstream = \"http://x\"\nanonymous = true\n";
        let errors = load(text).unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "gateway.first_byte_timeout",
            "gateway.routes[0].upstream",
            "gateway.routes[0].bogus",
            "gateway.routes[1].id",
            "gateway.routes[1].hosts",
            "gateway.routes[1].path",
            "gateway.routes[3].path",
        ] {
            assert!(keys.contains(&k), "missing {k} in {errors:?}");
        }
        // An https upstream's CA file must hold certificates.
        let ca = "version = 1\n[[gateway.routes]]\nid = \"a\"\npath = \"/a/\"\nmethods = [\"GET\"]\nupstream = \"https://x\"\nanonymous = true\nupstream_ca_file = \"/nonexistent/ca.pem\"\n";
        let errors = load(ca).unwrap_err();
        assert_eq!(errors[0].key, "gateway.routes[0].upstream_ca_file");
        let errors = load(&ca.replace("https://x", "http://x")).unwrap_err();
        assert_eq!(errors[0].key, "gateway.routes[0].upstream_ca_file", "only for https");
        // The bad pattern of route 0 is reported once its upstream is fixed.
        let errors = load(&text.replace("ftp://x", "http://x")).unwrap_err();
        assert!(errors.iter().any(|e| e.key == "gateway.routes[0].path"), "{errors:?}");
    }
}
