//! Tower layers every listener gets, outermost first:
//!
//! 1. `x-request-id`: set (or kept from the caller) and echoed on the response;
//! 2. trace span per request (method, path, status, latency) at `debug`;
//! 3. panic catch: a panic becomes a 500 with a generic body, never a dropped connection or a
//!    backtrace on the wire;
//! 4. timeout: a request still running after `http.request_timeout` gets a 503;
//! 5. `x-content-type-options: nosniff` and `referrer-policy: no-referrer` on every response.
//!
//! `Router::layer` wraps bottom-up, so `apply` adds them in reverse of the list above.

use super::problem::Problem;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::any::Any;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// How a listener renders a failure that happened outside any handler.
#[derive(Clone, Copy)]
pub enum Surface {
    /// OAuth endpoints: RFC 6749 JSON.
    OAuth,
    /// Gateway and admin: RFC 9457 problem+json.
    Problem,
}

fn panic_response(surface: Surface) -> Response {
    match surface {
        Surface::OAuth => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(serde_json::json!({
                "error": "server_error",
                "error_description": "the server could not complete the request"
            })),
        )
            .into_response(),
        Surface::Problem => Problem::internal().into_response(),
    }
}

/// Wraps `router` in the common layers.
pub fn apply(router: Router, surface: Surface, request_timeout: Duration) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, request_timeout))
        .layer(CatchPanicLayer::custom(move |_: Box<dyn Any + Send>| {
            tracing::error!("a request handler panicked");
            panic_response(surface)
        }))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}
