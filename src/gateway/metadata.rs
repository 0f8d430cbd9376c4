//! RFC 9728 protected-resource metadata (issue #7 item 10): how a client that met a 401
//! finds out which authorization server to get a token from (the MCP authorization flow).
//!
//! Every route that accepts tokens is a protected resource. Its **resource identifier** is
//! the route's `resource` setting (`https://api.example.com/cars`), or else derived from the
//! request: `http[s]://` + the `Host` it was sent to + the literal start of the route's path
//! (`/cars/{vin}` and `/cars/` → `/cars`; `/` → none). Routes with the same identifier are
//! one resource. Behind a proxy that changes scheme or host, set `resource`.
//!
//! - **Served** before route matching, without authentication, at the well-known URL of the
//!   identifier (§3.1: `/.well-known/oauth-protected-resource` inserted between host and
//!   path: `/.well-known/oauth-protected-resource/cars`); `GET`/`HEAD` only (else 405);
//!   matched on the path and the routes' `hosts`; `application/json`, cacheable for 5 minutes,
//!   readable cross-origin (it is public). A path under the well-known prefix that names no
//!   resource goes on to route matching (so a 404 unless a route serves it).
//! - **Content** (§2): `resource` (equal to the identifier the URL was built from, §3.3),
//!   `authorization_servers` (Warden's issuer for `auth = ["warden"]`, each `issuer:NAME`'s
//!   `issuer`), `scopes_supported` (the routes' `scopes_all` and `scopes_any`, when any),
//!   `bearer_methods_supported: ["header"]` (tokens in the body or query are refused),
//!   `resource_name` (`resource_name`, else the route's id), `dpop_signing_alg_values_supported`
//!   and `dpop_bound_access_tokens_required: false` (DPoP-bound tokens are accepted, not
//!   required).
//! - **Challenges** (§5.1): every refusal of such a route that carries `WWW-Authenticate`
//!   (401, and 403 `insufficient_scope`) adds `resource_metadata="<the metadata URL>"`.
//!
//! Clients compare the metadata's `resource` with the URL they called by prefix (the MCP
//! specification; RFC 9728 §3.3 as updated by draft-mcguinness-oauth-rfc9728bis), since one
//! resource serves many paths.

use super::context::Denial;
use super::{Auth, Config};
use crate::http::problem::Problem;
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response};

/// The well-known path of RFC 9728 §3.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// DPoP proof algorithms the gateway verifies (as in its `DPoP` challenge).
const DPOP_ALGS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];

/// One route seen as a protected resource.
#[derive(Debug)]
struct Resource {
    /// `resource` from the configuration: the identifier, and its origin and path.
    configured: Option<(String, String, String)>,
    /// The literal start of the route's path, without a final `/` (`""` for the root).
    prefix: String,
    hosts: Vec<String>,
    name: String,
    authorization_servers: Vec<String>,
    scopes: Vec<String>,
}

impl Resource {
    /// The identifier's path part (what follows the well-known prefix in its metadata URL).
    fn path(&self) -> &str {
        self.configured.as_ref().map_or(&self.prefix, |(_, _, p)| p)
    }

    /// The identifier, for a request to `origin`; `None` when it must be derived and the
    /// request's host is unusable.
    fn identifier(&self, origin: Option<&str>) -> Option<String> {
        match &self.configured {
            Some((id, _, _)) => Some(id.clone()),
            None => origin.map(|o| format!("{o}{}", self.prefix)),
        }
    }

    /// The metadata URL of the identifier.
    fn metadata_url(&self, origin: Option<&str>) -> Option<String> {
        let origin = match &self.configured {
            Some((_, o, _)) => o.as_str(),
            None => origin?,
        };
        Some(format!("{origin}{WELL_KNOWN}{}", self.path()))
    }

