//! Changing a client: locking it, storing a new version with its event.

use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::ApiError;
use shared_model::events::EventType;
use shared_model::events::Updated;
use shared_model::events::client::Client;
use shared_model::http::Trace;
use shared_model::ids::{ClientId, CustomerId};
use shared_model::outbox::Cause;
use sqlx::PgConnection;

use super::store;
use crate::common::{changed_fields, ensure_writable};

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
    let data = Updated {
        entity: &after,
        changed_fields: changed,
    };
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(tx, kind, after.id, after.customer_id, &data)
        .await?;
    Ok(after)
}
