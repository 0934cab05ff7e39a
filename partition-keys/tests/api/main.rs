//! partition-keys integration tests: the real service against a PostgreSQL database of its own
//! (used through a role RLS applies to) and RabbitMQ.

mod keys;
mod lifecycle;
mod partitions;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::config::{AmqpConfig, KitConfig};
use shared_model::ids::CustomerId;
use shared_model::testkit::{self, TestApp, TestDb};
pub use shared_model::testkit::{invalid, ok, problem};
use sqlx::Row;

pub struct Ctx {
    pub app: TestApp,
    pub db: TestDb,
    pub amqp: AmqpConfig,
    pub cfg: KitConfig,
}

pub const PEPPER: &str = "test-pepper-0123456789-0123456789-0123456789";

impl Ctx {
    pub async fn new() -> Ctx {
        Ctx::with(|_| {}).await
    }

    pub async fn with(adjust: impl FnOnce(&mut KitConfig)) -> Ctx {
        let db = TestDb::new(&(partition_keys::SERVICE.migrations)()).await;
        let amqp = testkit::amqp_config("partition-keys");
        let mut cfg = testkit::config(&db, amqp.clone(), false);
        cfg.service =
            json!({"key_pepper": PEPPER, "expiry_interval_ms": 100, "last_used_flush_ms": 100});
        adjust(&mut cfg);
        let app = TestApp::spawn(&partition_keys::SERVICE, cfg.clone()).await;
        Ctx { app, db, amqp, cfg }
    }

    /// A customer known to the service (as its projection of customer events would hold it)
    /// and a token of that customer with ManagePartitions.
    pub async fn customer(&self, status: &str) -> (String, String) {
        let id = CustomerId::new();
        let mut su = self.db.superuser().await;
        sqlx::query(
            "INSERT INTO known_customers (customer_id, status, version) VALUES ($1, $2, 1)",
        )
        .bind(id)
        .bind(status)
        .execute(&mut su)
        .await
        .unwrap();
        let t = testkit::token("tenant-admin", Some(id), &[Permission::ManagePartitions]);
        (id.to_string(), t)
    }

    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let r = self.app.http.request(method, self.app.url(path));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Response {
        let r = self.req(method, path, Some(token));
        match body {
            Some(b) => r.json(&b),
            None => r,
        }
        .send()
        .await
        .unwrap()
    }

    /// A partition of `customer` in `env`; returns its keys path.
    pub async fn partition(&self, customer: &str, token: &str, name: &str, env: &str) -> String {
        let p = ok(
            self.send(
                Method::POST,
                &format!("/v1/customers/{customer}/partitions"),
                token,
                Some(json!({"name": name, "environment": env})),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        format!(
            "/v1/customers/{customer}/partitions/{}/keys",
            p["id"].as_str().unwrap()
        )
    }

    /// Verifies a key with a gateway token.
    pub async fn verify(&self, key: &str) -> Value {
        verify_on(&self.app, key).await
    }

    /// Events in the outbox, oldest first.
    /// Asserts that every `*.updated` event written so far names the fields it changed.
    pub async fn assert_updates_name_their_changes(&self) {
        let mut updates = 0;
        for (kind, event) in self.events().await {
            if kind.ends_with(".updated") {
                updates += 1;
                let fields = event["data"]["changedFields"].as_array();
                assert!(
                    fields.is_some_and(|f| !f.is_empty() && f.iter().all(|x| x.is_string())),
                    "{kind} without changedFields: {event}"
                );
            }
        }
        assert!(updates > 0, "no update event to check");
    }

    pub async fn events(&self) -> Vec<(String, Value)> {
        let mut su = self.db.superuser().await;
        sqlx::query("SELECT routing_key, payload FROM outbox ORDER BY id")
            .fetch_all(&mut su)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let payload: Vec<u8> = r.get("payload");
                (
                    r.get("routing_key"),
                    serde_json::from_slice(&payload).unwrap(),
                )
            })
            .collect()
    }
}

pub fn gateway() -> String {
    testkit::token("gateway", None, &[Permission::VerifyApiKeys])
}

pub async fn verify_on(app: &TestApp, key: &str) -> Value {
    let res = app
        .http
        .post(app.url("/v1/keys/verify"))
        .bearer_auth(gateway())
        .json(&json!({"key": key}))
        .send()
        .await
        .unwrap();
    ok(res, StatusCode::OK).await
}
