//! `[gateway]` and `[[gateway.routes]]` → [`gateway::Config`]. The route table is compiled
//! here with the gateway's own code (`RouteTable::build`), so `warden config check` reports
//! exactly what `serve` would refuse, each error under its key (`gateway.routes[2].path`).

use super::raw::Reader;
use crate::gateway::route::RouteTable;
use crate::gateway::{
    self, AttestationConfig, Auth, ClaimCondition, ClientSecret, Cors, Csrf, IdentityHeaders, IntrospectionConfig, IssuerConfig, MissingKey, ObjectRule,
    ParamSource, RateKey, RateLimitConfig, ResponseRules, RouteConfig, Rules, SecurityHeaders, Timeouts, Upstream,
};
use crate::gateway::response::{header_name, is_header_value};
use crate::jose::Alg;
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
    let max_token_size = r.uint("max_token_size", 8192, 1024..=65536) as usize;
    let token_cache_size = r.uint("token_cache_size", 10_000, 1..=10_000_000) as usize;
    let revocation_poll_interval = r.duration("revocation_poll_interval", "500ms");
    if !(Duration::from_millis(50)..=Duration::from_secs(60)).contains(&revocation_poll_interval) {
        r.invalid("revocation_poll_interval", "must be between 50ms and 60s");
    }
    let jwks_refetch_cooldown = r.duration("jwks_refetch_cooldown", "30s");
    let ip_rules = resolve_ip_rules(&mut r);
    let dpop_proof_max_age = r.duration("dpop_proof_max_age", "60s");
    let access_log = r.bool("access_log", false);
    let config_watch_interval = r.duration("config_watch_interval", "1s");
    if !config_watch_interval.is_zero() && !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&config_watch_interval) {
        r.invalid("config_watch_interval", "must be 0s (reload on SIGHUP only) or between 100ms and 1h");
    }
    let api_key_header = r.string("api_key_header", "x-api-key").to_ascii_lowercase();
    if let Err(why) = check_api_key_header(&api_key_header) {
        r.invalid("api_key_header", why);
    }
    let rate_limit_max_keys = r.uint("rate_limit_max_keys", 100_000, 1_000..=100_000_000) as usize;
    let replay_memory = r.uint("replay_memory", 100_000, 1..=10_000_000) as usize;
    let public_url = resolve_public_url(&mut r);
    let security_headers = resolve_security_headers(r.section("security_headers"));
    let identity_headers = resolve_identity_headers(r.section("identity_headers"));
    let mut issuers = Vec::new();
    r.tables("issuers", |_, t| {
        if let Some(c) = resolve_issuer(t) {
            issuers.push(c);
        }
    });
    let mut names: Vec<&str> = Vec::new();
    for (i, c) in issuers.iter().enumerate() {
        if names.contains(&c.name.as_str()) {
            r.invalid(&format!("issuers[{i}].name"), format!("\"{}\" is used twice", c.name));
        }
        names.push(&c.name);
    }
    let mut routes = Vec::new();
    let mut indexes = Vec::new();
    // `routes = []` in the example file is the same as none.
    r.tables("routes", |i, route| {
        if let Some(c) = resolve_route(route, timeouts, http, &names) {
            routes.push(c);
            indexes.push(i);
        }
    });
    // An opaque token names no issuer: a route may send it to one introspection endpoint.
    for (route, i) in routes.iter().zip(&indexes) {
        let introspecting = route.auth.iter().filter(|a| matches!(a, Auth::Issuer(n) if issuers.iter().any(|c| &c.name == n && c.introspection.is_some()))).count();
        if introspecting > 1 {
            r.invalid(&format!("routes[{i}].auth"), "more than one issuer with an introspection_url: an opaque token would be shown to all of them; list one");
        }
    }
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
    gateway::Config {
        listen,
        tls,
        timeouts,
        routes,
        issuers,
        max_token_size,
        token_cache_size,
        revocation_poll_interval,
        jwks_refetch_cooldown,
        dpop_proof_max_age,
        ip_rules,
        access_log,
        config_watch_interval,
        api_key_header,
        rate_limit_max_keys,
        replay_memory,
        public_url,
        security_headers,
        identity_headers,
    }
}

/// `public_url`: `https://host[:port]`, no path, query or user.
fn resolve_public_url(r: &mut Reader<'_>) -> Option<String> {
    let text = r.string("public_url", "");
    if text.is_empty() {
        return None;
    }
    match url::Url::parse(&text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/" && u.query().is_none() && u.fragment().is_none() && u.username().is_empty() => {
            Some(text.trim_end_matches('/').to_owned())
        }
        _ => {
            r.invalid("public_url", "an origin such as \"https://api.example.com\" (scheme, host, optional port; no path)");
            None
        }
    }
}

/// A header name (RFC 9110 token) that is not one the gateway or HTTP itself gives a meaning.
fn check_api_key_header(name: &str) -> Result<(), String> {
    let token = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(format!("\"{name}\" is not a header name"));
    }
    let reserved = ["authorization", "host", "cookie", "connection", "content-length", "transfer-encoding", "te", "upgrade", "dpop", "forwarded"];
    if reserved.contains(&name) || name.starts_with("x-forwarded-") || name.starts_with("x-warden-") {
        return Err(format!("\"{name}\" has another meaning; use a header of its own, e.g. \"x-api-key\""));
    }
    Ok(())
}

/// `allow_ips` and `deny_ips`: CIDR blocks or single addresses.
fn resolve_ip_rules(r: &mut Reader<'_>) -> gateway::IpRules {
    let mut list = |key: &str| -> Vec<ipnet::IpNet> {
        let mut out = Vec::new();
        for text in r.strings(key, &[]) {
            let t = text.trim();
            let net = t.parse::<ipnet::IpNet>().ok().or_else(|| t.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from));
            match net {
                Some(n) => out.push(n.trunc()),
                None => r.invalid(key, format!("\"{t}\" is not an address or CIDR block (e.g. \"10.0.0.0/8\", \"2001:db8::/32\")")),
            }
        }
        out
    };
    let allow = list("allow_ips");
    let deny = list("deny_ips");
    gateway::IpRules { allow, deny }
}

