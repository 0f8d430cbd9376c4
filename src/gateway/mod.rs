//! The API gateway listener. For now it answers only its health checks (`http/health.rs`,
//! mounted by `app.rs`): routes, the policy pipeline and upstream forwarding arrive with the
//! gateway issue, and are added here. Every other path is an honest 404 problem, not a
//! pretend feature.

use crate::http::problem::Problem;
use axum::Router;
use axum::response::IntoResponse;

/// The gateway's router.
pub fn router() -> Router {
    Router::new().fallback(|| async { Problem::not_found().into_response() })
}
