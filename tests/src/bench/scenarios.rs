//! The scenarios: what each measures and against which baseline.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::{AMQPValue, FieldTable};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::config::AmqpConfig;
use shared_model::ids::CustomerId;
use shared_model::testkit::{self, TestDb};
use sqlx::Connection;
use tokio::sync::Mutex;

use super::client::Call;
use super::load::{self, LoadSpec};
use super::pgbench;
use super::stats::{Figures, Samples};
use crate::{ServiceProcess, free_port, service_env};

#[derive(Clone, Debug, Serialize)]
pub struct Options {
    pub duration: Duration,
    pub warmup: Duration,
    pub rounds: u32,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub customers: usize,
    pub tenants: usize,
    pub event_rate: f64,
    pub event_duration: Duration,
    pub workdir: PathBuf,
    /// `TOKIO_WORKER_THREADS` of the services under test.
    pub service_workers: Option<usize>,
}

impl Options {
    /// The environment of a service under test.
    pub fn service_env(
        &self,
        db: &TestDb,
        amqp: &AmqpConfig,
        prefix: &str,
        port: u16,
    ) -> Vec<(String, String)> {
        let mut env = service_env(db, amqp, prefix, port, "info");
        if let Some(n) = self.service_workers {
            env.push(("TOKIO_WORKER_THREADS".into(), n.to_string()));
        }
        env
    }
}

/// A scenario's result: the service side, its baseline, and their ratio.
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub scenario: String,
    pub concurrency: usize,
    pub service: Figures,
    pub baseline: Figures,
    pub baseline_sql: String,
    /// service throughput / baseline throughput.
    pub ratio: f64,
}

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

