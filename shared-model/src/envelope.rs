//! The CloudEvents 1.0 envelope every service publishes and consumes, whatever its payload
//! (the payloads are the catalog's, in [`crate::events`]).

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
