//! org-structure scenarios, with customer-api and org-structure running on one broker:
//!
//! - `hq-creation`: business customers with an address created over customer-api's API at
//!   `--hq-rate` for `--hq-duration`; for each, the time from its `createdAt` (set just before
//!   customer-api's commit) to its HQ's commit in org-structure (see [`OrgEnv::hq_creation`]);
//!   then every HQ read through org-structure's API, counting those missing or doubled.
//! - `list-contacts`: the first page of 50 of one owner's 1,000 contacts, against the same
//!   query under pgbench.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::config::AmqpConfig;
use shared_model::ids::CustomerId;
use shared_model::testkit::{self, TestDb};
use sqlx::Connection;
use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::{AMQPValue, FieldTable};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use super::client::Call;
use super::creations;
use super::histograms::{self, Phase};
use super::scenarios::{self, Comparison, Options};
use crate::{ServiceProcess, free_port};

/// Contacts of the owner `list-contacts` reads.
const CONTACTS: i64 = 1_000;
/// How long an HQ may take before it counts as missing.
const GIVE_UP: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize)]
pub struct HqCreation {
    pub rate_per_s: f64,
    pub duration_s: f64,
    pub created: u64,
    pub create_errors: u64,
    /// Customers whose HQ's `location.created` arrived (the latencies are theirs).
    pub timed: u64,
    /// Customers without an HQ, read through the API after the run.
    pub missing: u64,
    pub duplicated: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The p99 of the customers created in each 5 s of the run, in ms: a stall at start-up
    /// shows in the first, a periodic one in several.
    pub p99_by_5s_ms: Vec<f64>,
    /// Where the time went, from the histograms of both services over the run: customer-api's
    /// relay (commit → publish, confirm), then org-structure's consumer (outbox write →
    /// receipt, receipt → applied) and its relay.
    pub customer_api_phases: Vec<Phase>,
    pub org_phases: Vec<Phase>,
}

/// customer-api's part of an HQ's latency: its relay.
const CUSTOMER_API_PHASES: [&str; 3] = [
    "outbox_publish_delay_seconds",
    "outbox_relay_confirm_seconds",
    "outbox_relay_select_seconds",
];

/// org-structure's part: its consumer, and the relay sharing its database.
const ORG_PHASES: [&str; 4] = [
    "consumer_delivery_delay_seconds",
    "consumer_apply_seconds",
    "outbox_relay_select_seconds",
    "outbox_publish_delay_seconds",
];

pub struct OrgEnv {
    customers_db: TestDb,
    org_db: TestDb,
    amqp: AmqpConfig,
    customer_api: ServiceProcess,
    org: ServiceProcess,
    http: reqwest::Client,
    /// The owner of the seeded contacts, and a token that reads them.
    owner: CustomerId,
    reader: String,
    org_superuser_url: String,
    opts: Options,
}

fn superuser_url(db: &TestDb) -> anyhow::Result<String> {
    let mut url = reqwest::Url::parse(&testkit::admin_url())?;
    url.set_path(&db.name);
    url.set_query(Some("sslmode=disable"));
    Ok(url.to_string())
}

impl OrgEnv {
    pub async fn start(opts: Options) -> anyhow::Result<OrgEnv> {
        let customers_db = TestDb::new(&(customer_api::SERVICE.migrations)()).await;
        let org_db = TestDb::new(&(org_structure::SERVICE.migrations)()).await;
        let org_superuser_url = superuser_url(&org_db)?;
        let owner = CustomerId::new();
        let mut su = sqlx::PgConnection::connect(&org_superuser_url).await?;
        sqlx::query(
            "INSERT INTO known_customers (customer_id, status, version) VALUES ($1, 'active', 1)",
        )
        .bind(owner)
        .execute(&mut su)
        .await?;
        sqlx::query(
            "INSERT INTO contacts (customer_id, contact_id, owner_id, type, is_primary, first_name,
                 last_name, job_title, email, phone, locale, active, version, created_at, updated_at)
             SELECT $1, gen_random_uuid(), $1,
                    (ARRAY['account_owner', 'billing', 'technical'])[1 + n % 3], false,
                    'First' || n, 'Last' || lpad(n::text, 4, '0'), 'Engineer',
                    'person' || n || '@example.com', '+1555010' || lpad(n::text, 4, '0'),
                    'en-US', true, 1, now(), now()
               FROM generate_series(1, $2) AS n",
        )
        .bind(owner)
        .bind(CONTACTS)
        .execute(&mut su)
        .await?;
        sqlx::query("VACUUM ANALYZE").execute(&mut su).await?;
        su.close().await.ok();

