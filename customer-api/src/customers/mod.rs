//! Customers: tenant accounts.

pub mod changes;
pub mod routes;
pub mod store;
pub mod validate;
