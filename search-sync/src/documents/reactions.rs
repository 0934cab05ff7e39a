//! The index kept from events, under the kit's projection contract (version-guarded,
//! tombstones): customer-api's `customer.*` and `client.*` (with the clients' group
//! memberships), org-structure's `contact.*`.
//!
//! - A customer's, client's or contact's event writes its document if it is newer than the
//!   indexed one; a deleted owner's entities are not written again.
//! - `customer.deleted` leaves the customer's tombstone, removes every document of its
//!   clients and contacts and revokes its search keys; `client.deleted` the client's tombstone and its contacts.
//! - `client.group_assigned|group_removed` add the group to the client's document or take it
//!   away; `client_address.*` set its city and country ([`super::addresses`]).

use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use shared_model::bus::{Handler, Subscription};
use shared_model::db::{self, Scope};
use shared_model::error::ApiError;
use shared_model::events::CloudEvent;
use shared_model::events::client::{self, Client, Membership};
use shared_model::events::customer::{self, Customer};
use shared_model::events::org::{self, Contact};
use shared_model::events::search::SEARCH_KEY_REVOKED;
use shared_model::ids::{ClientId, CustomerId};
use shared_model::outbox::{self, Cause};
use shared_model::projection::{self, Change, Projection};
use sqlx::PgConnection;

use super::addresses::{self, ClientAddresses};
use crate::index::postgres::Postgres;
use crate::index::{Document, Kind, Removal, SearchBackend};

/// An entity with a document: how its events name it and what its deletion takes with it.
pub trait Indexed: serde::de::DeserializeOwned + Send + Sync + 'static {
    /// The projection's name, in logs and metrics.
    const NAME: &'static str;
    fn document(&self) -> Document;
    /// Its deletion: the kind, id, owners and version of the tombstone.
    fn removal(&self) -> Removal;
    /// Whose documents go with it when it is deleted: the customer's (`None`) or the client's.
    fn owns(&self) -> Option<(CustomerId, Option<ClientId>)> {
        None
    }

    /// What the document takes from search-sync's own tables (a client's place), before it is
    /// written.
    fn enrich<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        doc: &'c mut Document,
    ) -> BoxFuture<'c, Result<(), ApiError>> {
        let _ = (conn, doc);
        async { Ok(()) }.boxed()
    }
}

impl Indexed for Customer {
    const NAME: &'static str = "customer_documents";

    fn document(&self) -> Document {
        Document::from(self)
    }

    fn removal(&self) -> Removal {
        Removal {
            kind: Kind::Customer,
            id: self.id.as_uuid(),
            customer_id: self.id,
            client_id: None,
            version: self.version,
        }
    }

    fn owns(&self) -> Option<(CustomerId, Option<ClientId>)> {
        Some((self.id, None))
    }
}

impl Indexed for Client {
    const NAME: &'static str = "client_documents";

    fn document(&self) -> Document {
        Document::from(self)
    }

    fn removal(&self) -> Removal {
        Removal {
            kind: Kind::Client,
            id: self.id.as_uuid(),
            customer_id: self.customer_id,
            client_id: Some(self.id),
            version: self.version,
        }
    }

    fn owns(&self) -> Option<(CustomerId, Option<ClientId>)> {
        Some((self.customer_id, Some(self.id)))
    }

    fn enrich<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        doc: &'c mut Document,
    ) -> BoxFuture<'c, Result<(), ApiError>> {
        async move {
            let place = addresses::place_of(conn, self.customer_id, self.id).await?;
            doc.city = place.city;
            doc.country = place.country;
            Ok(())
        }
        .boxed()
    }
}

impl Indexed for Contact {
    const NAME: &'static str = "contact_documents";

    fn document(&self) -> Document {
        Document::from(self)
    }

    fn removal(&self) -> Removal {
        Removal {
            kind: Kind::Contact,
            id: self.id.as_uuid(),
            customer_id: self.customer_id,
            client_id: self.client_id,
            version: self.version,
        }
    }
}

/// The documents of one kind of entity, in the backend `B`.
pub struct Documents<E, B = Postgres>(PhantomData<(E, B)>);

impl<E: Indexed, B: SearchBackend> Projection for Documents<E, B> {
    const NAME: &'static str = E::NAME;
    type Entity = E;

    fn customer(e: &E) -> CustomerId {
        e.removal().customer_id
    }

    fn upsert<'c>(conn: &'c mut PgConnection, e: &'c E) -> BoxFuture<'c, Result<bool, ApiError>> {
        async move {
            let mut doc = e.document();
            e.enrich(conn, &mut doc).await?;
            B::upsert(conn, &doc).await
        }
        .boxed()
    }

    fn delete<'c>(conn: &'c mut PgConnection, e: &'c E) -> BoxFuture<'c, Result<bool, ApiError>> {
        B::delete(conn, e.removal())
    }

    fn applied<'c>(
        conn: &'c mut PgConnection,
        event: &'c CloudEvent,
        change: Change,
        e: &'c E,
    ) -> BoxFuture<'c, Result<(), ApiError>> {
        async move {
            if change == Change::Delete
                && let Some((customer, client)) = e.owns()
            {
                let n = B::delete_owned(conn, customer, client).await?;
                tracing::info!(projection = E::NAME, customer_id = %customer, client_id = ?client,
                    documents = n, "owner deleted: the documents it owned removed");
                if client.is_none() {
                    let keys = crate::keys::store::revoke_of_customer(conn, customer).await?;
                    let cause = Cause::reaction(crate::SOURCE, event);
                    let events = keys
                        .iter()
                        .map(|k| cause.event(SEARCH_KEY_REVOKED, k.id, k.customer_id, &k.event()))
                        .collect::<Result<Vec<_>, _>>()?;
                    outbox::write(conn, &events).await?;
                    tracing::info!(customer_id = %customer, keys = keys.len(),
                        "customer deleted: its search keys revoked");
                }
            }
            Ok(())
        }
        .boxed()
    }
}

/// A group membership's change to its client's document.
fn membership(member: bool) -> Handler {
    Arc::new(move |conn, event| {
        async move {
            let m: Membership = serde_json::from_value(event.data.clone())?;
            db::set_scope(conn, Scope::Tenant(m.customer_id)).await?;
            Postgres::set_group(conn, m.client_id, m.group_id, member)
                .await
                .map_err(ApiError::into_anyhow)?;
            Ok(())
        }
        .boxed()
    })
}

/// The queues of the index: customers, clients (with their memberships and addresses, in the
/// same queue so that they apply in the order customer-api published them) and contacts.
pub fn subscriptions() -> Vec<Subscription> {
    vec![
        projection::subscription::<Documents<Customer>>(
            "customer-documents",
            &[
                customer::CREATED,
                customer::UPDATED,
                customer::DEACTIVATED,
                customer::REACTIVATED,
            ],
            &[customer::DELETED],
        ),
        projection::subscription::<Documents<Client>>(
            "client-documents",
            &[
                client::CREATED,
                client::UPDATED,
                client::DISABLED,
                client::ENABLED,
            ],
            &[client::DELETED],
        )
        .on(client::GROUP_ASSIGNED, membership(true))
        .on(client::GROUP_REMOVED, membership(false))
        .project::<ClientAddresses>(
            &[client::ADDRESS_CREATED, client::ADDRESS_UPDATED],
            &[client::ADDRESS_DELETED],
        ),
        projection::subscription::<Documents<Contact>>(
            "contact-documents",
            &[org::CONTACT_CREATED, org::CONTACT_UPDATED],
            &[org::CONTACT_DELETED],
        ),
    ]
}
