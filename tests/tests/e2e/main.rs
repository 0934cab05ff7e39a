//! End-to-end tests against the real PostgreSQL and RabbitMQ: the customer-api binary
//! publishing CloudEvents, and the kit's outbox relay and consumer under concurrency, failure
//! and a broker restart.

mod consumer;
mod customer_events;
mod otlp;
mod relay;
mod services;

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::FieldTable;
use shared_model::config::AmqpConfig;

/// Declares a quorum queue bound to `bindings` on the test's exchange and returns a consumer.
pub async fn listen(
    cfg: &AmqpConfig,
    queue: &str,
    bindings: &[&str],
) -> (lapin::Connection, lapin::Consumer) {
    let conn = shared_model::bus::connect(cfg, "test-listener")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let bindings: Vec<String> = bindings.iter().map(|s| s.to_string()).collect();
    shared_model::bus::declare_queue(&ch, cfg, queue, &bindings)
        .await
        .unwrap();
    let consumer = ch
        .basic_consume(
            queue.into(),
            "test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    (conn, consumer)
}

/// Receives `n` deliveries (acking each) or fails after `timeout`.
pub async fn receive(
    consumer: &mut lapin::Consumer,
    n: usize,
    timeout: Duration,
) -> Vec<lapin::message::Delivery> {
    let mut out = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + timeout;
    while out.len() < n {
        let d = tokio::time::timeout_at(deadline, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("received {} of {n} messages before the timeout", out.len()))
            .expect("consumer stream ended")
            .expect("delivery");
        d.ack(BasicAckOptions::default()).await.unwrap();
        out.push(d);
    }
    out
}
