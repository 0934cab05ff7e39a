//! Data partitions of a customer.

pub mod routes;
pub mod store;
