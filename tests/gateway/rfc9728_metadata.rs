//! Issue #7 item 10: RFC 9728 protected-resource metadata at the gateway, and the MCP
//! discovery flow a client follows from a 401 to a token: 401 → `resource_metadata` → the
//! metadata → `authorization_servers[0]` → its RFC 8414 metadata → a token → the API.
//!
//! No Python or Rust client library for RFC 9728 is available here, so the client side is
//! written from the RFC's rules (§3 URL construction, §3.3 validation, §5.1 the challenge
//! parameter) and asserted independently of the gateway's code.

use super::upstream::Upstream;
use super::{assert_problem, base, route};
use crate::support::TestServer;
use serde_json::{Value, json};
use warden::config::{Config, Overrides, Role};
use warden::gateway::{Auth, IssuerConfig, ProtectedResource, RouteConfig, Rules};

const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// RFC 9728 §3.1: the metadata URL of a resource identifier — the well-known path inserted
/// between the host and the path (a final `/` of the path dropped).
fn metadata_url_of(resource: &str) -> String {
    let url = url::Url::parse(resource).unwrap();
    let origin = url.origin().ascii_serialization();
    format!("{origin}{WELL_KNOWN}{}", url.path().trim_end_matches('/'))
}

/// The `resource_metadata` parameter of a challenge (RFC 9728 §5.1), parsed as a client would.
fn resource_metadata_param(challenge: &str) -> Option<String> {
    let start = challenge.find("resource_metadata=\"")? + "resource_metadata=\"".len();
    let rest = &challenge[start..];
    Some(rest[..rest.find('"')?].to_owned())
}

fn partner() -> IssuerConfig {
    IssuerConfig {
        name: "partner".into(),
        issuer: "https://idp.partner.example".into(),
        jwks_url: "http://127.0.0.1:1/jwks".into(),
        jwks_ca_file: None,
        algorithms: vec![warden::jose::Alg::ES256],
        audience: "https://api.example.com".into(),
        types: vec![],
        clock_skew: std::time::Duration::from_secs(60),
        refresh_interval: std::time::Duration::from_secs(3600),
        introspection: None,
    }
}

/// `cars` (two routes, one resource derived from the request), `partner` (a configured
/// identifier and name, another issuer), `open` (anonymous: no protected resource).
async fn server(up: &Upstream) -> TestServer {
    let cars_read = RouteConfig {
        auth: vec![Auth::Warden],
        rules: Rules { scopes_all: vec!["cars:read".into()], ..Default::default() },
        ..route("cars", "/cars/{vin}", &["GET"], &up.url())
    };
    let cars_write = RouteConfig {
        auth: vec![Auth::Warden],
        rules: Rules { scopes_any: vec!["fleet".into(), "cars:read".into()], ..Default::default() },
        ..route("cars-write", "/cars/", &["POST"], &up.url())
    };
    let partner_route = RouteConfig {
        auth: vec![Auth::Issuer("partner".into()), Auth::Warden],
        resource: ProtectedResource { identifier: Some("https://api.example.com/partner".into()), name: Some("Partner API".into()) },
        ..route("partner", "/partner/", &["GET"], &up.url())
    };
    let open = route("open", "/open/", &["GET"], &up.url());
    TestServer::start_with(|c| {
        c.roles = vec![Role::Provider, Role::Gateway];
        c.gateway.routes = vec![cars_read, cars_write, partner_route, open];
        c.gateway.issuers = vec![partner()];
    })
    .await
}