/// One `[[gateway.issuers]]` entry; `None` when a key was unusable (its error is recorded).
fn resolve_issuer(mut r: Reader<'_>) -> Option<IssuerConfig> {
    let mut ok = true;
    let name = r.string("name", "");
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        r.invalid("name", "required: letters, digits, -, _ and . (routes say auth = [\"issuer:NAME\"])");
        ok = false;
    }
    let issuer = r.string("issuer", "");
    if issuer.is_empty() {
        r.invalid("issuer", "required: the exact iss of the issuer's tokens");
        ok = false;
    }
    let jwks_url = r.string("jwks_url", "");
    let introspection = resolve_introspection(&mut r, &mut ok);
    if jwks_url.is_empty() && introspection.is_some() {
        // Introspected only.
    } else if let Err(why) = Upstream::parse(&jwks_url) {
        r.invalid("jwks_url", if jwks_url.is_empty() { "required: e.g. \"https://idp.example/jwks\"".into() } else { why });
        ok = false;
    }
    let ca = r.string("jwks_ca_file", "");
    let jwks_ca_file = (!ca.is_empty()).then(|| std::path::PathBuf::from(ca));
    if let (Some(file), Ok(mut up)) = (&jwks_ca_file, Upstream::parse(&jwks_url)) {
        up.ca_file = Some(file.clone());
        if !up.tls {
            r.invalid("jwks_ca_file", "only for an https:// jwks_url");
            ok = false;
        } else if let Err(message) = gateway::proxy::roots(&up, &mut None) {
            r.invalid("jwks_ca_file", message);
            ok = false;
        }
    }
    let mut algorithms = Vec::new();
    for a in r.strings("algorithms", &["ES256", "RS256"]) {
        match Alg::parse(&a) {
            Some(alg) => algorithms.push(alg),
            None => {
                r.invalid("algorithms", format!("\"{a}\" is not one of ES256, RS256, PS256, EdDSA (never none or HS*)"));
                ok = false;
            }
        }
    }
    if algorithms.is_empty() {
        r.invalid("algorithms", "at least one algorithm");
        ok = false;
    }
    let audience = r.string("audience", "");
    if audience.is_empty() {
        r.invalid("audience", "required: the aud this issuer's tokens carry for these APIs");
        ok = false;
    }
    let types = r.strings("types", &[]);
    let clock_skew = r.duration("clock_skew", "60s");
    let refresh_interval = r.duration("refresh_interval", "5m");
    if refresh_interval < Duration::from_secs(1) {
        r.invalid("refresh_interval", "must be at least 1s");
        ok = false;
    }
    r.finish();
    ok.then_some(IssuerConfig { name, issuer, jwks_url, jwks_ca_file, algorithms, audience, types, clock_skew, refresh_interval, introspection })
}

/// The `introspection_*` keys of an issuer; `None` without `introspection_url`.
fn resolve_introspection(r: &mut Reader<'_>, ok: &mut bool) -> Option<IntrospectionConfig> {
    let url = r.string("introspection_url", "");
    let client_id = r.string("introspection_client_id", "");
    let secret_file = r.string("introspection_client_secret_file", "");
    let secret_env = r.string("introspection_client_secret_env", "");
    let ca = r.string("introspection_ca_file", "");
    let always = r.choice("introspect", "opaque", &["opaque", "always"]) == "always";
    let cache_max = r.duration("introspection_cache_max", "60s");
    let negative_cache = r.duration("introspection_negative_cache", "5s");
    if url.is_empty() {
        let given = [("introspection_client_id", &client_id), ("introspection_client_secret_file", &secret_file), ("introspection_client_secret_env", &secret_env), ("introspection_ca_file", &ca)];
        for (key, value) in given {
            if !value.is_empty() {
                r.invalid(key, "only with introspection_url");
                *ok = false;
            }
        }
        return None;
    }
    let mut good = true;
    let mut fail = |r: &mut Reader<'_>, key: &str, message: String| {
        r.invalid(key, message);
        good = false;
    };
    let up = match Upstream::parse(&url) {
        Ok(u) => Some(u),
        Err(why) => {
            fail(r, "introspection_url", why);
            None
        }
    };
    if client_id.is_empty() {
        fail(r, "introspection_client_id", "required with introspection_url: the gateway's client at the issuer".into());
    }
    let secret = match (secret_file.is_empty(), secret_env.is_empty()) {
        (false, true) => std::fs::read_to_string(&secret_file)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|e| ("introspection_client_secret_file", format!("{secret_file}: cannot read it: {}", e.kind()))),
        (true, false) => std::env::var(&secret_env).map_err(|_| ("introspection_client_secret_env", format!("the environment variable {secret_env} is not set"))),
        _ => Err(("introspection_client_secret_file", "exactly one of introspection_client_secret_file and introspection_client_secret_env".into())),
    };
    let secret = match secret {
        Ok(s) if !s.is_empty() => Some(s),
        Ok(_) => {
            let key = if secret_file.is_empty() { "introspection_client_secret_env" } else { "introspection_client_secret_file" };
            fail(r, key, "the secret is empty".into());
            None
        }
        Err((key, message)) => {
            fail(r, key, message);
            None
        }
    };
    let ca_file = (!ca.is_empty()).then(|| std::path::PathBuf::from(&ca));
    if let (Some(file), Some(mut up)) = (&ca_file, up.clone()) {
        up.ca_file = Some(file.clone());
        if !up.tls {
            fail(r, "introspection_ca_file", "only for an https:// introspection_url".into());
        } else if let Err(message) = gateway::proxy::roots(&up, &mut None) {
            fail(r, "introspection_ca_file", message);
        }
    }
    if cache_max > Duration::from_secs(3600) {
        fail(r, "introspection_cache_max", "at most 1h (an answer is never reused past the token's exp either)".into());
    }
    if negative_cache > Duration::from_secs(60) {
        fail(r, "introspection_negative_cache", "at most 60s".into());
    }
    if !good {
        *ok = false;
        return None;
    }
    Some(IntrospectionConfig { url, client_id, client_secret: ClientSecret::new(secret?), ca_file, always, cache_max, negative_cache })
}

