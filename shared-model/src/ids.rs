//! Typed UUIDv7 identifiers.
//!
//! Every entity id is a newtype over a UUID so that a `ClientId` can never be passed where a
//! `CustomerId` is expected. Ids are generated in the application (PostgreSQL 15 has no
//! `uuidv7()`), are time-ordered, and serialize as plain UUID strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_type!(
    /// A tenant account.
    CustomerId
);
id_type!(
    /// An account a customer serves.
    ClientId
);
id_type!(
    /// A data partition of a customer.
    PartitionId
);
id_type!(
    /// A group of data partitions.
    PartitionGroupId
);
id_type!(
    /// An API key.
    ApiKeyId
);
id_type!(
    /// A CloudEvent.
    EventId
);
id_type!(
    /// A postal address in a client's address book.
    AddressId
);
id_type!(
    /// A client group (shopper group).
    GroupId
);
id_type!(
    /// A tag definition.
    TagId
);
id_type!(
    /// A tenant role.
    RoleId
);
id_type!(
    /// A location (site) of a customer or of one of its clients.
    LocationId
);
id_type!(
    /// A department of a customer or of one of its clients.
    DepartmentId
);
id_type!(
    /// A contact person of a customer or of one of its clients.
    ContactId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_v7() {
        let a = CustomerId::new();
        let b = CustomerId::new();
        assert_eq!(a.0.get_version_num(), 7);
        assert!(a < b);
    }

    #[test]
    fn ids_round_trip_as_strings() {
        let a = ClientId::new();
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{a}\""));
        let back: ClientId = serde_json::from_str(&json).unwrap();
        assert_eq!(a, back);
        assert_eq!(a.to_string().parse::<ClientId>().unwrap(), a);
        assert!("not-a-uuid".parse::<ClientId>().is_err());
    }
}
