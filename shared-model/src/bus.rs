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
//! and replayed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::config::AmqpConfig;
use crate::db::{self, Scope};
use crate::envelope::{CloudEvent, EventType};

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

/// An event handler: applies one event inside the consumer's transaction.
pub type Handler = Arc<
    dyn for<'c> Fn(&'c mut PgConnection, &'c CloudEvent) -> BoxFuture<'c, anyhow::Result<()>>
        + Send
        + Sync,
>;

/// A consumer: a queue, the event types it binds, and what it does with each of them. Event
/// types are the catalog's constants, so a binding cannot name a type that does not exist:
///
/// ```ignore
/// Subscription::new("customer-lifecycle")
///     .on(customer::CREATED, upsert.clone())
///     .on(customer::DELETED, forget)
/// ```
#[derive(Clone)]
pub struct Subscription {
    /// Queue name without the prefix, e.g. `customer-events`.
    pub name: String,
    handlers: Vec<(EventType, Handler)>,
}

impl Subscription {
    /// A consumer of the queue `name` (without the service's prefix), binding nothing yet.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            handlers: Vec::new(),
        }
    }

    /// Binds `kind` to the queue and handles its events with `handler`.
    pub fn on(mut self, kind: EventType, handler: Handler) -> Self {
        self.handlers.retain(|(k, _)| k.name != kind.name);
        self.handlers.push((kind, handler));
        self
    }

    /// [`Subscription::on`] for each of `kinds`, with one handler.
    pub fn on_each(self, kinds: &[EventType], handler: Handler) -> Self {
        kinds
            .iter()
            .fold(self, |sub, kind| sub.on(*kind, handler.clone()))
    }

    /// The routing keys bound to the queue: the event types handled.
    pub fn bindings(&self) -> Vec<String> {
        self.handlers
            .iter()
            .map(|(k, _)| k.name.to_string())
            .collect()
    }

    /// The handler of an event type (none for a type the queue does not bind).
    fn handler(&self, event_type: &str) -> Option<&Handler> {
        self.handlers
            .iter()
            .find(|(k, _)| k.name == event_type)
            .map(|(_, h)| h)
    }
}

