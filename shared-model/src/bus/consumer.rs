//! Consumers: a queue's subscription and the loop that applies its events once.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{connect, declare_queue, queue_name};
use crate::config::AmqpConfig;
use crate::db::{self, Scope};
use crate::envelope::{CloudEvent, EventType};

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

/// Runs a consumer until `shutdown`, reconnecting on broker failure. Deliveries are applied in
/// `amqp.consumer_lanes` lanes side by side; the events of one customer (or, for an event
/// without a customer, of one subject) all go to one lane and are applied in the order they
/// arrived. The deliveries in hand are finished (committed and acked, or returned) before it
/// stops.
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
    // Lanes apply deliveries side by side, each in its own transaction; every event of one
    // customer (or, without one, of one subject) goes to the same lane, in arrival order.
    let mut lanes = Vec::with_capacity(usize::from(cfg.consumer_lanes));
    let mut running = JoinSet::new();
    for _ in 0..cfg.consumer_lanes.max(1) {
        let (tx, rx) = mpsc::channel(usize::from(cfg.prefetch));
        lanes.push(tx);
        running.spawn(lane(rx, pool.clone(), queue.to_string(), sub.clone()));
    }
    loop {
        let delivery = tokio::select! {
            d = deliveries.next() => d,
            Some(ended) = running.join_next() => {
                // A lane stops only when the channel fails under it (an ack that cannot be sent).
                ended??;
                anyhow::bail!("a consumer lane of {queue} stopped");
            }
            _ = shutdown.cancelled() => {
                // The lanes finish what they were given, then the channel closes.
                drop(lanes);
                while let Some(ended) = running.join_next().await {
                    if let Ok(Err(e)) = ended {
                        tracing::warn!(queue, error = format!("{e:#}"), "consumer lane failed while stopping");
                    }
                }
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
        let n = lane_of(&event, lanes.len());
        // A lane holds at most `prefetch` deliveries, all the broker sends unacknowledged, so
        // this waits only while the lane is being stopped by a failure.
        if lanes[n].send((delivery, event)).await.is_err() {
            anyhow::bail!("a consumer lane of {queue} stopped");
        }
    }
}

/// The lane of an event: by its customer, or its subject when it has no customer.
fn lane_of(event: &CloudEvent, lanes: usize) -> usize {
    let mut h = std::hash::DefaultHasher::new();
    match (event.customerid, &event.subject) {
        (Some(c), _) => c.hash(&mut h),
        (None, Some(subject)) => subject.hash(&mut h),
        (None, None) => event.id.hash(&mut h),
    }
    (h.finish() % lanes as u64) as usize
}

/// Deliveries a lane applies in one transaction at most.
const BATCH: usize = 32;

/// Applies a lane's deliveries until the consume loop drops its sender: what has arrived by
/// the time the lane is free (up to [`BATCH`]) in one transaction, so that a busy queue pays
/// one commit for many events; an idle one still applies each as it comes. If any of a batch
/// fails, the batch is rolled back and its events applied one by one, so only the failing one
/// is returned to the queue.
async fn lane(
    mut rx: mpsc::Receiver<(Delivery, CloudEvent)>,
    pool: PgPool,
    queue: String,
    sub: Subscription,
) -> anyhow::Result<()> {
    let queue = queue.as_str();
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < BATCH
            && let Ok(next) = rx.try_recv()
        {
            batch.push(next);
        }
        let started = Instant::now();
        for (delivery, _) in &batch {
            if let Some(delay) = enqueued_ago(&delivery.properties) {
                metrics::histogram!("consumer_delivery_delay_seconds", "queue" => queue.to_string())
                    .record(delay);
            }
        }
        let outcome = if batch.len() > 1 {
            apply_batch(&pool, queue, &sub, &batch).await
        } else {
            Err((0, None))
        };
        match outcome {
            Ok(fresh) => {
                let elapsed = started.elapsed().as_secs_f64();
                for ((delivery, _), applied) in batch.drain(..).zip(fresh) {
                    metrics::histogram!("consumer_apply_seconds", "queue" => queue.to_string())
                        .record(elapsed);
                    settled(delivery, queue, Ok(applied)).await?;
                }
            }
            // The batch is rolled back: the others are applied one by one; the one that failed
            // (if one did) goes back to the queue without a second try, as alone it would.
            Err((failed, error)) => {
                for (i, (delivery, event)) in batch.drain(..).enumerate() {
                    let outcome = match (&error, i == failed) {
                        (Some(e), true) => Err(anyhow::anyhow!("{e:#}")),
                        _ => {
                            let started = Instant::now();
                            let outcome =
                                traced(&event, queue, apply(&pool, queue, &sub, &event)).await;
                            metrics::histogram!("consumer_apply_seconds", "queue" => queue.to_string())
                                .record(started.elapsed().as_secs_f64());
                            outcome
                        }
                    };
                    if let Err(e) = &outcome {
                        tracing::warn!(queue, event_id = %event.id, error = format!("{e:#}"), "handler failed; returning the message");
                    }
                    settled(delivery, queue, outcome).await?;
                }
            }
        }
    }
    Ok(())
}