/// `auth = [...]`, `audience`, and the authorization rules of a route.
fn resolve_auth(r: &mut Reader<'_>, path: &str, issuers: &[&str]) -> Option<(Vec<Auth>, Option<String>, Rules)> {
    let mut ok = true;
    let mut auth = Vec::new();
    for a in r.strings("auth", &[]) {
        match a.as_str() {
            "warden" => auth.push(Auth::Warden),
            "anonymous" => auth.push(Auth::Anonymous),
            "api_key" => auth.push(Auth::ApiKey),
            "basic" => auth.push(Auth::Basic),
            other => match other.strip_prefix("issuer:") {
                Some(name) if issuers.contains(&name) => auth.push(Auth::Issuer(name.to_owned())),
                Some(name) => {
                    r.invalid("auth", format!("no [[gateway.issuers]] entry is named \"{name}\""));
                    ok = false;
                }
                None => {
                    r.invalid("auth", format!("\"{other}\" is not \"warden\", \"issuer:NAME\", \"api_key\", \"basic\" or \"anonymous\""));
                    ok = false;
                }
            },
        }
    }
    if auth.is_empty() && ok {
        r.invalid(
            "auth",
            "the route has no authentication (deny by default): e.g. auth = [\"warden\"], or auth = [\"anonymous\"] to let anyone call it",
        );
        ok = false;
    }
    let audience = Some(r.string("audience", "")).filter(|a| !a.is_empty());
    let scopes = |r: &mut Reader<'_>, key: &str, ok: &mut bool| {
        let v = r.strings(key, &[]);
        if v.iter().any(|s| s.is_empty() || s.contains(' ')) {
            r.invalid(key, "each scope is one word");
            *ok = false;
        }
        v
    };
    let scopes_all = scopes(r, "scopes_all", &mut ok);
    let scopes_any = scopes(r, "scopes_any", &mut ok);
    let mut claims = Vec::new();
    r.tables("claims", |_, mut t| {
        let claim = t.string("claim", "");
        let (equals, contains) = (t.has("equals"), t.has("contains"));
        let value = if equals { t.string("equals", "") } else { t.string("contains", "") };
        if claim.is_empty() || equals == contains {
            t.invalid("claim", "each condition is { claim = \"NAME\", equals = \"VALUE\" } or { claim = \"NAME\", contains = \"VALUE\" }");
            ok = false;
        } else if equals {
            claims.push(ClaimCondition::Equals { claim, value });
        } else {
            claims.push(ClaimCondition::Contains { claim, value });
        }
        t.finish();
    });
    let mut objects = Vec::new();
    r.tables("objects", |_, mut t| {
        let source = match (t.has("param"), t.has("query")) {
            (true, false) => {
                let name = t.string("param", "");
                if !path.contains(&format!("{{{name}}}")) {
                    t.invalid("param", format!("the route's path has no {{{name}}}"));
                    ok = false;
                }
                Some(ParamSource::Path(name))
            }
            (false, true) => Some(ParamSource::Query(t.string("query", ""))),
            _ => None,
        };
        let (member, claim) = match (t.has("in"), t.has("equals")) {
            (true, false) => (true, t.string("in", "")),
            (false, true) => (false, t.string("equals", "")),
            _ => (false, String::new()),
        };
        match source {
            Some(source) if !claim.is_empty() => objects.push(ObjectRule { source, claim, member }),
            _ => {
                t.invalid("param", "each rule is { param = \"vin\", in = \"vins\" } or { query = \"user_id\", equals = \"sub\" }");
                ok = false;
            }
        }
        t.finish();
    });
    let rules = Rules { scopes_all, scopes_any, claims, objects };
    if !rules.is_empty() && !auth.iter().any(|a| matches!(a, Auth::Warden | Auth::Issuer(_))) && ok {
        r.invalid("auth", "authorization rules need a token: add \"warden\" or \"issuer:NAME\"");
        ok = false;
    }
    ok.then_some((auth, audience, rules))
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
fn resolve_route(mut r: Reader<'_>, defaults: Timeouts, http: &ServeConfig, issuers: &[&str]) -> Option<RouteConfig> {
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
    // Deny by default: a route must name how callers authenticate.
    let auth = resolve_auth(&mut r, &path, issuers);
    let timeouts = Timeouts {
        connect: r.duration_opt("connect_timeout").unwrap_or(defaults.connect),
        first_byte: r.duration_opt("first_byte_timeout").unwrap_or(defaults.first_byte),
        total: r.duration_opt("total_timeout").unwrap_or(defaults.total),
    };
    if timeouts != defaults {
        check_timeouts(&mut r, &timeouts, Some(http));
    }
    let ip_rules = resolve_ip_rules(&mut r);
    let resource = resolve_resource(&mut r, auth.as_ref().map(|(a, _, _)| a.as_slice()), &mut ok);
    let anonymous_only = auth.as_ref().is_some_and(|(a, _, _)| a.iter().all(|a| *a == Auth::Anonymous));
    let rate_limits = resolve_rate_limits(&mut r, anonymous_only);
    let attestation = if r.has("attestation") { resolve_attestation(r.section("attestation"), &mut ok) } else { None };
    if attestation.is_some() && auth.as_ref().is_some_and(|(a, _, _)| a.iter().all(|a| *a == Auth::Anonymous)) {
        r.invalid("attestation", "an attestation is bound to the authenticated caller: add \"warden\" or \"issuer:NAME\" to auth");
        ok = false;
    }
    let validation = super::validate::resolve(&mut r, &methods);
    let anonymous = auth.as_ref().is_some_and(|(a, _, _)| a.contains(&Auth::Anonymous));
    let response = resolve_response(&mut r, &methods, anonymous);
    r.finish();
    let (auth, audience, rules) = auth?;
    let rate_limits = rate_limits?;
    let validation = validation?;
    Some(RouteConfig { id, hosts, path, methods, upstream: upstream?, case_insensitive, http2, auth, audience, rules, timeouts, ip_rules, resource, rate_limits, attestation, validation, response })
        .filter(|_| ok)
}

/// `resource` and `resource_name` (RFC 9728 protected-resource metadata).
fn resolve_resource(r: &mut Reader<'_>, auth: Option<&[Auth]>, ok: &mut bool) -> gateway::ProtectedResource {
    let identifier = Some(r.string("resource", "")).filter(|s| !s.is_empty());
    let name = Some(r.string("resource_name", "")).filter(|s| !s.is_empty());
    if let Some(id) = &identifier {
        if gateway::metadata::split_identifier(id).is_none() {
            r.invalid("resource", "an absolute http(s) URL without query, fragment or user info (e.g. \"https://api.example.com/cars\")");
            *ok = false;
        } else if auth.is_some_and(|a| a.iter().all(|a| *a == Auth::Anonymous)) {
            r.invalid("resource", "only for a route that accepts tokens (auth = [\"warden\"] or [\"issuer:NAME\"])");
            *ok = false;
        }
    }
    gateway::ProtectedResource { identifier, name }
}

