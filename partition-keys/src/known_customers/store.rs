//! SQL of the `known_customers` projection.

use shared_model::error::ApiError;
use shared_model::ids::CustomerId;
use sqlx::PgConnection;

/// The status of a deleted customer's tombstone.
pub const DELETED: &str = "deleted";

/// The customer is known here and active (404 / 409 otherwise); holds a share lock on it.
pub async fn ensure_active(conn: &mut PgConnection, customer: CustomerId) -> Result<(), ApiError> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM known_customers WHERE customer_id = $1 FOR SHARE")
            .bind(customer)
            .fetch_optional(&mut *conn)
            .await?;
    match status.as_deref() {
        None | Some(DELETED) => Err(ApiError::not_found("customer")),
        Some("active") => Ok(()),
        Some(_) => Err(ApiError::conflict(
            "CUSTOMER_DEACTIVATED",
            "the customer is deactivated: its partitions and keys cannot change",
        )),
    }
}

/// The customer is known to this service, active or not (404 otherwise): a collection of an
/// unknown customer is 404, as in customer-api, not an empty page.
pub async fn ensure_known(conn: &mut PgConnection, customer: CustomerId) -> Result<(), ApiError> {
    let known: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM known_customers WHERE customer_id = $1 AND status <> $2")
            .bind(customer)
            .bind(DELETED)
            .fetch_optional(&mut *conn)
            .await?;
    known
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found("customer"))
}

/// Records the customer's state if `version` is newer than the row's; true if it was.
pub async fn record(
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
