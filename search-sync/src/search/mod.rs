//! The search API (`POST /v1/search`): a request's validation into a typed filter tree
//! ([`request`]), what a caller reaches ([`scope`]), and the operation ([`routes`]).

pub mod request;
pub mod routes;
pub mod scope;
