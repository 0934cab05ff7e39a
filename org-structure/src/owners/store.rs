//! SQL of the `known_customers` and `known_clients` projections.

use shared_model::error::ApiError;
use shared_model::ids::{ClientId, CustomerId};
use sqlx::PgConnection;

use super::Owner;

/// The status of an owner that can take changes.
pub const ACTIVE: &str = "active";
/// The status of a deleted owner's tombstone.
pub const DELETED: &str = "deleted";

/// The owner's customer status and, at the client level, the client's; 404 if either is
/// unknown or deleted. `lock` holds a share lock on both rows.
pub async fn status(
    conn: &mut PgConnection,
    owner: &Owner,
    lock: bool,
) -> Result<(String, Option<String>), ApiError> {
    let lock = if lock { " FOR SHARE" } else { "" };
    let customer: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT status FROM known_customers WHERE customer_id = $1{lock}"
    )))
    .bind(owner.customer)
    .fetch_optional(&mut *conn)
    .await?;
    let customer = match customer {
        Some(s) if s != DELETED => s,
        _ => return Err(ApiError::not_found("customer")),
    };
    let Some(client) = owner.client else {
        return Ok((customer, None));
    };
    let status: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT status FROM known_clients WHERE customer_id = $1 AND client_id = $2{lock}"
    )))
    .bind(owner.customer)
    .bind(client)
    .fetch_optional(&mut *conn)
    .await?;
    match status {
        Some(s) if s != DELETED => Ok((customer, Some(s))),
        _ => Err(ApiError::not_found("client")),
    }
}

/// Records a customer's state if `version` is newer than the row's; true if it was.
pub async fn record_customer(
    conn: &mut PgConnection,
    id: CustomerId,
    status: &str,
    version: i64,
) -> Result<bool, ApiError> {
    Ok(sqlx::query(
        "INSERT INTO known_customers (customer_id, status, version) VALUES ($1, $2, $3)
         ON CONFLICT (customer_id) DO UPDATE SET status = $2, version = $3, updated_at = now()
          WHERE known_customers.version < $3",
    )
    .bind(id)
    .bind(status)
    .bind(version)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// Records a client's state if `version` is newer than the row's; true if it was.
pub async fn record_client(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: ClientId,
    status: &str,
    version: i64,
) -> Result<bool, ApiError> {
    Ok(sqlx::query(
        "INSERT INTO known_clients (customer_id, client_id, status, version)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (customer_id, client_id) DO UPDATE
            SET status = $3, version = $4, updated_at = now()
          WHERE known_clients.version < $4",
    )
    .bind(customer)
    .bind(id)
    .bind(status)
    .bind(version)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}
