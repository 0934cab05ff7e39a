//! The `known_customers` and `known_clients` projections of customer-api's events (the kit's
//! projection contract: version-guarded, deletions kept as tombstones) and their cascades:
//!
//! - `customer.created|updated|deactivated|reactivated` → the customer's status; a new
//!   business customer's HQ, and the derived HQ following its address ([`crate::locations::hq`]).
//! - `customer.deleted` → every contact, department and location of the customer and of its clients is
//!   deleted, each with its `*.deleted`; the customer stays as a tombstone (404 from then on).
//! - `client.created|updated|disabled|enabled` → the client's status (`disabled` refuses
//!   changes with 409 `CLIENT_DISABLED`); `client.deleted` → the client's contacts,
//!   departments and locations are deleted, each with its event.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use shared_model::bus::Subscription;
use shared_model::error::ApiError;
use shared_model::events::CloudEvent;
use shared_model::events::client::{self, Client};
use shared_model::events::customer::{self, Customer};
use shared_model::events::org::{Contact, Department, Location};
use shared_model::ids::CustomerId;
use shared_model::outbox::Cause;
use shared_model::projection::{self, Change, Projection};
use sqlx::PgConnection;

use super::store;
use crate::entity;
use crate::locations::hq;

/// The customers org-structure knows of.
pub struct KnownCustomers;

impl Projection for KnownCustomers {
    const NAME: &'static str = "known_customers";
    type Entity = Customer;

    fn customer(c: &Customer) -> CustomerId {
        c.id
    }

    fn upsert<'c>(
        conn: &'c mut PgConnection,
        c: &'c Customer,
    ) -> BoxFuture<'c, Result<bool, ApiError>> {
        store::record_customer(conn, c.id, c.status.as_str(), c.version).boxed()
    }

    fn delete<'c>(
        conn: &'c mut PgConnection,
        c: &'c Customer,
    ) -> BoxFuture<'c, Result<bool, ApiError>> {
        store::record_customer(conn, c.id, store::DELETED, c.version).boxed()
    }

    fn applied<'c>(
        conn: &'c mut PgConnection,
        event: &'c CloudEvent,
        change: Change,
        c: &'c Customer,
    ) -> BoxFuture<'c, Result<(), ApiError>> {
        async move {
            match change {
                Change::Delete => {
                    let cause = Cause::reaction(crate::SOURCE, event);
                    let k = entity::delete_all_of::<Contact>(conn, c.id, None, &cause).await?;
                    let d = entity::delete_all_of::<Department>(conn, c.id, None, &cause).await?;
                    let l = entity::delete_all_of::<Location>(conn, c.id, None, &cause).await?;
                    tracing::info!(customer_id = %c.id, contacts = k, departments = d, locations = l, "customer deleted: its organisation removed");
                }
                Change::Upsert if event.event_type == customer::CREATED.name => {
                    hq::from_new_customer(conn, event, c).await?;
                }
                Change::Upsert if event.event_type == customer::UPDATED.name => {
                    hq::follow_customer(conn, event, c).await?;
                }
                Change::Upsert => {}
            }
            Ok(())
        }
        .boxed()
    }
}

/// The clients org-structure knows of.
pub struct KnownClients;

impl Projection for KnownClients {
    const NAME: &'static str = "known_clients";
    type Entity = Client;

    fn customer(c: &Client) -> CustomerId {
        c.customer_id
    }

    fn upsert<'c>(
        conn: &'c mut PgConnection,
        c: &'c Client,
    ) -> BoxFuture<'c, Result<bool, ApiError>> {
        let status = if c.disabled {
            "disabled"
        } else {
            store::ACTIVE
        };
        store::record_client(conn, c.customer_id, c.id, status, c.version).boxed()
    }

    fn delete<'c>(
        conn: &'c mut PgConnection,
        c: &'c Client,
    ) -> BoxFuture<'c, Result<bool, ApiError>> {
        store::record_client(conn, c.customer_id, c.id, store::DELETED, c.version).boxed()
    }

    fn applied<'c>(
        conn: &'c mut PgConnection,
        event: &'c CloudEvent,
        change: Change,
        c: &'c Client,
    ) -> BoxFuture<'c, Result<(), ApiError>> {
        async move {
            if change == Change::Delete {
                let cause = Cause::reaction(crate::SOURCE, event);
                let (customer, client) = (c.customer_id, Some(c.id));
                let k = entity::delete_all_of::<Contact>(conn, customer, client, &cause).await?;
                let d = entity::delete_all_of::<Department>(conn, customer, client, &cause).await?;
                let l = entity::delete_all_of::<Location>(conn, customer, client, &cause).await?;
                tracing::info!(customer_id = %c.customer_id, client_id = %c.id, contacts = k, departments = d, locations = l, "client deleted: its organisation removed");
            }
            Ok(())
        }
        .boxed()
    }
}

pub fn subscriptions() -> Vec<Subscription> {
    vec![
        hq::client_addresses(),
        projection::subscription::<KnownCustomers>(
            "customers",
            &[
                customer::CREATED,
                customer::UPDATED,
                customer::DEACTIVATED,
                customer::REACTIVATED,
            ],
            &[customer::DELETED],
        ),
        projection::subscription::<KnownClients>(
            "clients",
            &[
                client::CREATED,
                client::UPDATED,
                client::DISABLED,
                client::ENABLED,
            ],
            &[client::DELETED],
        ),
    ]
}