/// A name usable as a structured-field string and in a bucket key.
fn plain_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `[[gateway.routes.rate_limits]]`; `None` when one was unusable (its errors are recorded).
fn resolve_rate_limits(r: &mut Reader<'_>, anonymous_only: bool) -> Option<Vec<RateLimitConfig>> {
    const RATES: std::ops::RangeInclusive<u64> = 1..=1_000_000_000;
    let mut ok = true;
    let mut limits: Vec<RateLimitConfig> = Vec::new();
    r.tables("rate_limits", |_, mut t| {
        let mut good = true;
        let key_text = t.string("key", "");
        let key = RateKey::parse(&key_text);
        if key.is_none() {
            t.invalid("key", format!("\"{key_text}\" is not one of consumer, client_id, sub, api_key, ip, route"));
            good = false;
        }
        let name = t.string("name", key.map_or("", |k| k.as_str()));
        if !plain_name(&name) {
            t.invalid("name", "letters, digits, -, _ and . (at most 64)");
            good = false;
        } else if limits.iter().any(|l| l.name == name) {
            t.invalid("name", format!("\"{name}\" is used twice in this route (give each limit its own name)"));
            good = false;
        }
        if !t.has("rate") {
            t.invalid("rate", "required: requests per `per`, e.g. rate = 100");
            good = false;
        }
        let rate = t.uint("rate", 1, RATES);
        if !t.has("per") {
            t.invalid("per", "required: the period of `rate`, e.g. per = \"1m\"");
            good = false;
        }
        let per = t.duration("per", "1s");
        if per.subsec_nanos() != 0 || !(Duration::from_secs(1)..=MAX).contains(&per) {
            t.invalid("per", "whole seconds between 1s and 24h");
            good = false;
        }
        let burst = t.has("burst").then(|| t.uint("burst", 1, RATES));
        let missing_key = match t.choice("missing_key", "refuse", &["refuse", "anonymous"]).as_str() {
            "anonymous" => MissingKey::Anonymous,
            _ => MissingKey::Refuse,
        };
        if anonymous_only && missing_key == MissingKey::Refuse && key.is_some_and(RateKey::needs_caller) {
            t.invalid("key", "the route takes no tokens, so every request would be refused: key = \"ip\" or \"route\", missing_key = \"anonymous\", or add \"warden\" / \"issuer:NAME\" to auth");
            good = false;
        }
        let plan_claim = Some(t.string("plan_claim", "")).filter(|c| !c.is_empty());
        let mut plans = Vec::new();
        if t.has("plans") {
            let mut p = t.section("plans");
            for plan in p.keys() {
                let rate = p.uint(&plan, 1, RATES);
                if plan.is_empty() {
                    p.invalid(&plan, "a plan needs a name");
                    good = false;
                }
                plans.push((plan, rate));
            }
            p.finish();
        }
        if plans.is_empty() && plan_claim.is_some() {
            t.invalid("plans", "plan_claim names plans: add their rates, e.g. plans = { gold = 1000 }");
            good = false;
        }
        t.finish();
        match key {
            Some(key) if good => limits.push(RateLimitConfig { name, key, rate, per, burst, missing_key, plan_claim, plans }),
            _ => ok = false,
        }
    });
    ok.then_some(limits)
}

/// `[gateway.routes.attestation]`; the keys are checked by the gateway's own policy
/// constructor, as `serve` will.
fn resolve_attestation(mut r: Reader<'_>, ok: &mut bool) -> Option<AttestationConfig> {
    let mut good = true;
    let header = r.string("header", "x-app-attestation").to_ascii_lowercase();
    // RFC 9110 §5.1: a field name is a token.
    let token = !header.is_empty() && header.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token
        || ["authorization", "dpop", "cookie", "host"].contains(&header.as_str())
        || header.starts_with("x-warden-")
    {
        r.invalid("header", format!("\"{header}\" cannot carry attestations (a header name, not Authorization, DPoP, Cookie, Host or x-warden-*)"));
        good = false;
    }
    let file = r.string("jwks_file", "");
    let inline = r.string("jwks", "");
    let jwks = match (file.is_empty(), inline.is_empty()) {
        (false, true) => std::fs::read_to_string(&file)
            .map_err(|e| ("jwks_file", format!("{file}: cannot read it: {}", e.kind())))
            .and_then(|t| serde_json::from_str(&t).map_err(|_| ("jwks_file", format!("{file}: not JSON")))),
        (true, false) => serde_json::from_str(&inline).map_err(|_| ("jwks", "not a JSON JWK Set".to_owned())),
        _ => Err(("jwks_file", "exactly one of jwks_file and jwks (the attestation service's public keys)".to_owned())),
    };
    let jwks: serde_json::Value = match jwks {
        Ok(v) => v,
        Err((key, message)) => {
            r.invalid(key, message);
            good = false;
            serde_json::Value::Null
        }
    };
    let jwks_key = if file.is_empty() { "jwks" } else { "jwks_file" };
    let mut algorithms = Vec::new();
    for a in r.strings("algorithms", &["ES256", "EdDSA"]) {
        match Alg::parse(&a) {
            Some(alg) => algorithms.push(alg),
            None => {
                r.invalid("algorithms", format!("\"{a}\" is not one of ES256, RS256, PS256, EdDSA"));
                good = false;
            }
        }
    }
    let issuer = r.string("issuer", "");
    if issuer.is_empty() {
        r.invalid("issuer", "required: the attestation service's exact iss");
        good = false;
    }
    let audience = r.string("audience", "");
    if audience.is_empty() {
        r.invalid("audience", "required: the aud attestations for this API carry");
        good = false;
    }
    let max_age = r.duration("max_age", "5m");
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&max_age) {
        r.invalid("max_age", "must be between 1s and 1h");
        good = false;
    }
    let client_claim = r.string("client_claim", "sub");
    if client_claim.is_empty() {
        r.invalid("client_claim", "required: the claim naming the app");
        good = false;
    }
    let bind_token = r.bool("bind_token", false);
    let clock_skew = r.duration("clock_skew", "30s");
    let cfg = AttestationConfig { header, jwks, algorithms, issuer, audience, max_age, client_claim, bind_token, clock_skew };
    if good && let Err(message) = gateway::attestation::Attest::new(&cfg) {
        r.invalid(jwks_key, message);
        good = false;
    }
    r.finish();
    if !good {
        *ok = false;
    }
    good.then_some(cfg)
}

