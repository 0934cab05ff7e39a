//! The search index: one [`Document`] per customer, client and contact, behind the
//! [`SearchBackend`] trait so that a dedicated engine can be added without touching the API or
//! the projections.
//!
//! Every write takes the consumer's database transaction: the index changes in the same commit
//! as the inbox row of the event that changed it, so a redelivered event finds it applied. The
//! PostgreSQL backend ([`postgres::Postgres`]) writes the index itself there; a backend for an
//! external engine would record the change in a table of that transaction and push it after the
//! commit (an outbox of its own), never call the engine inside it.

pub mod filter;
pub mod highlight;
mod hits;
pub mod postgres;
pub mod query;
mod search;
pub mod sql;

use futures_util::future::BoxFuture;
use shared_model::error::ApiError;
use shared_model::ids::{ClientId, CustomerId, GroupId};
use sqlx::PgConnection;
use time::OffsetDateTime;

/// What a document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    Customer,
    Client,
    Contact,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Customer => "customer",
            Kind::Client => "client",
            Kind::Contact => "contact",
        }
    }
}

/// One searchable entity: the fields a search or a filter needs, and its owner.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub kind: Kind,
    pub id: uuid::Uuid,
    /// The customer it is (a customer) or belongs to.
    pub customer_id: CustomerId,
    /// The client it is (a client) or belongs to (a client's contact).
    pub client_id: Option<ClientId>,
    /// A customer's parent tenant, whose search also reaches it.
    pub parent_id: Option<CustomerId>,
    /// The entity's version: a write with an older one changes nothing.
    pub version: i64,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub domain: Option<String>,
    pub external_id: Option<String>,
    /// Other exact-match identifiers (a contact's mobile number, a tenant key).
    pub codes: Vec<String>,
    /// `business | consumer` (customers), `person | company` (clients), the contact's type.
    pub doc_type: Option<String>,
    /// The customer's or client's status (`active`, `deactivated`; `lead`, `active`, ...).
    pub status: Option<String>,
    /// False for a deactivated customer, a disabled client, an inactive contact.
    pub enabled: bool,
    pub tags: Vec<String>,
    pub assignee: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub industry_sector: Option<String>,
    pub industry_group: Option<String>,
    pub size_range: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Where a client is, from its address book.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub city: Option<String>,
    pub country: Option<String>,
}

/// Which document a deletion removes, at the deleting event's version.
#[derive(Clone, Copy, Debug)]
pub struct Removal {
    pub kind: Kind,
    pub id: uuid::Uuid,
    pub customer_id: CustomerId,
    pub client_id: Option<ClientId>,
    pub version: i64,
}

/// A search engine: its writes, and its search.
pub trait SearchBackend: Send + Sync + 'static {
    /// The settings the transaction a search runs in begins with
    /// (`shared_model::db::begin_with`).
    const SEARCH_SETTINGS: &'static [shared_model::db::Setting];

    /// The documents matching `query`, best first (the rules: [`query`]), within what the
    /// transaction's row-level security lets it see; the transaction was begun with
    /// [`SearchBackend::SEARCH_SETTINGS`].
    fn search<'c>(
        conn: &'c mut PgConnection,
        query: &'c query::Query,
    ) -> BoxFuture<'c, Result<query::Results, ApiError>>;

    /// Writes the document if its version is newer than the indexed one (or there is none) and
    /// its owner is not deleted; true if it did.
    fn upsert<'c>(
        conn: &'c mut PgConnection,
        doc: &'c Document,
    ) -> BoxFuture<'c, Result<bool, ApiError>>;

    /// Removes the document, keeping a tombstone at `version` so that a stale event cannot
    /// bring it back; true if the version was newer.
    fn delete<'c>(
        conn: &'c mut PgConnection,
        removal: Removal,
    ) -> BoxFuture<'c, Result<bool, ApiError>>;

    /// Removes every document belonging to the customer (with `client`: to that client), not
    /// the owner's own; returns how many.
    fn delete_owned<'c>(
        conn: &'c mut PgConnection,
        customer: CustomerId,
        client: Option<ClientId>,
    ) -> BoxFuture<'c, Result<u64, ApiError>>;

    /// Sets the client's city and country; true if that changed the document.
    fn set_place<'c>(
        conn: &'c mut PgConnection,
        client: ClientId,
        place: Place,
    ) -> BoxFuture<'c, Result<bool, ApiError>>;

    /// Adds the client to the group's members (`member`) or removes it; true if that changed
    /// the document.
    fn set_group<'c>(
        conn: &'c mut PgConnection,
        client: ClientId,
        group: GroupId,
        member: bool,
    ) -> BoxFuture<'c, Result<bool, ApiError>>;
}
