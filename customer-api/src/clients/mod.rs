//! Clients: the accounts a customer serves, with their address books.

pub mod addresses;
pub mod provision;
pub mod routes;
pub mod store;
