//! SQL for locations.

use shared_model::error::{ApiError, ResultExt};
use shared_model::events::customer::Address;
use shared_model::events::org::{self as ev, Location};
use shared_model::ids::{AddressId, ClientId, CustomerId, LocationId};
use shared_model::model::{DerivedFrom, Email, LocationKind, Phone, WebUrl};
use sqlx::PgConnection;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::entity::entity;
use crate::owners::Owner;

const COLUMNS: &str = "location_id, customer_id, client_id, name, secondary_name, kind, code, \
    address, phone, email, website, time_zone, notes, active, derived_from, version, \
    created_at, updated_at";

#[derive(sqlx::FromRow)]
pub struct Row {
    location_id: LocationId,
    customer_id: CustomerId,
    client_id: Option<ClientId>,
    name: String,
    secondary_name: Option<String>,
    kind: LocationKind,
    code: Option<String>,
    address: Option<Json<Address>>,
    phone: Option<String>,
    email: Option<String>,
    website: Option<String>,
    time_zone: Option<String>,
    notes: Option<String>,
    active: bool,
    derived_from: Option<DerivedFrom>,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<Row> for Location {
    fn from(r: Row) -> Location {
        Location {
            id: r.location_id,
            customer_id: r.customer_id,
            client_id: r.client_id,
            name: r.name,
            secondary_name: r.secondary_name,
            kind: r.kind,
            code: r.code,
            address: r.address.map(|a| a.0),
            phone: r.phone.map(Phone::from_stored),
            email: r.email.map(Email::from_stored),
            website: r.website.map(WebUrl::from_stored),
            time_zone: r.time_zone,
            notes: r.notes,
            active: r.active,
            derived_from: r.derived_from,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

entity!(
    Location,
    LocationId,
    "location",
    "locations",
    "location_id",
    LOCATION_UPDATED,
    LOCATION_DELETED
);

/// 409s of the location constraints.
fn conflicts(e: sqlx::Error) -> ApiError {
    Err::<(), _>(e)
        .on_constraint("locations_code_key", || {
            ApiError::conflict(
                "CODE_IN_USE",
                "another location of this owner has this code",
            )
        })
        .on_constraint("locations_hq_key", || {
            ApiError::conflict("HQ_EXISTS", "the owner has another HQ location")
        })
        .unwrap_err()
}

/// Writes the location (insert or full update).
pub async fn save(conn: &mut PgConnection, l: &Location) -> Result<(), ApiError> {
    let owner = Owner {
        customer: l.customer_id,
        client: l.client_id,
    };
    sqlx::query(
        "INSERT INTO locations (customer_id, location_id, client_id, owner_id, name,
             secondary_name, kind, code, address, phone, email, website, time_zone, notes,
             active, derived_from, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
             $18, $19)
         ON CONFLICT (customer_id, location_id) DO UPDATE SET name = $5, secondary_name = $6,
             kind = $7, code = $8, address = $9, phone = $10, email = $11, website = $12,
             time_zone = $13, notes = $14, active = $15, derived_from = $16, version = $17,
             updated_at = $19",
    )
    .bind(l.customer_id)
    .bind(l.id)
    .bind(l.client_id)
    .bind(owner.id())
    .bind(&l.name)
    .bind(&l.secondary_name)
    .bind(l.kind)
    .bind(&l.code)
    .bind(l.address.as_ref().map(Json))
    .bind(l.phone.as_ref().map(Phone::as_str))
    .bind(l.email.as_ref().map(Email::as_str))
    .bind(l.website.as_ref().map(WebUrl::as_str))
    .bind(&l.time_zone)
    .bind(&l.notes)
    .bind(l.active)
    .bind(l.derived_from)
    .bind(l.version)
    .bind(l.created_at)
    .bind(l.updated_at)
    .execute(conn)
    .await
    .map_err(conflicts)?;
    Ok(())
}

/// The owner's HQ, locked.
pub async fn hq(conn: &mut PgConnection, owner: &Owner) -> Result<Option<Location>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM locations
          WHERE customer_id = $1 AND owner_id = $2 AND kind = 'hq' FOR UPDATE"
    );
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(owner.customer)
        .bind(owner.id())
        .fetch_optional(conn)
        .await?
        .map(Location::from))
}

/// What a list of locations asks for.
#[derive(Default)]
pub struct Filter<'a> {
    pub active: Option<bool>,
    pub kind: Option<LocationKind>,
    pub code: Option<&'a str>,
    /// Words matched, as substrings, against the name, secondary name, code and e-mail.
    pub q: Option<&'a str>,
}

/// The owner's locations by name (case-insensitive) after `(lower(name), id)`.
pub async fn list(
    conn: &mut PgConnection,
    owner: &Owner,
    filter: &Filter<'_>,
    after: Option<(String, LocationId)>,
    limit: i64,
) -> Result<Vec<Location>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM locations
          WHERE customer_id = $1 AND owner_id = $2
            AND ($3::boolean IS NULL OR active = $3)
            AND ($4::text IS NULL OR kind = $4)
            AND ($5::text IS NULL OR code = $5)
            AND ($6::text IS NULL OR concat_ws(' ', name, secondary_name, code, email)
                                     ILIKE '%' || $6 || '%')
            AND ($7::text IS NULL OR (lower(name), location_id) > ($7, $8))
          ORDER BY lower(name), location_id LIMIT $9"
    );
    let (name, id) = after.unzip();
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(owner.customer)
        .bind(owner.id())
        .bind(filter.active)
        .bind(filter.kind)
        .bind(filter.code)
        .bind(filter.q.map(crate::values::like_escape))
        .bind(name)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Location::from)
        .collect())
}

/// The owner's HQ, locked, with the client address it follows and the version of that address
/// last applied (both None unless a client address made it).
pub async fn hq_with_source(
    conn: &mut PgConnection,
    owner: &Owner,
) -> Result<Option<(Location, Option<AddressId>, Option<i64>)>, ApiError> {
    #[derive(sqlx::FromRow)]
    struct Sourced {
        #[sqlx(flatten)]
        row: Row,
        derived_address_id: Option<AddressId>,
        derived_address_version: Option<i64>,
    }
    let sql = format!(
        "SELECT {COLUMNS}, derived_address_id, derived_address_version FROM locations
          WHERE customer_id = $1 AND owner_id = $2 AND kind = 'hq' FOR UPDATE"
    );
    Ok(sqlx::query_as::<_, Sourced>(sqlx::AssertSqlSafe(sql))
        .bind(owner.customer)
        .bind(owner.id())
        .fetch_optional(conn)
        .await?
        .map(|s| {
            (
                Location::from(s.row),
                s.derived_address_id,
                s.derived_address_version,
            )
        }))
}

/// Records the client address (and its version) a derived HQ follows.
pub async fn set_source(
    conn: &mut PgConnection,
    l: &Location,
    address: AddressId,
    version: i64,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE locations SET derived_address_id = $3, derived_address_version = $4
          WHERE customer_id = $1 AND location_id = $2",
    )
    .bind(l.customer_id)
    .bind(l.id)
    .bind(address)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(())
}
