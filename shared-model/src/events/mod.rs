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
pub mod partition;
pub mod tenant;
