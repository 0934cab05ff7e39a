//! Contacts in a snapshot (`shared_model::snapshot`), each as the data of `contact.created`.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use shared_model::error::ApiError;
use shared_model::ids::CustomerId;
use shared_model::snapshot::{Page, Position, TableSource, item};
use sqlx::PgConnection;

use super::store;

/// The contacts of customers and of their clients.
pub const CONTACTS: TableSource = TableSource {
    entity: "contact",
    table: "contacts",
    page,
};

fn page<'c>(
    conn: &'c mut PgConnection,
    customer: Option<CustomerId>,
    after: Option<Position>,
    limit: i64,
) -> BoxFuture<'c, Result<Page, ApiError>> {
    async move {
        store::snapshot_page(conn, customer, after, limit)
            .await?
            .iter()
            .map(|c| item(c.customer_id.as_uuid(), c.id.as_uuid(), c))
            .collect()
    }
    .boxed()
}
