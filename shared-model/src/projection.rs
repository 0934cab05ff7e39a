//! Projections: a service's local copy of another service's entities, kept from their events
//! (partition-keys' known customers; org-structure's known customers and clients).
//!
//! A projection is a table of the service (in its own migrations, with its own SQL), written
//! only by the projection's consumer under one contract the kit relies on:
//!
//! - every row carries the `version` of the event that wrote it, and a write changes a row only
//!   when the event's version is newer than the row's (a stale or redelivered event changes
//!   nothing);
//! - a deletion keeps the row as a tombstone with the deleting event's version, so a stale
//!   event delivered after it (a late redelivery, a dead letter replayed) finds a newer version
//!   and cannot bring the entity back.
//!
//! The kit does the rest: it decodes the entity from the event, scopes the transaction to the
//! entity's tenant, calls the write the event's type asks for, counts the outcome in
//! `projection_events_total{projection, outcome}` and runs the service's cascade
//! ([`Projection::applied`]) only when the event changed the row.

use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use sqlx::PgConnection;

use crate::bus::{Handler, Subscription};
use crate::db::{self, Scope};
use crate::envelope::{CloudEvent, EventType};
use crate::error::ApiError;
use crate::ids::CustomerId;

/// What an event was to a projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new state of the entity.
    Upsert,
    /// The entity's deletion.
    Delete,
}

/// One projection table and the writes that keep it (see the module's contract).
pub trait Projection: Send + Sync + 'static {
    /// The projection's name, in logs and metrics.
    const NAME: &'static str;

    /// The entity as its events carry it in `data`.
    type Entity: DeserializeOwned + Send + Sync;

    /// The tenant the entity belongs to: the transaction is scoped to it.
    fn customer(entity: &Self::Entity) -> CustomerId;

    /// Writes the entity's state if its version is newer than the row's (or there is none);
    /// true if it did.
    fn upsert<'c>(
        conn: &'c mut PgConnection,
        entity: &'c Self::Entity,
    ) -> BoxFuture<'c, Result<bool, ApiError>>;

    /// Turns the row into a tombstone at the entity's version, if that is newer than the
    /// row's (or there is none); true if it did.
    fn delete<'c>(
        conn: &'c mut PgConnection,
        entity: &'c Self::Entity,
    ) -> BoxFuture<'c, Result<bool, ApiError>>;

    /// What the service does, in the same transaction, once `event` changed the row (its
    /// cascades); nothing by default. Never called for a stale event.
    fn applied<'c>(
        conn: &'c mut PgConnection,
        event: &'c CloudEvent,
        change: Change,
        entity: &'c Self::Entity,
    ) -> BoxFuture<'c, Result<(), ApiError>> {
        let _ = (conn, event, change, entity);
        async { Ok(()) }.boxed()
    }
}

/// The consumer of the queue `name` that keeps `P`: each of `upserts` is a new state of the
/// entity, each of `deletes` its deletion (catalog constants).
pub fn subscription<P: Projection>(
    name: &str,
    upserts: &[EventType],
    deletes: &[EventType],
) -> Subscription {
    Subscription::new(name).project::<P>(upserts, deletes)
}

impl Subscription {
    /// Keeps `P` from this queue too: each of `upserts` is a new state of its entity, each of
    /// `deletes` its deletion. Projections sharing a queue see its events in one order (one
    /// customer's in the order they were published).
    pub fn project<P: Projection>(self, upserts: &[EventType], deletes: &[EventType]) -> Self {
        let upsert: Handler = Arc::new(|conn, event| {
            async move {
                apply::<P>(conn, event, Change::Upsert)
                    .await
                    .map(|_| ())
                    .map_err(ApiError::into_anyhow)
            }
            .boxed()
        });
        let delete: Handler = Arc::new(|conn, event| {
            async move {
                apply::<P>(conn, event, Change::Delete)
                    .await
                    .map(|_| ())
                    .map_err(ApiError::into_anyhow)
            }
            .boxed()
        });
        self.on_each(upserts, upsert).on_each(deletes, delete)
    }
}

/// Applies one event to `P`; true if it changed the row.
pub async fn apply<P: Projection>(
    conn: &mut PgConnection,
    event: &CloudEvent,
    change: Change,
) -> Result<bool, ApiError> {
    let entity: P::Entity =
        serde_json::from_value(event.data.clone()).map_err(ApiError::internal)?;
    db::set_scope(conn, Scope::Tenant(P::customer(&entity))).await?;
    let newer = match change {
        Change::Upsert => P::upsert(conn, &entity).await?,
        Change::Delete => P::delete(conn, &entity).await?,
    };
    let outcome = if newer { "applied" } else { "stale" };
    metrics::counter!("projection_events_total", "projection" => P::NAME, "outcome" => outcome)
        .increment(1);
    if newer {
        P::applied(conn, event, change, &entity).await?;
    } else {
        tracing::debug!(projection = P::NAME, event_id = %event.id, event_type = %event.event_type,
            "stale event: the projection holds a newer version");
    }
    Ok(newer)
}
