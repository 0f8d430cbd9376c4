//! [`LiveGateway`]: the gateway being served, replaced whole when the configuration is
//! reloaded (`app/reload.rs`).
//!
//! Each request reads the current [`Gateway`] once, when it arrives, and keeps that `Arc` to
//! the end: a request in flight during a reload finishes on the routes, policies and upstream
//! clients it started with; the old gateway is freed when its last request ends. Open
//! connections are untouched: their next request simply reads the new gateway.

use super::Gateway;
use std::sync::{Arc, RwLock};

/// The current gateway, swapped atomically.
#[derive(Debug)]
pub struct LiveGateway {
    current: RwLock<Arc<Gateway>>,
}

impl LiveGateway {
    /// Serves `gateway` until the first swap.
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { current: RwLock::new(gateway) }
    }

    /// The gateway new requests use (one read lock and an `Arc` clone).
    pub fn current(&self) -> Arc<Gateway> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `next` in place for every request from now on; returns the one it replaced.
    pub fn swap(&self, next: Arc<Gateway>) -> Arc<Gateway> {
        std::mem::replace(&mut *self.current.write().unwrap_or_else(|p| p.into_inner()), next)
    }
}
