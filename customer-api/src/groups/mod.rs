//! Client groups (shopper groups), memberships and the pricing/snapshot internal endpoints.

pub mod routes;
pub mod store;
