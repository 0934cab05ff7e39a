//! Data partitions of a customer.

pub mod groups;
pub mod routes;
pub mod store;
