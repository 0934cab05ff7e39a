//! Customer lifecycle: deactivation, reactivation, purge and the feedback report.

pub mod reactions;
pub mod routes;
pub mod store;
