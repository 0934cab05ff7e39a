//! The relay: publishes committed outbox rows to RabbitMQ in commit order, with confirms, and
//! deletes what the broker confirmed.

use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Row};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::bus;
use crate::config::{AmqpConfig, OutboxConfig};
use crate::db::{self, Scope};
use crate::envelope::CLOUDEVENTS_JSON;

use super::NOTIFY_CHANNEL;

/// Advisory lock key of the relay leader (one per service database).
const RELAY_LOCK_KEY: i64 = 0x6f75_7462_6f78; // "outbox"

/// The relay's statement per batch: deletes the confirmed rows (`$4`, bounded by `($5, $6)` and
/// `($7, $8)`, see [`Confirmed`]), then reads up to `$1` rows after the last published one
/// (`($2, $3)`) whose transaction is below the snapshot's xmin. Always at least one row:
/// `waiting` tells whether rows remain that are not yet eligible (an older transaction is still
/// open), `id` is NULL when none is eligible.
///
/// `waiting` is an ordered probe of `outbox_order_idx` from the xmin on, not an `EXISTS`: the
/// planner costs an `EXISTS` for its first match and, with statistics from before a burst's
/// rows were deleted, chose a sequential scan that read every dead row of the heap (12,000
/// pages, 7–36 ms a batch on 60,000 deleted events; docs/performance.md). Public for the test
/// that pins its plan.
pub const BATCH_SQL: &str = "WITH done AS (DELETE FROM outbox
                WHERE id = ANY($4)
                  AND (txid, id) >= ($5::text::xid8, $6)
                  AND (txid, id) <= ($7::text::xid8, $8)),
      snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
 SELECT (SELECT true FROM outbox w WHERE w.txid >= snap.xmin ORDER BY w.txid, w.id LIMIT 1)
          IS NOT NULL AS waiting,
        r.id, r.txid::text AS txid_text, r.routing_key, r.payload, r.traceparent,
        r.customer_id, r.event_id, r.created_at
   FROM snap
   LEFT JOIN LATERAL (
        SELECT o.id, o.txid, o.routing_key, o.payload, o.traceparent,
               o.customer_id, o.event_id, o.created_at
          FROM outbox o
         WHERE o.txid < snap.xmin AND (o.txid, o.id) > ($2::text::xid8, $3)
         ORDER BY o.txid, o.id
         LIMIT $1) r ON true
  ORDER BY r.txid, r.id";

/// What the relay needs.
#[derive(Clone)]
pub struct Relay {
    pub service: &'static str,
    pub pool: PgPool,
    pub amqp: AmqpConfig,
    pub outbox: OutboxConfig,
}

/// Rows published and awaiting the broker's confirmation, one entry per batch: the ids to
/// delete once confirmed, or the first failure.
type Confirming = JoinSet<anyhow::Result<Batch>>;

/// A published batch: its rows' ids and the `(txid, id)` of its first and last row.
struct Batch {
    ids: Vec<i64>,
    first: (u64, i64),
    last: (u64, i64),
}

/// Rows the broker has confirmed, deleted by the relay's next statement.
///
/// The delete names the rows by id and also bounds them by `(txid, id)`: all of them lie
/// between the first row of the earliest batch and the last row of the latest. The bound is
/// redundant for which rows go, but lets either index serve the delete cheaply. Without it
/// the planner may scan `outbox_order_idx` whole for `id = ANY(..)` (a queue table's
/// statistics say it is nearly empty, and both indexes then look alike), and after a burst
/// that index holds every deleted row until vacuum: at 500 events/s after 100,000 events, each
/// relay statement took 200–600 ms reading 110,000 index pages.
#[derive(Default)]
struct Confirmed {
    ids: Vec<i64>,
    bounds: Option<((u64, i64), (u64, i64))>,
}

impl Confirmed {
    fn add(&mut self, batch: Batch) {
        self.ids.extend_from_slice(&batch.ids);
        self.bounds = Some(match self.bounds {
            None => (batch.first, batch.last),
            Some((lo, hi)) => (lo.min(batch.first), hi.max(batch.last)),
        });
    }

    fn clear(&mut self) {
        self.ids.clear();
        self.bounds = None;
    }

    /// The bounds as bind values (`xid8` as text); an empty range when nothing is confirmed.
    fn bind_bounds(&self) -> (String, i64, String, i64) {
        let ((lo_txid, lo_id), (hi_txid, hi_id)) = self.bounds.unwrap_or(((1, 1), (0, 0)));
        (lo_txid.to_string(), lo_id, hi_txid.to_string(), hi_id)
    }
}

