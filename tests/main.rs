//! The one integration-test binary (`autotests = false`): every test boots its own server on
//! 127.0.0.1:0 with a fresh data directory, through the same `app::run` as `warden serve`.

mod arch;
mod blackbox;
mod gateway;
mod interop;
mod listeners;
mod master_key;
mod oauth;
mod roles;
mod store;
mod support;
mod users;
