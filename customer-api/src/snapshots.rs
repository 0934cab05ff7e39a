//! What customer-api sends when a snapshot is asked for (`shared_model::snapshot`): customers,
//! clients with their group memberships, and clients' addresses, each as the data of its
//! `*.created` event.

use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use shared_model::error::ApiError;
use shared_model::events::client::ClientSnapshot;
use shared_model::ids::CustomerId;
use shared_model::snapshot::{Position, Source};
use sqlx::PgConnection;

use crate::clients::addresses::store as addresses;
use crate::clients::store as clients;
use crate::customers::store as customers;

type Page = Vec<(Position, serde_json::Value)>;

fn item(
    customer: CustomerId,
    id: uuid::Uuid,
    value: &impl serde::Serialize,
) -> Result<(Position, serde_json::Value), ApiError> {
    let json = serde_json::to_value(value).map_err(ApiError::internal)?;
    Ok((
        Position {
            customer: customer.as_uuid(),
            id,
        },
        json,
    ))
}

struct Customers;

impl Source for Customers {
    fn entity(&self) -> &'static str {
        "customer"
    }

    fn table(&self) -> &'static str {
        "customers"
    }

    fn page<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        customer: Option<CustomerId>,
        after: Option<Position>,
        limit: i64,
    ) -> BoxFuture<'c, Result<Page, ApiError>> {
        async move {
            customers::snapshot_page(conn, customer, after, limit)
                .await?
                .iter()
                .map(|c| item(c.id, c.id.as_uuid(), c))
                .collect()
        }
        .boxed()
    }
}

struct Clients;

impl Source for Clients {
    fn entity(&self) -> &'static str {
        "client"
    }

    fn table(&self) -> &'static str {
        "clients"
    }

    fn page<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        customer: Option<CustomerId>,
        after: Option<Position>,
        limit: i64,
    ) -> BoxFuture<'c, Result<Page, ApiError>> {
        async move {
            let page = clients::snapshot_page(conn, customer, after, limit).await?;
            let keys: Vec<_> = page.iter().map(|c| (c.customer_id, c.id)).collect();
            let mut groups = clients::groups_of(conn, &keys).await?;
            page.into_iter()
                .map(|client| {
                    let (customer, id) = (client.customer_id, client.id.as_uuid());
                    let groups = groups.remove(&client.id).unwrap_or_default();
                    item(customer, id, &ClientSnapshot { client, groups })
                })
                .collect()
        }
        .boxed()
    }
}

struct Addresses;

impl Source for Addresses {
    fn entity(&self) -> &'static str {
        "client_address"
    }

    fn table(&self) -> &'static str {
        "client_addresses"
    }

    fn page<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        customer: Option<CustomerId>,
        after: Option<Position>,
        limit: i64,
    ) -> BoxFuture<'c, Result<Page, ApiError>> {
        async move {
            addresses::snapshot_page(conn, customer, after, limit)
                .await?
                .iter()
                .map(|a| item(a.customer_id, a.id.as_uuid(), a))
                .collect()
        }
        .boxed()
    }
}

/// customer-api's sources.
pub fn sources() -> Vec<Arc<dyn Source>> {
    vec![Arc::new(Customers), Arc::new(Clients), Arc::new(Addresses)]
}
