//! The scenarios: what each measures and against which baseline.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Serialize;
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::config::AmqpConfig;
use shared_model::ids::CustomerId;
use shared_model::testkit::{self, TestDb};
use sqlx::Connection;

use super::client::Call;
pub use super::delivery::{Delivery, Sweep};
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
        alternate(&self.opts, &self.superuser_url, scenario, script, |d| {
            self.service_side(scenario, d)
        })
        .await
    }
}

/// A warm-up of `service_side`, then `opts.rounds` alternations of it and of its pgbench
/// `script` against `superuser_url`, compared.
pub async fn alternate<'a, F, Fut>(
    opts: &Options,
    superuser_url: &str,
    scenario: &str,
    script: String,
    service_side: F,
) -> anyhow::Result<Comparison>
where
    F: Fn(Duration) -> Fut,
    Fut: std::future::Future<Output = Samples> + 'a,
{
    service_side(opts.warmup).await;
    let phase = opts.duration / opts.rounds.max(1);
    let (mut svc, mut base) = (Samples::default(), Samples::default());
    for _ in 0..opts.rounds.max(1) {
        svc.merge(service_side(phase).await);
        base.merge(
            pgbench::run(
                superuser_url,
                &script,
                opts.concurrency,
                phase,
                &opts.workdir,
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
        concurrency: opts.concurrency,
        service,
        baseline,
        baseline_sql: script,
        ratio,
    })
}

/// [`alternate`] whose service side sends `calls` to `base` from `opts.concurrency`
/// connections (the load's `seq`-th request the one a prime stride picks, so each connection
/// goes through all of them), each counted done on a 200 with a body longer than `min_body`
/// bytes.
pub async fn alternate_calls(
    opts: &Options,
    superuser_url: &str,
    scenario: &str,
    script: String,
    base: &str,
    calls: Vec<Call>,
    min_body: usize,
) -> anyhow::Result<Comparison> {
    let calls = Arc::new(calls);
    let spec = |duration| LoadSpec {
        concurrency: opts.concurrency,
        duration,
        rate: opts.rate,
    };
    alternate(opts, superuser_url, scenario, script, |d| {
        let calls = calls.clone();
        let base = base.to_string();
        async move {
            load::run(spec(d), &base, move |mut conn, seq| {
                let calls = calls.clone();
                async move {
                    let call = &calls[(seq as usize * 7919) % calls.len()];
                    let ok = conn
                        .send(call)
                        .await
                        .is_ok_and(|(s, b)| s == StatusCode::OK && b.len() > min_body);
                    (conn, ok)
                }
            })
            .await
        }
    })
    .await
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
