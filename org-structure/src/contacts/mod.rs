//! Contact persons of customers and of their clients, typed (`account_owner`, `billing`,
//! `technical` or a custom label), at most one primary per owner and type, optionally at a
//! location and in a department of the same owner.

pub mod requests;
pub mod routes;
pub mod snapshot;
pub mod store;
