//! HTTP glue shared by every listener: the common tower layers, the health endpoints and the
//! RFC 9457 problem document. The only place besides `*/handler.rs`, `gateway/mod.rs`,
//! `admin/` and `app.rs` that knows axum.

pub mod health;
pub mod layers;
pub mod problem;
