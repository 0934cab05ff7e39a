//! The model and service kit shared by every customer-platform service.
//!
//! Domain: [`ids`], [`model`], [`events`], [`error`], [`auth`]. Kit (domain-free):
//! [`config`], [`telemetry`], [`db`], [`outbox`], [`bus`], [`http`], and [`testkit`] for tests.
#![forbid(unsafe_code)]

pub mod auth;
pub mod bus;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod http;
pub mod ids;
pub mod model;
pub mod outbox;
pub mod service;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