/// §3: the document is at the path-inserted well-known URL, JSON, without authentication,
/// cacheable; §3.3: its `resource` is the identifier the URL was built from; §2: the members.
/// Routes sharing an identifier are one resource (their scopes merged).
#[tokio::test]
async fn rfc9728_s3_the_metadata_of_a_derived_resource() {
    let up = Upstream::start().await;
    let s = server(&up).await;
    let url = format!("{}{WELL_KNOWN}/cars", base(&s));
    let resp = s.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert!(resp.headers()["cache-control"].to_str().unwrap().contains("max-age="), "cacheable");
    let doc: Value = resp.json().await.unwrap();
    let resource = doc["resource"].as_str().unwrap();
    assert_eq!(resource, format!("{}/cars", base(&s)), "derived from the request's scheme, host and the route's path");
    assert_eq!(metadata_url_of(resource), url, "§3.3: resource is the identifier the URL was built from");
    assert_eq!(doc["authorization_servers"], json!([s.issuer]));
    assert_eq!(doc["scopes_supported"], json!(["cars:read", "fleet"]), "both routes of the resource");
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    assert_eq!(doc["resource_name"], "cars");
    assert_eq!(doc["dpop_bound_access_tokens_required"], false);
    assert!(doc["dpop_signing_alg_values_supported"].as_array().unwrap().contains(&json!("ES256")));
    assert!(up.seen().is_empty(), "metadata is the gateway's own answer");

    // A final slash names the same identifier; HEAD works; other methods do not.
    assert_eq!(s.http.get(format!("{url}/")).send().await.unwrap().status(), 200);
    assert_eq!(s.http.head(&url).send().await.unwrap().status(), 200);
    let resp = s.http.post(&url).send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
    assert_problem(resp, 405).await;
    assert!(up.seen().is_empty());
}

/// A configured `resource` is published as given, with its name and every issuer the route
/// trusts; the document is found at the identifier's path whatever host the request named.
#[tokio::test]
async fn rfc9728_s2_a_configured_resource_and_its_authorization_servers() {
    let up = Upstream::start().await;
    let s = server(&up).await;
    let doc: Value = s.http.get(format!("{}{WELL_KNOWN}/partner", base(&s))).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["resource"], "https://api.example.com/partner");
    assert_eq!(doc["authorization_servers"], json!(["https://idp.partner.example", s.issuer]));
    assert_eq!(doc["resource_name"], "Partner API");
    assert!(doc.get("scopes_supported").is_none(), "no scopes required: none listed");

    // Its 401 points at the identifier's own metadata URL.
    let resp = s.http.get(format!("{}/partner/x", base(&s))).send().await.unwrap();
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(resource_metadata_param(&challenge).as_deref(), Some("https://api.example.com/.well-known/oauth-protected-resource/partner"));
    assert_problem(resp, 401).await;
    assert!(up.seen().is_empty());
}

/// Routes that accept no tokens publish nothing: their well-known URL, and any that names
/// no resource, go on to route matching (404 here), never to an upstream.
#[tokio::test]
async fn rfc9728_no_metadata_for_unprotected_or_unknown_resources() {
    let up = Upstream::start().await;
    let s = server(&up).await;
    for path in ["/open", "", "/nothing", "/cars/more", "x/cars"] {
        let resp = s.http.get(format!("{}{WELL_KNOWN}{path}", base(&s))).send().await.unwrap();
        assert_problem(resp, 404).await;
    }
    assert_eq!(s.http.get(format!("{}/open/x", base(&s))).send().await.unwrap().status(), 200, "the open route still serves");
    assert_eq!(up.seen().len(), 1);
}

/// §5.1: every refusal of a protected route that challenges — no token, a bad token (401),
/// a missing scope (403) — carries `resource_metadata` with the resource's metadata URL; the
/// upstream is never reached.
#[tokio::test]
async fn rfc9728_s5_1_every_challenge_names_the_metadata_url() {
    let up = Upstream::start().await;
    let s = server(&up).await;
    let expected = format!("{}{WELL_KNOWN}/cars", base(&s));
    let (id, secret) = s.cc_client().await;
    let weak = s.token(&id, &secret, &[("scope", "read")]).await;
    for (auth, status) in [(None, 401), (Some("Bearer not.a.jwt".to_owned()), 401), (Some(format!("Bearer {weak}")), 403)] {
        let mut req = s.http.get(format!("{}/cars/1HGCM", base(&s)));
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        let challenges: Vec<String> = resp.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        assert!(!challenges.is_empty());
        for c in &challenges {
            assert_eq!(resource_metadata_param(c).as_deref(), Some(expected.as_str()), "{c}");
        }
        assert_problem(resp, status).await;
    }
    assert!(up.seen().is_empty(), "no refused request reached the upstream");
}

