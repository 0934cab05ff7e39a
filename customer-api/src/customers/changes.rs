//! A customer's events: its full state, with the fields an update changed, written in the
//! caller's transaction (also by lifecycle, logos and provisioning).

use shared_model::error::ApiError;
use shared_model::events::customer::{Customer, CustomerEventData};
use shared_model::events::{CloudEvent, EventType};
use shared_model::outbox;
use sqlx::PgConnection;

/// A `customer.*` event: the customer's full state, with the fields an update changed.
pub fn event(
    kind: EventType,
    customer: &Customer,
    changed_fields: Option<Vec<String>>,
    actor: &str,
    traceparent: Option<String>,
) -> Result<CloudEvent, ApiError> {
    let data = CustomerEventData {
        customer: customer.clone(),
        changed_fields,
    };
    CloudEvent::new(
        crate::SOURCE,
        kind,
        customer.id,
        Some(customer.id),
        actor,
        traceparent,
        &data,
    )
    .map_err(ApiError::internal)
}

/// Writes a `customer.*` event to the outbox.
pub async fn write_event(
    conn: &mut PgConnection,
    kind: EventType,
    customer: &Customer,
    changed_fields: Option<Vec<String>>,
    actor: &str,
    traceparent: Option<String>,
) -> Result<(), ApiError> {
    let event = event(kind, customer, changed_fields, actor, traceparent)?;
    outbox::enqueue(conn, &event).await?;
    Ok(())
}
