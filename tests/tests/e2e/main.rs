//! End-to-end tests against the real PostgreSQL and RabbitMQ: the customer-api binary
//! publishing CloudEvents, and the kit's outbox relay and consumer under concurrency, failure
//! and a broker restart.

mod audit;
mod consumer;
mod customer_events;
mod keys;
mod org;
mod otlp;
mod reindex;
mod relay;
mod search;
mod services;

pub use shared_model::testkit::{listen, receive};
