//! Partition groups: a tree of groups a customer's partitions join.

pub mod routes;
pub mod store;
