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
    use crate::ids::CustomerId;
    use crate::model::{
        BusinessClassification, CountryCode, CustomerStatus, CustomerType, Email, IndustryGroup,
        IndustrySector, Locale, Phone, SizeRange, SocialPlatform, WebUrl,
    };

    const SCHEMA: &str = "urn:customer-platform:schema:customer:v1";
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