    fn host_matches(&self, host: &str) -> bool {
        self.hosts.is_empty() || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// The protected resources of a gateway, indexed like `[[gateway.routes]]` (`None`: the
/// route accepts no tokens).
#[derive(Debug, Default)]
pub struct Resources {
    routes: Vec<Option<Resource>>,
}

/// Splits an absolute URL into its origin (`scheme://host[:port]`) and path without a
/// final `/`; `None` if it is not an http(s) URL without query, fragment or user info.
pub fn split_identifier(text: &str) -> Option<(String, String)> {
    let url = url::Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/').to_owned();
    Some((origin, path))
}

/// The literal segments a route's path starts with, without a final `/`.
fn literal_prefix(path: &str) -> String {
    let mut out = String::new();
    for seg in path.split('/').skip(1) {
        if seg.is_empty() || seg == "*" || seg.contains('{') {
            break;
        }
        out.push('/');
        out.push_str(seg);
    }
    out
}

/// The request's origin (`http[s]://host[:port]`, lower case), when its host is made of the
/// characters a host and port may hold (it is reflected into a header and a document).
fn request_origin<B>(req: &Request<B>) -> Option<String> {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().authority().map(|a| a.as_str()))?;
    let ok = !host.is_empty() && host.len() <= 255 && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    let scheme = if req.extensions().get::<crate::http::serve::Secure>().is_some() { "https" } else { "http" };
    ok.then(|| format!("{scheme}://{}", host.to_ascii_lowercase()))
}

impl Resources {
    /// Each route's resource; `warden_issuer`: Warden's issuer when its tokens are accepted.
    pub fn build(cfg: &Config, warden_issuer: Option<&str>) -> Resources {
        let routes = cfg
            .routes
            .iter()
            .map(|r| {
                let mut servers: Vec<String> = Vec::new();
                for a in &r.auth {
                    let s = match a {
                        Auth::Warden => warden_issuer.map(str::to_owned),
                        Auth::Issuer(name) => cfg.issuers.iter().find(|i| i.name == *name).map(|i| i.issuer.clone()),
                        Auth::Anonymous | Auth::ApiKey | Auth::Basic => None,
                    };
                    if let Some(s) = s.filter(|s| !servers.contains(s)) {
                        servers.push(s);
                    }
                }
                if servers.is_empty() {
                    return None;
                }
                let mut scopes: Vec<String> = Vec::new();
                for s in r.rules.scopes_all.iter().chain(&r.rules.scopes_any) {
                    if !scopes.contains(s) {
                        scopes.push(s.clone());
                    }
                }
                let configured = r.resource.identifier.as_deref().and_then(|id| split_identifier(id).map(|(o, p)| (id.to_owned(), o, p)));
                Some(Resource {
                    configured,
                    prefix: literal_prefix(&r.path),
                    hosts: r.hosts.clone(),
                    name: r.resource.name.clone().unwrap_or_else(|| r.id.clone()),
                    authorization_servers: servers,
                    scopes,
                })
            })
            .collect();
        Resources { routes }
    }

    /// Adds `resource_metadata` to every challenge of a refusal by route `index` (§5.1).
    pub fn annotate<B>(&self, index: usize, req: &Request<B>, denial: &mut Denial) {
        let Some(Some(resource)) = self.routes.get(index) else { return };
        if !denial.headers.iter().any(|(n, _)| n == header::WWW_AUTHENTICATE) {
            return;
        }
        let Some(url) = resource.metadata_url(request_origin(req).as_deref()) else { return };
        for (name, value) in &mut denial.headers {
            if *name != header::WWW_AUTHENTICATE {
                continue;
            }
            let Ok(text) = value.to_str() else { continue };
            // RFC 9728 §5.1 names OAuth's schemes; an ApiKey, Basic or Attestation challenge
            // is not about a token from an authorization server.
            let scheme = text.split(' ').next().unwrap_or("");
            if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop")) {
                continue;
            }
            let joined = if text.contains(' ') { format!("{text}, resource_metadata=\"{url}\"") } else { format!("{text} resource_metadata=\"{url}\"") };
            if let Ok(v) = HeaderValue::from_str(&joined) {
                *value = v;
            }
        }
    }

