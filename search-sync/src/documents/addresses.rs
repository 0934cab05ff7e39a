//! Clients' addresses (`client_address.*`), kept for the city and country of the clients'
//! documents: the default billing address, else the default shipping one, else the oldest.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use shared_model::error::ApiError;
use shared_model::events::CloudEvent;
use shared_model::events::client::ClientAddress;
use shared_model::ids::{ClientId, CustomerId};
use shared_model::projection::{Change, Projection};
use sqlx::PgConnection;

use crate::index::postgres::Postgres;
use crate::index::{Place, SearchBackend};

/// The addresses search-sync knows of.
pub struct ClientAddresses;

/// Records the address if `version` is newer than the row's; a tombstone when `deleted`.
pub async fn record(
    conn: &mut PgConnection,
    a: &ClientAddress,
    deleted: bool,
) -> Result<bool, ApiError> {
    let done = sqlx::query(
        "INSERT INTO client_addresses (customer_id, address_id, client_id, city, country,
             default_billing, default_shipping, version, deleted, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (customer_id, address_id) DO UPDATE SET city = $4, country = $5,
             default_billing = $6, default_shipping = $7, version = $8, deleted = $9,
             updated_at = $11
          WHERE client_addresses.version < $8",
    )
    .bind(a.customer_id)
    .bind(a.id)
    .bind(a.client_id)
    .bind(&a.city)
    .bind(a.country.as_ref().map(|c| c.as_str().to_string()))
    .bind(a.default_billing)
    .bind(a.default_shipping)
    .bind(a.version)
    .bind(deleted)
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The client's place: its default billing address's, else its default shipping one's, else
/// its oldest address's (the most recently changed first where two claim a default).
pub async fn place_of(
    conn: &mut PgConnection,
    customer: CustomerId,
    client: ClientId,
) -> Result<Place, ApiError> {
    let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT city, country FROM client_addresses
          WHERE customer_id = $1 AND client_id = $2 AND NOT deleted
          ORDER BY default_billing DESC, default_shipping DESC,
                   CASE WHEN default_billing OR default_shipping THEN updated_at END DESC,
                   created_at, address_id
          LIMIT 1",
    )
    .bind(customer)
    .bind(client)
    .fetch_optional(conn)
    .await?;
    let (city, country) = row.unwrap_or_default();
    Ok(Place { city, country })
}

impl Projection for ClientAddresses {
    const NAME: &'static str = "client_addresses";
    type Entity = ClientAddress;

    fn customer(a: &ClientAddress) -> CustomerId {
        a.customer_id
    }

    fn upsert<'c>(
        conn: &'c mut PgConnection,
        a: &'c ClientAddress,
    ) -> BoxFuture<'c, Result<bool, ApiError>> {
        record(conn, a, false).boxed()
    }

    fn delete<'c>(
        conn: &'c mut PgConnection,
        a: &'c ClientAddress,
    ) -> BoxFuture<'c, Result<bool, ApiError>> {
        record(conn, a, true).boxed()
    }

    /// Every change may move the client's place.
    fn applied<'c>(
        conn: &'c mut PgConnection,
        _: &'c CloudEvent,
        _: Change,
        a: &'c ClientAddress,
    ) -> BoxFuture<'c, Result<(), ApiError>> {
        async move {
            let place = place_of(conn, a.customer_id, a.client_id).await?;
            Postgres::set_place(conn, a.client_id, place).await?;
            Ok(())
        }
        .boxed()
    }
}
