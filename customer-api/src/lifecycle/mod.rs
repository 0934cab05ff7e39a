//! Customer lifecycle: deactivation, reactivation, purge and the feedback report.

pub mod jobs;
pub mod reactions;
pub mod routes;
pub mod store;