/// Where the relay's leader stands: what it has published, what the broker has confirmed.
#[derive(Default)]
struct Progress {
    /// `(txid, id)` of the last row published: the next select starts after it, so rows that
    /// are published but not yet confirmed (or not yet deleted) are not published again.
    after: Option<(String, i64)>,
    /// Confirmed rows, deleted by the relay's next statement.
    confirmed: Confirmed,
    /// Rows published and not yet confirmed.
    unconfirmed: usize,
}

impl Progress {
    /// Takes a finished batch's confirmation.
    fn settle(
        &mut self,
        joined: Result<anyhow::Result<Batch>, tokio::task::JoinError>,
    ) -> anyhow::Result<()> {
        let batch = joined??;
        self.unconfirmed -= batch.ids.len();
        self.confirmed.add(batch);
        Ok(())
    }
}

impl Relay {
    /// Runs until `shutdown`: waits to become leader, then publishes. Reconnects on failure.
    pub async fn run(self, shutdown: CancellationToken) {
        if !self.outbox.enabled {
            return;
        }
        const FIRST_BACKOFF: Duration = Duration::from_millis(200);
        const MAX_BACKOFF: Duration = Duration::from_secs(1);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = Instant::now();
            match self.lead(&shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    // A leadership that lasted is a fresh failure, not the next in a series.
                    if started.elapsed() > Duration::from_secs(60) {
                        backoff = FIRST_BACKOFF;
                    }
                    metrics::counter!("outbox_relay_errors_total").increment(1);
                    tracing::warn!(error = format!("{e:#}"), "outbox relay failed; retrying");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.cancelled() => return,
            }
            // Capped at a second: publishing resumes within about a second of the broker's or
            // the database's return.
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Publishes as leader until `shutdown`.
    ///
    /// Publishing does not wait for the broker's confirmations: a durable queue under steady
    /// load confirms in periodic disk syncs (tens to hundreds of milliseconds apart), and a
    /// relay that waited for each batch's confirmation before selecting the next would add
    /// that interval to every event's latency and cap throughput at one batch per sync. Batches
    /// are published back to back on one channel (so in order), up to
    /// `outbox.max_unconfirmed` rows awaiting confirmation; a batch's rows are deleted once its
    /// confirmation arrives. A refusal or a lost connection ends this leadership: the next one
    /// starts again from the oldest row not deleted, publishing some rows twice, which
    /// at-least-once delivery and the consumers' inbox allow.
    async fn lead(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let mut lock_conn = self.pool.acquire().await?.detach();
        loop {
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(RELAY_LOCK_KEY)
                .fetch_one(&mut lock_conn)
                .await?;
            if got {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
        // The leader's own connection (never returned to the pool) reads and deletes outbox
        // rows in system scope for its whole life: one statement per batch, no transaction.
        db::set_session_scope(&mut lock_conn, Scope::System).await?;
        // Its statements delete published rows: a delete lost in a crash only publishes those
        // events again (consumers dedupe), so they need not wait for the WAL to reach the disk,
        // which on a busy disk made every batch wait one fsync (docs/performance.md).
        sqlx::query("SET synchronous_commit TO off")
            .execute(&mut lock_conn)
            .await?;
        tracing::info!(service = self.service, "outbox relay is leader");
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let conn = bus::connect(&self.amqp, &format!("{}-relay", self.service)).await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        bus::declare_exchanges(&channel, &self.amqp).await?;
        let poll = Duration::from_millis(self.outbox.poll_interval_ms);
        let mut progress = Progress::default();
        let mut confirming = Confirming::new();
        let result = async {
            loop {
                let (published, waiting) = self
                    .drain(&mut lock_conn, &channel, &mut progress, &mut confirming)
                    .await?;
                if waiting || published > 0 {
                    // Rows wait for an older transaction to end, or events are flowing (and
                    // their writers may have skipped the wake-up): look again soon.
                    let pause = Duration::from_millis(if waiting { 2 } else { 4 });
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => continue,
                        _ = shutdown.cancelled() => break,
                    }
                }
                tokio::select! {
                    n = listener.recv() => { n?; }
                    Some(joined) = confirming.join_next() => {
                        // A confirmation while idle: delete its rows now rather than with the
                        // next event.
                        progress.settle(joined)?;
                        while let Some(joined) = confirming.try_join_next() {
                            progress.settle(joined)?;
                        }
                        delete_published(&mut lock_conn, &mut progress.confirmed).await?;
                    }
                    _ = tokio::time::sleep(poll) => {
                        // Still leader? The lock lives as long as this connection.
                        sqlx::query("SELECT 1").execute(&mut lock_conn).await?;
                    }
                    _ = shutdown.cancelled() => break,
                }
            }
            // Publish what committed before the stop, wait (briefly) for its confirmation,
            // delete what was confirmed, then release leadership.
            let _ = self
                .drain(&mut lock_conn, &channel, &mut progress, &mut confirming)
                .await;
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(joined) = confirming.join_next().await {
                    if progress.settle(joined).is_err() {
                        break;
                    }
                }
            })
            .await;
            let _ = delete_published(&mut lock_conn, &mut progress.confirmed).await;
            Ok(())
        }
        .await;
        metrics::gauge!("outbox_unconfirmed").set(0.0);
        let _ = conn.close(200, ShortString::from("shutdown")).await;
        result
    }

