//! The search API (`POST /v1/search`): a request's validation ([`request`]) and its filter's
//! into a typed filter tree ([`filter`]), what a caller reaches ([`scope`]), and the operation ([`routes`]).

pub mod filter;
pub mod request;
pub mod routes;
pub mod scope;
