//! Changing a client: locking it, storing a new version with its event.

use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::ApiError;
use shared_model::events::EventType;
use shared_model::events::client::{Client, ClientEventData};
use shared_model::http::Trace;
use shared_model::ids::{ClientId, CustomerId};
use sqlx::PgConnection;

use super::store;
use crate::common::{changed_fields, emit, ensure_writable};

/// Locks a writable customer's client for a change.
pub async fn lock_client(
    tx: &mut PgConnection,
    customer_id: CustomerId,
    client_id: ClientId,
) -> Result<Client, ApiError> {
    ensure_writable(tx, customer_id).await?;
    store::find(tx, customer_id, client_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))
}

/// Stores `after` with a new version and writes its event, unless nothing changed.
#[allow(clippy::too_many_arguments)]
pub async fn save(
    tx: &mut PgConnection,
    before: &Client,
    mut after: Client,
    kind: EventType,
    caller: &Caller,
    trace: &Trace,
    tags: Option<Vec<shared_model::ids::TagId>>,
) -> Result<Client, ApiError> {
    let now = db::now();
    if let Some(tags) = &tags {
        store::set_tags(tx, after.customer_id, after.id, tags, caller.sub(), now).await?;
        let reread = store::find(tx, after.customer_id, after.id, false)
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("client vanished")))?;
        after.tags = reread.tags;
    }
    let changed = changed_fields(before, &after)?;
    if changed.is_empty() {
        return Ok(before.clone());
    }
    after.version = before.version + 1;
    after.updated_at = now;
    after.updated_by = caller.sub().to_string();
    store::update(tx, &after).await?;
    write_event(tx, kind, &after, Some(changed), caller.sub(), trace).await?;
    Ok(after)
}

/// Writes a `client.*` event.
pub async fn write_event(
    conn: &mut PgConnection,
    kind: EventType,
    client: &Client,
    changed: Option<Vec<String>>,
    actor: &str,
    trace: &Trace,
) -> Result<(), ApiError> {
    let data = ClientEventData {
        client: client.clone(),
        changed_fields: changed,
    };
    emit(
        conn,
        kind,
        client.id,
        client.customer_id,
        actor,
        trace,
        &data,
    )
    .await
}
