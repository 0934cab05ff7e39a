//! Claims synchronization: the claims document of each customer, kept current by a reaction
//! and delivered to the auth service by a signed webhook.

pub mod delivery;
pub mod reactions;
