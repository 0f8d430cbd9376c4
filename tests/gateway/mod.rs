//! Issue #7 items 1 and 2: the gateway's routes, path normalisation and proxy, over real
//! sockets against an in-process upstream that records what it receives. Every refusal is
//! checked to have left the upstream untouched.

mod attestation;
mod audit;
mod auth;
mod consumers;
mod example_vin;
mod forwarded_dpop;
mod introspection;
mod network;
mod paths;
mod proxy;
mod reload;
mod rfc9728_metadata;
mod rate_limits;
mod responses;
mod smuggling;
mod tls;
mod upstream;
mod validation;

use crate::support::TestServer;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden::config::{Config, Role};
use warden::gateway::{RouteConfig, Upstream};

/// An anonymous route to `upstream`.
pub fn route(id: &str, path: &str, methods: &[&str], upstream: &str) -> RouteConfig {
    RouteConfig::new(id, path, methods, Upstream::parse(upstream).unwrap())
}

/// A server running only the gateway role with these routes.
pub async fn gateway(routes: Vec<RouteConfig>, edit: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.roles = vec![Role::Gateway];
        c.gateway.routes = routes;
        edit(c);
    })
    .await
}

pub fn base(s: &TestServer) -> String {
    format!("http://{}", s.addr(Role::Gateway))
}

/// A response read off a raw connection.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// Asserts an RFC 9457 problem with this status and no internals.
    pub fn assert_problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type").as_deref(), Some("application/problem+json"), "{self:?}");
        let v: Value = serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"));
        assert_eq!(v["status"], status);
        v
    }
}

/// Sends `bytes` on a fresh connection, reads until the server closes it (or 5 s pass) and
/// parses the first response. `None` if the server closed without answering.
pub async fn raw(s: &TestServer, bytes: &[u8]) -> Option<Raw> {
    let mut c = TcpStream::connect(s.addr(Role::Gateway)).await.unwrap();
    c.write_all(bytes).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let raw = Raw { status, head: head.to_owned(), body: String::new() };
    let body = match raw.header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        Some(n) => rest.get(..n).unwrap_or(rest).to_owned(),
        None => rest.to_owned(),
    };
    Some(Raw { body, ..raw })
}

/// A GET over a raw connection (so the path goes out byte for byte, unlike an HTTP client
/// that would resolve dot segments itself).
pub async fn raw_get(s: &TestServer, path: &str) -> Raw {
    raw(s, format!("GET {path} HTTP/1.1\r\nhost: api.example\r\nconnection: close\r\n\r\n").as_bytes()).await.expect("an answer")
}

/// Asserts an RFC 9457 problem from a reqwest response; returns its body.
pub async fn assert_problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert!(resp.headers().contains_key("x-request-id"));
    let text = resp.text().await.unwrap();
    for leak in ["refused", "os error", "127.0.0.1", "hyper", "stack trace", "tcp connect"] {
        assert!(!text.to_lowercase().contains(leak), "internals ({leak}) in {text}");
    }
    serde_json::from_str(&text).unwrap()
}
