//! Regression suite for the defects an outside audit found: each test drives the running
//! services (customer-api and partition-keys, in this process, on their real routers and
//! server loop) as a stranger would, and fails if the defect comes back.

mod authorization;
mod connections;
mod faults;
mod idempotency;
mod input;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::config::{AmqpConfig, KitConfig};
use shared_model::ids::CustomerId;
use shared_model::testkit::{self, TestApp, TestDb};

/// Every tenant permission: what the default TenantAdmin role holds.
pub const TENANT_ALL: &[Permission] = customer_api::roles::routes::DEFAULT_ROLES[0].2;

/// customer-api and partition-keys on their own databases, over the broker.
pub struct Platform {
    pub customers: TestApp,
    pub keys: TestApp,
    pub customers_db: TestDb,
    pub keys_db: TestDb,
    pub http: reqwest::Client,
}

impl Platform {
    pub async fn start(tag: &str) -> Platform {
        Platform::with(tag, |_| {}).await
    }

    /// The platform with both services' configuration changed by `adjust`.
    pub async fn with(tag: &str, adjust: impl Fn(&mut KitConfig)) -> Platform {
        let amqp = testkit::amqp_config(tag);
        let customers_db = TestDb::new(&(customer_api::SERVICE.migrations)()).await;
        let keys_db = TestDb::new(&(partition_keys::SERVICE.migrations)()).await;
        let config = |db: &TestDb, amqp: AmqpConfig| {
            let mut cfg = testkit::config(db, amqp, true);
            adjust(&mut cfg);
            cfg
        };
        let customers =
            TestApp::spawn(&customer_api::SERVICE, config(&customers_db, amqp.clone())).await;
        let keys = TestApp::spawn(&partition_keys::SERVICE, config(&keys_db, amqp)).await;
        Platform {
            customers,
            keys,
            customers_db,
            keys_db,
            http: reqwest::Client::new(),
        }
    }

    pub fn admin(&self) -> String {
        testkit::token(
            "platform-admin",
            None,
            &[
                Permission::PlatformAdminEditAllCustomers,
                Permission::PlatformAdminViewAllCustomers,
            ],
        )
    }

    /// Sends a request to `app` and returns its status, headers and JSON body (null if none).
    pub async fn call(
        &self,
        app: &TestApp,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut r = self.http.request(method, app.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// Creates a customer; returns its id and a token of its admin holding `permissions`.
    pub async fn customer(&self, key: &str, permissions: &[Permission]) -> (CustomerId, String) {
        let (status, _, c) = self
            .call(
                &self.customers,
                Method::POST,
                "/v1/customers",
                Some(&self.admin()),
                Some(json!({"name": key, "type": "business", "bootstrapTenantKey": key})),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{c}");
        let id: CustomerId = c["id"].as_str().unwrap().parse().unwrap();
        (id, testkit::token("owner", Some(id), permissions))
    }

    /// Creates a partition of `customer` (once partition-keys has learnt of the customer).
    pub async fn partition(&self, customer: CustomerId, token: &str) -> Value {
        let path = format!("/v1/customers/{customer}/partitions");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (s, _, p) = self
                .call(
                    &self.keys,
                    Method::POST,
                    &path,
                    Some(token),
                    Some(json!({"name": "Live", "environment": "prod"})),
                    &[],
                )
                .await;
            if s == StatusCode::CREATED {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "partition-keys never learnt the customer: {s} {p}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The keys collection of a new partition of `customer`.
    pub async fn keys_path(&self, customer: CustomerId, token: &str) -> String {
        let partition = self.partition(customer, token).await;
        format!(
            "/v1/customers/{customer}/partitions/{}/keys",
            partition["id"].as_str().unwrap()
        )
    }

    /// Creates a client of `customer`.
    pub async fn client(&self, customer: CustomerId, token: &str, name: &str) -> Value {
        let (s, _, c) = self
            .call(
                &self.customers,
                Method::POST,
                &format!("/v1/customers/{customer}/clients"),
                Some(token),
                Some(json!({"type": "business", "name": name})),
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        c
    }
}

/// Asserts a problem document with `status` and `code`.
pub fn assert_problem(
    (status, headers, body): &(StatusCode, reqwest::header::HeaderMap, Value),
    want: StatusCode,
    code: &str,
) {
    assert_eq!(*status, want, "{body}");
    assert_eq!(
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
        "application/problem+json",
        "{body}"
    );
    assert_eq!(body["code"], code, "{body}");
}

/// Asserts a 422 naming `field`.
pub fn assert_invalid(answer: &(StatusCode, reqwest::header::HeaderMap, Value), field: &str) {
    assert_problem(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    );
    let fields: Vec<&str> = answer.2["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&field), "{field} not in {}", answer.2);
}
