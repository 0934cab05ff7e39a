//! Customer events and their payload.

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
    #[schema(value_type = Vec<crate::schema::AddressLine>, min_items = 1, max_items = 4)]
    pub lines: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::schema::Text100>)]
    pub city: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::schema::Text100>)]
    pub region: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::schema::Text20>)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub country: Option<CountryCode>,
}

impl Address {
    /// Checks the street lines, city, region and postal code of the address at `at` (the
    /// field path in 422s, e.g. `address`).
    pub fn validate(&self, v: &mut crate::error::Validator, at: &str) {
        if self.lines.is_empty() || self.lines.len() > 4 {
            v.add(format!("{at}.lines"), "must have 1 to 4 lines");
        }
        for (i, line) in self.lines.iter().enumerate() {
            v.text(&format!("{at}.lines[{i}]"), line, 1, 200);
        }
        for (field, value, max) in [
            ("city", &self.city, 100),
            ("region", &self.region, 100),
            ("postalCode", &self.postal_code, 20),
        ] {
            if let Some(value) = value {
                v.text(&format!("{at}.{field}"), value, 1, max);
            }
        }
    }
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
    /// At most 6, no platform twice.
    #[serde(default)]
    #[schema(max_items = 6)]
    pub social_profiles: Vec<SocialProfile>,
    /// An id in an external system; unique across the platform.
    #[serde(default)]
    #[schema(value_type = Option<crate::schema::Text128>)]
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
