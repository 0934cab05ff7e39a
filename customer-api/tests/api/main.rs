//! customer-api integration tests: the real router and service runner against a real
//! PostgreSQL database per test, used through a role that row-level security applies to.

mod claims;
mod client_access;
mod client_actions;
mod clients;
mod customers;
mod fixtures;
mod groups;
mod isolation;
mod lifecycle;
mod logos;
mod operations;
mod provision;
mod registration;
mod roles;
mod tags;

use reqwest::StatusCode;
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
}

pub const ADMIN_PERMS: &[Permission] = &[
    Permission::PlatformAdminEditAllCustomers,
    Permission::PlatformAdminViewAllCustomers,
];
pub const TENANT_PERMS: &[Permission] = &[Permission::ViewCustomer, Permission::EditCustomer];

impl Ctx {
    pub async fn new() -> Ctx {
        Ctx::with(|_| {}).await
    }

    /// A context whose service configuration `adjust` changes first.
    pub async fn with(adjust: impl FnOnce(&mut KitConfig)) -> Ctx {
        let db = TestDb::new(&(customer_api::SERVICE.migrations)()).await;
        let amqp = testkit::amqp_config("customer-api");
        let mut cfg = testkit::config(&db, amqp.clone(), false);
        adjust(&mut cfg);
        let app = TestApp::spawn(&customer_api::SERVICE, cfg).await;
        Ctx { app, db, amqp }
    }

    pub fn admin(&self) -> String {
        testkit::token("platform-admin", None, ADMIN_PERMS)
    }

    pub fn tenant(&self, id: &str) -> String {
        testkit::token(
            "tenant-admin",
            Some(id.parse::<CustomerId>().unwrap()),
            TENANT_PERMS,
        )
    }

    pub fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let r = self.app.http.request(method, self.app.url(path));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// The JSON answer of a `GET` made with `token`.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.req(reqwest::Method::GET, path, Some(token))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn create(&self, body: Value) -> Value {
        let res = self
            .req(reqwest::Method::POST, "/v1/customers", Some(&self.admin()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "{:?}", res.text().await);
        res.json().await.unwrap()
    }

    /// Entity events in the outbox, oldest first, as (routing key, CloudEvent); the
    /// `customer.claims_changed` events every creation also writes are left out (the claims
    /// tests look at them).
    pub async fn events(&self) -> Vec<(String, Value)> {
        self.all_events()
            .await
            .into_iter()
            .filter(|(k, _)| k != "customer.claims_changed")
            .collect()
    }

    /// Asserts that every `*.updated` event written so far names the fields it changed.
    pub async fn assert_updates_name_their_changes(&self) {
        let mut updates = 0;
        for (kind, event) in self.all_events().await {
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

    /// Every event in the outbox, oldest first.
    pub async fn all_events(&self) -> Vec<(String, Value)> {
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

pub fn business(key: &str) -> Value {
    json!({
        "name": "Acme Industries",
        "type": "business",
        "email": "ops@acme.example",
        "phone": "+1 415 555 0100",
        "website": "https://acme.example",
        "address": {"lines": ["1 Market St"], "city": "San Francisco", "region": "CA", "postalCode": "94105", "country": "us"},
        "locale": "en-US",
        "businessProfile": {
            "industryGroup": "software_services",
            "classification": "c_corp",
            "sizeRange": "51-200",
            "socialProfiles": [{"platform": "linkedin", "url": "https://linkedin.com/company/acme"}],
            "externalId": format!("crm-{key}")
        },
        "sessionExpirationSeconds": 3600,
        "bootstrapTenantKey": key,
        "products": ["crm", "billing"]
    })
}

pub fn consumer(key: &str, name: &str) -> Value {
    json!({"name": name, "type": "consumer", "bootstrapTenantKey": key})
}
