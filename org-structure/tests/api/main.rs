//! org-structure integration tests: the real service against a PostgreSQL database of its own
//! (used through a role RLS applies to) and RabbitMQ.

mod contacts;
mod departments;
mod locations;
mod owners;
mod settings;

use std::time::{Duration, Instant};

use serde_json::json;
use shared_model::auth::Permission;
use shared_model::events::{CloudEvent, EventType};
use shared_model::ids::{ClientId, CustomerId};
use shared_model::testkit::{self, Client, Harness, events};

/// org-structure under test, with its fixtures.
pub struct Ctx(Harness);

impl std::ops::Deref for Ctx {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.0
    }
}

/// An owner known to the service, with an API client of each level's writer.
pub struct Owned {
    pub customer: CustomerId,
    pub client: ClientId,
    /// The customer's token with ManageOrgStructure and ViewCustomer.
    pub tenant: Client,
    /// The customer's token with EditClient and ViewClient.
    pub clients: Client,
}

impl Owned {
    /// The customer level's locations.
    pub fn locations(&self) -> String {
        format!("/v1/customers/{}/locations", self.customer)
    }

    /// The client level's locations.
    pub fn client_locations(&self) -> String {
        format!(
            "/v1/customers/{}/clients/{}/locations",
            self.customer, self.client
        )
    }
}

impl Ctx {
    pub async fn new() -> Ctx {
        Ctx(Harness::start(&org_structure::SERVICE, |_| {}).await)
    }

    /// A customer (in `status`) with one client (in `client_status`), as the projections hold
    /// them after customer-api's events.
    pub async fn owner_in(&self, status: &str, client_status: &str) -> Owned {
        let customer = CustomerId::new();
        let client = ClientId::new();
        let mut su = self.db.superuser().await;
        sqlx::query(
            "INSERT INTO known_customers (customer_id, status, version) VALUES ($1, $2, 1)",
        )
        .bind(customer)
        .bind(status)
        .execute(&mut su)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO known_clients (customer_id, client_id, status, version)
             VALUES ($1, $2, $3, 1)",
        )
        .bind(customer)
        .bind(client)
        .bind(client_status)
        .execute(&mut su)
        .await
        .unwrap();
        let tenant = testkit::token(
            "org-admin",
            Some(customer),
            &[Permission::ManageOrgStructure, Permission::ViewCustomer],
        );
        let clients = testkit::token(
            "account-manager",
            Some(customer),
            &[Permission::EditClient, Permission::ViewClient],
        );
        Owned {
            customer,
            client,
            tenant: self.client().as_user(&tenant),
            clients: self.client().as_user(&clients),
        }
    }

    /// An active customer with an active client.
    pub async fn owner(&self) -> Owned {
        self.owner_in("active", "active").await
    }

    /// A platform admin who may change every customer.
    pub fn admin(&self) -> Client {
        self.client().as_user(&testkit::token(
            "platform-admin",
            None,
            &[
                Permission::PlatformAdminViewAllCustomers,
                Permission::PlatformAdminEditAllCustomers,
            ],
        ))
    }

    /// The outbox's events of one type, oldest first.
    pub async fn events_of(&self, kind: EventType) -> Vec<serde_json::Value> {
        self.outbox()
            .await
            .into_iter()
            .filter(|(k, _)| k == kind.name)
            .map(|(_, e)| e)
            .collect()
    }
}

/// A `customer.*` event as customer-api publishes it.
pub fn customer_event(
    kind: EventType,
    id: CustomerId,
    customer_type: &str,
    address: serde_json::Value,
    version: i64,
) -> CloudEvent {
    let mut data = events::customer_data(id, version);
    data["type"] = json!(customer_type);
    data["address"] = address;
    events::event("/customer-api", kind, id, id, &data)
}

/// A `client.*` event as customer-api publishes it.
pub fn client_event(
    kind: EventType,
    customer: CustomerId,
    id: ClientId,
    disabled: bool,
    version: i64,
) -> CloudEvent {
    let mut data = events::client_data(customer, id, version);
    data["disabled"] = json!(disabled);
    events::event("/customer-api", kind, id, customer, &data)
}

/// Waits (up to 10 s) until `check` holds.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what} did not happen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