    /// The answer to a request for a metadata document, or `None` when the request is not
    /// for one this gateway publishes (it then goes on to route matching).
    pub fn answer<B>(&self, req: &Request<B>, normalised_path: &str) -> Option<Result<Response<Bytes>, Denial>> {
        let suffix = normalised_path.strip_prefix(WELL_KNOWN)?;
        if !(suffix.is_empty() || suffix.starts_with('/')) {
            return None;
        }
        let suffix = suffix.trim_end_matches('/');
        let origin = request_origin(req);
        let host = origin.as_deref().map(|o| super::route::host_without_port(o.split_once("://").map_or(o, |(_, h)| h))).unwrap_or_default();
        let group: Vec<(&Resource, String)> = self
            .routes
            .iter()
            .flatten()
            .filter(|r| r.path() == suffix && r.host_matches(&host))
            .filter_map(|r| r.identifier(origin.as_deref()).map(|id| (r, id)))
            .collect();
        let (first, identifier) = group.first()?;
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Some(Err(Denial::new(405, "urn:warden:problem:method-not-allowed", "Method Not Allowed", "metadata is read with GET")
                .with_header(header::ALLOW, HeaderValue::from_static("GET, HEAD"))));
        }
        let mut servers: Vec<&str> = Vec::new();
        let mut scopes: Vec<&str> = Vec::new();
        for (r, _) in group.iter().filter(|(_, id)| id == identifier) {
            for s in &r.authorization_servers {
                if !servers.contains(&s.as_str()) {
                    servers.push(s);
                }
            }
            for s in &r.scopes {
                if !scopes.contains(&s.as_str()) {
                    scopes.push(s);
                }
            }
        }
        let mut doc = serde_json::json!({
            "resource": identifier,
            "authorization_servers": servers,
            "bearer_methods_supported": ["header"],
            "resource_name": first.name,
            "dpop_signing_alg_values_supported": DPOP_ALGS,
            "dpop_bound_access_tokens_required": false,
        });
        if !scopes.is_empty() {
            doc["scopes_supported"] = scopes.into();
        }
        let body = serde_json::to_vec(&doc).unwrap_or_default();
        let resp = Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "public, max-age=300")
            .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
            .body(Bytes::from(body));
        Some(resp.map_err(|_| Denial { problem: Problem::internal(), headers: Vec::new(), close: false, extensions: Default::default() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identifier_path_is_the_literal_start_of_the_route_path() {
        for (path, prefix) in [("/cars/{vin}", "/cars"), ("/cars/", "/cars"), ("/api/*", "/api"), ("/", ""), ("/{t}/x", ""), ("/a/b", "/a/b")] {
            assert_eq!(literal_prefix(path), prefix, "{path}");
        }
    }

    #[test]
    fn a_configured_identifier_is_an_http_url_without_query_fragment_or_user() {
        assert_eq!(split_identifier("https://API.example.com/cars/"), Some(("https://api.example.com".into(), "/cars".into())));
        assert_eq!(split_identifier("https://api.example.com"), Some(("https://api.example.com".into(), "".into())));
        assert_eq!(split_identifier("https://api.example.com:8443/v1/cars"), Some(("https://api.example.com:8443".into(), "/v1/cars".into())));
        for bad in ["api.example.com/cars", "ftp://x/y", "https://x/y?q=1", "https://x/y#f", "https://u:p@x/y", ""] {
            assert_eq!(split_identifier(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_host_that_could_break_out_of_the_header_is_not_reflected() {
        let req = Request::get("/x").header("host", "evil\"x").body(()).unwrap();
        assert_eq!(request_origin(&req), None);
        let req = Request::get("/x").header("host", "API.example:8000").body(()).unwrap();
        assert_eq!(request_origin(&req).as_deref(), Some("http://api.example:8000"));
    }
}