/// The MCP discovery flow, as a client that knows only the API's URL: call it → 401 →
/// follow `resource_metadata` → check `resource` (same origin, a prefix of the URL called) →
/// `authorization_servers[0]` → its RFC 8414 metadata (whose `issuer` must equal it) → a
/// client-credentials token for `scopes_supported` at its `token_endpoint` → the call passes.
#[tokio::test]
async fn the_mcp_flow_from_a_401_to_a_token() {
    let up = Upstream::start().await;
    let s = server(&up).await;
    let (id, secret) = s.client(json!({"grant_types": ["client_credentials"], "scope": "cars:read", "client_name": "mcp"})).await;
    let api = format!("{}/cars/1HGCM", base(&s));

    let resp = s.http.get(&api).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let metadata_url = resource_metadata_param(&challenge).expect("a resource_metadata parameter");

    let prm: Value = s.http.get(&metadata_url).send().await.unwrap().json().await.unwrap();
    let resource = prm["resource"].as_str().unwrap();
    assert_eq!(metadata_url_of(resource), metadata_url, "§3.3");
    let (called, named) = (url::Url::parse(&api).unwrap(), url::Url::parse(resource).unwrap());
    assert_eq!(called.origin(), named.origin());
    assert!(called.path().starts_with(named.path()), "the resource covers the URL called");

    let issuer = prm["authorization_servers"][0].as_str().unwrap();
    let as_meta_url = format!("{issuer}/.well-known/oauth-authorization-server");
    let as_meta: Value = s.http.get(&as_meta_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(as_meta["issuer"], issuer, "RFC 8414 §3.3");
    let token_endpoint = as_meta["token_endpoint"].as_str().unwrap();
    let scope = prm["scopes_supported"][0].as_str().unwrap();
    let resp = s.http.post(token_endpoint).basic_auth(&id, Some(&secret)).form(&[("grant_type", "client_credentials"), ("scope", scope)]).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let token: Value = resp.json().await.unwrap();

    let resp = s.http.get(&api).bearer_auth(token["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.one().path, "/cars/1HGCM");
}

/// `resource` must be an http(s) URL without query or fragment, on a route that accepts
/// tokens; `warden config check` names the key.
#[test]
fn a_bad_resource_is_a_configuration_error_under_its_key() {
    let route = "version = 1\n[[gateway.routes]]\nid = \"r\"\npath = \"/r/\"\nmethods = [\"GET\"]\nupstream = \"http://127.0.0.1:9\"\n";
    for (extra, needle) in [
        ("auth = [\"warden\"]\nresource = \"api.example.com/r\"\n", "absolute"),
        ("auth = [\"warden\"]\nresource = \"https://api.example.com/r?x=1\"\n", "query"),
        ("auth = [\"anonymous\"]\nresource = \"https://api.example.com/r\"\n", "accepts tokens"),
    ] {
        let errors = Config::load_str(&format!("{route}{extra}")).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].key, "gateway.routes[0].resource");
        assert!(errors[0].message.contains(needle), "{errors:?}");
    }
    let c = Config::load_str(&format!("{route}auth = [\"warden\"]\nresource = \"https://api.example.com/r\"\nresource_name = \"R\"\n")).unwrap();
    assert_eq!(c.gateway.routes[0].resource, ProtectedResource { identifier: Some("https://api.example.com/r".into()), name: Some("R".into()) });
}

trait LoadStr {
    fn load_str(text: &str) -> Result<Config, Vec<warden::config::ConfigError>>;
}

impl LoadStr for Config {
    fn load_str(text: &str) -> Result<Config, Vec<warden::config::ConfigError>> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("warden.toml");
        std::fs::write(&file, text).unwrap();
        Config::load(Some(&file), [], &Overrides::default())
    }
}
