//! API keys: format and hashing, storage, verification.

pub mod jobs;
pub mod routes;
pub mod secret;
pub mod store;
pub mod verify;
