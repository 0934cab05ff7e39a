//! A client's address book: labelled postal addresses with default shipping and billing
//! flags.

pub mod routes;
pub mod store;