/// Runs `work` in the span of `event`, continuing its trace.
async fn traced<T>(
    event: &CloudEvent,
    queue: &str,
    work: impl std::future::Future<Output = T>,
) -> T {
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
    tracing::Instrument::instrument(work, span).await
}

/// Acks an applied (or already applied) delivery, returns a failed one to the queue.
async fn settled(
    delivery: Delivery,
    queue: &str,
    outcome: anyhow::Result<bool>,
) -> anyhow::Result<()> {
    match outcome {
        Ok(applied) => {
            delivery.ack(BasicAckOptions::default()).await?;
            let outcome = if applied { "applied" } else { "duplicate" };
            metrics::counter!("consumer_messages_total", "queue" => queue.to_string(), "outcome" => outcome).increment(1);
        }
        Err(_) => {
            metrics::counter!("consumer_messages_total", "queue" => queue.to_string(), "outcome" => "failed").increment(1);
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await?;
        }
    }
    Ok(())
}

/// Seconds since the event's outbox row was written (its `enqueuedat` header), as this
/// machine's clock sees it; `None` for a message without the header.
fn enqueued_ago(props: &BasicProperties) -> Option<f64> {
    let at = match props.headers().as_ref()?.inner().get("enqueuedat")? {
        AMQPValue::LongString(s) => time::OffsetDateTime::parse(
            &s.to_string(),
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?,
        _ => return None,
    };
    Some(
        (time::OffsetDateTime::now_utc() - at)
            .as_seconds_f64()
            .max(0.0),
    )
}

/// Applies an event once: returns false if the inbox shows it was applied before.
async fn apply(
    pool: &PgPool,
    queue: &str,
    sub: &Subscription,
    event: &CloudEvent,
) -> anyhow::Result<bool> {
    let mut tx = db::begin(pool, scope_of(event)).await?;
    let fresh = apply_in(&mut tx, queue, sub, event).await?;
    tx.commit().await?;
    Ok(fresh)
}

/// Applies several events in one transaction, each in its own row-level security scope, in
/// order; for each, whether it was new. Nothing is kept if any fails.
/// On failure, the position of the event that failed and its error (`None` when the
/// transaction itself failed).
async fn apply_batch(
    pool: &PgPool,
    queue: &str,
    sub: &Subscription,
    batch: &[(Delivery, CloudEvent)],
) -> Result<Vec<bool>, (usize, Option<anyhow::Error>)> {
    let whole = |_| (batch.len(), None);
    let mut tx = db::begin(pool, Scope::System).await.map_err(whole)?;
    let mut fresh = Vec::with_capacity(batch.len());
    for (i, (_, event)) in batch.iter().enumerate() {
        db::set_scope(&mut tx, scope_of(event))
            .await
            .map_err(whole)?;
        match traced(event, queue, apply_in(&mut tx, queue, sub, event)).await {
            Ok(f) => fresh.push(f),
            Err(e) => return Err((i, Some(e))),
        }
    }
    tx.commit().await.map_err(whole)?;
    Ok(fresh)
}

fn scope_of(event: &CloudEvent) -> Scope {
    event.customerid.map(Scope::Tenant).unwrap_or(Scope::System)
}

/// Records the event in the inbox and, if it is new there, runs its handler.
async fn apply_in(
    conn: &mut PgConnection,
    queue: &str,
    sub: &Subscription,
    event: &CloudEvent,
) -> anyhow::Result<bool> {
    let fresh = sqlx::query(
        "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(queue)
    .bind(event.id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    // An event of a type the queue no longer handles (a binding removed since it was queued)
    // is recorded and dropped.
    if fresh && let Some(handler) = sub.handler(&event.event_type) {
        handler(conn, event).await?;
    }
    Ok(fresh)
}
