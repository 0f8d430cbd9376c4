//! Warden: API security in one binary — an OAuth 2.0 / OpenID Connect provider, an API
//! gateway and an admin surface over one store.
//!
//! # Layout
//!
//! Modules in the order a request meets them (see `ARCHITECTURE.md` for the flow charts and
//! the dependency rules, which `tests/arch.rs` enforces):
//!
//! - [`cli`]: the `warden` command line; `serve` and the operator commands.
//! - [`config`]: `warden.toml` + `WARDEN_<SECTION>__<KEY>` → one resolved [`config::Config`].
//! - [`app`]: opens the store and the master key, builds one router per role, serves them
//!   with graceful shutdown.
//! - [`http`]: tower layers shared by every listener and the RFC 9457 problem type.
//! - [`oauth`]: the authorization server — token endpoint and grants, client authentication,
//!   introspection, revocation, registration, metadata and JWKS.
//! - [`gateway`]: the API gateway — path normalisation, routes, the policy pipeline and the
//!   upstream proxy.
//! - [`admin`]: the admin listener (health only so far).
//! - [`jose`]: JWS signing with cached keys, JWT verification, JWKs, the key ring.
//! - [`secrets`]: the master key, sealing at rest, keyed hashes of secrets, Argon2id user
//!   passwords.
//! - [`store`]: the `Catalog` and `Artifacts` traits, SQLite and PostgreSQL backends, and
//!   the storage test suite both run.
//! - [`model`]: domain types and newtype ids shared by all of the above.
//! - [`telemetry`]: logging (audit events are `target: "audit"` log events for now).

#![warn(missing_docs)]

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod gateway;
pub mod http;
pub mod jose;
pub mod model;
pub mod oauth;
pub mod secrets;
pub mod store;
pub mod telemetry;
