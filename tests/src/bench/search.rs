//! search-sync scenarios, with customer-api and search-sync running on one broker:
//!
//! - `search-freshness`: customers created over customer-api's API at `--search-rate` for
//!   `--search-duration`; for each, the time from its `createdAt` (set just before
//!   customer-api's commit) to its document's write in search-sync (`indexed_at`, the write's
//!   own clock just before the consumer commits, after which a search finds it); customers
//!   without a document 10 s after the run count as missing.
//! - `search-key-revocation`: a second search-sync on the same database; search keys issued on
//!   the first, each searched with on the second until it is accepted, then revoked on the
//!   first and timed until the second refuses it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::config::AmqpConfig;
use shared_model::testkit::{self, TestDb};
use sqlx::Connection;

use super::creations;
use super::histograms::{self, Phase};
use super::keys::Revocation;
use super::scenarios::Options;
use crate::{ServiceProcess, free_port};

/// How long a document may take before it counts as missing.
const GIVE_UP: Duration = Duration::from_secs(10);

/// customer-api's part of the freshness: its relay.
const CUSTOMER_API_PHASES: [&str; 2] = [
    "outbox_publish_delay_seconds",
    "outbox_relay_confirm_seconds",
];

/// search-sync's part: its consumer.
const SEARCH_PHASES: [&str; 2] = ["consumer_delivery_delay_seconds", "consumer_apply_seconds"];

#[derive(Debug, Serialize)]
pub struct Freshness {
    pub rate_per_s: f64,
    pub duration_s: f64,
    pub created: u64,
    pub create_errors: u64,
    pub missing: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub p99_by_5s_ms: Vec<f64>,
    pub customer_api_phases: Vec<Phase>,
    pub search_phases: Vec<Phase>,
}

pub struct SearchEnv {
    customers_db: TestDb,
    search_db: TestDb,
    amqp: AmqpConfig,
    customer_api: ServiceProcess,
    search: ServiceProcess,
    http: reqwest::Client,
    opts: Options,
}

impl SearchEnv {
    pub async fn start(opts: Options) -> anyhow::Result<SearchEnv> {
        let customers_db = TestDb::new(&(customer_api::SERVICE.migrations)()).await;
        let search_db = TestDb::new(&(search_sync::SERVICE.migrations)()).await;
        let amqp = testkit::amqp_config("bench-search");
        let (api_port, search_port) = (free_port(), free_port());
        let customer_api = ServiceProcess::start_logged(
            "customer-api",
            api_port,
            &opts.service_env(&customers_db, &amqp, "CUSTOMER_API", api_port),
            Some(&opts.workdir.join("customer-api-search.log")),
        )
        .await?;
        let search = ServiceProcess::start_logged(
            "search-sync",
            search_port,
            &opts.service_env(&search_db, &amqp, "SEARCH_SYNC", search_port),
            Some(&opts.workdir.join("search-sync.log")),
        )
        .await?;
        Ok(SearchEnv {
            customers_db,
            search_db,
            amqp,
            customer_api,
            search,
            http: reqwest::Client::new(),
            opts,
        })
    }

    pub async fn stop(self) {
        let _ = self.customer_api.terminate().await;
        let _ = self.search.terminate().await;
        crate::delete_services_broker_names(&["customer-api"], &self.customers_db, &self.amqp, &[])
            .await;
        crate::delete_services_broker_names(&["search-sync"], &self.search_db, &self.amqp, &[])
            .await;
    }

