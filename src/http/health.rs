//! Health endpoints, the same on every listener:
//!
//! - `GET /livez` — **liveness**: 200 `{"status":"ok","role":…}` whenever the process serves
//!   HTTP, whatever the database does. Point restart-on-failure probes here: restarting a node
//!   does not bring a database back, and a node that cannot reach its store cannot start.
//! - `GET /healthz` — **readiness**: 200 `{"status":"ok","role":…,"store":"ok"}`, or 503
//!   `{"status":"degraded","role":…,"store":"unavailable"}` with `Retry-After` while the store
//!   does not answer (the provider then still serves what it can: discovery, JWKS and, for a
//!   grace period, tokens for cached clients). Point load balancers and monitoring here.
//!
//! Neither queries the database: `/healthz` reads the state that store calls and a background
//! probe keep (`store::Health`), so it is as cheap as `/livez`.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// `Retry-After` (seconds) of a degraded `/healthz`.
const RETRY_AFTER_SECS: u32 = 2;

/// The two health routes of `role`; `store_ok` reads the store's health.
pub fn routes<F>(role: &'static str, store_ok: F) -> Router
where
    F: Fn() -> bool + Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/livez", get(move || async move { axum::Json(json!({"status": "ok", "role": role})) }))
        .route("/healthz", get(move || async move { readiness(role, store_ok()) }))
}

fn readiness(role: &'static str, store_ok: bool) -> Response {
    let mut resp = if store_ok {
        axum::Json(json!({"status": "ok", "role": role, "store": "ok"})).into_response()
    } else {
        let body = json!({"status": "degraded", "role": role, "store": "unavailable"});
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        r
    };
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
