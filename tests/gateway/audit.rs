//! Issue #7 item 11: every request's outcome recorded. A refusal by the gateway is exactly
//! one audit event (`target: "audit"`, `event = "gateway_denied"`) naming the route, the
//! deciding policy, the caller and the request id; a forwarded request is an access line
//! (`target: "access"`), at debug unless `gateway.access_log` is on; no log line ever holds
//! the token or the client secret.
//!
//! The test runtime is single-threaded, so a thread-local subscriber sees the server's events
//! (as in `oauth/rfc6749_refresh_token.rs`).

use super::upstream::Upstream;
use super::{base, route};
use crate::support::{LogCapture, TestServer};
use warden::config::Role;
use warden::gateway::{Auth, RouteConfig, Rules};

fn routes(upstream: &str) -> Vec<RouteConfig> {
    let warden = |id: &str, path: &str| RouteConfig { auth: vec![Auth::Warden], ..route(id, path, &["GET"], upstream) };
    vec![
        warden("orders", "/orders/"),
        RouteConfig { rules: Rules { scopes_all: vec!["admin".into()], ..Default::default() }, ..warden("admin", "/admin/") },
    ]
}

async fn server(upstream: &str, access_log: bool) -> TestServer {
    let routes = routes(upstream);
    TestServer::start_with(|c| {
        c.roles = vec![Role::Provider, Role::Gateway];
        c.gateway.routes = routes;
        c.gateway.access_log = access_log;
    })
    .await
}

/// A 403 from the authorization policy is one `gateway_denied` audit event at info with the
/// route, the policy, the status, the caller (sub, client id, token source) and the request
/// id the client saw; a 401 is another, under `authenticate`; the forwarded request is an
/// access line at debug. At trace level for every crate, no line holds the token, the
/// client secret or the garbage token sent.
#[tokio::test]
async fn a_denied_request_is_one_audit_event_naming_the_policy_and_no_token_is_logged() {
    let up = Upstream::start().await;
    let s = server(&up.url(), false).await;
    let (id, secret) = s.cc_client().await;
    let token = s.token(&id, &secret, &[]).await;
    let forged = "eyJhbGciOiJFUzI1NiJ9.c2VjcmV0LXBheWxvYWQtOTg3NjU0MzIx.c2lnbmF0dXJl";

    let logs = LogCapture::default();
    let guard = tracing::subscriber::set_default(logs.subscriber(tracing::Level::TRACE));
    let denied = s.http.get(format!("{}/admin/users?q=1", base(&s))).bearer_auth(&token).send().await.unwrap();
    let unauthenticated = s.http.get(format!("{}/orders/1", base(&s))).bearer_auth(forged).send().await.unwrap();
    let allowed = s.http.get(format!("{}/orders/1", base(&s))).bearer_auth(&token).send().await.unwrap();
    let bad_path = s.http.get(format!("{}/orders/..%2Fadmin/users", base(&s))).bearer_auth(&token).send().await.unwrap();
    drop(guard);

    assert_eq!((denied.status().as_u16(), unauthenticated.status().as_u16(), allowed.status().as_u16(), bad_path.status().as_u16()), (403, 401, 200, 400));
    assert_eq!(up.seen().len(), 1, "only the allowed request reached the upstream");
    let request_id = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();

    let events = logs.events("gateway_denied");
    assert_eq!(events.len(), 3, "one audit event per refusal: {events:#?}");
    let e = events.iter().find(|e| e["fields"]["request_id"] == request_id(&denied)).expect("the 403's event");
    assert_eq!((e["target"].as_str(), e["level"].as_str()), (Some("audit"), Some("INFO")));
    let f = &e["fields"];
    assert_eq!(f["policy"], "authorize");
    assert_eq!(f["route"], "admin");
    assert_eq!(f["status"], 403);
    assert_eq!(f["method"], "GET");
    assert_eq!(f["path"], "/admin/users", "the normalised path, never the query");
    assert_eq!(f["source"], "warden");
    assert_eq!(f["sub"], id.as_str());
    assert_eq!(f["client_id"], id.as_str());
    assert_eq!(f["client"], "127.0.0.1");
    assert!(f["reason"].as_str().is_some_and(|r| !r.is_empty()), "{e}");
    assert!(f["latency_ms"].as_f64().is_some_and(|l| l >= 0.0), "{e}");

    let e = events.iter().find(|e| e["fields"]["request_id"] == request_id(&unauthenticated)).expect("the 401's event");
    assert_eq!((e["fields"]["policy"].as_str(), e["fields"]["status"].as_u64(), e["fields"]["sub"].as_str()), (Some("authenticate"), Some(401), Some("-")));

    // A path that never normalised is logged as it was sent: the attempt.
    let e = events.iter().find(|e| e["fields"]["request_id"] == request_id(&bad_path)).expect("the 400's event");
    assert_eq!((e["fields"]["policy"].as_str(), e["fields"]["path"].as_str(), e["fields"]["route"].as_str()), (Some("path"), Some("/orders/..%2Fadmin/users"), Some("-")));

    let access = logs.events("gateway_request");
    assert_eq!(access.len(), 1, "{access:#?}");
    assert_eq!((access[0]["target"].as_str(), access[0]["level"].as_str()), (Some("access"), Some("DEBUG")));
    assert_eq!(access[0]["fields"]["request_id"], request_id(&allowed).as_str());
    assert_eq!((access[0]["fields"]["policy"].as_str(), access[0]["fields"]["status"].as_u64()), (Some("upstream"), Some(200)));

    let text = logs.text();
    assert!(!text.is_empty());
    for (what, secret) in [("token", token.as_str()), ("its signature", token.rsplit('.').next().unwrap()), ("client secret", &secret), ("forged token", forged)] {
        assert!(!text.contains(secret), "the {what} is in the logs");
    }
}

/// `gateway.access_log = true` puts forwarded requests at info (target `access`); off, an
/// info-level log has no access lines, while refusals are audit events either way.
#[tokio::test]
async fn access_log_puts_forwarded_requests_at_info() {
    let up = Upstream::start().await;
    for on in [false, true] {
        let s = server(&up.url(), on).await;
        let (id, secret) = s.cc_client().await;
        let token = s.token(&id, &secret, &[]).await;
        let logs = LogCapture::default();
        let guard = tracing::subscriber::set_default(logs.subscriber(tracing::Level::INFO));
        let ok = s.http.get(format!("{}/orders/1", base(&s))).bearer_auth(&token).send().await.unwrap();
        let missing = s.http.get(format!("{}/orders/1", base(&s))).send().await.unwrap();
        drop(guard);
        assert_eq!((ok.status().as_u16(), missing.status().as_u16()), (200, 401));
        assert_eq!(logs.events("gateway_request").len(), usize::from(on), "access_log = {on}");
        assert_eq!(logs.events("gateway_denied").len(), 1, "access_log = {on}");
    }
}
