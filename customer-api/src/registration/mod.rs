//! Domain-based self-registration.

pub mod routes;
