//! The API gateway: request → path normalisation → route → policies → upstream.
//!
//! # Layout
//!
//! - `mod.rs` (this file): the section struct [`Config`] (resolved by `config/gateway.rs`;
//!   the gateway never reads configuration) and the axum glue — the only file here that
//!   knows axum;
//! - `pipeline.rs`: [`Gateway`], the per-request phases in order;
//! - `context.rs`: the typed per-request [`RequestContext`], [`Policy`] (Continue / Stop)
//!   and [`Denial`];
//! - `path.rs`: path normalisation (pure);
//! - `route.rs`: route matching (pure);
//! - `proxy.rs`: the upstream client, header rewriting, timeouts and the retry.
//!
//! The listener itself is `http::serve` with `http::layers` (request id, security headers,
//! panic catch, request timeout), as for every role; `/livez` and `/healthz` are answered
//! before any route.
//!
//! Framing: hyper's parser refuses differing `Content-Length`s, malformed lengths, transfer
//! codings other than a final `chunked`, `Transfer-Encoding` in HTTP/1.0, obs-fold and
//! oversized heads (400 / 431, connection closed); the gateway reads a body's first frame
//! before contacting the upstream, so a bad first chunk is a 400 too. `Content-Length` with
//! `Transfer-Encoding` is the one case hyper accepts (RFC 9112 §6.1 allows it): it drops the
//! length before the request reaches us, decodes the chunked body and closes the connection
//! after the response, so the upstream gets one request framed by the chunked encoding alone
//! and nothing after it is read as a second request (`tests/gateway/smuggling.rs`).

pub mod context;
pub mod path;
mod pipeline;
pub mod proxy;
pub mod route;

pub use context::{Denial, Flow, Policy, RequestContext};
pub use pipeline::Gateway;
pub use proxy::Upstream;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// `[gateway]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Socket address to bind.
    pub listen: SocketAddr,
    /// TLS termination (certificate and key files); `None`: plain HTTP.
    pub tls: Option<crate::http::tls::TlsFiles>,
    /// Default upstream timeouts (each route may override them).
    pub timeouts: Timeouts,
    /// `[[gateway.routes]]`, in file order.
    pub routes: Vec<RouteConfig>,
}

/// Upstream timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// One attempt to open a connection.
    pub connect: Duration,
    /// From sending the request until the response head (a retry included).
    pub first_byte: Duration,
    /// The whole exchange, response body included.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(5), first_byte: Duration::from_secs(25), total: Duration::from_secs(60) }
    }
}

/// How a route authenticates callers. Deny by default: every route must say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// `anonymous = true`: open to callers without credentials.
    Anonymous,
}

/// One `[[gateway.routes]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteConfig {
    /// Unique id (logs, audit, later the admin API).
    pub id: String,
    /// Host names this route serves (lower-case, no port); empty: any host.
    pub hosts: Vec<String>,
    /// Path prefix (`/api/`, `/api/*`) or template (`/cars/{vin}`).
    pub path: String,
    /// Methods, upper-case; `GET` implies `HEAD`.
    pub methods: Vec<String>,
    /// Where requests go.
    pub upstream: Upstream,
    /// Match the path case-insensitively (for upstreams that do).
    pub case_insensitive: bool,
    /// Speak HTTP/2 to the upstream (cleartext, prior knowledge) instead of HTTP/1.1.
    pub http2: bool,
    /// Authentication.
    pub auth: Auth,
    /// Upstream timeouts.
    pub timeouts: Timeouts,
}

/// The gateway's router: every request that is not a health check goes through the pipeline.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new().fallback(proxy).with_state(gateway)
}

async fn proxy(State(gateway): State<Arc<Gateway>>, req: Request) -> Response {
    let req = req.map(|b| b.map_err(Into::into).boxed_unsync());
    match gateway.handle(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(denial) => denial_response(denial),
    }
}

fn denial_response(denial: Denial) -> Response {
    let mut resp = denial.problem.into_response();
    for (name, value) in denial.headers {
        resp.headers_mut().insert(name, value);
    }
    if denial.close {
        resp.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    resp
}
