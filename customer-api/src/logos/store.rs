//! The SQL of logos: images stored once per SHA-256, shared across tenants (written and read as
//! the system), and collected when nothing refers to them.

use shared_model::db::{self, Scope};
use shared_model::error::ApiError;
use sqlx::PgConnection;

/// Stores an image under its digest (once: a second upload of the same bytes is a no-op).
pub async fn insert(
    conn: &mut PgConnection,
    sha: &str,
    content_type: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO logos (sha256, content_type, size, data) VALUES ($1, $2, $3, $4)
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha)
    .bind(content_type)
    .bind(body.len() as i32)
    .bind(body)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An image's content type and bytes.
pub async fn find(
    conn: &mut PgConnection,
    sha: &str,
) -> Result<Option<(String, Vec<u8>)>, ApiError> {
    Ok(
        sqlx::query_as("SELECT content_type, data FROM logos WHERE sha256 = $1")
            .bind(sha)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Deletes an image nothing refers to any more.
pub async fn collect(tx: &mut PgConnection, sha: &str) -> Result<(), ApiError> {
    db::set_scope(tx, Scope::System).await?;
    sqlx::query(
        "DELETE FROM logos WHERE sha256 = $1
            AND NOT EXISTS (SELECT 1 FROM customers WHERE logo ->> 'sha256' = $1)
            AND NOT EXISTS (SELECT 1 FROM clients WHERE logo ->> 'sha256' = $1)",
    )
    .bind(sha)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
