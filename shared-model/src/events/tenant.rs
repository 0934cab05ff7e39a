//! Client group, tag and role events and their payloads.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::EventType;
use crate::ids::{CustomerId, GroupId, RoleId, TagId};

// v2: `*.updated` carries `changedFields`.
event_types!("urn:customer-platform:schema:client-group:v2";
    GROUP_CREATED = "client_group.created",
    GROUP_UPDATED = "client_group.updated",
    GROUP_DELETED = "client_group.deleted",
);
// v2: `*.updated` carries `changedFields`.
event_types!("urn:customer-platform:schema:tag:v2";
    TAG_CREATED = "tag.created",
    TAG_UPDATED = "tag.updated",
    TAG_DELETED = "tag.deleted",
);
event_types!("urn:customer-platform:schema:customer-roles:v1";
    ROLES_CHANGED = "customer.roles_changed",
);

/// A client group (shopper group): the API representation and the data of
/// `client_group.*`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: GroupId,
    pub customer_id: CustomerId,
    pub name: String,
    pub description: Option<String>,
    /// The price list (of a pricing service) the group's members buy from.
    pub price_list_id: Option<String>,
    /// Higher wins when a client is in several groups.
    pub priority: i32,
    pub member_count: i64,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A tag definition: the API representation and the data of `tag.*`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub id: TagId,
    pub customer_id: CustomerId,
    pub name: String,
    /// `#rrggbb`; derived from the name when not given.
    pub color: String,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A tenant role: a named permission set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub id: RoleId,
    pub customer_id: CustomerId,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    /// TenantAdmin, ClientEditor and ClientViewer: created with the customer, never deleted.
    pub is_default: bool,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `data` of `customer.roles_changed`: every role of the customer after the change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolesChanged {
    pub customer_id: CustomerId,
    pub roles: Vec<Role>,
}
