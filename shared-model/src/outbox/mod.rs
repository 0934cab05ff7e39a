//! The transactional outbox and its relay.
//!
//! [`write`] (or [`Cause::emit`]) writes events in the caller's transaction, so an event exists if and only if the
//! change committed. The relay (one leader per service database, elected with an advisory lock)
//! publishes rows to RabbitMQ with publisher confirms in `(txid, id)` order, reading only rows
//! whose transaction id is below the snapshot's xmin: every transaction that could still add an
//! earlier row has ended, so a late-committing row can never be skipped. Rows are deleted after
//! the broker confirms them; a crash in between republishes them (consumers dedupe on event id).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::envelope::CloudEvent;

mod cause;
mod relay;

pub use cause::Cause;
pub use relay::{BATCH_SQL, Relay, pending};

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

/// Writes `events` to the outbox in the caller's transaction, in one statement, so they exist
/// if and only if the transaction commits (waking the relay on commit, at most once per few
/// milliseconds per process). The one way events are written; [`Cause::emit`] builds and
/// writes one.
pub async fn write(conn: &mut PgConnection, events: &[CloudEvent]) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let wake = should_notify();
    // One event, the usual case, binds its five values; several bind five arrays.
    if let [event] = events {
        let sql = if wake {
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
        let payload = serde_json::to_vec(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(sql)
            .bind(event.id)
            .bind(event.customerid)
            .bind(&event.event_type)
            .bind(payload)
            .bind(&event.traceparent)
            .execute(conn)
            .await?;
        return Ok(());
    }
    let sql = if wake {
        "WITH ins AS (
             INSERT INTO outbox (event_id, customer_id, routing_key, payload, traceparent)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::text[])
             RETURNING 1
         )
         SELECT pg_notify('outbox', '') FROM ins LIMIT 1"
    } else {
        "INSERT INTO outbox (event_id, customer_id, routing_key, payload, traceparent)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::text[])"
    };
    Rows::of(events)?
        .bind(sqlx::query(sql))
        .execute(conn)
        .await?;
    Ok(())
}

/// Events as outbox rows, for a statement that makes a change and writes its events at once
/// (one round trip instead of two): five arrays with an element per event, bound in the column
/// order of `INSERT INTO outbox (event_id, customer_id, routing_key, payload, traceparent)
/// SELECT * FROM UNNEST($n::uuid[], $n+1::uuid[], $n+2::text[], $n+3::bytea[], $n+4::text[])`.
/// [`write`] is this statement alone.
pub struct Rows {
    ids: Vec<Uuid>,
    customers: Vec<Option<Uuid>>,
    routing_keys: Vec<String>,
    payloads: Vec<Vec<u8>>,
    traceparents: Vec<Option<String>>,
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl Rows {
    pub fn of(events: &[CloudEvent]) -> Result<Self, sqlx::Error> {
        let mut rows = Rows {
            ids: Vec::with_capacity(events.len()),
            customers: Vec::with_capacity(events.len()),
            routing_keys: Vec::with_capacity(events.len()),
            payloads: Vec::with_capacity(events.len()),
            traceparents: Vec::with_capacity(events.len()),
        };
        for e in events {
            rows.ids.push(e.id.0);
            rows.customers.push(e.customerid.map(|c| c.0));
            rows.routing_keys.push(e.event_type.clone());
            rows.payloads
                .push(serde_json::to_vec(e).map_err(|e| sqlx::Error::Encode(Box::new(e)))?);
            rows.traceparents.push(e.traceparent.clone());
        }
        Ok(rows)
    }

    /// Binds the five arrays, in column order.
    pub fn bind<'q>(&'q self, q: Query<'q>) -> Query<'q> {
        q.bind(&self.ids)
            .bind(&self.customers)
            .bind(&self.routing_keys)
            .bind(&self.payloads)
            .bind(&self.traceparents)
    }
}
