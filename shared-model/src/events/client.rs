//! Client events and their payloads.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::EventType;
use super::customer::{Address, BusinessProfile, LogoReceipt};
use crate::ids::{AddressId, ClientId, CustomerId, GroupId};
use crate::model::{
    ClientSource, ClientStatus, ClientType, CountryCode, CurrencyCode, Email, Locale, Phone,
};

const SCHEMA: &str = "urn:customer-platform:schema:client:v1";
event_types!(SCHEMA;
    CREATED = "client.created",
    UPDATED = "client.updated",
    DISABLED = "client.disabled",
    ENABLED = "client.enabled",
    DELETED = "client.deleted",
);
const MEMBERSHIP_SCHEMA: &str = "urn:customer-platform:schema:client-group-membership:v1";
event_types!(MEMBERSHIP_SCHEMA;
    GROUP_ASSIGNED = "client.group_assigned",
    GROUP_REMOVED = "client.group_removed",
);
/// v2: `client_address.updated` carries `changedFields`.
const ADDRESS_SCHEMA: &str = "urn:customer-platform:schema:client-address:v2";
event_types!(ADDRESS_SCHEMA;
    ADDRESS_CREATED = "client_address.created",
    ADDRESS_UPDATED = "client_address.updated",
    ADDRESS_DELETED = "client_address.deleted",
);

/// What a client has bought, in one currency (set by its first purchase).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revenue {
    pub currency: CurrencyCode,
    /// Sum of all purchases in minor units (cents for EUR).
    pub total_minor: i64,
    pub purchase_count: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub first_purchase_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_purchase_at: OffsetDateTime,
}

/// An account a customer serves: the API representation and the data of every `client.*`
/// event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    pub id: ClientId,
    pub customer_id: CustomerId,
    #[serde(rename = "type")]
    pub client_type: ClientType,
    /// The organisation's name, or "first last" for an individual.
    pub name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub locale: Option<Locale>,
    pub business_profile: Option<BusinessProfile>,
    /// An id in the customer's own systems; unique per customer.
    pub external_id: Option<String>,
    pub status: ClientStatus,
    pub source: ClientSource,
    /// The user looking after the client.
    pub assignee: Option<String>,
    /// Names of the tags applied, sorted.
    pub tags: Vec<String>,
    pub revenue: Option<Revenue>,
    pub disabled: bool,
    /// The customer account provisioned for this client, if any.
    pub provisioned_customer_id: Option<CustomerId>,
    pub logo: Option<LogoReceipt>,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

/// `data` of `client.*`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientEventData {
    #[serde(flatten)]
    pub client: Client,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_fields: Option<Vec<String>>,
}

/// A client in a `snapshot.page` (entity `client`): the client and the groups it is a member
/// of, in group id order (the state that `client.group_assigned|group_removed` describe one
/// change at a time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientSnapshot {
    #[serde(flatten)]
    pub client: Client,
    pub groups: Vec<crate::ids::GroupId>,
}

/// `data` of `client.group_assigned|group_removed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub customer_id: CustomerId,
    pub client_id: ClientId,
    pub group_id: GroupId,
    #[serde(with = "time::serde::rfc3339")]
    pub assigned_at: OffsetDateTime,
    pub assigned_by: String,
}

/// An entry of a client's address book; also the data of `client_address.*`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientAddress {
    pub id: AddressId,
    pub customer_id: CustomerId,
    pub client_id: ClientId,
    /// A name for the address ("Warehouse"), at most 100 characters.
    pub label: Option<String>,
    pub lines: Vec<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<CountryCode>,
    pub default_shipping: bool,
    pub default_billing: bool,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl ClientAddress {
    /// The postal part, as customers carry it.
    pub fn postal(&self) -> Address {
        Address {
            lines: self.lines.clone(),
            city: self.city.clone(),
            region: self.region.clone(),
            postal_code: self.postal_code.clone(),
            country: self.country.clone(),
        }
    }
}
