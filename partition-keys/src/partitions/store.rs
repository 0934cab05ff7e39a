//! SQL for partitions.

use shared_model::error::{ApiError, ResultExt};
use shared_model::events::partition::{self as ev, Partition};
use shared_model::ids::{CustomerId, PartitionGroupId, PartitionId};
use shared_model::outbox::Cause;
use sqlx::PgConnection;
use time::OffsetDateTime;

const COLUMNS: &str = "partition_id AS id, customer_id, name, environment, description, status, \
    group_id, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: PartitionId,
    customer_id: CustomerId,
    name: String,
    environment: String,
    description: Option<String>,
    status: String,
    group_id: Option<PartitionGroupId>,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<Row> for Partition {
    fn from(r: Row) -> Partition {
        Partition {
            id: r.id,
            customer_id: r.customer_id,
            name: r.name,
            environment: r.environment,
            description: r.description,
            status: r.status,
            group_id: r.group_id,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub async fn upsert(conn: &mut PgConnection, p: &Partition) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO partitions (customer_id, partition_id, name, environment, description,
             status, version, created_at, updated_at, group_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (customer_id, partition_id) DO UPDATE SET name = $3, description = $5,
             status = $6, version = $7, updated_at = $9, group_id = $10",
    )
    .bind(p.customer_id)
    .bind(p.id)
    .bind(&p.name)
    .bind(&p.environment)
    .bind(&p.description)
    .bind(&p.status)
    .bind(p.version)
    .bind(p.created_at)
    .bind(p.updated_at)
    .bind(p.group_id)
    .execute(conn)
    .await
    .on_constraint("partitions_name_key", || {
        ApiError::conflict("CONFLICT", "a partition with this name already exists")
    })?;
    Ok(())
}

pub async fn find(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: PartitionId,
    lock: bool,
) -> Result<Option<Partition>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM partitions WHERE customer_id = $1 AND partition_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(Partition::from))
}

/// Partitions by name (case-insensitive) after `(lower(name), id)`, optionally of one
/// environment and of one group.
pub async fn list(
    conn: &mut PgConnection,
    customer: CustomerId,
    environment: Option<&str>,
    group: Option<PartitionGroupId>,
    after: Option<(String, PartitionId)>,
    limit: i64,
) -> Result<Vec<Partition>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM partitions WHERE customer_id = $1
            AND ($2::text IS NULL OR environment = $2)
            AND ($3::text IS NULL OR (lower(name), partition_id) > ($3, $4))
            AND ($6::uuid IS NULL OR group_id = $6)
          ORDER BY lower(name), partition_id LIMIT $5"
    );
    let (name, id) = after.unzip();
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(environment)
        .bind(name)
        .bind(id)
        .bind(limit + 1)
        .bind(group)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Partition::from)
        .collect())
}

/// Every partition of a customer, locked.
pub async fn all_of(
    conn: &mut PgConnection,
    customer: CustomerId,
) -> Result<Vec<Partition>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM partitions WHERE customer_id = $1 ORDER BY partition_id FOR UPDATE"
    );
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Partition::from)
        .collect())
}

/// Deletes a partition, expires its keys now (the expiry job publishes `apikey.expired`) and
/// publishes `partition.deleted`.
pub async fn delete_with_keys(
    conn: &mut PgConnection,
    p: &Partition,
    cause: &Cause,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE api_keys SET expires_at = now(), version = version + 1
          WHERE customer_id = $1 AND partition_id = $2 AND revoked_at IS NULL
            AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(p.customer_id)
    .bind(p.id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM partitions WHERE customer_id = $1 AND partition_id = $2")
        .bind(p.customer_id)
        .bind(p.id)
        .execute(&mut *conn)
        .await?;
    let mut gone = p.clone();
    gone.version += 1;
    gone.updated_at = shared_model::db::now();
    cause
        .emit(conn, ev::DELETED, p.id, p.customer_id, &gone)
        .await?;
    Ok(())
}
