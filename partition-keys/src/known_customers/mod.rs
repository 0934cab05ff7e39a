//! The customers partition-keys knows of (the `known_customers` projection) and the cascades
//! of their lifecycle, as reactions to customer-api's events:
//!
//! - `customer.created|updated|reactivated` → the customer is known and active (only a newer
//!   `version` than the one recorded changes anything). Keys expired by a deactivation stay
//!   expired: new keys must be issued after a reactivation.
//! - `customer.deactivated` → every key of the customer expires now.
//! - `customer.deleted` → every partition of the customer is deleted (each publishing
//!   `partition.deleted`, its keys expiring), then the customer is forgotten.

pub mod reactions;
pub mod store;
