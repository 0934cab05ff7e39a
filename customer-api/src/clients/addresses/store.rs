//! SQL for clients' address books. Every function takes the caller's transaction (RLS scope
//! set) and filters by customer explicitly.

use shared_model::error::ApiError;
use shared_model::events::client::ClientAddress;
use shared_model::ids::{AddressId, ClientId, CustomerId};
use shared_model::model::CountryCode;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::clients::store::stored;

#[derive(sqlx::FromRow)]
struct AddressRow {
    customer_id: CustomerId,
    address_id: AddressId,
    client_id: ClientId,
    label: Option<String>,
    lines: Vec<String>,
    city: Option<String>,
    region: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
    default_shipping: bool,
    default_billing: bool,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl AddressRow {
    fn into_address(self) -> Result<ClientAddress, ApiError> {
        Ok(ClientAddress {
            id: self.address_id,
            customer_id: self.customer_id,
            client_id: self.client_id,
            label: self.label,
            lines: self.lines,
            city: self.city,
            region: self.region,
            postal_code: self.postal_code,
            country: self
                .country
                .map(|c| stored("country", CountryCode::parse(&c)))
                .transpose()?,
            default_shipping: self.default_shipping,
            default_billing: self.default_billing,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const ADDRESS_COLUMNS: &str = "customer_id, address_id, client_id, label, lines, city, region,
    postal_code, country, default_shipping, default_billing, version, created_at, updated_at";

/// A client's addresses, oldest first.
pub async fn addresses(
    conn: &mut PgConnection,
    customer: CustomerId,
    client: ClientId,
) -> Result<Vec<ClientAddress>, ApiError> {
    let sql = format!(
        "SELECT {ADDRESS_COLUMNS} FROM client_addresses
          WHERE customer_id = $1 AND client_id = $2 ORDER BY address_id"
    );
    sqlx::query_as::<_, AddressRow>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(client)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(AddressRow::into_address)
        .collect()
}

pub async fn find_address(
    conn: &mut PgConnection,
    customer: CustomerId,
    client: ClientId,
    id: AddressId,
    lock: bool,
) -> Result<Option<ClientAddress>, ApiError> {
    let sql = format!(
        "SELECT {ADDRESS_COLUMNS} FROM client_addresses
          WHERE customer_id = $1 AND client_id = $2 AND address_id = $3{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as::<_, AddressRow>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(client)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(AddressRow::into_address)
        .transpose()
}

/// Clears the default flags that `a` takes over from the client's other addresses; returns
/// the addresses that lost a flag (their version bumped).
pub async fn take_defaults(
    conn: &mut PgConnection,
    a: &ClientAddress,
) -> Result<Vec<ClientAddress>, ApiError> {
    if !a.default_shipping && !a.default_billing {
        return Ok(Vec::new());
    }
    let sql = format!(
        "UPDATE client_addresses SET
             default_shipping = default_shipping AND NOT $4,
             default_billing = default_billing AND NOT $5,
             version = version + 1, updated_at = $6
          WHERE customer_id = $1 AND client_id = $2 AND address_id <> $3
            AND ((default_shipping AND $4) OR (default_billing AND $5))
          RETURNING {ADDRESS_COLUMNS}"
    );
    sqlx::query_as::<_, AddressRow>(sqlx::AssertSqlSafe(sql))
        .bind(a.customer_id)
        .bind(a.client_id)
        .bind(a.id)
        .bind(a.default_shipping)
        .bind(a.default_billing)
        .bind(a.updated_at)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(AddressRow::into_address)
        .collect()
}

pub async fn upsert_address(conn: &mut PgConnection, a: &ClientAddress) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO client_addresses (customer_id, address_id, client_id, label, lines, city,
             region, postal_code, country, default_shipping, default_billing, version,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (customer_id, address_id) DO UPDATE SET label = $4, lines = $5, city = $6,
             region = $7, postal_code = $8, country = $9, default_shipping = $10,
             default_billing = $11, version = $12, updated_at = $14",
    )
    .bind(a.customer_id)
    .bind(a.id)
    .bind(a.client_id)
    .bind(&a.label)
    .bind(&a.lines)
    .bind(&a.city)
    .bind(&a.region)
    .bind(&a.postal_code)
    .bind(&a.country)
    .bind(a.default_shipping)
    .bind(a.default_billing)
    .bind(a.version)
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_address(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: AddressId,
) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM client_addresses WHERE customer_id = $1 AND address_id = $2")
        .bind(customer)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Number of addresses of a client.
pub async fn address_count(
    conn: &mut PgConnection,
    customer: CustomerId,
    client: ClientId,
) -> Result<i64, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM client_addresses WHERE customer_id = $1 AND client_id = $2",
    )
    .bind(customer)
    .bind(client)
    .fetch_one(conn)
    .await?)
}

/// A snapshot page: addresses after `after` in `(customer, id)` order (of `customer` when
/// given).
pub async fn snapshot_page(
    conn: &mut PgConnection,
    customer: Option<CustomerId>,
    after: Option<shared_model::snapshot::Position>,
    limit: i64,
) -> Result<Vec<ClientAddress>, ApiError> {
    let select = format!("SELECT {ADDRESS_COLUMNS} FROM client_addresses");
    let rows: Vec<AddressRow> = shared_model::snapshot::keyset(
        &select,
        "customer_id",
        "address_id",
        customer,
        after,
        limit,
    )
    .build_query_as()
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(AddressRow::into_address).collect()
}
