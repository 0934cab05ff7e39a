//! The reactions to customer-api's customer events (what each does: see the parent module).

use std::sync::Arc;

use futures_util::FutureExt;
use shared_model::bus::{Handler, Subscription};
use shared_model::db::{self, Scope};
use shared_model::error::ApiError;
use shared_model::events::CloudEvent;
use shared_model::events::customer::{self, CustomerEventData};
use shared_model::outbox::Cause;
use sqlx::PgConnection;

use super::store;
use crate::keys::store as keys;
use crate::partitions::store as partitions;

pub fn subscription() -> Subscription {
    let handler: Handler = Arc::new(|conn, event| {
        async move { react(conn, event).await.map_err(ApiError::into_anyhow) }.boxed()
    });
    Subscription::new("customer-lifecycle").on_each(
        &[
            customer::CREATED,
            customer::UPDATED,
            customer::DEACTIVATED,
            customer::REACTIVATED,
            customer::DELETED,
        ],
        handler,
    )
}

async fn react(conn: &mut PgConnection, event: &CloudEvent) -> Result<(), ApiError> {
    let data: CustomerEventData =
        serde_json::from_value(event.data.clone()).map_err(ApiError::internal)?;
    let c = data.customer;
    db::set_scope(conn, Scope::Tenant(c.id)).await?;
    let cause = Cause::reaction(crate::SOURCE, event);
    match event.event_type.as_str() {
        k if k == customer::DELETED.name => {
            for p in partitions::all_of(conn, c.id).await? {
                partitions::delete_with_keys(conn, &p, &cause).await?;
            }
            sqlx::query("DELETE FROM known_customers WHERE customer_id = $1")
                .bind(c.id)
                .execute(&mut *conn)
                .await?;
            tracing::info!(customer_id = %c.id, "customer deleted: partitions removed");
        }
        kind => {
            let applied = store::record(conn, c.id, c.status.as_str(), c.version).await?;
            if applied && kind == customer::DEACTIVATED.name {
                let n = keys::expire_all_keys(conn, c.id).await?;
                tracing::info!(customer_id = %c.id, keys = n, "customer deactivated: keys expired");
            }
        }
    }
    Ok(())
}