/// `[gateway.security_headers]`.
fn resolve_security_headers(mut r: Reader<'_>) -> SecurityHeaders {
    let d = SecurityHeaders::default();
    let hsts = r.string("hsts", &d.hsts);
    if !hsts.is_empty() && (!hsts.trim_start().to_ascii_lowercase().starts_with("max-age=") || !is_header_value(&hsts)) {
        r.invalid("hsts", "a Strict-Transport-Security value such as \"max-age=31536000; includeSubDomains\", or \"\" for none");
    }
    let referrer_policy = r.string("referrer_policy", &d.referrer_policy);
    const POLICIES: [&str; 8] = [
        "no-referrer",
        "no-referrer-when-downgrade",
        "origin",
        "origin-when-cross-origin",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    ];
    if !referrer_policy.split(',').all(|p| POLICIES.contains(&p.trim())) {
        r.invalid("referrer_policy", format!("one of {}", POLICIES.join(", ")));
    }
    let no_store_authenticated = r.bool("no_store_authenticated", d.no_store_authenticated);
    r.finish();
    SecurityHeaders { hsts, referrer_policy, no_store_authenticated }
}

/// `[gateway.identity_headers]`: valid, distinct names that no HTTP machinery owns.
fn resolve_identity_headers(mut r: Reader<'_>) -> IdentityHeaders {
    const RESERVED: [&str; 16] = [
        "authorization", "cookie", "host", "content-length", "content-type", "transfer-encoding", "connection", "te", "upgrade",
        "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-request-id", "dpop", "proxy-authorization",
    ];
    let d = IdentityHeaders::default();
    let name = |r: &mut Reader<'_>, key: &str, default: &str| {
        let text = r.string(key, default);
        match header_name(&text) {
            Some(n) if !RESERVED.contains(&n.as_str()) => Some(n),
            _ => {
                r.invalid(key, format!("\"{text}\" is not a header name the gateway may set (e.g. \"x-user-id\")"));
                None
            }
        }
    };
    let sub = name(&mut r, "sub", d.sub.as_str()).unwrap_or_else(|| d.sub.clone());
    let client_id = name(&mut r, "client_id", d.client_id.as_str()).unwrap_or_else(|| d.client_id.clone());
    let scope = name(&mut r, "scope", d.scope.as_str()).unwrap_or_else(|| d.scope.clone());
    if sub == client_id || sub == scope || client_id == scope {
        r.invalid("scope", "sub, client_id and scope must be three different headers");
    }
    r.finish();
    IdentityHeaders { sub, client_id, scope }
}

/// A route's response and browser rules (`scrub_errors`, `response_schema`,
/// `response_fields`, `response_max_body`, `cors`, `csrf`). `csrf` defaults to `"origin"` on
/// routes that let anonymous callers in (whose upstream may authenticate by cookie), `"off"`
/// on token-only routes (immune: a browser adds no `Authorization` to a forged request).
fn resolve_response(r: &mut Reader<'_>, methods: &[String], anonymous: bool) -> ResponseRules {
    let d = ResponseRules::default();
    let scrub_errors = r.bool("scrub_errors", d.scrub_errors);
    // Compiled as a JSON Schema like the validation schemas (an inline table, JSON text, or
    // { file = "..." }); the filter then reads its properties.
    let mut schema_ok = true;
    let schema = super::validate::schema(r, "response_schema", &mut schema_ok);
    let fields = r.strings("response_fields", &[]);
    let max_body = r.uint("response_max_body", d.max_body as u64, 1024..=64 << 20) as usize;
    let cors = r.has("cors").then(|| resolve_cors(r.section("cors"), methods));
    let csrf = match r.choice("csrf", if anonymous { "origin" } else { "off" }, &["off", "origin"]).as_str() {
        "origin" => Csrf::Origin,
        _ => Csrf::Off,
    };
    let rules = ResponseRules { scrub_errors, schema, fields, max_body, cors: cors.flatten(), csrf };
    if let Err((key, message)) = rules.policies() {
        r.invalid(key, message);
    }
    rules
}

