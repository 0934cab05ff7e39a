//! The transactional outbox and its relay.
//!
//! `enqueue` writes an event in the caller's transaction, so an event exists if and only if the
//! change committed. The relay (one leader per service database, elected with an advisory lock)
//! publishes rows to RabbitMQ with publisher confirms in `(txid, id)` order, reading only rows
//! whose transaction id is below the snapshot's xmin: every transaction that could still add an
//! earlier row has ended, so a late-committing row can never be skipped. Rows are deleted after
//! the broker confirms them; a crash in between republishes them (consumers dedupe on event id).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sqlx::PgConnection;

use crate::envelope::CloudEvent;

mod relay;

pub use relay::{Relay, pending};

const NOTIFY_CHANNEL: &str = "outbox";

/// A process sends at most one wake-up per this many milliseconds: every notifying commit
/// takes PostgreSQL's notification queue lock, which serializes those commits and halves write
/// throughput if every transaction notifies. The relay re-polls shortly after any non-empty
/// drain, so an event whose writer skipped the wake-up waits at most that long while events
/// flow, and at most the fallback poll interval when they stop.
const NOTIFY_MIN_INTERVAL_MS: u64 = 5;
static LAST_NOTIFY_MS: AtomicU64 = AtomicU64::new(0);

fn should_notify() -> bool {
    static START: OnceLock<Instant> = OnceLock::new();
    let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64 + NOTIFY_MIN_INTERVAL_MS;
    let last = LAST_NOTIFY_MS.load(Ordering::Relaxed);
    now >= last + NOTIFY_MIN_INTERVAL_MS
        && LAST_NOTIFY_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// Whether a statement that writes outbox rows now should also wake the relay
/// (`pg_notify('outbox', '')`): true at most once per few milliseconds per process.
pub fn wake_relay() -> bool {
    should_notify()
}

/// Writes `event` to the outbox in the caller's transaction (waking the relay on commit, at
/// most once per few milliseconds per process).
pub async fn enqueue(conn: &mut PgConnection, event: &CloudEvent) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_vec(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let sql = if should_notify() {
        "WITH ins AS (
             INSERT INTO outbox (event_id, customer_id, routing_key, payload, traceparent)
             VALUES ($1, $2, $3, $4, $5)
             RETURNING 1
         )
         SELECT pg_notify('outbox', '') FROM ins"
    } else {
        "INSERT INTO outbox (event_id, customer_id, routing_key, payload, traceparent)
         VALUES ($1, $2, $3, $4, $5)"
    };
    sqlx::query(sql)
        .bind(event.id)
        .bind(event.customerid)
        .bind(&event.event_type)
        .bind(payload)
        .bind(&event.traceparent)
        .execute(conn)
        .await?;
    Ok(())
}

/// Builds a CloudEvent about an entity of `customer` and writes it to the outbox in the
/// caller's transaction.
#[allow(clippy::too_many_arguments)]
pub async fn emit(
    conn: &mut PgConnection,
    source: &str,
    kind: crate::envelope::EventType,
    subject: impl ToString,
    customer: Option<crate::ids::CustomerId>,
    actor: &str,
    traceparent: Option<String>,
    data: &impl serde::Serialize,
) -> Result<(), sqlx::Error> {
    let event = CloudEvent::new(source, kind, subject, customer, actor, traceparent, data)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    enqueue(conn, &event).await
}

/// An event ready to be written as part of the statement that makes the change, saving the
/// round trip a separate `enqueue` costs: the statement gets an
/// `outbox_row AS (INSERT INTO outbox (event_id, customer_id, routing_key, payload, traceparent)
/// VALUES ...)` clause whose values [`Staged::bind`] binds, and wakes the relay when
/// [`wake_relay`] says so.
pub struct Staged {
    event_id: crate::ids::EventId,
    customer_id: Option<crate::ids::CustomerId>,
    routing_key: String,
    payload: Vec<u8>,
    traceparent: Option<String>,
}

impl Staged {
    /// The row's five values bound to a query, in the column order of
    /// `INSERT INTO outbox (event_id, customer_id, routing_key, payload, traceparent)`.
    pub fn bind<'q>(
        &'q self,
        q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        q.bind(self.event_id)
            .bind(self.customer_id)
            .bind(&self.routing_key)
            .bind(&self.payload)
            .bind(&self.traceparent)
    }

    pub fn new(event: &CloudEvent) -> Result<Self, sqlx::Error> {
        Ok(Self {
            event_id: event.id,
            customer_id: event.customerid,
            routing_key: event.event_type.clone(),
            payload: serde_json::to_vec(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?,
            traceparent: event.traceparent.clone(),
        })
    }
}
