//! org-structure's settings of each customer, at `/v1/customers/{customerId}/org-settings`.

pub mod routes;
pub mod store;
