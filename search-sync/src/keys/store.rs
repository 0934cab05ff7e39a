//! SQL for search keys.

use shared_model::error::ApiError;
use shared_model::events::search::SearchKeyEvent;
use shared_model::ids::CustomerId;
use sqlx::PgConnection;
use time::OffsetDateTime;

use super::KeyKind;

const COLUMNS: &str = "id, customer_id, kind, name, prefix, filter, allowed_origins, \
    rate_per_minute, expires_at, revoked_at, created_at, created_by";

/// A key as stored (without its hash).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Row {
    pub id: uuid::Uuid,
    pub customer_id: Option<CustomerId>,
    pub kind: String,
    pub name: String,
    pub prefix: String,
    pub filter: Option<serde_json::Value>,
    pub allowed_origins: Vec<String>,
    pub rate_per_minute: i32,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

impl Row {
    pub fn kind(&self) -> Result<KeyKind, ApiError> {
        KeyKind::parse(&self.kind)
            .ok_or_else(|| ApiError::internal(format!("unknown key kind {:?}", self.kind)))
    }
}

pub async fn insert(conn: &mut PgConnection, r: &Row, hash: &[u8]) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO search_keys (id, customer_id, kind, name, prefix, secret_hash, filter,
            allowed_origins, rate_per_minute, expires_at, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(r.id)
    .bind(r.customer_id)
    .bind(&r.kind)
    .bind(&r.name)
    .bind(&r.prefix)
    .bind(hash)
    .bind(&r.filter)
    .bind(&r.allowed_origins)
    .bind(r.rate_per_minute)
    .bind(r.expires_at)
    .bind(r.created_at)
    .bind(&r.created_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// The key whose secret hashes to `hash`, whatever its state.
pub async fn by_hash(conn: &mut PgConnection, hash: &[u8]) -> Result<Option<Row>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM search_keys WHERE secret_hash = $1"
    )))
    .bind(hash)
    .fetch_optional(conn)
    .await?)
}

pub async fn get(conn: &mut PgConnection, id: uuid::Uuid) -> Result<Option<Row>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM search_keys WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// A page of keys of `kinds` (of `customer`, if given), newest first, after `after`.
pub async fn list(
    conn: &mut PgConnection,
    customer: Option<CustomerId>,
    kinds: &[&str],
    after: Option<(OffsetDateTime, uuid::Uuid)>,
    limit: i64,
) -> Result<Vec<Row>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM search_keys
          WHERE ($1::uuid IS NULL OR customer_id = $1) AND kind = ANY ($2)
            AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
          ORDER BY created_at DESC, id DESC LIMIT $5"
    )))
    .bind(customer)
    .bind(kinds)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit + 1)
    .fetch_all(conn)
    .await?)
}

/// Revokes the key (if not yet revoked); the key as it now is.
/// Revokes the key, if it is not revoked yet; the key as revoked now, `None` if it was before.
pub async fn revoke(conn: &mut PgConnection, id: uuid::Uuid) -> Result<Option<Row>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE search_keys SET revoked_at = now()
          WHERE id = $1 AND revoked_at IS NULL RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Revokes every key of the customer not revoked yet; those keys, revoked.
pub async fn revoke_of_customer(
    conn: &mut PgConnection,
    customer: CustomerId,
) -> Result<Vec<Row>, ApiError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE search_keys SET revoked_at = now()
          WHERE customer_id = $1 AND revoked_at IS NULL RETURNING {COLUMNS}"
    )))
    .bind(customer)
    .fetch_all(conn)
    .await?)
}

impl Row {
    /// The key as its events carry it.
    pub fn event(&self) -> SearchKeyEvent {
        SearchKeyEvent {
            id: self.id,
            kind: self.kind.clone(),
            customer_id: self.customer_id,
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            filter: self.filter.clone(),
            allowed_origins: self.allowed_origins.clone(),
            rate_per_minute: self.rate_per_minute,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            created_at: self.created_at,
            created_by: self.created_by.clone(),
        }
    }
}
