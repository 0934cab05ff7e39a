//! The event catalog: the payloads of each event type every service publishes, in the
//! CloudEvents envelope of [`crate::envelope`]. A payload change is a new type version (a new
//! `dataschema`), never a silent change of an existing one.

pub use crate::envelope::{CLOUDEVENTS_JSON, CloudEvent, EventType};

/// `pub const` event types of one schema.
macro_rules! event_types {
    ($schema:expr; $($konst:ident = $name:literal),+ $(,)?) => {
        $(pub const $konst: EventType = EventType { name: $name, schema: $schema };)+
    };
}

pub mod client;
pub mod customer;
pub mod org;
pub mod partition;
pub mod search;
pub mod snapshot;
pub mod tenant;

/// The data of an `*.updated` event: the entity's full state after the change and the names of
/// the fields that changed (`changedFields`; the bookkeeping fields `version`, `updatedAt` and
/// `updatedBy` are never named).
#[derive(Debug, serde::Serialize)]
pub struct Updated<'a, T: serde::Serialize> {
    #[serde(flatten)]
    pub entity: &'a T,
    #[serde(rename = "changedFields")]
    pub changed_fields: Vec<String>,
}

impl<'a, T: serde::Serialize> Updated<'a, T> {
    /// The update from `before` to `after`.
    pub fn new(before: &T, after: &'a T) -> Result<Self, serde_json::Error> {
        Ok(Self {
            entity: after,
            changed_fields: changed_fields(before, after)?,
        })
    }

    /// An update whose changed fields are known (a change made by the database, such as a
    /// reference cleared when what it pointed to was deleted).
    pub fn of(after: &'a T, fields: &[&str]) -> Self {
        Self {
            entity: after,
            changed_fields: fields.iter().map(|f| f.to_string()).collect(),
        }
    }
}

/// Top-level JSON fields whose values differ between `before` and `after`, ignoring the
/// bookkeeping fields.
pub fn changed_fields<T: serde::Serialize>(
    before: &T,
    after: &T,
) -> Result<Vec<String>, serde_json::Error> {
    let (serde_json::Value::Object(a), serde_json::Value::Object(b)) =
        (serde_json::to_value(before)?, serde_json::to_value(after)?)
    else {
        return Ok(Vec::new());
    };
    Ok(b.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "version" | "updatedAt" | "updatedBy"))
        .filter(|(k, v)| a.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_names_the_fields_that_changed_and_not_the_bookkeeping() {
        let before = serde_json::json!({"id": 1, "name": "a", "color": "#000000", "version": 1});
        let after = serde_json::json!({"id": 1, "name": "b", "color": "#000000", "version": 2});
        let data = serde_json::to_value(Updated::new(&before, &after).unwrap()).unwrap();
        assert_eq!(data["name"], "b");
        assert_eq!(data["version"], 2);
        assert_eq!(data["changedFields"], serde_json::json!(["name"]));
    }
}
