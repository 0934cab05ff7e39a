//! The customers partition-keys knows of (the `known_customers` projection, kept by the kit's
//! `projection` contract: version-guarded, deletions kept as tombstones) and the cascades of
//! their lifecycle, as reactions to customer-api's events:
//!
//! - `customer.created|updated|reactivated` → the customer is known and active (only a newer
//!   `version` than the one recorded changes anything). Keys expired by a deactivation stay
//!   expired: new keys must be issued after a reactivation.
//! - `customer.deactivated` → every key of the customer expires now.
//! - `customer.deleted` → every partition of the customer is deleted (each publishing
//!   `partition.deleted`, its keys expiring), its partition groups go, and the customer stays
//!   as a tombstone (status `deleted`): unknown to the API (404), and a stale event delivered
//!   later cannot bring it back.

pub mod reactions;
pub mod store;