/// `cors = { origins, methods, headers, expose_headers, credentials, max_age }`.
fn resolve_cors(mut r: Reader<'_>, route_methods: &[String]) -> Option<Cors> {
    let mut ok = true;
    let credentials = r.bool("credentials", false);
    let mut origins = Vec::new();
    for o in r.strings("origins", &[]) {
        if o == "*" {
            if credentials {
                r.invalid("origins", "\"*\" cannot go with credentials = true: list the origins");
                ok = false;
            }
            origins.push(o);
        } else {
            match gateway::cors::parse_origin(&o) {
                Ok(origin) => origins.push(origin),
                Err(message) => {
                    r.invalid("origins", message);
                    ok = false;
                }
            }
        }
    }
    if origins.is_empty() && ok {
        r.invalid("origins", "required: the origins whose pages may call the route, e.g. [\"https://app.example\"]");
        ok = false;
    }
    let defaults: Vec<&str> = route_methods.iter().map(String::as_str).collect();
    let methods = r.strings("methods", &defaults);
    for m in &methods {
        let served = route_methods.contains(m) || (m == "HEAD" && route_methods.iter().any(|x| x == "GET"));
        if !served {
            r.invalid("methods", format!("\"{m}\" is not one of the route's methods"));
            ok = false;
        }
    }
    let names = |r: &mut Reader<'_>, key: &str, ok: &mut bool| -> Vec<String> {
        let list: Vec<String> = r.strings(key, &[]).into_iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        if let Some(bad) = list.iter().find(|h| header_name(h).is_none() || *h == "*") {
            r.invalid(key, format!("\"{bad}\" is not a header name"));
            *ok = false;
        }
        list
    };
    let headers = names(&mut r, "headers", &mut ok);
    let expose_headers = names(&mut r, "expose_headers", &mut ok);
    let max_age = r.duration("max_age", "10m");
    if max_age > Duration::from_secs(24 * 3600) {
        r.invalid("max_age", "at most 24h");
        ok = false;
    }
    r.finish();
    ok.then_some(Cors { origins, methods, headers, expose_headers, credentials, max_age })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, Overrides};
    use crate::gateway::{Auth, Csrf, MissingKey, ObjectRule, ParamSource, RateKey};
    use crate::jose::Alg;
    use std::time::Duration;

    fn load(text: &str) -> Result<Config, Vec<ConfigError>> {
        Config::from_toml(Some(text), [], &Overrides::default()).0
    }

    const ROUTE: &str = "version = 1\n[[gateway.routes]]\nid = \"cars\"\npath = \"/cars/{vin}\"\nmethods = [\"GET\"]\nupstream = \"http://127.0.0.1:9000/v1\"\nauth = [\"anonymous\"]\n";

    #[test]
    fn ip_rules_take_addresses_and_cidr_blocks_and_name_a_bad_one() {
        let c = load(&format!("{ROUTE}allow_ips = [\"198.51.100.7\", \"2001:db8::/32\"]\n")).unwrap();
        let allow: Vec<String> = c.gateway.routes[0].ip_rules.allow.iter().map(|n| n.to_string()).collect();
        assert_eq!(allow, ["198.51.100.7/32", "2001:db8::/32"]);
        let text = ROUTE.replace("version = 1\n", "version = 1\n[gateway]\ndeny_ips = [\"10.0.0.0/33\"]\n") + "allow_ips = [\"not-an-ip\"]\n";
        let keys: Vec<String> = load(&text).unwrap_err().iter().map(|e| e.key.clone()).collect();
        assert!(keys.contains(&"gateway.deny_ips".to_owned()), "{keys:?}");
        assert!(keys.contains(&"gateway.routes[0].allow_ips".to_owned()), "{keys:?}");
    }

    #[test]
    fn consumer_kinds_and_the_api_key_header_resolve_and_a_bad_header_is_named() {
        let c = load(&ROUTE.replace("[\"anonymous\"]", "[\"api_key\", \"basic\"]")).unwrap();
        assert_eq!(c.gateway.routes[0].auth, [Auth::ApiKey, Auth::Basic]);
        assert_eq!(c.gateway.api_key_header, "x-api-key");
        let c = load(&ROUTE.replace("version = 1\n", "version = 1\n[gateway]\napi_key_header = \"X-App-Key\"\n")).unwrap();
        assert_eq!(c.gateway.api_key_header, "x-app-key");
        for bad in ["authorization", "x api key", "", "x-forwarded-key", "x-warden-sub"] {
            let text = ROUTE.replace("version = 1\n", &format!("version = 1\n[gateway]\napi_key_header = \"{bad}\"\n"));
            let errors = load(&text).unwrap_err();
            assert_eq!(errors[0].key, "gateway.api_key_header", "{bad}: {errors:?}");
        }
        // Consumers carry no token: scopes and claim rules need one.
        let errors = load(&format!("{}scopes_all = [\"a\"]\n", ROUTE.replace("[\"anonymous\"]", "[\"api_key\"]"))).unwrap_err();
        assert!(errors[0].message.contains("need a token"), "{errors:?}");
    }

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
    fn deny_by_default_a_route_must_name_its_authentication() {
        for text in [ROUTE.replace("auth = [\"anonymous\"]\n", ""), ROUTE.replace("[\"anonymous\"]", "[]")] {
            let errors = load(&text).unwrap_err();
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].key, "gateway.routes[0].auth");
            assert!(errors[0].message.contains("deny by default"));
        }
        let errors = load(&ROUTE.replace("[\"anonymous\"]", "[\"issuer:nope\", \"magic\"]")).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().all(|e| e.key == "gateway.routes[0].auth"));
        let errors = load(&format!("{ROUTE}scopes_all = [\"cars:read\"]\n")).unwrap_err();
        assert!(errors[0].message.contains("need a token"), "{errors:?}");
    }

    #[test]
    fn issuers_and_authorization_rules_resolve() {
        let text = "version = 1\n[[gateway.issuers]]\nname = \"partner\"\nissuer = \"https://idp.example\"\n\
            jwks_url = \"https://idp.example/jwks\"\naudience = \"https://api.example\"\nalgorithms = [\"ES256\"]\n\
            [[gateway.routes]]\nid = \"cars\"\npath = \"/cars/{vin}\"\nmethods = [\"GET\"]\nupstream = \"http://x\"\n\
            auth = [\"warden\", \"issuer:partner\"]\naudience = \"https://cars.example\"\nscopes_all = [\"cars:read\"]\n\
            claims = [{ claim = \"tenant\", equals = \"acme\" }]\nobjects = [{ param = \"vin\", in = \"vins\" }, { query = \"user_id\", equals = \"sub\" }]\n";
        let c = load(text).unwrap();
        let i = &c.gateway.issuers[0];
        assert_eq!((i.name.as_str(), i.algorithms.as_slice(), i.refresh_interval), ("partner", &[Alg::ES256][..], Duration::from_secs(300)));
        let r = &c.gateway.routes[0];
        assert_eq!(r.auth, [Auth::Warden, Auth::Issuer("partner".into())]);
        assert_eq!(r.audience.as_deref(), Some("https://cars.example"));
        assert_eq!(r.rules.objects[0], ObjectRule { source: ParamSource::Path("vin".into()), claim: "vins".into(), member: true });
        assert_eq!(r.rules.objects[1], ObjectRule { source: ParamSource::Query("user_id".into()), claim: "sub".into(), member: false });
        for (bad, key) in [
            (text.replace("[\"ES256\"]", "[\"HS256\"]"), "gateway.issuers[0].algorithms"),
            (text.replace("[\"ES256\"]", "[\"none\"]"), "gateway.issuers[0].algorithms"),
            (text.replace("param = \"vin\"", "param = \"id\""), "gateway.routes[0].objects[0].param"),
            (text.replace("equals = \"acme\"", "is = \"acme\""), "gateway.routes[0].claims[0].claim"),
            (text.replace("https://idp.example/jwks", "ftp://x"), "gateway.issuers[0].jwks_url"),
            (text.replace("algorithms = [\"ES256\"]\n", "algorithms = [\"ES256\"]\njwks_ca_file = \"/nonexistent/ca.pem\"\n"), "gateway.issuers[0].jwks_ca_file"),
            (text.replace("name = \"partner\"", "name = \"\""), "gateway.issuers[0].name"),
        ] {
            let errors = load(&bad).unwrap_err();
            assert!(errors.iter().any(|e| e.key == key), "{key}: {errors:?}");
        }
    }

    #[test]
    fn rate_limits_resolve_with_plans_and_name_every_bad_key() {
        let text = format!(
            "{}auth = [\"warden\"]\n[[gateway.routes.rate_limits]]\nkey = \"client_id\"\nrate = 100\nper = \"1m\"\nburst = 10\n\
             plan_claim = \"plan\"\nplans = {{ gold = 1000 }}\n[[gateway.routes.rate_limits]]\nkey = \"ip\"\nname = \"per-ip\"\nrate = 5\nper = \"1s\"\n",
            ROUTE.replace("auth = [\"anonymous\"]\n", "")
        );
        let c = load(&text).unwrap();
        let l = &c.gateway.routes[0].rate_limits;
        assert_eq!((l[0].name.as_str(), l[0].key, l[0].rate, l[0].per, l[0].burst), ("client_id", RateKey::ClientId, 100, Duration::from_secs(60), Some(10)));
        assert_eq!((l[0].plan_claim.as_deref(), l[0].plans.as_slice()), (Some("plan"), &[("gold".to_owned(), 1000)][..]));
        assert_eq!((l[1].name.as_str(), l[1].missing_key, l[1].burst), ("per-ip", MissingKey::Refuse, None));
        assert_eq!(c.gateway.rate_limit_max_keys, 100_000);
        for (bad, key) in [
            (text.replace("\"client_id\"", "\"path\""), "gateway.routes[0].rate_limits[0].key"),
            (text.replace("rate = 100\n", ""), "gateway.routes[0].rate_limits[0].rate"),
            (text.replace("rate = 100", "rate = 0"), "gateway.routes[0].rate_limits[0].rate"),
            (text.replace("per = \"1m\"", "per = \"1500ms\""), "gateway.routes[0].rate_limits[0].per"),
            (text.replace("per = \"1s\"\n", ""), "gateway.routes[0].rate_limits[1].per"),
            (text.replace("gold = 1000", "gold = \"lots\""), "gateway.routes[0].rate_limits[0].plans.gold"),
            (text.replace("plans = { gold = 1000 }\n", ""), "gateway.routes[0].rate_limits[0].plans"),
            (text.replace("name = \"per-ip\"", "name = \"client_id\""), "gateway.routes[0].rate_limits[1].name"),
            (text.replace("name = \"per-ip\"", "name = \"a b\""), "gateway.routes[0].rate_limits[1].name"),
            (text.replace("burst = 10", "burst = 10\nmissing_key = \"allow\""), "gateway.routes[0].rate_limits[0].missing_key"),
            (text.replace("burst = 10", "bust = 10"), "gateway.routes[0].rate_limits[0].bust"),
            // A route without tokens cannot count per caller and refuse the rest.
            (text.replace("auth = [\"warden\"]", "auth = [\"anonymous\"]"), "gateway.routes[0].rate_limits[0].key"),
            (text.replacen("version = 1\n", "version = 1\n[gateway]\nrate_limit_max_keys = 10\n", 1), "gateway.rate_limit_max_keys"),
        ] {
            let errors = load(&bad).unwrap_err();
            assert!(errors.iter().any(|e| e.key == key), "{key}: {errors:?}");
        }
        // …but it can share one anonymous bucket.
        let open = text.replace("auth = [\"warden\"]", "auth = [\"anonymous\"]").replace("burst = 10", "burst = 10\nmissing_key = \"anonymous\"");
        assert_eq!(load(&open).unwrap().gateway.routes[0].rate_limits[0].missing_key, MissingKey::Anonymous);
    }

    #[test]
    fn an_introspecting_issuer_reads_its_secret_from_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").unwrap();
        let text = format!(
            "version = 1\n[[gateway.issuers]]\nname = \"as\"\nissuer = \"https://as.example\"\naudience = \"https://api.example\"\n\
             introspection_url = \"https://as.example/introspect\"\nintrospection_client_id = \"gw\"\nintrospection_client_secret_file = \"{}\"\n",
            file.display()
        );
        let c = load(&text).unwrap();
        let i = c.gateway.issuers[0].introspection.as_ref().unwrap();
        assert_eq!(i.client_secret, crate::gateway::ClientSecret::new("s3cret".into()), "read, the line end dropped");
        assert!(!format!("{:?}", c.gateway.issuers[0]).contains("s3cret"), "never in Debug");
        assert_eq!((i.always, i.cache_max, i.negative_cache), (false, Duration::from_secs(60), Duration::from_secs(5)));
        assert!(c.gateway.issuers[0].jwks_url.is_empty(), "introspected only: no jwks_url needed");
        // PATH stands for a variable the operator set (tests cannot set one: no unsafe).
        let path = std::env::var("PATH").unwrap();
        let env = text.replace(&format!("introspection_client_secret_file = \"{}\"", file.display()), "introspection_client_secret_env = \"PATH\"\nintrospect = \"always\"");
        let c = load(&env).unwrap();
        let i = c.gateway.issuers[0].introspection.as_ref().unwrap();
        assert_eq!((i.client_secret.clone(), i.always), (crate::gateway::ClientSecret::new(path), true));
        for (bad, key) in [
            (text.replace("introspection_client_id = \"gw\"\n", ""), "gateway.issuers[0].introspection_client_id"),
            (text.replace(&file.display().to_string(), "/nonexistent/secret"), "gateway.issuers[0].introspection_client_secret_file"),
            (env.replace("\"PATH\"", "\"WARDEN_TEST_UNSET_VARIABLE\""), "gateway.issuers[0].introspection_client_secret_env"),
            (format!("{text}introspection_client_secret_env = \"X\"\n"), "gateway.issuers[0].introspection_client_secret_file"),
            (text.replace("https://as.example/introspect", "ftp://x"), "gateway.issuers[0].introspection_url"),
            (format!("{text}introspection_cache_max = \"2h\"\n"), "gateway.issuers[0].introspection_cache_max"),
            (format!("{text}introspect = \"sometimes\"\n"), "gateway.issuers[0].introspect"),
            (text.replace("introspection_url = \"https://as.example/introspect\"\n", ""), "gateway.issuers[0].jwks_url"),
        ] {
            let errors = load(&bad).unwrap_err();
            assert!(errors.iter().any(|e| e.key == key), "{key}: {errors:?}");
        }
        let two = format!(
            "{text}{}\n[[gateway.routes]]\nid = \"r\"\npath = \"/r/\"\nmethods = [\"GET\"]\nupstream = \"http://x\"\nauth = [\"issuer:as\", \"issuer:as2\"]\n",
            text.replace("version = 1\n", "").replace("\"as\"", "\"as2\"")
        );
        let errors = load(&two).unwrap_err();
        assert!(errors.iter().any(|e| e.key == "gateway.routes[0].auth" && e.message.contains("more than one issuer")), "{errors:?}");
        let public = "version = 1\n[gateway]\npublic_url = \"https://api.example.com/\"\n";
        assert_eq!(load(public).unwrap().gateway.public_url.as_deref(), Some("https://api.example.com"));
        let errors = load(&public.replace(".com/", ".com/v1")).unwrap_err();
        assert_eq!(errors[0].key, "gateway.public_url");
    }

    #[test]
    fn security_and_identity_headers_resolve_and_name_a_bad_value() {
        let c = load("version = 1\n[gateway.security_headers]\nhsts = \"\"\nreferrer_policy = \"strict-origin\"\n[gateway.identity_headers]\nsub = \"X-User\"\n").unwrap();
        assert_eq!((c.gateway.security_headers.hsts.as_str(), c.gateway.security_headers.referrer_policy.as_str()), ("", "strict-origin"));
        assert_eq!(c.gateway.identity_headers.sub, "x-user");
        assert_eq!(c.gateway.identity_headers.scope, "x-warden-scope");
        for (text, key) in [
            ("[gateway.security_headers]\nhsts = \"includeSubDomains\"", "gateway.security_headers.hsts"),
            ("[gateway.security_headers]\nreferrer_policy = \"always\"", "gateway.security_headers.referrer_policy"),
            ("[gateway.identity_headers]\nsub = \"authorization\"", "gateway.identity_headers.sub"),
            ("[gateway.identity_headers]\nclient_id = \"bad header\"", "gateway.identity_headers.client_id"),
            ("[gateway.identity_headers]\nscope = \"x-warden-sub\"", "gateway.identity_headers.scope"),
        ] {
            let errors = load(&format!("version = 1\n{text}\n")).unwrap_err();
            assert!(errors.iter().any(|e| e.key == key), "{key}: {errors:?}");
        }
    }

    #[test]
    fn response_rules_resolve_with_secure_defaults() {
        let c = load(&format!("{ROUTE}response_schema = {{ type = \"object\", properties = {{ vin = {{ type = \"string\" }} }} }}\nresponse_fields = [\"vin\"]\n")).unwrap();
        let r = &c.gateway.routes[0].response;
        assert_eq!(r.schema.as_ref().unwrap()["properties"]["vin"]["type"], "string");
        assert_eq!((r.fields.as_slice(), r.scrub_errors, r.max_body), (&["vin".to_owned()][..], true, 1 << 20));
        let c = load(&format!("{ROUTE}response_schema = '{{\"properties\": {{}}}}'\n")).unwrap();
        assert!(c.gateway.routes[0].response.schema.is_some(), "a schema may also be JSON text");
        let token_only = load(&ROUTE.replace("[\"anonymous\"]", "[\"warden\"]")).unwrap();
        assert_eq!(token_only.gateway.routes[0].response.csrf, Csrf::Off, "bearer-only routes are immune");
        let errors = load(&format!("{ROUTE}response_schema = 3\nresponse_max_body = 10\n")).unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"gateway.routes[0].response_schema") && keys.contains(&"gateway.routes[0].response_max_body"), "{keys:?}");
    }

    #[test]
    fn every_route_error_has_its_key_path() {
        // Alone, a first-byte timeout past the listener's request timeout is no error…
        assert!(load("version = 1\n[gateway]\nfirst_byte_timeout = \"40s\"\ntotal_timeout = \"1m\"\n").is_ok());
        // …but with routes that use it, it is.
        let text = "version = 1\n[gateway]\nfirst_byte_timeout = \"40s\"\n\
            [[gateway.routes]]\nid = \"a\"\npath = \"/a/./b\"\nmethods = [\"GET\"]\nupstream = \"ftp://x\"\nauth = [\"anonymous\"]\nbogus = 1\n\
            [[gateway.routes]]\nid = \"b b\"\nmethods = [\"get\"]\nupstream = \"http://x\"\nauth = [\"anonymous\"]\nhosts = [\"x:80\"]\n\
            [[gateway.routes]]\nid = \"c\"\npath = \"/c/{id}\"\nmethods = [\"GET\"]\nupstream = \"http://x\"\nauth = [\"anonymous\"]\n\
            [[gateway.routes]]\nid = \"d\"\npath = \"/c/{other}\"\nmethods = [\"GET\"]\nupstream = \"http://x\"\nauth = [\"anonymous\"]\n";
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
        let ca = "version = 1\n[[gateway.routes]]\nid = \"a\"\npath = \"/a/\"\nmethods = [\"GET\"]\nupstream = \"https://x\"\nauth = [\"anonymous\"]\nupstream_ca_file = \"/nonexistent/ca.pem\"\n";
        let errors = load(ca).unwrap_err();
        assert_eq!(errors[0].key, "gateway.routes[0].upstream_ca_file");
        let errors = load(&ca.replace("https://x", "http://x")).unwrap_err();
        assert_eq!(errors[0].key, "gateway.routes[0].upstream_ca_file", "only for https");
        // The bad pattern of route 0 is reported once its upstream is fixed.
        let errors = load(&text.replace("ftp://x", "http://x")).unwrap_err();
        assert!(errors.iter().any(|e| e.key == "gateway.routes[0].path"), "{errors:?}");
    }
}