    /// `search-freshness` at `rate` customers a second for `duration`.
    pub async fn freshness(&self, rate: f64, duration: Duration) -> anyhow::Result<Freshness> {
        let admin = testkit::token(
            "bench-admin",
            None,
            &[Permission::PlatformAdminEditAllCustomers],
        );
        let api_before = histograms::scrape(&self.http, &self.customer_api.base).await?;
        let search_before = histograms::scrape(&self.http, &self.search.base).await?;
        let created = creations::create_customers(
            &self.customer_api.base,
            &admin,
            self.opts.concurrency,
            rate,
            duration,
            |seq| {
                json!({
                    "name": format!("Fresh Customer {seq}"), "type": "consumer",
                    "email": format!("fresh{seq}@example.com"),
                    "bootstrapTenantKey": format!("fresh-{}", uuid::Uuid::new_v4().simple()),
                })
            },
        )
        .await;
        // Counted, not polled per customer: the bench must not load the database it measures.
        let mut su = self.search_db.superuser().await;
        let deadline = Instant::now() + GIVE_UP;
        loop {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM documents WHERE kind = 'customer'")
                    .fetch_one(&mut su)
                    .await?;
            if n as usize >= created.customers.len() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let customer_api_phases = histograms::phases(
            &api_before,
            &histograms::scrape(&self.http, &self.customer_api.base).await?,
            &CUSTOMER_API_PHASES,
        );
        let search_phases = histograms::phases(
            &search_before,
            &histograms::scrape(&self.http, &self.search.base).await?,
            &SEARCH_PHASES,
        );
        let rows: Vec<(String, time::OffsetDateTime)> =
            sqlx::query_as("SELECT id::text, indexed_at FROM documents WHERE kind = 'customer'")
                .fetch_all(&mut su)
                .await?;
        su.close().await.ok();
        let seen: HashMap<String, time::OffsetDateTime> = rows.into_iter().collect();
        let missing = created
            .customers
            .iter()
            .filter(|(id, _)| !seen.contains_key(id))
            .count() as u64;
        let timing = creations::latencies(&created, &seen);
        Ok(Freshness {
            rate_per_s: rate,
            duration_s: duration.as_secs_f64(),
            created: created.customers.len() as u64,
            create_errors: created.errors,
            missing,
            p50_ms: timing.p50_ms,
            p99_ms: timing.p99_ms,
            max_ms: timing.max_ms,
            p99_by_5s_ms: timing.p99_by_5s_ms,
            customer_api_phases,
            search_phases,
        })
    }

    /// Whether `base` answers a search with `key` (an unanswered call counts as accepted).
    async fn accepts(&self, base: &str, key: &str) -> bool {
        let res = self
            .http
            .post(format!("{base}/v1/search"))
            .header("x-search-key", key)
            .json(&json!({"limit": 1}))
            .send()
            .await;
        res.map_or(true, |r| r.status() != reqwest::StatusCode::UNAUTHORIZED)
    }

    /// `search-key-revocation` over `samples` keys.
    pub async fn key_revocation(&self, samples: usize) -> anyhow::Result<Revocation> {
        let port = free_port();
        let replica = ServiceProcess::start_logged(
            "search-sync",
            port,
            &self
                .opts
                .service_env(&self.search_db, &self.amqp, "SEARCH_SYNC", port),
            Some(&self.opts.workdir.join("search-sync-replica.log")),
        )
        .await?;
        let admin = testkit::token(
            "bench-admin",
            None,
            &[Permission::PlatformAdminSearchAllCustomers],
        );
        let keys = format!("{}/v1/search-keys", self.search.base);
        let mut times = Vec::with_capacity(samples);
        for _ in 0..samples {
            let issued: serde_json::Value = self
                .http
                .post(&keys)
                .bearer_auth(&admin)
                .json(&json!({"name": "revocation", "kind": "allCustomers", "ttlSeconds": 600}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let key = issued["secret"].as_str().unwrap_or_default().to_string();
            let id = issued["key"]["id"].as_str().unwrap_or_default().to_string();
            if !self.accepts(&replica.base, &key).await {
                anyhow::bail!("a fresh search key was refused by the replica");
            }
            let t0 = Instant::now();
            self.http
                .delete(format!("{keys}/{id}"))
                .bearer_auth(&admin)
                .send()
                .await?
                .error_for_status()?;
            while self.accepts(&replica.base, &key).await {
                if t0.elapsed() > Duration::from_secs(10) {
                    anyhow::bail!("a revoked search key still searches after 10 s");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        let _ = replica.terminate().await;
        Ok(Revocation::of(times))
    }
}
