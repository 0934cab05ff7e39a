//! Contacts in a snapshot (`shared_model::snapshot`), each as the data of `contact.created`.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use shared_model::error::ApiError;
use shared_model::ids::CustomerId;
use shared_model::snapshot::{Position, Source};
use sqlx::PgConnection;

use super::store;

/// The contacts of customers and of their clients.
pub struct Contacts;

impl Source for Contacts {
    fn entity(&self) -> &'static str {
        "contact"
    }

    fn table(&self) -> &'static str {
        "contacts"
    }

    fn page<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        customer: Option<CustomerId>,
        after: Option<Position>,
        limit: i64,
    ) -> BoxFuture<'c, Result<Vec<(Position, serde_json::Value)>, ApiError>> {
        async move {
            store::snapshot_page(conn, customer, after, limit)
                .await?
                .iter()
                .map(|c| {
                    let position = Position {
                        customer: c.customer_id.as_uuid(),
                        id: c.id.as_uuid(),
                    };
                    Ok((
                        position,
                        serde_json::to_value(c).map_err(ApiError::internal)?,
                    ))
                })
                .collect()
        }
        .boxed()
    }
}
