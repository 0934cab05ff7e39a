//! The `event-delivery` scenario: commit → consumer latency at a fixed write rate, where the
//! time goes (the relay's phases), and the highest rate delivered within 50 ms at the p99.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::{AMQPValue, FieldTable};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::json;
use shared_model::testkit;
use tokio::sync::Mutex;

use super::client::Call;
use super::histograms::{self, Phase};
use super::load::{self, LoadSpec};
use super::pgbench;
use super::scenarios::Env;
use super::stats::Samples;

#[derive(Debug, Serialize)]
pub struct Delivery {
    pub rate_per_s: f64,
    pub duration_s: f64,
    pub written: u64,
    pub write_errors: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Events left unpublished by earlier scenarios when this one was due to start, and how
    /// long the relay took to publish them (the scenario starts on an empty outbox).
    pub backlog_events: i64,
    pub backlog_drain_s: f64,
    /// Where the time went, from the service's relay histograms over the scenario (bucket
    /// bounds, so coarse): commit → publish per event, publish → broker confirm per batch, and
    /// the relay's read of a batch; p50 and p99 in ms.
    pub relay_phases: Vec<Phase>,
}

/// The write rates `event-delivery` sweeps, as fractions of the pgbench insert baseline, until
/// the p99 passes 50 ms.
const SWEEP_FRACTIONS: [f64; 7] = [0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4];

/// The highest write rate delivered within 50 ms at the p99, for comparing machines.
#[derive(Debug, Serialize)]
pub struct Sweep {
    pub pgbench_inserts_per_s: f64,
    pub within_50ms_rate_per_s: Option<f64>,
    pub within_50ms_fraction: Option<f64>,
    pub tried: Vec<SweepPoint>,
}

#[derive(Debug, Serialize)]
pub struct SweepPoint {
    pub rate_per_s: f64,
    pub fraction_of_inserts: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub lost: u64,
}

/// The relay histograms the delivery report breaks down.
const RELAY_PHASES: [&str; 3] = [
    "outbox_publish_delay_seconds",
    "outbox_relay_confirm_seconds",
    "outbox_relay_select_seconds",
];

impl Env {
    /// Writes at a fixed rate through the API; measures from the outbox row's write (just before
    /// commit, recorded in the database) to the event's receipt by a consumer.
    /// `event-delivery`: delivery at `--event-rate`, then the highest rate (as a fraction of
    /// the pgbench insert baseline measured now) at which the p99 stays within 50 ms.
    pub async fn event_delivery(&self) -> anyhow::Result<(Delivery, Sweep)> {
        let main = self
            .deliver(self.opts.event_rate, self.opts.event_duration)
            .await?;
        let inserts = pgbench::run(
            &self.superuser_url,
            &pgbench::write_script(),
            self.opts.concurrency,
            Duration::from_secs(5),
            &self.opts.workdir,
        )
        .await?
        .figures()
        .throughput_per_s;
        let step = self.opts.event_duration.min(Duration::from_secs(10));
        let mut tried = Vec::new();
        for fraction in SWEEP_FRACTIONS {
            let rate = (inserts * fraction).max(1.0).round();
            let d = self.deliver(rate, step).await?;
            let within = d.lost == 0 && d.p99_ms <= 50.0;
            tried.push(SweepPoint {
                rate_per_s: rate,
                fraction_of_inserts: fraction,
                p50_ms: d.p50_ms,
                p99_ms: d.p99_ms,
                lost: d.lost,
            });
            if !within {
                break;
            }
        }
        let best = tried
            .iter()
            .rfind(|t| t.lost == 0 && t.p99_ms <= 50.0)
            .map(|t| (t.rate_per_s, t.fraction_of_inserts));
        Ok((
            main,
            Sweep {
                pgbench_inserts_per_s: inserts,
                within_50ms_rate_per_s: best.map(|b| b.0),
                within_50ms_fraction: best.map(|b| b.1),
                tried,
            },
        ))
    }

