//! customer-api integration tests: the real router and service runner against a real
//! PostgreSQL database per test, used through a role that row-level security applies to.

mod addresses;
mod claims;
mod client_access;
mod client_actions;
mod clients;
mod customer_lists;
mod customer_requests;
mod customers;
mod fixtures;
mod group_access;
mod groups;
mod isolation;
mod lifecycle;
mod logos;
mod operations;
mod provision;
mod registration;
mod roles;
mod snapshots;
mod tags;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::config::KitConfig;
use shared_model::ids::CustomerId;
use shared_model::testkit::{self, Harness};
pub use shared_model::testkit::{invalid, ok, problem};

/// customer-api under test, with its fixtures.
pub struct Ctx(Harness);

impl std::ops::Deref for Ctx {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.0
    }
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
        Ctx(Harness::start(&customer_api::SERVICE, adjust).await)
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
        self.outbox()
            .await
            .into_iter()
            .filter(|(k, _)| k != "customer.claims_changed")
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
