//! SQL for departments.

use shared_model::error::{ApiError, ResultExt};
use shared_model::events::org::{self as ev, Department};
use shared_model::ids::{ClientId, CustomerId, DepartmentId, LocationId};
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::entity::{self, entity};
use crate::owners::Owner;

const COLUMNS: &str = "department_id, customer_id, client_id, name, code, parent_id, \
    location_id, active, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub struct Row {
    department_id: DepartmentId,
    customer_id: CustomerId,
    client_id: Option<ClientId>,
    name: String,
    code: Option<String>,
    parent_id: Option<DepartmentId>,
    location_id: Option<LocationId>,
    active: bool,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<Row> for Department {
    fn from(r: Row) -> Department {
        Department {
            id: r.department_id,
            customer_id: r.customer_id,
            client_id: r.client_id,
            name: r.name,
            code: r.code,
            parent_id: r.parent_id,
            location_id: r.location_id,
            active: r.active,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

entity!(
    Department,
    DepartmentId,
    "department",
    "departments",
    "department_id",
    DEPARTMENT_UPDATED,
    DEPARTMENT_DELETED
);

/// Writes the department (insert or full update).
pub async fn save(conn: &mut PgConnection, d: &Department) -> Result<(), ApiError> {
    let owner = Owner {
        customer: d.customer_id,
        client: d.client_id,
    };
    sqlx::query(
        "INSERT INTO departments (customer_id, department_id, client_id, owner_id, name, code,
             parent_id, location_id, active, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (customer_id, department_id) DO UPDATE SET name = $5, code = $6,
             parent_id = $7, location_id = $8, active = $9, version = $10, updated_at = $12",
    )
    .bind(d.customer_id)
    .bind(d.id)
    .bind(d.client_id)
    .bind(owner.id())
    .bind(&d.name)
    .bind(&d.code)
    .bind(d.parent_id)
    .bind(d.location_id)
    .bind(d.active)
    .bind(d.version)
    .bind(d.created_at)
    .bind(d.updated_at)
    .execute(conn)
    .await
    .on_constraint("departments_code_key", || {
        ApiError::conflict(
            "CODE_IN_USE",
            "another department of this owner has this code",
        )
    })?;
    Ok(())
}

/// What a list of departments asks for.
#[derive(Default)]
pub struct Filter<'a> {
    pub active: Option<bool>,
    pub code: Option<&'a str>,
    pub location: Option<LocationId>,
    pub parent: Option<DepartmentId>,
    /// Text matched, as a substring, against the name and code.
    pub q: Option<&'a str>,
}

/// The owner's departments by name (case-insensitive) after `(lower(name), id)`.
pub async fn list(
    conn: &mut PgConnection,
    owner: &Owner,
    filter: &Filter<'_>,
    after: Option<(String, DepartmentId)>,
    limit: i64,
) -> Result<Vec<Department>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM departments
          WHERE customer_id = $1 AND owner_id = $2
            AND ($3::boolean IS NULL OR active = $3)
            AND ($4::text IS NULL OR code = $4)
            AND ($5::uuid IS NULL OR location_id = $5)
            AND ($6::uuid IS NULL OR parent_id = $6)
            AND ($7::text IS NULL OR concat_ws(' ', name, code) ILIKE '%' || $7 || '%')
            AND ($8::text IS NULL OR (lower(name), department_id) > ($8, $9))
          ORDER BY lower(name), department_id LIMIT $10"
    );
    let (name, id) = after.unzip();
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(owner.customer)
        .bind(owner.id())
        .bind(filter.active)
        .bind(filter.code)
        .bind(filter.location)
        .bind(filter.parent)
        .bind(filter.q.map(crate::values::like_escape))
        .bind(name)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Department::from)
        .collect())
}

/// The sub-departments of `parent`, locked.
pub async fn children(
    conn: &mut PgConnection,
    owner: &Owner,
    parent: DepartmentId,
) -> Result<Vec<Department>, ApiError> {
    entity::pointing_to(conn, owner, "parent_id", parent.as_uuid()).await
}

/// The departments at `location`, locked.
pub async fn at_location(
    conn: &mut PgConnection,
    owner: &Owner,
    location: LocationId,
) -> Result<Vec<Department>, ApiError> {
    entity::pointing_to(conn, owner, "location_id", location.as_uuid()).await
}
