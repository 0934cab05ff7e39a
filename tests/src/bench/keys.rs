//! partition-keys scenarios: `verify-key` (gateways verifying keys, 1% invalid, against a
//! pgbench lookup of one key row by its hash) and `revocation-visibility` (revoke → the first
//! refused verification, on a second replica whose cache is warm).

use std::sync::Arc;
use std::time::{Duration, Instant};

use partition_keys::keys::secret;
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::config::AmqpConfig;
use shared_model::ids::{ApiKeyId, CustomerId, PartitionId};
use shared_model::testkit::{self, TestDb};
use sqlx::Connection;

use super::client::Call;
use super::load::{self, LoadSpec};
use super::scenarios::{self, Comparison, Options};
use super::stats::Samples;
use crate::{ServiceProcess, free_port};

const PEPPER: &str = "bench-pepper-0123456789-0123456789-0123456789";
/// Keys seeded for the verification load.
const KEYS: usize = 1_000;

#[derive(Debug, Serialize)]
pub struct Revocation {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Revocation {
    /// The percentiles of revocation times (ms), at least one.
    pub fn of(mut times: Vec<f64>) -> Revocation {
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len().max(1)) - 1]
        };
        Revocation {
            samples: times.len(),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            max_ms: times.last().copied().unwrap_or(0.0),
        }
    }
}

pub struct KeysEnv {
    db: TestDb,
    amqp: AmqpConfig,
    primary: ServiceProcess,
    replica: ServiceProcess,
    http: reqwest::Client,
    customer: CustomerId,
    partition: PartitionId,
    /// Valid keys, then invalid ones (every 100th request uses one).
    keys: Arc<Vec<String>>,
    invalid: Arc<Vec<String>>,
    superuser_url: String,
    opts: Options,
}

impl KeysEnv {
    pub async fn start(opts: Options) -> anyhow::Result<KeysEnv> {
        let db = TestDb::new(&(partition_keys::SERVICE.migrations)()).await;
        let mut url = reqwest::Url::parse(&testkit::admin_url())?;
        url.set_path(&db.name);
        url.set_query(Some("sslmode=disable"));
        let superuser_url = url.to_string();
        let customer = CustomerId::new();
        let partition = PartitionId::new();
        let mut su = sqlx::PgConnection::connect(&superuser_url).await?;
        sqlx::query(
            "INSERT INTO known_customers (customer_id, status, version) VALUES ($1, 'active', 1)",
        )
        .bind(customer)
        .execute(&mut su)
        .await?;
        sqlx::query(
            "INSERT INTO partitions (customer_id, partition_id, name, environment, status, created_at, updated_at)
             VALUES ($1, $2, 'Bench', 'prod', 'active', now(), now())",
        )
        .bind(customer)
        .bind(partition)
        .execute(&mut su)
        .await?;
        // The baseline looks a key up by its hash as a cache miss does; it takes the hash by
        // number from this side table (a primary-key read).
        sqlx::query(
            "CREATE TABLE bench_key_hashes (n integer PRIMARY KEY, key_hash bytea NOT NULL)",
        )
        .execute(&mut su)
        .await?;
        let mut keys = Vec::with_capacity(KEYS);
        for n in 1..=KEYS {
            let (key, prefix) = secret::generate("prod");
            sqlx::query(
                "INSERT INTO api_keys (customer_id, key_id, partition_id, environment, name, kind,
                     scopes, prefix, key_hash, created_at, created_by)
                 VALUES ($1, $2, $3, 'prod', 'bench', 'admin', '{*:read,*:write}', $4, $5, now(), 'bench')",
            )
            .bind(customer)
            .bind(ApiKeyId::new())
            .bind(partition)
            .bind(prefix)
            .bind(secret::hash(PEPPER.as_bytes(), &key))
            .execute(&mut su)
            .await?;
            sqlx::query("INSERT INTO bench_key_hashes (n, key_hash) VALUES ($1, $2)")
                .bind(n as i32)
                .bind(secret::hash(PEPPER.as_bytes(), &key))
                .execute(&mut su)
                .await?;
            keys.push(key);
        }
        sqlx::query("VACUUM ANALYZE").execute(&mut su).await?;
        su.close().await.ok();
        // Well-formed keys that do not exist, and malformed ones.
        let mut invalid: Vec<String> = (0..50).map(|_| secret::generate("prod").0).collect();
        invalid.extend((0..50).map(|i| format!("cpk_prod_not-a-key-{i}")));

