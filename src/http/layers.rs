//! Tower layers every listener gets, outermost first:
//!
//! 1. `x-request-id`: set (or kept from the caller) and echoed on the response;
//! 2. `x-content-type-options: nosniff` and `referrer-policy: no-referrer` on every response —
//!    outside the panic catch and the timeout, so their 500 and 503 get them too;
//! 3. trace span per request (method, path, status, latency) at `debug`;
//! 4. panic catch: a panic becomes a 500 with a generic body, never a dropped connection or a
//!    backtrace on the wire;
//! 5. timeout: a request still running after `http.request_timeout` gets a 503.
//!
//! They wrap the whole router once, as one statically typed stack (`ServiceBuilder`, listed
//! outermost first): `Router::layer` would instead wrap every route in a boxed, cloned-per-call
//! service per layer, which costs a request dozens of allocations.

use super::problem::Problem;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::http::Request;
use std::any::Any;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
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

/// A random (version 4) UUID per request, like `MakeRequestUuid`, but drawn from aws-lc's
/// user-space DRBG and formatted on the stack: no `getrandom` system call and no string
/// round trip per request.
#[derive(Clone, Copy)]
struct RandomUuid;

impl MakeRequestId for RandomUuid {
    fn make_request_id<B>(&mut self, request: &Request<B>) -> Option<RequestId> {
        let mut b = [0u8; 16];
        if aws_lc_rs::rand::fill(&mut b).is_err() {
            return MakeRequestUuid.make_request_id(request);
        }
        HeaderValue::from_bytes(&uuid_v4_text(b)).ok().map(RequestId::new)
    }
}

/// RFC 9562 §5.4: version 4 and the variant bits set, then the hyphenated lower-case form.
fn uuid_v4_text(mut b: [u8; 16]) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        out[at] = HEX[usize::from(byte >> 4)];
        out[at + 1] = HEX[usize::from(byte & 0x0f)];
        at += 2;
    }
    out
}

/// Wraps `router` in the common layers.
pub fn apply(router: Router, surface: Surface, request_timeout: Duration) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let stack = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), RandomUuid))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(move |_: Box<dyn Any + Send>| {
            tracing::error!("a request handler panicked");
            panic_response(surface)
        }))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, request_timeout))
        .service(router);
    Router::new().fallback_service(stack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn every_response_gets_the_common_headers_and_panics_become_500s() {
        let app = apply(
            Router::new()
                .route("/ok", get(|| async { "ok" }))
                .route("/panic", get(|| async { panic!("boom") as &'static str }))
                .route("/slow", get(|| async { tokio::time::sleep(Duration::from_secs(5)).await; "late" }))
                .fallback(|| async { StatusCode::NOT_FOUND }),
            Surface::OAuth,
            Duration::from_millis(300),
        );
        for (path, status) in [("/ok", 200), ("/panic", 500), ("/nowhere", 404), ("/slow", 503)] {
            let resp = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
            assert_eq!(resp.status(), status, "{path}");
            let h = resp.headers();
            assert_eq!(h["x-request-id"].len(), 36, "{path}");
            // Also the 500 of a panic and the 503 of the timeout.
            assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        }
        let resp = app.oneshot(Request::get("/ok").header("x-request-id", "abc").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.headers()["x-request-id"], "abc", "a caller's id is kept");
    }

    #[test]
    fn request_ids_are_version_4_uuids() {
        assert_eq!(&uuid_v4_text([0; 16]), b"00000000-0000-4000-8000-000000000000");
        assert_eq!(&uuid_v4_text([0xff; 16]), b"ffffffff-ffff-4fff-bfff-ffffffffffff");
        let mut m = RandomUuid;
        let req = Request::new(());
        let a = m.make_request_id(&req).unwrap();
        let b = m.make_request_id(&req).unwrap();
        assert_ne!(a.header_value(), b.header_value());
        let text = a.header_value().to_str().unwrap();
        assert_eq!(text.len(), 36);
        assert_eq!(text.as_bytes()[14], b'4');
    }
}
