//! The admin listener. For now it answers only its health checks (`http/health.rs`, mounted
//! by `app.rs`); the admin API, console and metrics arrive with their issues and are added
//! here. Every other path is a 404 problem.

use crate::http::problem::Problem;
use axum::Router;
use axum::response::IntoResponse;

/// The admin router.
pub fn router() -> Router {
    Router::new().fallback(|| async { Problem::not_found().into_response() })
}
