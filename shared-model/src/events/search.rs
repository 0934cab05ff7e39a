//! Search key events and their payload (search-sync): an audit trail of the keys browser front
//! ends search with.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::EventType;
use crate::ids::CustomerId;

event_types!("urn:customer-platform:schema:search-key:v1";
    SEARCH_KEY_CREATED = "search_key.created",
    SEARCH_KEY_REVOKED = "search_key.revoked",
);

/// `data` of `search_key.*`: the key as `GET /v1/search-keys/{keyId}` shows it, never its
/// secret nor its hash. `search_key.revoked` is written once per key, by a revocation over the
/// API or by its customer's deletion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchKeyEvent {
    pub id: uuid::Uuid,
    /// `allCustomers`, `businessCustomers`, `consumerCustomers`, `tenantCustomers`, `clients`.
    pub kind: String,
    /// The customer a tenant kind's key belongs to; null for the platform-wide kinds.
    pub customer_id: Option<CustomerId>,
    pub name: String,
    /// The secret's public start.
    pub prefix: String,
    /// The key's narrowing filter, as it was given.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    pub allowed_origins: Vec<String>,
    pub rate_per_minute: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
}
