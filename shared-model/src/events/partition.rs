//! Partition and API key events and their payloads (partition-keys).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::EventType;
use crate::ids::{ApiKeyId, CustomerId, PartitionGroupId, PartitionId};

// v2: `*.updated` carries `changedFields`.
event_types!("urn:customer-platform:schema:partition:v2";
    CREATED = "partition.created",
    UPDATED = "partition.updated",
    DELETED = "partition.deleted",
);
// v2: `*.updated` carries `changedFields`.
event_types!("urn:customer-platform:schema:partition-group:v2";
    GROUP_CREATED = "partition_group.created",
    GROUP_UPDATED = "partition_group.updated",
    GROUP_DELETED = "partition_group.deleted",
);
event_types!("urn:customer-platform:schema:api-key:v1";
    KEY_CREATED = "apikey.created",
    KEY_ROTATED = "apikey.rotated",
    KEY_REVOKED = "apikey.revoked",
    KEY_EXPIRED = "apikey.expired",
);

/// A data partition: the API representation and the data of `partition.*`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Partition {
    pub id: PartitionId,
    pub customer_id: CustomerId,
    pub name: String,
    /// `dev`, `qa`, `staging`, `prod`, `demo`, or a custom label (`a-z 0-9`, 1 to 16).
    pub environment: String,
    pub description: Option<String>,
    /// `active` or `disabled`; keys of a disabled partition do not verify.
    pub status: String,
    /// The partition group it belongs to, if any.
    pub group_id: Option<PartitionGroupId>,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A group of partitions: the API representation and the data of `partition_group.*`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionGroup {
    pub id: PartitionGroupId,
    pub customer_id: CustomerId,
    pub name: String,
    pub description: Option<String>,
    /// The enclosing group; groups form a tree (no cycles).
    pub parent_group_id: Option<PartitionGroupId>,
    pub partition_count: i64,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// An API key as it may be shown: never its secret or hash. Also the data of `apikey.*`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub customer_id: CustomerId,
    pub partition_id: PartitionId,
    pub name: String,
    /// `admin` (read and write) or `custom` (the listed scopes).
    pub kind: String,
    pub scopes: Vec<String>,
    /// The public start of the key, for recognising it (`cpk_prod_4fQ2`...).
    pub prefix: String,
    /// An id in an external system the key belongs to.
    pub foreign_key: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<ApiKeyId>,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
}
