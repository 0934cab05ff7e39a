//! The event catalog: the CloudEvents 1.0 envelope every service publishes and the payloads
//! of each event type. A payload change is a new type version (a new `dataschema`), never a
//! silent change of an existing one.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{CustomerId, EventId};

/// A CloudEvents 1.0 event in structured JSON mode (`application/cloudevents+json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CloudEvent<T = serde_json::Value> {
    pub specversion: String,
    pub id: EventId,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub datacontenttype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
    /// Extension: the tenant the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customerid: Option<CustomerId>,
    /// Extension: the token `sub` that caused the change, or `system`.
    pub actor: String,
    /// Extension: W3C trace context of the request that caused the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub data: T,
}

pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// An event type: its routing key (`type`) and the schema of its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventType {
    pub name: &'static str,
    pub schema: &'static str,
}

impl CloudEvent {
    /// A new event; `data` is the entity's full state after the change.
    pub fn new(
        source: &str,
        kind: EventType,
        subject: impl ToString,
        customerid: Option<CustomerId>,
        actor: &str,
        traceparent: Option<String>,
        data: &impl Serialize,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            specversion: "1.0".into(),
            id: EventId::new(),
            source: source.to_string(),
            event_type: kind.name.to_string(),
            subject: Some(subject.to_string()),
            time: OffsetDateTime::now_utc(),
            datacontenttype: "application/json".into(),
            dataschema: Some(kind.schema.to_string()),
            customerid,
            actor: actor.to_string(),
            traceparent,
            data: serde_json::to_value(data)?,
        })
    }
}

/// Customer events and their payload.
pub mod customer {
    use serde::{Deserialize, Serialize};
    use time::OffsetDateTime;
    use utoipa::ToSchema;

    use super::EventType;
    use crate::ids::{ClientId, CustomerId};
    use crate::model::{
        BusinessClassification, CountryCode, CustomerStatus, CustomerType, Email, IndustryGroup,
        IndustrySector, Locale, Phone, SizeRange, SocialPlatform, WebUrl,
    };

    /// v2 added the provisioning links and the deactivation window.
    const SCHEMA: &str = "urn:customer-platform:schema:customer:v2";
    pub const CREATED: EventType = EventType {
        name: "customer.created",
        schema: SCHEMA,
    };
    pub const UPDATED: EventType = EventType {
        name: "customer.updated",
        schema: SCHEMA,
    };
    pub const DELETED: EventType = EventType {
        name: "customer.deleted",
        schema: SCHEMA,
    };
    pub const DEACTIVATED: EventType = EventType {
        name: "customer.deactivated",
        schema: SCHEMA,
    };
    pub const REACTIVATED: EventType = EventType {
        name: "customer.reactivated",
        schema: SCHEMA,
    };
    /// A customer's self-registration settings changed (payload: the settings, in customer-api).
    pub const REGISTRATION_CHANGED: EventType = EventType {
        name: "customer.registration_changed",
        schema: "urn:customer-platform:schema:registration-settings:v1",
    };
    /// The claims a customer's users get changed (payload: the claims document, in
    /// customer-api), for the auth service.
    pub const CLAIMS_CHANGED: EventType = EventType {
        name: "customer.claims_changed",
        schema: "urn:customer-platform:schema:customer-claims:v1",
    };

