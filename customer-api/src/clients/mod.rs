//! Clients: the accounts a customer serves, with their address books.

pub mod actions;
pub mod addresses;
pub mod changes;
pub mod provisioning;
pub mod requests;
pub mod routes;
pub mod store;
pub mod validate;
