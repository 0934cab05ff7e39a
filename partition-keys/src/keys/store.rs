//! SQL for API keys, and the expiry job.

use shared_model::db::{self, Scope};
use shared_model::error::ApiError;
use shared_model::events::partition::{self as ev, ApiKey};
use shared_model::ids::{ApiKeyId, CustomerId, PartitionId};
use shared_model::outbox::{self, Cause};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

pub const COLUMNS: &str = "key_id, customer_id, partition_id, name, kind, scopes, prefix, \
    foreign_key, expires_at, revoked_at, last_used_at, rotated_from, version, created_at, created_by";

#[derive(sqlx::FromRow)]
pub struct Row {
    key_id: ApiKeyId,
    customer_id: CustomerId,
    partition_id: PartitionId,
    name: String,
    kind: String,
    scopes: Vec<String>,
    prefix: String,
    foreign_key: Option<String>,
    expires_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
    last_used_at: Option<OffsetDateTime>,
    rotated_from: Option<ApiKeyId>,
    version: i64,
    created_at: OffsetDateTime,
    created_by: String,
}

/// `active`, `expired` or `revoked` at `now`.
pub fn status(
    revoked_at: Option<OffsetDateTime>,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> &'static str {
    if revoked_at.is_some() {
        "revoked"
    } else if expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

impl Row {
    pub fn into_key(self) -> ApiKey {
        ApiKey {
            id: self.key_id,
            customer_id: self.customer_id,
            partition_id: self.partition_id,
            name: self.name,
            kind: self.kind,
            scopes: self.scopes,
            prefix: self.prefix,
            foreign_key: self.foreign_key,
            status: status(self.revoked_at, self.expires_at, db::now()).to_string(),
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
            rotated_from: self.rotated_from,
            version: self.version,
            created_at: self.created_at,
            created_by: self.created_by,
        }
    }
}

/// Inserts a new key with its hash.
pub async fn insert(
    conn: &mut PgConnection,
    k: &ApiKey,
    environment: &str,
    hash: &[u8],
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO api_keys (customer_id, key_id, partition_id, environment, name, kind, scopes,
             prefix, key_hash, foreign_key, expires_at, rotated_from, version, created_at,
             created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(k.customer_id)
    .bind(k.id)
    .bind(k.partition_id)
    .bind(environment)
    .bind(&k.name)
    .bind(&k.kind)
    .bind(&k.scopes)
    .bind(&k.prefix)
    .bind(hash)
    .bind(&k.foreign_key)
    .bind(k.expires_at)
    .bind(k.rotated_from)
    .bind(k.version)
    .bind(k.created_at)
    .bind(&k.created_by)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn find(
    conn: &mut PgConnection,
    customer: CustomerId,
    partition: PartitionId,
    id: ApiKeyId,
    lock: bool,
) -> Result<Option<ApiKey>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_keys
          WHERE customer_id = $1 AND partition_id = $2 AND key_id = $3{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(partition)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(Row::into_key))
}

/// A partition's keys, newest first, after `(created_at, id)`.
pub async fn list(
    conn: &mut PgConnection,
    customer: CustomerId,
    partition: PartitionId,
    after: Option<(OffsetDateTime, ApiKeyId)>,
    limit: i64,
) -> Result<Vec<ApiKey>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_keys WHERE customer_id = $1 AND partition_id = $2
            AND ($3::timestamptz IS NULL OR (created_at, key_id) < ($3, $4))
          ORDER BY created_at DESC, key_id DESC LIMIT $5"
    );
    let (at, id) = after.unzip();
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(partition)
        .bind(at)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Row::into_key)
        .collect())
}

/// Writes the mutable fields of a key (expiry, revocation, version).
pub async fn update(conn: &mut PgConnection, k: &ApiKey) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE api_keys SET expires_at = $3, revoked_at = $4, version = $5
          WHERE customer_id = $1 AND key_id = $2",
    )
    .bind(k.customer_id)
    .bind(k.id)
    .bind(k.expires_at)
    .bind(k.revoked_at)
    .bind(k.version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks keys past their expiry as expired and publishes `apikey.expired` for each, once.
/// Replicas share the work through `SKIP LOCKED`. Returns how many were marked.
pub async fn expire_due(pool: &PgPool) -> Result<usize, ApiError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let sql = format!(
        "UPDATE api_keys SET expired_event_at = now() WHERE (customer_id, key_id) IN (
             SELECT customer_id, key_id FROM api_keys
              WHERE expired_event_at IS NULL AND revoked_at IS NULL AND expires_at <= now()
              ORDER BY expires_at LIMIT 500 FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    );
    let due: Vec<ApiKey> = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(Row::into_key)
        .collect();
    // A run of the job is a trace of its own.
    let cause = Cause::job(crate::SOURCE);
    let events = due
        .iter()
        .map(|k| cause.event(ev::KEY_EXPIRED, k.id, k.customer_id, k))
        .collect::<Result<Vec<_>, _>>()?;
    outbox::write(&mut tx, &events).await?;
    tx.commit().await?;
    if !due.is_empty() {
        tracing::info!(keys = due.len(), "API keys expired");
    }
    Ok(due.len())
}

/// Makes every unexpired, unrevoked key of the customer expire now; the expiry job publishes
/// `apikey.expired` for each.
pub async fn expire_all_keys(conn: &mut PgConnection, id: CustomerId) -> Result<u64, ApiError> {
    Ok(sqlx::query(
        "UPDATE api_keys SET expires_at = now(), version = version + 1
          WHERE customer_id = $1 AND revoked_at IS NULL
            AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}
