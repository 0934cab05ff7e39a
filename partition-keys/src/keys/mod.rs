//! API keys: format and hashing, storage, verification.

pub mod gateway;
pub mod jobs;
pub mod routes;
pub mod scopes;
pub mod secret;
pub mod store;
pub mod verify;
