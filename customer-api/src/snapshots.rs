//! What customer-api sends when a snapshot is asked for (`shared_model::snapshot`): customers,
//! clients with their group memberships, and clients' addresses, each as the data of its
//! `*.created` event.

use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use shared_model::error::ApiError;
use shared_model::events::client::ClientSnapshot;
use shared_model::ids::CustomerId;
use shared_model::snapshot::{Page, Position, Source, TableSource, item};
use sqlx::PgConnection;

use crate::clients::addresses::store as addresses;
use crate::clients::store as clients;
use crate::customers::store as customers;

fn customers_page<'c>(
    conn: &'c mut PgConnection,
    customer: Option<CustomerId>,
    after: Option<Position>,
    limit: i64,
) -> BoxFuture<'c, Result<Page, ApiError>> {
    async move {
        customers::snapshot_page(conn, customer, after, limit)
            .await?
            .iter()
            .map(|c| item(c.id.as_uuid(), c.id.as_uuid(), c))
            .collect()
    }
    .boxed()
}

fn clients_page<'c>(
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
                let (customer, id) = (client.customer_id.as_uuid(), client.id.as_uuid());
                let groups = groups.remove(&client.id).unwrap_or_default();
                item(customer, id, &ClientSnapshot { client, groups })
            })
            .collect()
    }
    .boxed()
}

fn addresses_page<'c>(
    conn: &'c mut PgConnection,
    customer: Option<CustomerId>,
    after: Option<Position>,
    limit: i64,
) -> BoxFuture<'c, Result<Page, ApiError>> {
    async move {
        addresses::snapshot_page(conn, customer, after, limit)
            .await?
            .iter()
            .map(|a| item(a.customer_id.as_uuid(), a.id.as_uuid(), a))
            .collect()
    }
    .boxed()
}

/// customer-api's sources.
pub fn sources() -> Vec<Arc<dyn Source>> {
    vec![
        Arc::new(TableSource {
            entity: "customer",
            table: "customers",
            page: customers_page,
        }),
        Arc::new(TableSource {
            entity: "client",
            table: "clients",
            page: clients_page,
        }),
        Arc::new(TableSource {
            entity: "client_address",
            table: "client_addresses",
            page: addresses_page,
        }),
    ]
}
