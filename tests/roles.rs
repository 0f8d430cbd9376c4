//! The role/listener structure: one process, three listeners, each with its own health check
//! and error format, and graceful shutdown.

use crate::support::TestServer;
use serde_json::Value;
use warden::config::Role;

#[tokio::test]
async fn gateway_and_admin_listeners_answer_health_and_problem_json() {
    let s = TestServer::start().await;
    for role in [Role::Gateway, Role::Admin] {
        let base = format!("http://{}", s.addr(role));
        let health: Value = s.http.get(format!("{base}/healthz")).send().await.unwrap().json().await.unwrap();
        assert_eq!(health["status"], "ok");
        assert_eq!(health["role"], role.as_str());
        let resp = s.http.get(format!("{base}/anything")).send().await.unwrap();
        assert_eq!(resp.status(), 404);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        assert!(resp.headers().contains_key("x-request-id"));
        let p: Value = resp.json().await.unwrap();
        assert_eq!(p["status"], 404);
        assert_eq!(p["type"], "urn:warden:problem:not-found");
    }
}

#[tokio::test]
async fn a_subset_of_roles_binds_only_those_listeners() {
    let s = TestServer::start_with(|c| c.roles = vec![Role::Provider]).await;
    assert_eq!(s.addrs.len(), 1);
    assert_eq!(s.addrs[0].0, Role::Provider);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_nosniff() {
    let s = TestServer::start().await;
    let resp = s.http.get(s.url("/jwks")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let s = TestServer::start().await;
    let (id, secret) = s.cc_client().await;
    let http = s.http.clone();
    let url = s.url("/token");
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let (http, url, id, secret) = (http.clone(), url.clone(), id.clone(), secret.clone());
            tokio::spawn(async move {
                http.post(url).basic_auth(id, Some(secret)).form(&[("grant_type", "client_credentials")]).send().await
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let dir = s.stop().await;
    for r in requests {
        // A request either completed with a token or never got in; none is cut off midway
        // with a 5xx.
        if let Ok(resp) = r.await.unwrap() {
            assert_eq!(resp.status(), 200);
        }
    }
    // The data is intact: a new server on the same directory starts and serves.
    let s = TestServer::start_in(dir, |_| {}).await;
    assert!(!s.token(&id, &secret, &[]).await.is_empty());
}
