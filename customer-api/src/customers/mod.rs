//! Customers: tenant accounts.

pub mod routes;
pub mod store;
pub mod validate;
