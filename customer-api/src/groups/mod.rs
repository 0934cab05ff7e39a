//! Client groups (shopper groups), memberships and the pricing/snapshot internal endpoints.

pub mod members;
pub mod routes;
pub mod snapshots;
pub mod store;
