//! Domain-based self-registration.

pub mod routes;
pub mod store;
