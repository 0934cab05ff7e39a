//! The model and service kit shared by every customer-platform service.
//!
//! Domain: [`ids`], [`model`], [`events`], [`error`], [`auth`]. Kit (domain-free):
//! [`envelope`], [`config`], [`telemetry`], [`db`], [`outbox`], [`bus`], [`http`], [`service`], and
//! [`testkit`] for tests.
#![forbid(unsafe_code)]

/// Locks `m`, carrying on past a panic of an earlier holder: every mutex in the kit guards data
/// a panicking writer cannot leave half-updated (caches, buffers, pools).
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub mod auth;
pub mod bus;
pub mod config;
pub mod db;
pub mod envelope;
pub mod error;
pub mod events;
pub mod http;
pub mod ids;
pub mod keys;
pub mod model;
pub mod outbox;
pub mod projection;
pub mod schema;
pub mod service;
pub mod snapshot;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
