//! The `known_customers` projection of customer-api's customer events, and its cascades (what
//! each does: see the parent module).

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use shared_model::bus::Subscription;
use shared_model::error::ApiError;
use shared_model::events::CloudEvent;
use shared_model::events::customer::{self, Customer};
use shared_model::ids::CustomerId;
use shared_model::outbox::Cause;
use shared_model::projection::{self, Change, Projection};
use sqlx::PgConnection;

use super::store;
use crate::keys::store as keys;
use crate::partition_groups::store as partition_groups;
use crate::partitions::store as partitions;

/// The customers partition-keys knows of.
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
        store::record(conn, c.id, c.status.as_str(), c.version).boxed()
    }

    fn delete<'c>(
        conn: &'c mut PgConnection,
        c: &'c Customer,
    ) -> BoxFuture<'c, Result<bool, ApiError>> {
        store::record(conn, c.id, store::DELETED, c.version).boxed()
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
                    for p in partitions::all_of(conn, c.id).await? {
                        partitions::delete_with_keys(conn, &p, &cause).await?;
                    }
                    partition_groups::delete_all_of(conn, c.id).await?;
                    tracing::info!(customer_id = %c.id, "customer deleted: partitions removed");
                }
                Change::Upsert if event.event_type == customer::DEACTIVATED.name => {
                    let n = keys::expire_all_keys(conn, c.id).await?;
                    tracing::info!(customer_id = %c.id, keys = n, "customer deactivated: keys expired");
                }
                Change::Upsert => {}
            }
            Ok(())
        }
        .boxed()
    }
}

pub fn subscription() -> Subscription {
    projection::subscription::<KnownCustomers>(
        "customer-lifecycle",
        &[
            customer::CREATED,
            customer::UPDATED,
            customer::DEACTIVATED,
            customer::REACTIVATED,
        ],
        &[customer::DELETED],
    )
}
