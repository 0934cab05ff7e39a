//! Tenant roles.

pub mod routes;
pub mod store;
