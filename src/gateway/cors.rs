//! Browsers: cross-origin resource sharing (the Fetch standard's CORS protocol) per route,
//! and the cross-site request forgery check (issue #7 items 7 and 12, the Verizon case).
//!
//! CORS ([`Cors`], a route's `cors = { … }`):
//! - a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) for a route
//!   with `cors` is answered by the gateway, before authentication (a preflight never
//!   carries credentials) and without reaching the upstream — the route is the one that
//!   would serve the requested method, even though it does not list `OPTIONS` (routes
//!   without `cors` get no such exception: their `OPTIONS` is a method like any other);
//! - allowed (the origin listed exactly, the method listed, every requested header listed
//!   or always safe — `Accept`, `Accept-Language`, `Content-Language`): 204 with
//!   `Access-Control-Allow-Origin` (the origin itself), `-Allow-Methods`, `-Allow-Headers`,
//!   `-Max-Age`, and `-Allow-Credentials: true` when the route allows credentials;
//! - refused: 403 problem+json without any CORS header;
//! - every other answer on the route (the upstream's or a refusal) gets `Vary: Origin`, the
//!   upstream's own `Access-Control-*` headers are dropped (the gateway owns CORS on the
//!   route), and an allowed origin gets `Access-Control-Allow-Origin`,
//!   `-Allow-Credentials` and `-Expose-Headers`; a disallowed origin gets none;
//! - `"*"` allows any origin, only on a route without credentials (a configuration error
//!   otherwise), and answers `Access-Control-Allow-Origin: *`; the origin `null` (sandboxed
//!   documents, some redirects) is never allowed.
//!
//! CSRF ([`CsrfPolicy`], a route's `csrf = "origin"`): a cookie-authenticated API is one a
//! browser calls with the user's cookies whatever page started the request — a form on
//! another site can `POST` to it. For a state-changing request (not `GET`, `HEAD`,
//! `OPTIONS`, `TRACE`), in order:
//! 1. `Origin: null`, or several `Origin` headers: refused;
//! 2. an `Origin` that is the request's own (its host, either scheme) or one of the route's
//!    CORS origins (listed exactly; `"*"` does not count): passes;
//! 3. any other `Origin`: refused;
//! 4. no `Origin`: `Sec-Fetch-Site: cross-site` or `same-site` is refused; `same-origin`,
//!    `none` or none at all (a client that is not a browser: curl, a mobile app, a
//!    server — no ambient cookies to abuse) passes.
//!
//! Refusals are 403 problem+json and never reach the upstream. A route whose callers
//! authenticate only by `Authorization` (bearer tokens) needs none of this: a browser never
//! adds that header to a cross-site request on its own, so a forged request arrives
//! without credentials (401).

use super::context::{Denial, Flow, Policy, RequestContext};
use super::response::{OutBody, RequestFacts, ResponsePolicy};
use http_body_util::{BodyExt, Empty};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use std::time::Duration;

/// A route's CORS settings (`cors = { … }`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cors {
    /// Allowed origins, serialized (`https://app.example`, no path, no default port), or
    /// `"*"` alone (only without credentials).
    pub origins: Vec<String>,
    /// Methods a cross-origin request may use (upper-case; default: the route's).
    pub methods: Vec<String>,
    /// Request headers it may send besides the always-safe ones (lower-case).
    pub headers: Vec<String>,
    /// Response headers the calling page may read (`Access-Control-Expose-Headers`).
    pub expose_headers: Vec<String>,
    /// Whether the page may send cookies and read the answer (`-Allow-Credentials: true`).
    pub credentials: bool,
    /// How long a browser may keep a preflight's answer.
    pub max_age: Duration,
}

/// A route's CSRF check (`csrf = "off" | "origin"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Csrf {
    /// No check.
    #[default]
    Off,
    /// `Origin` / `Sec-Fetch-Site` checked on state-changing requests (module doc).
    Origin,
}

/// Request headers that never need listing: the CORS-safelisted ones that a browser may
/// still name in a preflight.
const SAFE_HEADERS: [&str; 3] = ["accept", "accept-language", "content-language"];

/// The serialized origin of `text` (`scheme://host[:port]`, host lower-case, default port
/// dropped), for configuration: http or https, nothing after the authority.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("\"{text}\" is not an origin: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("\"{text}\" is not an http(s) origin"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || text.ends_with('/') {
        return Err(format!("\"{text}\" must be only scheme://host[:port] (e.g. \"https://app.example\")"));
    }
    Ok(url.origin().ascii_serialization())
}

impl Cors {
    fn wildcard(&self) -> bool {
        self.origins.iter().any(|o| o == "*")
    }

    /// Whether `origin` (as the browser sent it) is listed exactly.
    fn listed(&self, origin: &[u8]) -> bool {
        self.origins.iter().any(|o| o.as_bytes() == origin)
    }

