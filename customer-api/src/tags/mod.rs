//! Tag definitions and their application to clients.

pub mod routes;
pub mod store;