        let amqp = testkit::amqp_config("bench-org");
        let (api_port, org_port) = (free_port(), free_port());
        let customer_api = ServiceProcess::start_logged(
            "customer-api",
            api_port,
            &opts.service_env(&customers_db, &amqp, "CUSTOMER_API", api_port),
            Some(&opts.workdir.join("customer-api-org.log")),
        )
        .await?;
        let org = ServiceProcess::start_logged(
            "org-structure",
            org_port,
            &opts.service_env(&org_db, &amqp, "ORG_STRUCTURE", org_port),
            Some(&opts.workdir.join("org-structure.log")),
        )
        .await?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        let reader = testkit::token("bench-reader", Some(owner), &[Permission::ViewCustomer]);
        Ok(OrgEnv {
            customers_db,
            org_db,
            amqp,
            customer_api,
            org,
            http,
            owner,
            reader,
            org_superuser_url,
            opts,
        })
    }

    pub async fn stop(self) {
        let _ = self.customer_api.terminate().await;
        let _ = self.org.terminate().await;
        crate::delete_services_broker_names(&["customer-api"], &self.customers_db, &self.amqp, &[])
            .await;
        crate::delete_services_broker_names(&["org-structure"], &self.org_db, &self.amqp, &[])
            .await;
    }

    /// `list-contacts`: the service's first page against the same statement under pgbench.
    pub async fn compare_list_contacts(&self) -> anyhow::Result<Comparison> {
        // The first page of the owner's contacts: no filter, no cursor, 50 and one to know
        // whether there is more.
        let mut script = org_structure::contacts::store::LIST_SQL.to_string();
        for (n, value) in [
            (11, "51".to_string()),
            (10, "NULL::uuid".into()),
            (9, "NULL::text".into()),
            (8, "NULL::text".into()),
            (7, "NULL::uuid".into()),
            (6, "NULL::uuid".into()),
            (5, "NULL::boolean".into()),
            (4, "NULL::text".into()),
            (3, "NULL::boolean".into()),
            (2, format!("'{}'::uuid", self.owner)),
            (1, format!("'{}'::uuid", self.owner)),
        ] {
            script = script.replace(&format!("${n}"), &value);
        }
        let script = format!(
            "{};\n",
            script.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        let call = Call::get(
            format!("/v1/customers/{}/contacts?limit=50", self.owner),
            &self.reader,
        );
        scenarios::alternate_calls(
            &self.opts,
            &self.org_superuser_url,
            "list-contacts",
            script,
            &self.org.base,
            vec![call],
            1000,
        )
        .await
    }

    /// `hq-creation` at `rate` customers a second for `duration`.
    ///
    /// When the HQ became readable is taken from org-structure's `location.created`: its
    /// `enqueuedat` is written in the HQ's own transaction, just before it commits. Polling
    /// each new customer's HQ instead would load org-structure with thousands of reads a
    /// second and measure that. Afterwards every customer's HQs are read through the API:
    /// none is missing, none has two.
    pub async fn hq_creation(&self, rate: f64, duration: Duration) -> anyhow::Result<HqCreation> {
        let admin = testkit::token(
            "bench-admin",
            None,
            &[
                Permission::PlatformAdminEditAllCustomers,
                Permission::PlatformAdminViewAllCustomers,
            ],
        );
        let conn = shared_model::bus::connect(&self.amqp, "bench-hq").await?;
        let ch = conn.create_channel().await?;
        let queue = format!("{}.bench-hq", self.amqp.queue_prefix);
        shared_model::bus::declare_queue(&ch, &self.amqp, &queue, &["location.created".into()])
            .await?;
        let mut consumer = ch
            .basic_consume(
                queue.clone().into(),
                "bench-hq".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        // customer → when its HQ's transaction wrote the event.
        let seen: Arc<Mutex<HashMap<String, time::OffsetDateTime>>> = Arc::default();
        let sink = seen.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                let at = d.properties.headers().as_ref().and_then(|h| {
                    match h.inner().get("enqueuedat") {
                        Some(AMQPValue::LongString(s)) => creations::parse_time(&s.to_string()),
                        _ => None,
                    }
                });
                let v: serde_json::Value = serde_json::from_slice(&d.data).unwrap_or_default();
                if let (Some(at), Some(customer)) = (at, v["data"]["customerId"].as_str()) {
                    sink.lock().await.entry(customer.to_string()).or_insert(at);
                }
                let _ = d.ack(BasicAckOptions::default()).await;
            }
        });

        let api_before = histograms::scrape(&self.http, &self.customer_api.base).await?;
        let org_before = histograms::scrape(&self.http, &self.org.base).await?;
        let created = creations::create_customers(
            &self.customer_api.base,
            &admin,
            self.opts.concurrency,
            rate,
            duration,
            |seq| {
                json!({
                    "name": format!("HQ Bench {seq}"), "type": "business",
                    "bootstrapTenantKey": format!("hq-{}", uuid::Uuid::new_v4().simple()),
                    "address": {"lines": [format!("{seq} Main St")], "city": "Springfield"}
                })
            },
        )
        .await;
        let deadline = Instant::now() + GIVE_UP;
        while seen.lock().await.len() < created.customers.len() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        reader.abort();
        let customer_api_phases = histograms::phases(
            &api_before,
            &histograms::scrape(&self.http, &self.customer_api.base).await?,
            &CUSTOMER_API_PHASES,
        );
        let org_phases = histograms::phases(
            &org_before,
            &histograms::scrape(&self.http, &self.org.base).await?,
            &ORG_PHASES,
        );
        let _ = conn.close(200, "done".into()).await;
        testkit::delete_queues(&self.amqp, &[queue]).await;

        // Every customer's HQs, as org-structure's API answers them.
        let mut reads = JoinSet::new();
        let mut counts = Vec::with_capacity(created.customers.len());
        for (id, _) in &created.customers {
            let url = format!("{}/v1/customers/{id}/locations?kind=hq", self.org.base);
            let (http, admin) = (self.http.clone(), admin.clone());
            reads.spawn(async move {
                let page: serde_json::Value = http
                    .get(&url)
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                page["items"].as_array().map(Vec::len)
            });
            // 32 reads at a time.
            if reads.len() >= 32
                && let Some(r) = reads.join_next().await
            {
                counts.push(r.ok().flatten().unwrap_or(0));
            }
        }
        while let Some(r) = reads.join_next().await {
            counts.push(r.ok().flatten().unwrap_or(0));
        }
        let timing = creations::latencies(&created, &*seen.lock().await);
        let mut su = sqlx::PgConnection::connect(&self.org_superuser_url).await?;
        // The database's own count of owners with two HQs (its unique index makes it 0).
        let doubled: i64 = sqlx::query_scalar(
            "SELECT count(*) - count(DISTINCT (customer_id, owner_id)) FROM locations
              WHERE kind = 'hq'",
        )
        .fetch_one(&mut su)
        .await?;
        su.close().await.ok();
        let missing = counts.iter().filter(|n| **n == 0).count() as u64;
        let duplicated = counts.iter().filter(|n| **n > 1).count() as u64 + doubled as u64;
        Ok(HqCreation {
            rate_per_s: rate,
            duration_s: duration.as_secs_f64(),
            created: created.customers.len() as u64,
            create_errors: created.errors,
            timed: timing.timed,
            missing,
            duplicated,
            p50_ms: timing.p50_ms,
            p99_ms: timing.p99_ms,
            max_ms: timing.max_ms,
            p99_by_5s_ms: timing.p99_by_5s_ms,
            customer_api_phases,
            org_phases,
        })
    }
}
