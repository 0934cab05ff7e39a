//! Provisioning a client as a customer account of its own (resellers, B2B2C).

pub mod routes;
