//! SQL for contacts.

use shared_model::error::ApiError;
use shared_model::events::org::{self as ev, Contact};
use shared_model::ids::{ClientId, ContactId, CustomerId, DepartmentId, LocationId};
use shared_model::model::{Email, Locale, Phone};
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::entity::{self, entity};
use crate::owners::Owner;

const COLUMNS: &str = "contact_id, customer_id, client_id, type, is_primary, salutation, \
    first_name, last_name, job_title, email, phone, mobile, location_id, department_id, locale, \
    active, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub struct Row {
    contact_id: ContactId,
    customer_id: CustomerId,
    client_id: Option<ClientId>,
    #[sqlx(rename = "type")]
    contact_type: String,
    is_primary: bool,
    salutation: Option<String>,
    first_name: Option<String>,
    last_name: String,
    job_title: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    mobile: Option<String>,
    location_id: Option<LocationId>,
    department_id: Option<DepartmentId>,
    locale: Option<String>,
    active: bool,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<Row> for Contact {
    fn from(r: Row) -> Contact {
        Contact {
            id: r.contact_id,
            customer_id: r.customer_id,
            client_id: r.client_id,
            contact_type: r.contact_type,
            primary: r.is_primary,
            salutation: r.salutation,
            first_name: r.first_name,
            last_name: r.last_name,
            job_title: r.job_title,
            email: r.email.map(Email::from_stored),
            phone: r.phone.map(Phone::from_stored),
            mobile: r.mobile.map(Phone::from_stored),
            location_id: r.location_id,
            department_id: r.department_id,
            locale: r.locale.map(Locale::from_stored),
            active: r.active,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

entity!(
    Contact,
    ContactId,
    "contact",
    "contacts",
    "contact_id",
    CONTACT_UPDATED,
    CONTACT_DELETED
);

/// Writes the contact (insert or full update).
pub async fn save(conn: &mut PgConnection, c: &Contact) -> Result<(), ApiError> {
    let owner = Owner {
        customer: c.customer_id,
        client: c.client_id,
    };
    sqlx::query(
        "INSERT INTO contacts (customer_id, contact_id, client_id, owner_id, type, is_primary,
             salutation, first_name, last_name, job_title, email, phone, mobile, location_id,
             department_id, locale, active, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
             $18, $19, $20)
         ON CONFLICT (customer_id, contact_id) DO UPDATE SET type = $5, is_primary = $6,
             salutation = $7, first_name = $8, last_name = $9, job_title = $10, email = $11,
             phone = $12, mobile = $13, location_id = $14, department_id = $15, locale = $16,
             active = $17, version = $18, updated_at = $20",
    )
    .bind(c.customer_id)
    .bind(c.id)
    .bind(c.client_id)
    .bind(owner.id())
    .bind(&c.contact_type)
    .bind(c.primary)
    .bind(&c.salutation)
    .bind(&c.first_name)
    .bind(&c.last_name)
    .bind(&c.job_title)
    .bind(c.email.as_ref().map(Email::as_str))
    .bind(c.phone.as_ref().map(Phone::as_str))
    .bind(c.mobile.as_ref().map(Phone::as_str))
    .bind(c.location_id)
    .bind(c.department_id)
    .bind(c.locale.as_ref().map(Locale::as_str))
    .bind(c.active)
    .bind(c.version)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The owner's primary contact of `contact_type`, locked.
pub async fn primary(
    conn: &mut PgConnection,
    owner: &Owner,
    contact_type: &str,
) -> Result<Option<Contact>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM contacts
          WHERE customer_id = $1 AND owner_id = $2 AND type = $3 AND is_primary FOR UPDATE"
    );
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(owner.customer)
        .bind(owner.id())
        .bind(contact_type)
        .fetch_optional(conn)
        .await?
        .map(Contact::from))
}

/// What a list of contacts asks for.
#[derive(Default)]
pub struct Filter<'a> {
    pub active: Option<bool>,
    pub contact_type: Option<&'a str>,
    pub primary: Option<bool>,
    pub location: Option<LocationId>,
    pub department: Option<DepartmentId>,
    /// Text matched, as a substring, against the names, job title and e-mail.
    pub q: Option<&'a str>,
}

/// The list's statement, public so the benchmark measures the same query under pgbench.
pub const LIST_SQL: &str = "SELECT contact_id, customer_id, client_id, type, is_primary, \
    salutation, first_name, last_name, job_title, email, phone, mobile, location_id, \
    department_id, locale, active, version, created_at, updated_at
      FROM contacts
     WHERE customer_id = $1 AND owner_id = $2
       AND ($3::boolean IS NULL OR active = $3)
       AND ($4::text IS NULL OR type = $4)
       AND ($5::boolean IS NULL OR is_primary = $5)
       AND ($6::uuid IS NULL OR location_id = $6)
       AND ($7::uuid IS NULL OR department_id = $7)
       AND ($8::text IS NULL
            OR concat_ws(' ', first_name, last_name, job_title, email) ILIKE '%' || $8 || '%')
       AND ($9::text IS NULL OR (lower(last_name), contact_id) > ($9, $10))
     ORDER BY lower(last_name), contact_id LIMIT $11";

/// The owner's contacts by last name (case-insensitive) after `(lower(lastName), id)`.
pub async fn list(
    conn: &mut PgConnection,
    owner: &Owner,
    filter: &Filter<'_>,
    after: Option<(String, ContactId)>,
    limit: i64,
) -> Result<Vec<Contact>, ApiError> {
    let (name, id) = after.unzip();
    Ok(sqlx::query_as::<_, Row>(LIST_SQL)
        .bind(owner.customer)
        .bind(owner.id())
        .bind(filter.active)
        .bind(filter.contact_type)
        .bind(filter.primary)
        .bind(filter.location)
        .bind(filter.department)
        .bind(filter.q.map(crate::values::like_escape))
        .bind(name)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Contact::from)
        .collect())
}

/// The contacts at `location`, locked.
pub async fn at_location(
    conn: &mut PgConnection,
    owner: &Owner,
    location: LocationId,
) -> Result<Vec<Contact>, ApiError> {
    entity::pointing_to(conn, owner, "location_id", location.as_uuid()).await
}

/// The contacts in `department`, locked.
pub async fn in_department(
    conn: &mut PgConnection,
    owner: &Owner,
    department: DepartmentId,
) -> Result<Vec<Contact>, ApiError> {
    entity::pointing_to(conn, owner, "department_id", department.as_uuid()).await
}

/// A snapshot page: contacts of customers and of their clients after `after` in
/// `(customer, id)` order (of `customer` when given).
pub async fn snapshot_page(
    conn: &mut PgConnection,
    customer: Option<CustomerId>,
    after: Option<shared_model::snapshot::Position>,
    limit: i64,
) -> Result<Vec<Contact>, ApiError> {
    let select = format!("SELECT {COLUMNS} FROM contacts");
    let rows: Vec<Row> = shared_model::snapshot::keyset(
        &select,
        "customer_id",
        "contact_id",
        customer,
        after,
        limit,
    )
    .build_query_as()
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Contact::from).collect())
}
