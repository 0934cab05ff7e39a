//! RabbitMQ topology, consumers and dead letters.
//!
//! Topology: one durable topic exchange (`platform.events`) with routing key = event type; per
//! consumer a durable quorum queue with `delivery-limit` 5 and at-least-once dead-lettering to
//! `platform.dlx`, which routes to the queue's own `<queue>.dlq`.
//!
//! A consumer applies each event in one database transaction that also records the event id in
//! the `inbox` table, and acks only after that transaction commits: a redelivered event is
//! acknowledged without being applied twice. A failing handler's message is returned to the
//! queue; after 5 returns the broker moves it to the dead-letter queue, where it can be listed
//! and replayed. A queue's deliveries are applied in lanes, side by side; one customer's events
//! are applied one after the other, in the order the broker delivered them, and the deliveries
//! waiting for a lane share one transaction (each with its own inbox row and scope).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio_util::sync::CancellationToken;

use crate::config::AmqpConfig;

mod consumer;
mod dead_letters;

pub use consumer::{Handler, Subscription, run_consumer};
pub use dead_letters::{DeadLetter, list_dead_letters, replay_dead_letters};

/// Redeliveries before a message is dead-lettered.
pub const DELIVERY_LIMIT: i64 = 5;

/// Largest AMQP frame asked for unless `amqp.url` sets `frame_max`. The client keeps send and
/// receive buffers of 32 frames per connection, so the broker's default (128 KiB) would cost
/// 8 MiB of memory per connection; events are a few KiB and larger messages are split.
const DEFAULT_FRAME_MAX: u32 = 16 * 1024;

fn with_frame_max(url: &str) -> String {
    if url.contains("frame_max=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&frame_max={DEFAULT_FRAME_MAX}")
    } else {
        format!("{url}?frame_max={DEFAULT_FRAME_MAX}")
    }
}

/// Connects to the broker, naming the connection after its user.
pub async fn connect(cfg: &AmqpConfig, name: &str) -> anyhow::Result<Connection> {
    let props =
        ConnectionProperties::default().with_connection_name(LongString::from(name.to_string()));
    Connection::connect(&with_frame_max(cfg.url.expose()), props)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to RabbitMQ (amqp.url): {e}"))
}

/// Declares the event exchange and the dead-letter exchange.
pub async fn declare_exchanges(ch: &Channel, cfg: &AmqpConfig) -> anyhow::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        cfg.exchange.clone().into(),
        ExchangeKind::Topic,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.exchange_declare(
        cfg.dead_letter_exchange.clone().into(),
        ExchangeKind::Direct,
        durable,
        FieldTable::default(),
    )
    .await?;
    Ok(())
}

/// Full queue name of a consumer.
pub fn queue_name(cfg: &AmqpConfig, consumer: &str) -> String {
    format!("{}.{}", cfg.queue_prefix, consumer)
}

/// Declares a consumer's quorum queue, its dead-letter queue and their bindings.
pub async fn declare_queue(
    ch: &Channel,
    cfg: &AmqpConfig,
    queue: &str,
    bindings: &[String],
) -> anyhow::Result<()> {
    declare_exchanges(ch, cfg).await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let mut args = FieldTable::default();
    let s = |v: &str| AMQPValue::LongString(LongString::from(v.to_string()));
    args.insert("x-queue-type".into(), s("quorum"));
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(DELIVERY_LIMIT),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        s(&cfg.dead_letter_exchange),
    );
    args.insert("x-dead-letter-routing-key".into(), s(queue));
    args.insert("x-dead-letter-strategy".into(), s("at-least-once"));
    args.insert("x-overflow".into(), s("reject-publish"));
    ch.queue_declare(queue.into(), durable, args).await?;
    for key in bindings {
        ch.queue_bind(
            queue.into(),
            cfg.exchange.clone().into(),
            key.clone().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    let dlq = format!("{queue}.dlq");
    let mut dl_args = FieldTable::default();
    dl_args.insert("x-queue-type".into(), s("quorum"));
    ch.queue_declare(dlq.clone().into(), durable, dl_args)
        .await?;
    ch.queue_bind(
        dlq.into(),
        cfg.dead_letter_exchange.clone().into(),
        queue.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(())
}

/// Broker reachability for readiness, kept by a background task.
#[derive(Clone, Default)]
pub struct BrokerHealth(Arc<AtomicBool>);

impl BrokerHealth {
    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Holds a connection open and records whether it is up, until `shutdown`.
    pub async fn monitor(
        self,
        cfg: AmqpConfig,
        service: &'static str,
        shutdown: CancellationToken,
    ) {
        loop {
            match connect(&cfg, &format!("{service}-health")).await {
                Ok(conn) => {
                    self.0.store(true, Ordering::Relaxed);
                    while conn.status().connected() {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = shutdown.cancelled() => {
                                let _ = conn.close(200, ShortString::from("shutdown")).await;
                                return;
                            }
                        }
                    }
                    self.0.store(false, Ordering::Relaxed);
                }
                Err(e) => {
                    self.0.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "broker unreachable");
                }
            }
            // Tried again at once twice a second: readiness follows the broker's return
            // within a second.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_max_is_added_unless_given() {
        assert_eq!(
            with_frame_max("amqp://h/%2f"),
            "amqp://h/%2f?frame_max=16384"
        );
        assert_eq!(
            with_frame_max("amqp://h/v?heartbeat=5"),
            "amqp://h/v?heartbeat=5&frame_max=16384"
        );
        assert_eq!(
            with_frame_max("amqp://h/v?frame_max=4096"),
            "amqp://h/v?frame_max=4096"
        );
    }
}
