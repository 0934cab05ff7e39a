//! partition-keys integration tests: the real service against a PostgreSQL database of its own
//! (used through a role RLS applies to) and RabbitMQ.

mod keys;
mod lifecycle;
mod partition_groups;
mod partitions;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::config::KitConfig;
use shared_model::ids::CustomerId;
use shared_model::testkit::{self, Harness, TestApp};
pub use shared_model::testkit::{invalid, ok, problem};

/// partition-keys under test, with its fixtures.
pub struct Ctx(Harness);

impl std::ops::Deref for Ctx {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.0
    }
}

pub const PEPPER: &str = "test-pepper-0123456789-0123456789-0123456789";

impl Ctx {
    pub async fn new() -> Ctx {
        Ctx::with(|_| {}).await
    }

    pub async fn with(adjust: impl FnOnce(&mut KitConfig)) -> Ctx {
        Ctx(Harness::start(&partition_keys::SERVICE, |cfg| {
            cfg.service =
                json!({"key_pepper": PEPPER, "expiry_interval_ms": 100, "last_used_flush_ms": 100});
            adjust(cfg);
        })
        .await)
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
