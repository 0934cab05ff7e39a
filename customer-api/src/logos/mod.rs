//! Logos of customers and clients: content-addressed, served immutable.

pub mod image;
pub mod routes;
pub mod store;