/// Runs a consumer until `shutdown`, reconnecting on broker failure. The delivery in hand is
/// finished (committed and acked, or returned) before it stops.
pub async fn run_consumer(
    cfg: AmqpConfig,
    pool: PgPool,
    sub: Subscription,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
    shutdown: CancellationToken,
) {
    let queue = queue_name(&cfg, &sub.name);
    let mut ready = ready;
    let mut backoff = Duration::from_millis(200);
    loop {
        match consume(&cfg, &pool, &sub, &queue, &mut ready, &shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(
                    queue,
                    error = format!("{e:#}"),
                    "consumer failed; reconnecting"
                );
                metrics::counter!("consumer_errors_total", "queue" => queue.clone()).increment(1);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
        // Capped at a second: consuming resumes within about a second of the broker's return.
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

async fn consume(
    cfg: &AmqpConfig,
    pool: &PgPool,
    sub: &Subscription,
    queue: &str,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let conn = connect(cfg, queue).await?;
    let ch = conn.create_channel().await?;
    declare_queue(&ch, cfg, queue, &sub.bindings()).await?;
    ch.basic_qos(cfg.prefetch, BasicQosOptions::default())
        .await?;
    let mut deliveries = ch
        .basic_consume(
            queue.into(),
            format!("{queue}-{}", uuid::Uuid::new_v4().simple()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    if let Some(tx) = ready.take() {
        let _ = tx.send(());
    }
    loop {
        let delivery = tokio::select! {
            d = deliveries.next() => d,
            _ = shutdown.cancelled() => {
                let _ = conn.close(200, ShortString::from("shutdown")).await;
                return Ok(());
            }
        };
        let Some(delivery) = delivery else {
            anyhow::bail!("the consumer stream of {queue} ended");
        };
        let delivery = delivery?;
        let event: CloudEvent = match serde_json::from_slice(&delivery.data) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(queue, error = %e, "undecodable message; dead-lettering it");
                metrics::counter!("consumer_messages_total", "queue" => queue.to_string(), "outcome" => "undecodable").increment(1);
                delivery
                    .reject(BasicRejectOptions { requeue: false })
                    .await?;
                continue;
            }
        };
        let parent = event
            .traceparent
            .as_deref()
            .and_then(crate::telemetry::TraceContext::parse);
        let span = tracing::info_span!(
            "consume",
            queue,
            event_type = %event.event_type,
            event_id = %event.id,
            trace_id = parent.as_ref().map(|p| p.trace_id()),
        );
        if let Some(parent) = &parent {
            crate::telemetry::set_remote_parent(&span, parent);
        }
        let outcome = tracing::Instrument::instrument(apply(pool, queue, sub, &event), span).await;
        match outcome {
            Ok(applied) => {
                delivery.ack(BasicAckOptions::default()).await?;
                let outcome = if applied { "applied" } else { "duplicate" };
                metrics::counter!("consumer_messages_total", "queue" => queue.to_string(), "outcome" => outcome).increment(1);
            }
            Err(e) => {
                tracing::warn!(queue, event_id = %event.id, error = format!("{e:#}"), "handler failed; returning the message");
                metrics::counter!("consumer_messages_total", "queue" => queue.to_string(), "outcome" => "failed").increment(1);
                delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await?;
            }
        }
    }
}

/// Applies an event once: returns false if the inbox shows it was applied before.
async fn apply(
    pool: &PgPool,
    queue: &str,
    sub: &Subscription,
    event: &CloudEvent,
) -> anyhow::Result<bool> {
    let scope = event.customerid.map(Scope::Tenant).unwrap_or(Scope::System);
    let mut tx = db::begin(pool, scope).await?;
    let fresh = sqlx::query(
        "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(queue)
    .bind(event.id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    // An event of a type the queue no longer handles (a binding removed since it was queued)
    // is recorded and dropped.
    if fresh && let Some(handler) = sub.handler(&event.event_type) {
        handler(&mut tx, event).await?;
    }
    tx.commit().await?;
    Ok(fresh)
}

/// A message in a dead-letter queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub routing_key: String,
    pub message_id: Option<String>,
    /// Why the broker dead-lettered it (`delivery_limit`, `rejected`, ...).
    pub reason: Option<String>,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

/// Lists up to `limit` dead letters of a consumer without removing them.
pub async fn list_dead_letters(
    cfg: &AmqpConfig,
    consumer: &str,
    limit: usize,
) -> anyhow::Result<Vec<DeadLetter>> {
    let dlq = format!("{}.dlq", queue_name(cfg, consumer));
    let conn = connect(cfg, "dead-letter-list").await?;
    let ch = conn.create_channel().await?;
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(msg) = ch
            .basic_get(dlq.clone().into(), BasicGetOptions::default())
            .await?
        else {
            break;
        };
        let d = &msg.delivery;
        let reason = d.properties.headers().as_ref().and_then(|h| {
            h.inner().get("x-first-death-reason").and_then(|v| match v {
                AMQPValue::LongString(s) => Some(s.to_string()),
                _ => None,
            })
        });
        out.push(DeadLetter {
            routing_key: d.routing_key.to_string(),
            message_id: d.properties.message_id().as_ref().map(|m| m.to_string()),
            reason,
            body: serde_json::from_slice(&d.data).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&d.data).into())
            }),
        });
    }
    // Closing the channel returns every unacknowledged message to the queue.
    let _ = conn.close(200, ShortString::from("listed")).await;
    Ok(out)
}

/// Moves up to `limit` dead letters back onto the consumer's queue; returns how many.
pub async fn replay_dead_letters(
    cfg: &AmqpConfig,
    consumer: &str,
    limit: usize,
) -> anyhow::Result<usize> {
    let queue = queue_name(cfg, consumer);
    let dlq = format!("{queue}.dlq");
    let conn = connect(cfg, "dead-letter-replay").await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let mut n = 0;
    while n < limit {
        let Some(msg) = ch
            .basic_get(dlq.clone().into(), BasicGetOptions::default())
            .await?
        else {
            break;
        };
        let d = msg.delivery;
        let mut props: BasicProperties = d.properties.clone();
        if let Some(h) = props.headers().clone() {
            let mut kept = FieldTable::default();
            for (k, v) in h.inner() {
                if !k.as_str().starts_with("x-") {
                    kept.insert(k.clone(), v.clone());
                }
            }
            props = props.with_headers(kept);
        }
        // Straight to the consumer's queue (default exchange), not to every subscriber again.
        let confirm = ch
            .basic_publish(
                "".into(),
                queue.clone().into(),
                BasicPublishOptions::default(),
                &d.data,
                props,
            )
            .await?
            .await?;
        if !confirm.is_ack() {
            anyhow::bail!("the broker refused a replayed message");
        }
        d.acker.ack(BasicAckOptions::default()).await?;
        n += 1;
    }
    let _ = conn.close(200, ShortString::from("replayed")).await;
    Ok(n)
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
