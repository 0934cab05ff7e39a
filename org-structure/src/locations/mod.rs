//! Locations (sites) of customers and of their clients: routes, SQL, and the HQ rules (one
//! per owner; the HQ made from a business customer's address).

pub mod hq;
pub mod routes;
pub mod store;
