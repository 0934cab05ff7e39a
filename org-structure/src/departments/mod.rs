//! Departments of customers and of their clients: a tree per owner (at most
//! [`tree::MAX_DEPTH`] levels, no cycles), each optionally at a location of the same owner.

pub mod routes;
pub mod store;
pub mod tree;
