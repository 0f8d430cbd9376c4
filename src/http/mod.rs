//! HTTP glue shared by every listener: the guarded accept loop (`serve`), TLS termination
//! with reloadable certificate files (`tls`), the client address behind trusted proxies
//! (`client_ip`), failure throttling per (account, address) (`throttle`: the provider's client
//! and login throttles, the gateway's Basic throttle), the common tower layers, the health endpoints and the RFC 9457 problem
//! document. The only place besides `*/handler.rs`,
//! `gateway/mod.rs`, `admin/` and `app.rs` that knows axum.

pub mod client_ip;
pub mod health;
pub mod layers;
pub mod problem;
pub mod serve;
pub mod throttle;
pub mod tls;
