//! The projection of customers partition-keys keeps (`known_customers`), and the cascades of
//! their lifecycle, as reactions to customer-api's events:
//!
//! - `customer.created|updated|reactivated` → the customer is known and active (only a newer
//!   `version` than the one recorded changes anything). Keys expired by a deactivation stay
//!   expired: new keys must be issued after a reactivation.
//! - `customer.deactivated` → every key of the customer expires now.
//! - `customer.deleted` → every partition of the customer is deleted (each publishing
//!   `partition.deleted`, its keys expiring), then the customer is forgotten.

use std::sync::Arc;

use futures_util::FutureExt;
use shared_model::bus::{Handler, Subscription};
use shared_model::db::{self, Scope};
use shared_model::error::ApiError;
use shared_model::events::CloudEvent;
use shared_model::events::customer::CustomerEventData;
use shared_model::ids::CustomerId;
use shared_model::telemetry::TraceContext;
use sqlx::PgConnection;

use crate::partitions::store as partitions;

pub fn subscription() -> Subscription {
    let handler: Handler = Arc::new(|conn, event| {
        async move { react(conn, event).await.map_err(ApiError::into_anyhow) }.boxed()
    });
    Subscription {
        name: "customer-lifecycle".into(),
        bindings: vec![
            "customer.created".into(),
            "customer.updated".into(),
            "customer.deactivated".into(),
            "customer.reactivated".into(),
            "customer.deleted".into(),
        ],
        handler,
    }
}

async fn react(conn: &mut PgConnection, event: &CloudEvent) -> Result<(), ApiError> {
    let data: CustomerEventData =
        serde_json::from_value(event.data.clone()).map_err(ApiError::internal)?;
    let c = data.customer;
    db::set_scope(conn, Scope::Tenant(c.id)).await?;
    let traceparent = TraceContext::reacting_to(event.traceparent.as_deref());
    match event.event_type.as_str() {
        "customer.deleted" => {
            for p in partitions::all_of(conn, c.id).await? {
                partitions::delete_with_keys(conn, &p, "system", Some(traceparent.clone())).await?;
            }
            sqlx::query("DELETE FROM known_customers WHERE customer_id = $1")
                .bind(c.id)
                .execute(&mut *conn)
                .await?;
            tracing::info!(customer_id = %c.id, "customer deleted: partitions removed");
        }
        kind => {
            let applied = record(conn, c.id, c.status.as_str(), c.version).await?;
            if applied && kind == "customer.deactivated" {
                let n = expire_all_keys(conn, c.id).await?;
                tracing::info!(customer_id = %c.id, keys = n, "customer deactivated: keys expired");
            }
        }
    }
    Ok(())
}

/// Records the customer's state if `version` is newer; true if it was.
async fn record(
    conn: &mut PgConnection,
    id: CustomerId,
    status: &str,
    version: i64,
) -> Result<bool, ApiError> {
    Ok(sqlx::query(
        "INSERT INTO known_customers (customer_id, status, version) VALUES ($1, $2, $3)
         ON CONFLICT (customer_id) DO UPDATE SET status = $2, version = $3, updated_at = now()
          WHERE known_customers.version < $3",
    )
    .bind(id)
    .bind(status)
    .bind(version)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// Makes every unexpired, unrevoked key of the customer expire now; the expiry job publishes
/// `apikey.expired` for each.
async fn expire_all_keys(conn: &mut PgConnection, id: CustomerId) -> Result<u64, ApiError> {
    Ok(sqlx::query(
        "UPDATE api_keys SET expires_at = now(), version = version + 1
          WHERE customer_id = $1 AND revoked_at IS NULL
            AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}
