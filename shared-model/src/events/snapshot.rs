//! Snapshot events: how a service that keeps a projection (search-sync's index) asks the
//! owning services for the whole state of their entities, and how they answer
//! ([`crate::snapshot`]).
//!
//! `snapshot.requested` names the entities wanted and, optionally, the one tenant. Each service
//! that owns some of them answers with `snapshot.started` (how many of each it will send), then
//! `snapshot.page`s of entities in the payload of their own events (a customer as in
//! `customer.created`), and `snapshot.completed` (how many it sent). An answer's events carry
//! the request's tenant as their customer (none for the whole platform) and the snapshot id as
//! their subject, so a consumer applies one answer's events in order.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::EventType;
use crate::ids::CustomerId;

event_types!("urn:customer-platform:schema:snapshot:v1";
    SNAPSHOT_REQUESTED = "snapshot.requested",
    SNAPSHOT_STARTED = "snapshot.started",
    SNAPSHOT_PAGE = "snapshot.page",
    SNAPSHOT_COMPLETED = "snapshot.completed",
);

/// `data` of `snapshot.requested`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRequest {
    pub snapshot_id: uuid::Uuid,
    /// The one tenant whose entities are wanted (its own and its clients'); null for all.
    pub customer_id: Option<CustomerId>,
    /// The entities wanted, by name (`customer`, `client`, `client_address`, `contact`).
    pub entities: Vec<String>,
}

/// How many entities of one kind an answer holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityCount {
    pub entity: String,
    pub count: i64,
}

/// `data` of `snapshot.started` (`counts`: how many the answer will hold, counted as it
/// started; entities created or deleted meanwhile change what is sent) and of
/// `snapshot.completed` (`counts`: how many it sent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotProgress {
    pub snapshot_id: uuid::Uuid,
    /// The answering service.
    pub source: String,
    pub customer_id: Option<CustomerId>,
    pub counts: Vec<EntityCount>,
}

/// `data` of `snapshot.page`: entities of one kind, in the order of their keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotPage {
    pub snapshot_id: uuid::Uuid,
    pub source: String,
    pub customer_id: Option<CustomerId>,
    pub entity: String,
    /// The page's number within its entity's pages, from 1.
    pub sequence: i64,
    /// Each entity as the data of its own `*.created` event.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<serde_json::Value>,
    /// True on the entity's last page.
    pub last: bool,
}
