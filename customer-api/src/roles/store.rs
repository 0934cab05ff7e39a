//! SQL for tenant roles.

use shared_model::error::{ApiError, ResultExt};
use shared_model::events::tenant::Role;
use shared_model::ids::{CustomerId, RoleId};
use sqlx::PgConnection;
use time::OffsetDateTime;

const COLUMNS: &str = "role_id AS id, customer_id, name, description, permissions, is_default, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: RoleId,
    customer_id: CustomerId,
    name: String,
    description: Option<String>,
    permissions: Vec<String>,
    is_default: bool,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<Row> for Role {
    fn from(r: Row) -> Role {
        Role {
            id: r.id,
            customer_id: r.customer_id,
            name: r.name,
            description: r.description,
            permissions: r.permissions,
            is_default: r.is_default,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub async fn upsert(conn: &mut PgConnection, r: &Role) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO roles (customer_id, role_id, name, description, permissions, is_default,
             version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (customer_id, role_id) DO UPDATE SET name = $3, description = $4,
             permissions = $5, version = $7, updated_at = $9",
    )
    .bind(r.customer_id)
    .bind(r.id)
    .bind(&r.name)
    .bind(&r.description)
    .bind(&r.permissions)
    .bind(r.is_default)
    .bind(r.version)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(conn)
    .await
    .on_constraint("roles_name_key", || {
        ApiError::conflict("CONFLICT", "a role with this name already exists")
    })?;
    Ok(())
}

pub async fn find(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: RoleId,
    lock: bool,
) -> Result<Option<Role>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM roles WHERE customer_id = $1 AND role_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(Role::from))
}

/// Every role of a customer, by name.
pub async fn all(conn: &mut PgConnection, customer: CustomerId) -> Result<Vec<Role>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM roles WHERE customer_id = $1 ORDER BY lower(name)");
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Role::from)
        .collect())
}

/// The names among `names` (case-insensitive) that are roles of the customer.
pub async fn existing_names(
    conn: &mut PgConnection,
    customer: CustomerId,
    names: &[String],
) -> Result<Vec<String>, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT lower(name) FROM roles WHERE customer_id = $1 AND lower(name) = ANY($2)",
    )
    .bind(customer)
    .bind(names.iter().map(|n| n.to_lowercase()).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?)
}

pub async fn delete(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: RoleId,
) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM roles WHERE customer_id = $1 AND role_id = $2")
        .bind(customer)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