    /// Publishes every eligible row not published yet. Returns how many it published and
    /// whether rows remain that are not yet eligible.
    ///
    /// Rows whose confirmation has arrived are deleted by the same statement as the next
    /// select.
    async fn drain(
        &self,
        conn: &mut PgConnection,
        channel: &Channel,
        progress: &mut Progress,
        confirming: &mut Confirming,
    ) -> anyhow::Result<(usize, bool)> {
        let max_unconfirmed = self.outbox.max_unconfirmed;
        let mut published = 0;
        loop {
            while let Some(joined) = confirming.try_join_next() {
                progress.settle(joined)?;
            }
            while progress.unconfirmed >= max_unconfirmed {
                let joined = confirming
                    .join_next()
                    .await
                    .ok_or_else(|| anyhow::anyhow!("unconfirmed rows without a confirmation"))?;
                progress.settle(joined)?;
            }
            let limit = self
                .outbox
                .batch_size
                .min((max_unconfirmed - progress.unconfirmed) as i64);
            let started = Instant::now();
            let (after_txid, after_id) = progress
                .after
                .clone()
                .unwrap_or_else(|| ("0".to_string(), 0));
            let (lo_txid, lo_id, hi_txid, hi_id) = progress.confirmed.bind_bounds();
            let rows = sqlx::query(BATCH_SQL)
                .bind(limit)
                .bind(&after_txid)
                .bind(after_id)
                .bind(&progress.confirmed.ids)
                .bind(&lo_txid)
                .bind(lo_id)
                .bind(&hi_txid)
                .bind(hi_id)
                .fetch_all(&mut *conn)
                .await?;
            progress.confirmed.clear();
            let waiting: bool = rows.first().is_some_and(|r| r.get("waiting"));
            let rows: Vec<_> = rows
                .into_iter()
                .filter(|r| r.get::<Option<i64>, _>("id").is_some())
                .collect();
            if rows.is_empty() {
                return Ok((published, waiting));
            }
            let selected = started.elapsed();
            let mut confirms = Vec::with_capacity(rows.len());
            let mut ids = Vec::with_capacity(rows.len());
            let mut oldest: Option<time::OffsetDateTime> = None;
            for row in &rows {
                let id: i64 = row.get("id");
                let created: time::OffsetDateTime = row.get("created_at");
                oldest = Some(oldest.map_or(created, |o| o.min(created)));
                // Write (just before commit) to publish, per event.
                let delay = (time::OffsetDateTime::now_utc() - created).as_seconds_f64();
                metrics::histogram!("outbox_publish_delay_seconds").record(delay.max(0.0));
                confirms.push(self.publish(channel, row, created).await?);
                ids.push(id);
            }
            let position = |row: &sqlx::postgres::PgRow| -> anyhow::Result<(u64, i64)> {
                let txid: &str = row.get("txid_text");
                Ok((txid.parse()?, row.get("id")))
            };
            let first = position(rows.first().expect("rows is not empty"))?;
            let last_row = rows.last().expect("rows is not empty");
            let last = position(last_row)?;
            progress.after = Some((last_row.get("txid_text"), last.1));
            progress.unconfirmed += ids.len();
            metrics::gauge!("outbox_unconfirmed").set(progress.unconfirmed as f64);
            let n = ids.len();
            confirming.spawn(async move {
                let sent = Instant::now();
                for confirm in confirms {
                    if !confirm.await?.is_ack() {
                        anyhow::bail!("the broker refused (nacked) an outbox event");
                    }
                }
                metrics::histogram!("outbox_relay_confirm_seconds")
                    .record(sent.elapsed().as_secs_f64());
                Ok(Batch { ids, first, last })
            });
            metrics::histogram!("outbox_relay_select_seconds").record(selected.as_secs_f64());
            tracing::debug!(
                n,
                select_ms = selected.as_secs_f64() * 1e3,
                "outbox batch published"
            );
            metrics::counter!("outbox_published_total").increment(n as u64);
            published += n;
            if let Some(o) = oldest {
                let lag = (time::OffsetDateTime::now_utc() - o)
                    .as_seconds_f64()
                    .max(0.0);
                metrics::gauge!("outbox_lag_seconds").set(lag);
            }
            if (n as i64) < limit {
                return Ok((published, waiting));
            }
        }
    }

