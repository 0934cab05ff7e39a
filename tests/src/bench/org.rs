//! org-structure scenarios, with customer-api and org-structure running on one broker:
//!
//! - `hq-creation`: business customers with an address created over customer-api's API at
//!   `--hq-rate` for `--hq-duration`; for each, the time from its `createdAt` (set just before
//!   customer-api's commit) to its HQ being readable through org-structure's API, polled every
//!   few milliseconds; and how many never appear or appear twice.
//! - `list-contacts`: the first page of 50 of one owner's 1,000 contacts, against the same
//!   query under pgbench.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Serialize;
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::config::AmqpConfig;
use shared_model::ids::CustomerId;
use shared_model::testkit::{self, TestDb};
use sqlx::Connection;
use tokio::task::JoinSet;

use super::client::Call;
use super::load::{self, LoadSpec};
use super::scenarios::{self, Comparison, Options};
use super::stats::Samples;
use crate::{ServiceProcess, free_port};

/// Contacts of the owner `list-contacts` reads.
const CONTACTS: i64 = 1_000;
/// How often a new customer's HQ is looked for.
const POLL: Duration = Duration::from_millis(5);
/// How long an HQ may take before it counts as missing.
const GIVE_UP: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize)]
pub struct HqCreation {
    pub rate_per_s: f64,
    pub duration_s: f64,
    pub created: u64,
    pub create_errors: u64,
    pub missing: u64,
    pub duplicated: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

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
        let base = self.org.base.clone();
        let spec = |duration| LoadSpec {
            concurrency: self.opts.concurrency,
            duration,
            rate: self.opts.rate,
        };
        scenarios::alternate(
            &self.opts,
            &self.org_superuser_url,
            "list-contacts",
            script,
            |d| {
                let call = call.clone();
                let base = base.clone();
                async move {
                    load::run(spec(d), &base, move |mut conn, _| {
                        let call = call.clone();
                        async move {
                            let ok = conn
                                .send(&call)
                                .await
                                .is_ok_and(|(s, b)| s == StatusCode::OK && b.len() > 1000);
                            (conn, ok)
                        }
                    })
                    .await
                }
            },
        )
        .await
    }

    /// `hq-creation` at `rate` customers a second for `duration`.
    pub async fn hq_creation(&self, rate: f64, duration: Duration) -> anyhow::Result<HqCreation> {
        let admin = testkit::token(
            "bench-admin",
            None,
            &[
                Permission::PlatformAdminEditAllCustomers,
                Permission::PlatformAdminViewAllCustomers,
            ],
        );
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(CustomerId, time::OffsetDateTime)>();
        let writes = {
            let admin = admin.clone();
            let spec = LoadSpec {
                concurrency: self.opts.concurrency,
                duration,
                rate: Some(rate),
            };
            load::run(spec, &self.customer_api.base, move |mut conn, seq| {
                let call = Call::post_json(
                    "/v1/customers",
                    &admin,
                    &json!({
                        "name": format!("HQ Bench {seq}"), "type": "business",
                        "bootstrapTenantKey": format!("hq-{}", uuid::Uuid::new_v4().simple()),
                        "address": {"lines": [format!("{seq} Main St")], "city": "Springfield"}
                    }),
                );
                let tx = tx.clone();
                async move {
                    let ok = match conn.send(&call).await {
                        Ok((s, body)) if s == StatusCode::CREATED => {
                            let v: serde_json::Value =
                                serde_json::from_slice(&body).unwrap_or_default();
                            let id = v["id"].as_str().and_then(|i| i.parse().ok());
                            let at = v["createdAt"].as_str().and_then(|t| {
                                time::OffsetDateTime::parse(
                                    t,
                                    &time::format_description::well_known::Rfc3339,
                                )
                                .ok()
                            });
                            match (id, at) {
                                (Some(id), Some(at)) => tx.send((id, at)).is_ok(),
                                _ => false,
                            }
                        }
                        _ => false,
                    };
                    (conn, ok)
                }
            })
        };
        // Look for each customer's HQ as soon as customer-api answers.
        let http = self.http.clone();
        let org = self.org.base.clone();
        let pollers = tokio::spawn(async move {
            let mut polls = JoinSet::new();
            while let Some((id, created_at)) = rx.recv().await {
                let (http, org, admin) = (http.clone(), org.clone(), admin.clone());
                polls.spawn(async move {
                    let url = format!("{org}/v1/customers/{id}/locations?kind=hq");
                    let started = Instant::now();
                    while started.elapsed() < GIVE_UP {
                        let found = match http.get(&url).bearer_auth(&admin).send().await {
                            Ok(r) if r.status() == StatusCode::OK => r
                                .json::<serde_json::Value>()
                                .await
                                .ok()
                                .and_then(|v| v["items"].as_array().map(|a| a.len()))
                                .unwrap_or(0),
                            _ => 0,
                        };
                        if found > 0 {
                            let now = time::OffsetDateTime::now_utc();
                            return Some(((now - created_at).as_seconds_f64() * 1e6) as u64);
                        }
                        tokio::time::sleep(POLL).await;
                    }
                    None
                });
            }
            let mut latencies = Vec::new();
            let mut missing = 0;
            while let Some(r) = polls.join_next().await {
                match r.ok().flatten() {
                    Some(us) => latencies.push(us),
                    None => missing += 1,
                }
            }
            (latencies, missing)
        });
        let written = writes.await;
        let (latencies, missing) = pollers.await?;
        let mut su = sqlx::PgConnection::connect(&self.org_superuser_url).await?;
        let duplicated: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT 1 FROM locations WHERE kind = 'hq'
                GROUP BY customer_id, owner_id HAVING count(*) > 1) d",
        )
        .fetch_one(&mut su)
        .await?;
        su.close().await.ok();
        let created = latencies.len() as u64 + missing;
        let f = Samples {
            latencies_us: latencies,
            errors: 0,
            elapsed_s: 1.0,
        }
        .figures();
        Ok(HqCreation {
            rate_per_s: rate,
            duration_s: duration.as_secs_f64(),
            created,
            create_errors: written.errors,
            missing,
            duplicated: duplicated as u64,
            p50_ms: f.p50_ms,
            p99_ms: f.p99_ms,
            max_ms: f.max_ms,
        })
    }
}
