//! The admin listener. For now it answers only its health check; the admin API, console and
//! metrics arrive with their issues and are added here. Every other path is a 404 problem.

use crate::http::problem::Problem;
use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;

/// The admin router.
pub fn router() -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok", "role": "admin"})) }))
        .fallback(|| async { Problem::not_found().into_response() })
}