    /// Writes at `rate` for `duration` and measures commit → consumer delivery.
    async fn deliver(&self, rate: f64, duration: Duration) -> anyhow::Result<Delivery> {
        // Earlier scenarios may have written faster than the relay publishes; measure delivery
        // at the steady rate, not the catch-up.
        let (backlog_events, backlog_drain_s) = self.drain_outbox().await?;
        let conn = shared_model::bus::connect(&self.amqp, "bench-consumer").await?;
        let ch = conn.create_channel().await?;
        let queue = format!("{}.delivery", self.amqp.queue_prefix);
        shared_model::bus::declare_queue(&ch, &self.amqp, &queue, &["customer.created".into()])
            .await?;
        let mut consumer = ch
            .basic_consume(
                queue.clone().into(),
                "bench".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let received: Arc<Mutex<HashMap<String, (u32, f64)>>> = Arc::default();
        let sink = received.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                let now = time::OffsetDateTime::now_utc();
                let enq = d.properties.headers().as_ref().and_then(|h| {
                    match h.inner().get("enqueuedat") {
                        Some(AMQPValue::LongString(s)) => time::OffsetDateTime::parse(
                            &s.to_string(),
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok(),
                        _ => None,
                    }
                });
                let v: serde_json::Value = serde_json::from_slice(&d.data).unwrap_or_default();
                let id = v["data"]["id"].as_str().unwrap_or_default().to_string();
                let ms = enq.map_or(f64::NAN, |e| (now - e).as_seconds_f64() * 1000.0);
                let mut m = sink.lock().await;
                let e = m.entry(id).or_insert((0, ms));
                e.0 += 1;
                let _ = d.ack(BasicAckOptions::default()).await;
            }
        });

        let written: Arc<Mutex<Vec<String>>> = Arc::default();
        let ids = written.clone();
        let base = self.svc.base.clone();
        let admin = self.admin.clone();
        let spec = LoadSpec {
            concurrency: self.opts.concurrency,
            duration,
            rate: Some(rate),
        };
        let metrics_before = histograms::scrape(&self.http, &self.svc.base).await?;
        let writes = load::run(spec, &base, move |mut conn, _| {
            let key = format!("delivery-{}", uuid::Uuid::new_v4().simple());
            let call = Call::post_json(
                "/v1/customers",
                &admin,
                &json!({"name": "Delivery Probe", "type": "consumer", "bootstrapTenantKey": key}),
            );
            let ids = ids.clone();
            async move {
                let ok = match conn.send(&call).await {
                    Ok((s, body)) if s == StatusCode::CREATED => {
                        let v: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or_default();
                        ids.lock()
                            .await
                            .push(v["id"].as_str().unwrap_or_default().to_string());
                        true
                    }
                    _ => false,
                };
                (conn, ok)
            }
        })
        .await;
        let written = written.lock().await.clone();
        // Let stragglers arrive, then one more second to catch duplicates.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let have = received.lock().await.len();
            if have >= written.len() || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let relay_phases = histograms::phases(
            &metrics_before,
            &histograms::scrape(&self.http, &self.svc.base).await?,
            &RELAY_PHASES,
        );
        reader.abort();
        let _ = conn.close(200, "done".into()).await;
        let got = received.lock().await;
        let lost = written.iter().filter(|id| !got.contains_key(*id)).count() as u64;
        let duplicated = got.values().map(|(n, _)| n.saturating_sub(1) as u64).sum();
        let lat_us: Vec<u64> = written
            .iter()
            .filter_map(|id| got.get(id))
            .map(|(_, ms)| (ms.max(0.0) * 1000.0) as u64)
            .collect();
        let f = Samples {
            latencies_us: lat_us,
            errors: 0,
            elapsed_s: 1.0,
        }
        .figures();
        testkit::delete_queues(&self.amqp, &[queue]).await;
        Ok(Delivery {
            rate_per_s: rate,
            duration_s: duration.as_secs_f64(),
            written: written.len() as u64,
            write_errors: writes.errors,
            received: got.len() as u64,
            lost,
            duplicated,
            p50_ms: f.p50_ms,
            p99_ms: f.p99_ms,
            max_ms: f.max_ms,
            backlog_events,
            backlog_drain_s,
            relay_phases,
        })
    }

    /// The service's metrics, as Prometheus text.
    /// Waits (at most 5 minutes) until the service's outbox is empty; returns how many events
    /// were waiting and the seconds it took.
    async fn drain_outbox(&self) -> anyhow::Result<(i64, f64)> {
        let mut su = self.db.superuser().await;
        let started = Instant::now();
        let count = || sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox");
        let backlog = count().fetch_one(&mut su).await?;
        loop {
            let left = count().fetch_one(&mut su).await?;
            if left == 0 {
                return Ok((backlog, started.elapsed().as_secs_f64()));
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(300),
                "the outbox still holds {left} events after 5 minutes"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
