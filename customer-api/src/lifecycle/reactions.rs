//! Cascades of the client hierarchy, as reactions to customer-api's own events (idempotent:
//! each looks at the current state and changes only what is still to change; the inbox makes
//! redelivery harmless on top).
//!
//! - `customer.deactivated` X → every active customer provisioned from X's clients is
//!   deactivated (cause `customer:X`, X's window).
//! - `customer.reactivated` X → the customers deactivated by that cascade (cause `customer:X`)
//!   are reactivated, no others.
//! - `client.disabled` C → C's provisioned customer is deactivated (cause `client:C`);
//!   `client.enabled` C reactivates it if that was the cause.
//! - `client.deleted` C → C's provisioned customer is detached (no parent any more) and
//!   deactivated; its data stays until its own window ends.
//!
//! Cascades recurse through the events they publish: a deactivated reseller deactivates its
//! sub-tenants, which deactivate theirs.

use std::sync::Arc;

use futures_util::FutureExt;
use shared_model::bus::{Handler, Subscription};
use shared_model::db::{self, Scope};
use shared_model::error::ApiError;
use shared_model::events::CloudEvent;
use shared_model::events::Updated;
use shared_model::events::client::{self as client_ev, ClientEventData};
use shared_model::events::customer::{self as customer_ev, CustomerEventData};
use shared_model::ids::CustomerId;
use shared_model::model::{CustomerStatus, DeactivationReason};
use shared_model::outbox::Cause;
use sqlx::PgConnection;
use time::OffsetDateTime;

use super::store::{self, Feedback};
use crate::customers::store as customers;

/// The consumer of the hierarchy cascades.
pub fn subscription(max_window_days: u32) -> Subscription {
    let handler: Handler = Arc::new(move |conn, event| {
        async move { react(conn, event, max_window_days).await }.boxed()
    });
    Subscription::new("hierarchy-cascades").on_each(
        &[
            customer_ev::DEACTIVATED,
            customer_ev::REACTIVATED,
            client_ev::DISABLED,
            client_ev::ENABLED,
            client_ev::DELETED,
        ],
        handler,
    )
}

fn cascade_feedback(text: String) -> Feedback {
    Feedback {
        reason_code: DeactivationReason::Cascade,
        text: Some(text),
        recommendation_score: None,
        context: None,
    }
}

async fn react(
    conn: &mut PgConnection,
    event: &CloudEvent,
    max_window_days: u32,
) -> anyhow::Result<()> {
    // The cascades reach other tenants (the provisioned customers) by design.
    db::set_scope(conn, Scope::System).await?;
    cascade(conn, event, max_window_days)
        .await
        .map_err(ApiError::into_anyhow)
}

fn data<T: serde::de::DeserializeOwned>(event: &CloudEvent) -> Result<T, ApiError> {
    serde_json::from_value(event.data.clone()).map_err(ApiError::internal)
}

async fn cascade(
    conn: &mut PgConnection,
    event: &CloudEvent,
    max_window_days: u32,
) -> Result<(), ApiError> {
    let by = Cause::reaction(crate::SOURCE, event);
    let kind = event.event_type.as_str();
    match kind {
        k if k == customer_ev::DEACTIVATED.name => {
            let parent: CustomerEventData = data(event)?;
            let window = parent
                .customer
                .window_ends_at
                .unwrap_or_else(|| default_window(max_window_days));
            let cause = format!("customer:{}", parent.customer.id);
            for child in children(conn, parent.customer.id).await? {
                deactivate_if_active(conn, child, window, &cause, &by).await?;
            }
            Ok(())
        }
        k if k == customer_ev::REACTIVATED.name => {
            let parent: CustomerEventData = data(event)?;
            let cause = format!("customer:{}", parent.customer.id);
            for child in children(conn, parent.customer.id).await? {
                reactivate_if_caused_by(conn, child, &cause, &by).await?;
            }
            Ok(())
        }
        k if [client_ev::DISABLED, client_ev::ENABLED, client_ev::DELETED]
            .iter()
            .any(|t| t.name == k) =>
        {
            let client: ClientEventData = data(event)?;
            let Some(provisioned) = client.client.provisioned_customer_id else {
                return Ok(());
            };
            let cause = format!("client:{}", client.client.id);
            match kind {
                k if k == client_ev::ENABLED.name => {
                    reactivate_if_caused_by(conn, provisioned, &cause, &by).await
                }
                k if k == client_ev::DELETED.name => {
                    detach(conn, provisioned, &by).await?;
                    let window = default_window(max_window_days);
                    deactivate_if_active(conn, provisioned, window, &cause, &by).await
                }
                _ => {
                    let window = default_window(max_window_days);
                    deactivate_if_active(conn, provisioned, window, &cause, &by).await
                }
            }
        }
        _ => Ok(()),
    }
}

fn default_window(days: u32) -> OffsetDateTime {
    db::now() + time::Duration::days(i64::from(days))
}

async fn children(
    conn: &mut PgConnection,
    parent: CustomerId,
) -> Result<Vec<CustomerId>, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT customer_id FROM customers WHERE parent_customer_id = $1 ORDER BY customer_id",
    )
    .bind(parent)
    .fetch_all(&mut *conn)
    .await?)
}

async fn deactivate_if_active(
    conn: &mut PgConnection,
    id: CustomerId,
    window: OffsetDateTime,
    cause: &str,
    by: &Cause,
) -> Result<(), ApiError> {
    let Some(c) = customers::find(conn, id, true).await? else {
        return Ok(());
    };
    if c.status != CustomerStatus::Active {
        return Ok(());
    }
    let feedback = cascade_feedback(format!("deactivated by the cascade from {cause}"));
    store::deactivate(conn, c, window, &feedback, cause, by).await?;
    Ok(())
}

async fn reactivate_if_caused_by(
    conn: &mut PgConnection,
    id: CustomerId,
    cause: &str,
    by: &Cause,
) -> Result<(), ApiError> {
    let Some(c) = customers::find(conn, id, true).await? else {
        return Ok(());
    };
    if c.status != CustomerStatus::Deactivated
        || store::cause(conn, id).await?.as_deref() != Some(cause)
        || c.window_ends_at.is_some_and(|end| end <= db::now())
    {
        return Ok(());
    }
    store::reactivate(conn, c, by).await?;
    Ok(())
}

/// Removes a provisioned customer's links to its (deleted) client.
async fn detach(conn: &mut PgConnection, id: CustomerId, by: &Cause) -> Result<(), ApiError> {
    let Some(mut c) = customers::find(conn, id, true).await? else {
        return Ok(());
    };
    if c.parent_client_id.is_none() && c.parent_customer_id.is_none() {
        return Ok(());
    }
    c.parent_client_id = None;
    c.parent_customer_id = None;
    c.version += 1;
    c.updated_at = db::now();
    c.updated_by = by.actor().to_string();
    customers::update(conn, &c).await?;
    let data = Updated::of(&c, &["parentCustomerId", "parentClientId"]);
    by.emit(conn, customer_ev::UPDATED, c.id, c.id, &data)
        .await?;
    tracing::info!(customer_id = %id, "provisioned customer detached from its deleted client");
    Ok(())
}