    /// The `Access-Control-Allow-Origin` value for `origin`, if it is allowed.
    fn allow_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        if origin.as_bytes() == b"null" {
            return None;
        }
        if self.listed(origin.as_bytes()) {
            return Some(origin.clone());
        }
        (self.wildcard() && !self.credentials).then(|| HeaderValue::from_static("*"))
    }

    /// Answers a preflight (module doc). The upstream is never asked.
    pub fn preflight(&self, head: &Parts, req: &RequestFacts) -> Result<Response<OutBody>, Denial> {
        let refused = |detail: &str| Denial::new(403, "urn:warden:problem:cors-not-allowed", "Forbidden", detail.to_owned());
        let origin = req.origin.as_ref().ok_or_else(|| refused("the preflight has no single Origin"))?;
        let allow_origin = self.allow_origin(origin).ok_or_else(|| refused("this origin may not call this API from a browser"))?;
        let method = head.headers.get(header::ACCESS_CONTROL_REQUEST_METHOD).and_then(|m| m.to_str().ok()).unwrap_or("");
        if !self.methods.iter().any(|m| m == method) {
            return Err(refused("this method is not allowed cross-origin"));
        }
        let mut requested = Vec::new();
        for value in head.headers.get_all(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            let text = value.to_str().map_err(|_| refused("malformed Access-Control-Request-Headers"))?;
            for name in text.split(',').map(|n| n.trim().to_ascii_lowercase()).filter(|n| !n.is_empty()) {
                if !SAFE_HEADERS.contains(&name.as_str()) && !self.headers.contains(&name) {
                    return Err(refused("a requested header is not allowed cross-origin"));
                }
                requested.push(name);
            }
        }
        let mut resp = Response::new(Empty::new().map_err(|e: std::convert::Infallible| match e {}).boxed_unsync());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        if self.credentials {
            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        if let Ok(v) = HeaderValue::from_str(&self.methods.join(", ")) {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        if !requested.is_empty()
            && let Ok(v) = HeaderValue::from_str(&requested.join(", "))
        {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(self.max_age.as_secs()));
        h.insert(header::VARY, HeaderValue::from_static("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"));
        Ok(resp)
    }
}

impl ResponsePolicy for Cors {
    fn name(&self) -> &'static str {
        "cors"
    }

    fn on_headers(&self, _ctx: &RequestContext, req: &RequestFacts, _status: StatusCode, headers: &mut HeaderMap) {
        if req.preflight {
            return; // answered by `preflight`, headers included
        }
        for name in [
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_MAX_AGE,
        ] {
            headers.remove(name);
        }
        if !headers.get_all(header::VARY).iter().any(|v| v.as_bytes().eq_ignore_ascii_case(b"origin") || v == "*") {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        let Some(allow) = req.origin.as_ref().and_then(|o| self.allow_origin(o)) else { return };
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        if self.credentials {
            headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        if !self.expose_headers.is_empty()
            && let Ok(v) = HeaderValue::from_str(&self.expose_headers.join(", "))
        {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
    }
}

/// The CSRF check of a route (module doc).
#[derive(Debug)]
pub struct CsrfPolicy {
    /// The route's CORS origins (exact; `"*"` left out).
    trusted: Vec<String>,
}

impl CsrfPolicy {
    /// The check for a route with these CORS settings.
    pub fn new(cors: Option<&Cors>) -> CsrfPolicy {
        CsrfPolicy { trusted: cors.map(|c| c.origins.iter().filter(|o| *o != "*").cloned().collect()).unwrap_or_default() }
    }

    /// Whether a request passes (module doc); `Err` says why not.
    pub fn check(&self, head: &Parts) -> Result<(), &'static str> {
        if matches!(head.method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE) {
            return Ok(());
        }
        let mut origins = head.headers.get_all(header::ORIGIN).iter();
        match (origins.next(), origins.next()) {
            (Some(_), Some(_)) => Err("the request has more than one Origin"),
            (Some(origin), None) => {
                let origin = origin.to_str().map_err(|_| "the request's Origin is malformed")?;
                if origin == "null" {
                    return Err("the request comes from an opaque origin");
                }
                if self.trusted.iter().any(|t| t == origin) || same_host(origin, head) {
                    Ok(())
                } else {
                    Err("the request comes from another site")
                }
            }
            (None, _) => match head.headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
                Some(b"cross-site") | Some(b"same-site") => Err("the request comes from another site"),
                _ => Ok(()),
            },
        }
    }
}

/// Whether `origin` names the host the request was sent to (either scheme; default ports
/// ignored on both sides).
fn same_host(origin: &str, head: &Parts) -> bool {
    let (scheme, authority) = match origin.split_once("://") {
        Some((s @ ("http" | "https"), a)) => (s, a),
        _ => return false,
    };
    let host = head.headers.get(header::HOST).and_then(|h| h.to_str().ok()).or(head.uri.authority().map(|a| a.as_str()));
    let Some(host) = host else { return false };
    let bare = |a: &str, scheme: &str| -> String {
        let a = a.to_ascii_lowercase();
        let default = if scheme == "https" { ":443" } else { ":80" };
        a.strip_suffix(default).map(str::to_owned).unwrap_or(a)
    };
    let origin_authority = bare(authority, scheme);
    origin_authority == bare(host, "http") || origin_authority == bare(host, "https")
}

#[async_trait::async_trait]
impl Policy for CsrfPolicy {
    fn name(&self) -> &'static str {
        "csrf"
    }

    async fn on_request(&self, ctx: &mut RequestContext, head: &mut Parts) -> Flow {
        match self.check(head) {
            Ok(()) => Flow::Continue,
            Err(why) => {
                ctx.decide("csrf", why);
                Flow::Stop(Denial::new(403, "urn:warden:problem:cross-site-request", "Forbidden", format!("{why}; state-changing requests must come from this site or an allowed origin")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], credentials: bool) -> Cors {
        Cors {
            origins: origins.iter().map(|o| o.to_string()).collect(),
            methods: vec!["GET".into(), "POST".into()],
            headers: vec!["authorization".into(), "content-type".into()],
            expose_headers: vec!["x-total".into()],
            credentials,
            max_age: Duration::from_secs(600),
        }
    }

    fn head(method: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = hyper::Request::builder().method(method).uri("/a").header("host", "api.example:8000");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn origins_are_serialized_and_only_origins() {
        assert_eq!(parse_origin("https://App.Example:443").unwrap(), "https://app.example");
        assert_eq!(parse_origin("http://localhost:3000").unwrap(), "http://localhost:3000");
        for bad in ["app.example", "https://app.example/", "https://app.example/x", "ftp://a", "https://u@a", "*"] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn preflights_need_a_listed_origin_method_and_headers() {
        let c = cors(&["https://app.example"], true);
        let pre = |h: &[(&str, &str)]| {
            let head = head("OPTIONS", h);
            let facts = RequestFacts::of(&head);
            assert!(facts.preflight);
            c.preflight(&head, &facts)
        };
        let ok = pre(&[("origin", "https://app.example"), ("access-control-request-method", "POST"), ("access-control-request-headers", "Content-Type, Authorization, accept")]).unwrap();
        let h = ok.headers();
        assert_eq!(ok.status(), 204);
        assert_eq!(h["access-control-allow-origin"], "https://app.example");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-allow-headers"], "content-type, authorization, accept");
        assert_eq!(h["access-control-max-age"], "600");
        for bad in [
            vec![("origin", "https://evil.example"), ("access-control-request-method", "POST")],
            vec![("origin", "null"), ("access-control-request-method", "POST")],
            vec![("origin", "https://app.example"), ("access-control-request-method", "DELETE")],
            vec![("origin", "https://app.example"), ("access-control-request-method", "POST"), ("access-control-request-headers", "x-admin")],
        ] {
            assert_eq!(pre(&bad).unwrap_err().problem.status, 403, "{bad:?}");
        }
    }

    #[test]
    fn a_wildcard_never_goes_with_credentials_and_null_never_passes() {
        let any = cors(&["*"], false);
        assert_eq!(any.allow_origin(&HeaderValue::from_static("https://x.example")).unwrap(), "*");
        assert!(any.allow_origin(&HeaderValue::from_static("null")).is_none());
        // Were it configured anyway (config check refuses it), credentials turn the wildcard off.
        let creds = cors(&["*"], true);
        assert!(creds.allow_origin(&HeaderValue::from_static("https://x.example")).is_none());
    }

    #[test]
    fn csrf_refuses_foreign_origins_on_state_changing_requests_only() {
        let p = CsrfPolicy::new(Some(&cors(&["https://app.example", "*"], false)));
        let check = |m: &str, h: &[(&str, &str)]| p.check(&head(m, h));
        assert!(check("GET", &[("origin", "https://evil.example")]).is_ok(), "safe methods are not checked");
        assert!(check("POST", &[]).is_ok(), "no browser, no ambient cookies");
        assert!(check("POST", &[("sec-fetch-site", "same-origin")]).is_ok());
        assert!(check("POST", &[("origin", "https://app.example")]).is_ok(), "a listed origin");
        assert!(check("POST", &[("origin", "http://api.example:8000")]).is_ok(), "the request's own host");
        assert!(check("DELETE", &[("origin", "https://api.example:8000"), ("sec-fetch-site", "same-origin")]).is_ok());
        for bad in [
            vec![("origin", "https://evil.example")],
            vec![("origin", "http://api.example:8001")],
            vec![("origin", "null")],
            vec![("origin", "https://app.example"), ("origin", "https://evil.example")],
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
        ] {
            assert!(check("POST", &bad).is_err(), "{bad:?}");
        }
        assert!(check("PUT", &[("origin", "https://other.example")]).is_err(), "the wildcard does not count");
    }
}