#[derive(Debug, Serialize)]
pub struct Phase {
    pub metric: &'static str,
    pub count: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
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

/// A histogram's cumulative buckets `(le, count)` from Prometheus text.
fn buckets(text: &str, metric: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{metric}_bucket{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// The phases between two scrapes: the upper bucket bound holding each quantile.
fn phases(before: &str, after: &str) -> Vec<Phase> {
    RELAY_PHASES
        .iter()
        .map(|metric| {
            let b = buckets(before, metric);
            let a = buckets(after, metric);
            let delta: Vec<(f64, f64)> = a
                .iter()
                .map(|(le, n)| {
                    let was = b.iter().find(|(l, _)| l == le).map_or(0.0, |(_, n)| *n);
                    (*le, n - was)
                })
                .collect();
            let count = delta.last().map_or(0.0, |(_, n)| *n);
            let quantile = |q: f64| {
                delta
                    .iter()
                    .find(|(_, n)| *n >= q * count)
                    .map_or(f64::NAN, |(le, _)| le * 1000.0)
            };
            Phase {
                metric,
                count,
                p50_ms: quantile(0.5),
                p99_ms: quantile(0.99),
            }
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct Startup {
    pub service: String,
    pub start_to_ready_ms: f64,
    pub idle_rss_mb: f64,
}

/// The service under test with its seeded database.
pub struct Env {
    pub db: TestDb,
    pub amqp: AmqpConfig,
    pub svc: ServiceProcess,
    pub http: reqwest::Client,
    pub tenants: Arc<Vec<(CustomerId, String)>>,
    pub admin: Arc<String>,
    pub superuser_url: String,
    pub opts: Options,
}

impl Env {
    pub async fn start(opts: Options) -> anyhow::Result<Env> {
        let db = TestDb::new(&(customer_api::SERVICE.migrations)()).await;
        let mut url = reqwest::Url::parse(&testkit::admin_url())?;
        url.set_path(&db.name);
        // The service and pgbench both reach PostgreSQL over loopback without TLS.
        url.set_query(Some("sslmode=disable"));
        let superuser_url = url.to_string();
        let mut su = sqlx::PgConnection::connect(&superuser_url).await?;
        sqlx::query(
            "INSERT INTO customers (customer_id, name, customer_type, email, website, address, locale,
                 business_profile, bootstrap_tenant_key, products, created_by, updated_by,
                 created_at, updated_at)
             SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
                    'Customer ' || n,
                    CASE WHEN n % 2 = 0 THEN 'business' ELSE 'consumer' END,
                    'contact' || n || '@example.com',
                    'https://c' || n || '.example.com/',
                    jsonb_build_object('lines', jsonb_build_array(n || ' Main St'),
                                       'city', 'Springfield', 'country', 'US'),
                    'en-US',
                    CASE WHEN n % 2 = 0 THEN '{\"industrySector\": \"information_technology\",
                        \"industryGroup\": \"software_services\", \"sizeRange\": \"51-200\",
                        \"socialProfiles\": []}'::jsonb END,
                    'seed-' || n, '{crm}', 'seed', 'seed',
                    now() - make_interval(secs => n), now() - make_interval(secs => n)
               FROM generate_series(1, $1) AS n",
        )
        .bind(opts.customers as i64)
        .execute(&mut su)
        .await?;
        sqlx::query("CREATE TABLE bench_outbox (LIKE outbox INCLUDING ALL)")
            .execute(&mut su)
            .await?;
        sqlx::query("VACUUM ANALYZE").execute(&mut su).await?;
        su.close().await.ok();

        let tenants: Vec<(CustomerId, String)> = (1..=opts.tenants.min(opts.customers))
            .map(|n| {
                let id: CustomerId = format!("00000000-0000-7000-8000-{n:012x}").parse().unwrap();
                let token = testkit::token(
                    &format!("tenant-user-{n}"),
                    Some(id),
                    &[Permission::ViewCustomer, Permission::EditCustomer],
                );
                (id, token)
            })
            .collect();
        let admin = testkit::token(
            "bench-admin",
            None,
            &[
                Permission::PlatformAdminEditAllCustomers,
                Permission::PlatformAdminViewAllCustomers,
            ],
        );
        let amqp = testkit::amqp_config("bench");
        let port = free_port();
        let log = opts.workdir.join("customer-api.log");
        let svc = ServiceProcess::start_logged(
            "customer-api",
            port,
            &opts.service_env(&db, &amqp, "CUSTOMER_API", port),
            Some(&log),
        )
        .await?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(opts.concurrency * 2)
            .build()?;
        Ok(Env {
            db,
            amqp,
            svc,
            http,
            tenants: Arc::new(tenants),
            admin: Arc::new(admin),
            superuser_url,
            opts,
        })
    }

    pub async fn stop(self) {
        let _ = self.svc.terminate().await;
        crate::delete_services_broker_names(&["customer-api"], &self.db, &self.amqp, &[]).await;
    }

    fn spec(&self, duration: Duration) -> LoadSpec {
        LoadSpec {
            concurrency: self.opts.concurrency,
            duration,
            rate: self.opts.rate,
        }
    }

    async fn service_side(&self, scenario: &str, duration: Duration) -> Samples {
        let base = self.svc.base.clone();
        let admin = self.admin.clone();
        let spec = self.spec(duration);
        match scenario {
            "get-customer" => {
                let calls: Vec<Call> = self
                    .tenants
                    .iter()
                    .map(|(id, token)| Call::get(format!("/v1/customers/{id}"), token))
                    .collect();
                load::run(spec, &base, move |mut conn, seq| {
                    let call = calls[(seq as usize) % calls.len()].clone();
                    async move {
                        let ok = conn
                            .send(&call)
                            .await
                            .is_ok_and(|(s, _)| s == StatusCode::OK);
                        (conn, ok)
                    }
                })
                .await
            }
            "create-customer" => {
                load::run(spec, &base, move |mut conn, _| {
                    let key = format!("bench-{}", uuid::Uuid::new_v4().simple());
                    let call = Call::post_json(
                        "/v1/customers",
                        &admin,
                        &json!({"name": "Bench Customer", "type": "consumer", "bootstrapTenantKey": key}),
                    );
                    async move {
                        let ok = conn
                            .send(&call)
                            .await
                            .is_ok_and(|(s, _)| s == StatusCode::CREATED);
                        (conn, ok)
                    }
                })
                .await
            }
            "list-customers" => {
                let call = Call::get("/v1/customers?limit=50&type=business", &admin);
                load::run(spec, &base, move |mut conn, _| {
                    let call = call.clone();
                    async move {
                        let ok = conn
                            .send(&call)
                            .await
                            .is_ok_and(|(s, b)| s == StatusCode::OK && !b.is_empty());
                        (conn, ok)
                    }
                })
                .await
            }
            other => panic!("unknown scenario {other}"),
        }
    }

    fn baseline_sql(&self, scenario: &str) -> String {
        match scenario {
            "get-customer" => pgbench::read_script(self.opts.customers),
            "create-customer" => pgbench::write_script(),
            "list-customers" => "SELECT customer_id, name, customer_type, email, phone, website, address, locale, \
                 business_profile, session_expiration_seconds, bootstrap_tenant_key, products, \
                 status, version, created_at, created_by, updated_at, updated_by FROM customers \
                 WHERE customer_type = 'business' ORDER BY updated_at DESC, customer_id DESC LIMIT 51;\n"
                .to_string(),
            other => panic!("unknown scenario {other}"),
        }
    }

    /// Warm-up, then `rounds` alternations of the service and its pgbench baseline.
    pub async fn compare(&self, scenario: &str) -> anyhow::Result<Comparison> {
        let script = self.baseline_sql(scenario);
        // Start from current planner statistics (a steady state autovacuum keeps), not from
        // whatever the previous scenario's writes left.
        let mut su = sqlx::PgConnection::connect(&self.superuser_url).await?;
        sqlx::query("ANALYZE").execute(&mut su).await?;
        su.close().await.ok();
        self.service_side(scenario, self.opts.warmup).await;
        let phase = self.opts.duration / self.opts.rounds.max(1);
        let (mut svc, mut base) = (Samples::default(), Samples::default());
        for _ in 0..self.opts.rounds.max(1) {
            svc.merge(self.service_side(scenario, phase).await);
            base.merge(
                pgbench::run(
                    &self.superuser_url,
                    &script,
                    self.opts.concurrency,
                    phase,
                    &self.opts.workdir,
                )
                .await?,
            );
        }
        let (service, baseline) = (svc.figures(), base.figures());
        let ratio = if baseline.throughput_per_s > 0.0 {
            service.throughput_per_s / baseline.throughput_per_s
        } else {
            0.0
        };
        Ok(Comparison {
            scenario: scenario.to_string(),
            concurrency: self.opts.concurrency,
            service,
            baseline,
            baseline_sql: script,
            ratio,
        })
    }

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
        let metrics_before = self.metrics().await?;
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
        let relay_phases = phases(&metrics_before, &self.metrics().await?);
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
    async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(format!("{}/metrics", self.svc.base))
            .send()
            .await?
            .text()
            .await?)
    }

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

/// Start-to-ready time and idle resident memory of each service binary.
pub async fn startup(workdir: &std::path::Path) -> anyhow::Result<Vec<Startup>> {
    let mut out = Vec::new();
    for (name, prefix) in [
        ("customer-api", "CUSTOMER_API"),
        ("partition-keys", "PARTITION_KEYS"),
        ("org-structure", "ORG_STRUCTURE"),
        ("gdpr-worker", "GDPR_WORKER"),
        ("search-sync", "SEARCH_SYNC"),
    ] {
        let db = TestDb::new(&sqlx::migrate::Migrator::with_migrations(Vec::new())).await;
        let amqp = testkit::amqp_config("bench-startup");
        let port = free_port();
        let env = service_env(&db, &amqp, prefix, port, "info");
        let migrate = tokio::process::Command::new(crate::binary(name))
            .arg("migrate")
            .envs(env.iter().cloned())
            .output()
            .await?;
        anyhow::ensure!(migrate.status.success(), "{name} migrate failed");
        let t0 = Instant::now();
        let svc = ServiceProcess::start_logged(
            name,
            port,
            &env,
            Some(&workdir.join(format!("{name}.log"))),
        )
        .await?;
        let ready_ms = t0.elapsed().as_secs_f64() * 1000.0;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pid = svc.child.id().unwrap_or_default();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss_kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        out.push(Startup {
            service: name.into(),
            start_to_ready_ms: ready_ms,
            idle_rss_mb: rss_kb / 1024.0,
        });
        let _ = svc.terminate().await;
        crate::delete_services_broker_names(&[name], &db, &amqp, &[]).await;
    }
    Ok(out)
}