    /// A postal address.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Address {
        /// Street lines, 1 to 4, each at most 200 characters.
        pub lines: Vec<String>,
        #[serde(default)]
        pub city: Option<String>,
        #[serde(default)]
        pub region: Option<String>,
        #[serde(default)]
        pub postal_code: Option<String>,
        #[serde(default)]
        pub country: Option<CountryCode>,
    }

    /// A link to a social network profile.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct SocialProfile {
        pub platform: SocialPlatform,
        pub url: WebUrl,
    }

    /// Facts about a business customer.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct BusinessProfile {
        #[serde(default)]
        pub industry_sector: Option<IndustrySector>,
        /// Must belong to `industrySector` when both are given.
        #[serde(default)]
        pub industry_group: Option<IndustryGroup>,
        #[serde(default)]
        pub classification: Option<BusinessClassification>,
        #[serde(default)]
        pub size_range: Option<SizeRange>,
        #[serde(default)]
        pub social_profiles: Vec<SocialProfile>,
        /// An id in an external system; unique across the platform.
        #[serde(default)]
        pub external_id: Option<String>,
    }

    /// The receipt of an uploaded logo.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct LogoReceipt {
        /// Where the image is served (`/v1/logos/{sha256}`, immutable, cacheable).
        pub url: String,
        pub content_type: String,
        pub size: i64,
        pub width: u32,
        pub height: u32,
        pub sha256: String,
        #[serde(with = "time::serde::rfc3339")]
        pub uploaded_at: OffsetDateTime,
    }

    /// A customer (tenant account): the API representation and the data of every
    /// `customer.*` event.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Customer {
        pub id: CustomerId,
        pub name: String,
        #[serde(rename = "type")]
        pub customer_type: CustomerType,
        pub email: Option<Email>,
        pub phone: Option<Phone>,
        pub website: Option<WebUrl>,
        pub address: Option<Address>,
        pub locale: Option<Locale>,
        pub business_profile: Option<BusinessProfile>,
        /// Session lifetime for the tenant's users; null means the platform default.
        pub session_expiration_seconds: Option<i32>,
        /// Links the customer to its authentication tenant; immutable.
        pub bootstrap_tenant_key: String,
        pub products: Vec<String>,
        pub status: CustomerStatus,
        /// The customer whose client this account was provisioned for.
        pub parent_customer_id: Option<CustomerId>,
        /// The client of `parentCustomerId` this account was provisioned for.
        pub parent_client_id: Option<ClientId>,
        /// When a deactivated customer was deactivated.
        #[serde(with = "time::serde::rfc3339::option")]
        #[schema(value_type = Option<String>, format = DateTime)]
        pub deactivated_at: Option<OffsetDateTime>,
        /// A deactivated customer can be reactivated until then; it is purged after.
        #[serde(with = "time::serde::rfc3339::option")]
        #[schema(value_type = Option<String>, format = DateTime)]
        pub window_ends_at: Option<OffsetDateTime>,
        pub logo: Option<LogoReceipt>,
        pub version: i64,
        #[serde(with = "time::serde::rfc3339")]
        pub created_at: OffsetDateTime,
        pub created_by: String,
        #[serde(with = "time::serde::rfc3339")]
        pub updated_at: OffsetDateTime,
        pub updated_by: String,
    }

    /// `data` of `customer.created|updated|deleted`.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CustomerEventData {
        #[serde(flatten)]
        pub customer: Customer,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub changed_fields: Option<Vec<String>>,
    }
}

macro_rules! event_types {
    ($schema:expr; $($konst:ident = $name:literal),+ $(,)?) => {
        $(pub const $konst: EventType = EventType { name: $name, schema: $schema };)+
    };
}

/// Client events and their payloads.
pub mod client {
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
    const ADDRESS_SCHEMA: &str = "urn:customer-platform:schema:client-address:v1";
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
}

/// Client group, tag and role events and their payloads.
pub mod tenant {
    use serde::{Deserialize, Serialize};
    use time::OffsetDateTime;
    use utoipa::ToSchema;

    use super::EventType;
    use crate::ids::{CustomerId, GroupId, RoleId, TagId};

    event_types!("urn:customer-platform:schema:client-group:v1";
        GROUP_CREATED = "client_group.created",
        GROUP_UPDATED = "client_group.updated",
        GROUP_DELETED = "client_group.deleted",
    );
    event_types!("urn:customer-platform:schema:tag:v1";
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
}

/// Partition and API key events and their payloads (partition-keys).
pub mod partition {
    use serde::{Deserialize, Serialize};
    use time::OffsetDateTime;
    use utoipa::ToSchema;

    use super::EventType;
    use crate::ids::{ApiKeyId, CustomerId, PartitionGroupId, PartitionId};

    event_types!("urn:customer-platform:schema:partition:v1";
        CREATED = "partition.created",
        UPDATED = "partition.updated",
        DELETED = "partition.deleted",
    );
    event_types!("urn:customer-platform:schema:partition-group:v1";
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_the_cloudevents_attributes() {
        const T: EventType = EventType {
            name: "thing.created",
            schema: "urn:x:v1",
        };
        let c = CustomerId::new();
        let e = CloudEvent::new(
            "/svc",
            T,
            "42",
            Some(c),
            "user-1",
            None,
            &serde_json::json!({"a": 1}),
        )
        .unwrap();
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "thing.created");
        assert_eq!(v["source"], "/svc");
        assert_eq!(v["subject"], "42");
        assert_eq!(v["customerid"], c.to_string());
        assert_eq!(v["actor"], "user-1");
        assert_eq!(v["data"]["a"], 1);
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(e.id.0.get_version_num(), 7);
        let back: CloudEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
