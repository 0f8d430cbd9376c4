//! RFC 9457 problem details (`application/problem+json`): the error format of the gateway
//! and the admin API.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A problem document. `type` is a stable URN per kind of problem.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// Stable identifier of the problem kind, e.g. `urn:warden:problem:not-found`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short summary of the kind.
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// What happened in this case; never internals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Problem {
    /// No route for this path.
    pub fn not_found() -> Self {
        Self { kind: "urn:warden:problem:not-found", title: "Not Found", status: 404, detail: None }
    }

    /// A dependency (the database) does not answer; sent with `Retry-After`.
    pub fn unavailable() -> Self {
        Self {
            kind: "urn:warden:problem:unavailable",
            title: "Service Unavailable",
            status: 503,
            detail: Some("the service is temporarily unavailable, retry later".into()),
        }
    }

    /// An unexpected failure on our side.
    pub fn internal() -> Self {
        Self {
            kind: "urn:warden:problem:internal",
            title: "Internal Server Error",
            status: 500,
            detail: Some("the server could not complete the request".into()),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, Json(self)).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        resp
    }
}