        let amqp = testkit::amqp_config("bench-keys");
        let start = |port: u16, log: &str| {
            let mut env = opts.service_env(&db, &amqp, "PARTITION_KEYS", port);
            env.push(("PARTITION_KEYS__SERVICE__KEY_PEPPER".into(), PEPPER.into()));
            let log = opts.workdir.join(log);
            async move { ServiceProcess::start_logged("partition-keys", port, &env, Some(&log)).await }
        };
        let primary = start(free_port(), "partition-keys.log").await?;
        let replica = start(free_port(), "partition-keys-replica.log").await?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(opts.concurrency * 2)
            .build()?;
        Ok(KeysEnv {
            db,
            amqp,
            primary,
            replica,
            http,
            customer,
            partition,
            keys: Arc::new(keys),
            invalid: Arc::new(invalid),
            superuser_url,
            opts,
        })
    }

    pub async fn stop(self) {
        let _ = self.primary.terminate().await;
        let _ = self.replica.terminate().await;
        crate::delete_services_broker_names(&["partition-keys"], &self.db, &self.amqp, &[]).await;
    }

    async fn service_side(&self, duration: Duration) -> Samples {
        let token = testkit::token("gateway", None, &[Permission::VerifyApiKeys]);
        let prepare = |keys: &[String]| -> Arc<Vec<Call>> {
            Arc::new(
                keys.iter()
                    .map(|k| Call::post_json("/v1/keys/verify", &token, &json!({ "key": k })))
                    .collect(),
            )
        };
        let (valid, invalid) = (prepare(&self.keys), prepare(&self.invalid));
        let spec = LoadSpec {
            concurrency: self.opts.concurrency,
            duration,
            rate: self.opts.rate,
        };
        load::run(spec, &self.primary.base, move |mut conn, seq| {
            let bad = seq % 100 == 99;
            let call = if bad {
                invalid[(seq / 100) as usize % invalid.len()].clone()
            } else {
                valid[seq as usize % valid.len()].clone()
            };
            async move {
                let expected: &[u8] = if bad {
                    b"\"valid\":false"
                } else {
                    b"\"valid\":true"
                };
                let ok = conn.send(&call).await.is_ok_and(|(s, body)| {
                    s == StatusCode::OK && body.windows(expected.len()).any(|w| w == expected)
                });
                (conn, ok)
            }
        })
        .await
    }

    /// The baseline: one key row by its hash, the lookup a cache miss makes.
    fn baseline_sql(&self) -> String {
        "\\set n random(1, 1000)\n\
         SELECT k.key_id, k.customer_id, k.partition_id, k.environment, k.scopes, k.expires_at, \
         k.revoked_at IS NOT NULL, p.status, c.status FROM api_keys k \
         LEFT JOIN partitions p ON p.customer_id = k.customer_id AND p.partition_id = k.partition_id \
         LEFT JOIN known_customers c ON c.customer_id = k.customer_id \
         WHERE k.key_hash = (SELECT key_hash FROM bench_key_hashes WHERE n = :n);\n"
            .to_string()
    }

    pub async fn compare_verify(&self) -> anyhow::Result<Comparison> {
        let script = self.baseline_sql();
        scenarios::alternate(&self.opts, &self.superuser_url, "verify-key", script, |d| {
            self.service_side(d)
        })
        .await
    }

    /// Whether the replica accepts `key` (an unanswered call counts as accepted: not refused).
    async fn replica_accepts(&self, gateway: &str, key: &str) -> bool {
        let res = self
            .http
            .post(format!("{}/v1/keys/verify", self.replica.base))
            .bearer_auth(gateway)
            .json(&json!({ "key": key }))
            .send()
            .await;
        match res {
            Ok(r) => r
                .json::<serde_json::Value>()
                .await
                .map_or(true, |v| v["valid"] == true),
            Err(_) => true,
        }
    }

    /// Issues keys on the primary, warms the replica's cache with each, revokes it on the
    /// primary and times until the replica refuses it.
    pub async fn revocation_visibility(&self, samples: usize) -> anyhow::Result<Revocation> {
        let admin = testkit::token(
            "bench-admin",
            None,
            &[Permission::PlatformAdminEditAllCustomers],
        );
        let gateway = testkit::token("gateway", None, &[Permission::VerifyApiKeys]);
        let keys_url = format!(
            "{}/v1/customers/{}/partitions/{}/keys",
            self.primary.base, self.customer, self.partition
        );
        let mut times = Vec::with_capacity(samples);
        for _ in 0..samples {
            let issued: serde_json::Value = self
                .http
                .post(&keys_url)
                .bearer_auth(&admin)
                .json(&json!({"name": "revocation", "kind": "admin"}))
                .send()
                .await?
                .json()
                .await?;
            let key = issued["secret"].as_str().unwrap_or_default().to_string();
            let id = issued["key"]["id"].as_str().unwrap_or_default().to_string();
            if !self.replica_accepts(&gateway, &key).await {
                anyhow::bail!("a fresh key did not verify on the replica");
            }
            let t0 = Instant::now();
            self.http
                .post(format!("{keys_url}/{id}/revoke"))
                .bearer_auth(&admin)
                .send()
                .await?
                .error_for_status()?;
            while self.replica_accepts(&gateway, &key).await {
                if t0.elapsed() > Duration::from_secs(10) {
                    anyhow::bail!("a revoked key still verifies after 10 s");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(Revocation::of(times))
    }
}