    /// Publishes one outbox row; the returned confirmation resolves when the broker has it.
    async fn publish(
        &self,
        channel: &Channel,
        row: &sqlx::postgres::PgRow,
        created: time::OffsetDateTime,
    ) -> anyhow::Result<lapin::PublisherConfirm> {
        let routing_key: String = row.get("routing_key");
        let payload: Vec<u8> = row.get("payload");
        let traceparent: Option<String> = row.get("traceparent");
        let customer: Option<uuid::Uuid> = row.get("customer_id");
        let event_id: uuid::Uuid = row.get("event_id");
        let mut headers = FieldTable::default();
        if let Some(tp) = traceparent {
            headers.insert(
                "traceparent".into(),
                AMQPValue::LongString(LongString::from(tp)),
            );
        }
        // When the row was written, just before its transaction committed (microseconds), so
        // consumers can measure delivery latency.
        if let Ok(at) = created.format(&time::format_description::well_known::Rfc3339) {
            headers.insert(
                "enqueuedat".into(),
                AMQPValue::LongString(LongString::from(at)),
            );
        }
        if let Some(c) = customer {
            headers.insert(
                "customerid".into(),
                AMQPValue::LongString(LongString::from(c.to_string())),
            );
        }
        let props = BasicProperties::default()
            .with_content_type(CLOUDEVENTS_JSON.into())
            .with_delivery_mode(2)
            .with_message_id(event_id.to_string().into())
            .with_type(routing_key.clone().into())
            .with_app_id(self.service.into())
            .with_timestamp(created.unix_timestamp() as u64)
            .with_headers(headers);
        Ok(channel
            .basic_publish(
                self.amqp.exchange.clone().into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                &payload,
                props,
            )
            .await?)
    }
}

/// Deletes rows the broker has confirmed (on the leader's own connection, in system scope).
async fn delete_published(
    conn: &mut PgConnection,
    confirmed: &mut Confirmed,
) -> Result<(), sqlx::Error> {
    if confirmed.ids.is_empty() {
        return Ok(());
    }
    let (lo_txid, lo_id, hi_txid, hi_id) = confirmed.bind_bounds();
    sqlx::query(
        "DELETE FROM outbox
          WHERE id = ANY($1)
            AND (txid, id) >= ($2::text::xid8, $3)
            AND (txid, id) <= ($4::text::xid8, $5)",
    )
    .bind(&confirmed.ids)
    .bind(&lo_txid)
    .bind(lo_id)
    .bind(&hi_txid)
    .bind(hi_id)
    .execute(conn)
    .await?;
    confirmed.clear();
    Ok(())
}

/// How long the oldest unpublished event has waited (for readiness and metrics).
pub async fn pending(pool: &PgPool) -> Result<(i64, Option<Duration>), sqlx::Error> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let row = sqlx::query(
        "SELECT count(*) AS n, extract(epoch FROM clock_timestamp() - min(created_at))::float8 AS age
           FROM outbox",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    let age: Option<f64> = row.get("age");
    Ok((
        row.get("n"),
        age.map(|a| Duration::from_secs_f64(a.max(0.0))),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmed_batches_are_bounded_by_their_first_and_last_rows_in_any_order() {
        let mut c = Confirmed::default();
        // Nothing confirmed: the bounds select no row.
        let (lo_txid, lo_id, hi_txid, hi_id) = c.bind_bounds();
        assert!(
            (lo_txid.parse::<u64>().unwrap(), lo_id) > (hi_txid.parse::<u64>().unwrap(), hi_id)
        );
        // Confirmations may arrive out of order: the bounds cover every batch.
        c.add(Batch {
            ids: vec![30, 31],
            first: (900, 30),
            last: (901, 31),
        });
        c.add(Batch {
            ids: vec![10, 12, 11],
            first: (899, 10),
            last: (899, 12),
        });
        c.add(Batch {
            ids: vec![40],
            first: (1000, 40),
            last: (1000, 40),
        });
        assert_eq!(c.ids, [30, 31, 10, 12, 11, 40]);
        assert_eq!(
            c.bind_bounds(),
            ("899".to_string(), 10, "1000".to_string(), 40)
        );
        c.clear();
        assert!(c.ids.is_empty() && c.bounds.is_none());
    }
}
