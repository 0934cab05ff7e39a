//! Location, department and contact events and their payloads (org-structure).
//!
//! Each entity belongs to a customer (`clientId` null) or to one of its clients. The payload of
//! `*.created` and `*.deleted` is the entity; of `*.updated`, the entity after the change with
//! `changedFields` ([`super::Updated`]).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::EventType;
use super::customer::Address;
use crate::ids::{ClientId, ContactId, CustomerId, DepartmentId, LocationId};
use crate::model::{DerivedFrom, Email, Locale, LocationKind, Phone, WebUrl};

event_types!("urn:customer-platform:schema:location:v1";
    LOCATION_CREATED = "location.created",
    LOCATION_UPDATED = "location.updated",
    LOCATION_DELETED = "location.deleted",
);
event_types!("urn:customer-platform:schema:department:v1";
    DEPARTMENT_CREATED = "department.created",
    DEPARTMENT_UPDATED = "department.updated",
    DEPARTMENT_DELETED = "department.deleted",
);
event_types!("urn:customer-platform:schema:contact:v1";
    CONTACT_CREATED = "contact.created",
    CONTACT_UPDATED = "contact.updated",
    CONTACT_DELETED = "contact.deleted",
);

/// A location (site): the API representation and the data of `location.*`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub id: LocationId,
    pub customer_id: CustomerId,
    /// The client it belongs to; null for the customer's own.
    pub client_id: Option<ClientId>,
    pub name: String,
    pub secondary_name: Option<String>,
    pub kind: LocationKind,
    /// Unique per owner, `[A-Za-z0-9_-]{1,64}`.
    pub code: Option<String>,
    pub address: Option<Address>,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub website: Option<WebUrl>,
    /// An IANA time zone name, e.g. `Europe/Berlin`.
    pub time_zone: Option<String>,
    pub notes: Option<String>,
    pub active: bool,
    /// Set on an HQ made from the owner's address; it follows the owner's address until its own
    /// address or kind is changed through the API.
    pub derived_from: Option<DerivedFrom>,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A department: the API representation and the data of `department.*`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Department {
    pub id: DepartmentId,
    pub customer_id: CustomerId,
    pub client_id: Option<ClientId>,
    pub name: String,
    /// Unique per owner, `[A-Za-z0-9_-]{1,64}`, for external systems.
    pub code: Option<String>,
    /// The enclosing department (of the same owner); departments form a tree of at most 5
    /// levels.
    pub parent_id: Option<DepartmentId>,
    /// A location of the same owner.
    pub location_id: Option<LocationId>,
    pub active: bool,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A contact person: the API representation and the data of `contact.*`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: ContactId,
    pub customer_id: CustomerId,
    pub client_id: Option<ClientId>,
    /// `account_owner`, `billing`, `technical`, or a custom label (`[a-z][a-z0-9_]{0,31}`).
    #[serde(rename = "type")]
    pub contact_type: String,
    /// At most one primary contact per owner and type.
    pub primary: bool,
    pub salutation: Option<String>,
    pub first_name: Option<String>,
    pub last_name: String,
    pub job_title: Option<String>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub mobile: Option<Phone>,
    pub location_id: Option<LocationId>,
    pub department_id: Option<DepartmentId>,
    pub locale: Option<Locale>,
    pub active: bool,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

event_types!("urn:customer-platform:schema:org-settings:v1";
    SETTINGS_UPDATED = "org_settings.updated",
);

/// A customer's org-structure settings: the API representation and the data of
/// `org_settings.updated`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgSettings {
    pub customer_id: CustomerId,
    /// A client's first address (from `client_address.created`) makes the client's HQ, which
    /// then follows that address while it is still derived. Default false.
    pub client_hq_from_address: bool,
    /// 0 until the settings are first changed.
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}
