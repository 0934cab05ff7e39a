//! The SQL of partition groups.

use shared_model::error::{ApiError, ResultExt};
use shared_model::events::partition::PartitionGroup;
use shared_model::ids::{CustomerId, PartitionGroupId, PartitionId};
use sqlx::PgConnection;
use time::OffsetDateTime;

const COLUMNS: &str = "g.group_id AS id, g.customer_id, g.name, g.description, g.parent_group_id,
    (SELECT count(*) FROM partitions p WHERE p.customer_id = g.customer_id
        AND p.group_id = g.group_id) AS partition_count,
    g.version, g.created_at, g.updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: PartitionGroupId,
    customer_id: CustomerId,
    name: String,
    description: Option<String>,
    parent_group_id: Option<PartitionGroupId>,
    partition_count: i64,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<Row> for PartitionGroup {
    fn from(r: Row) -> Self {
        PartitionGroup {
            id: r.id,
            customer_id: r.customer_id,
            name: r.name,
            description: r.description,
            parent_group_id: r.parent_group_id,
            partition_count: r.partition_count,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub async fn find(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: PartitionGroupId,
    lock: bool,
) -> Result<Option<PartitionGroup>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM partition_groups g WHERE g.customer_id = $1 AND g.group_id = $2{}",
        if lock { " FOR UPDATE OF g" } else { "" }
    );
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(PartitionGroup::from))
}

pub async fn upsert(conn: &mut PgConnection, g: &PartitionGroup) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO partition_groups (customer_id, group_id, name, description, parent_group_id,
             version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (customer_id, group_id) DO UPDATE SET name = $3, description = $4,
             parent_group_id = $5, version = $6, updated_at = $8",
    )
    .bind(g.customer_id)
    .bind(g.id)
    .bind(&g.name)
    .bind(&g.description)
    .bind(g.parent_group_id)
    .bind(g.version)
    .bind(g.created_at)
    .bind(g.updated_at)
    .execute(conn)
    .await
    .on_constraint("partition_groups_name_key", || {
        ApiError::conflict(
            "CONFLICT",
            "a partition group with this name already exists",
        )
    })?;
    Ok(())
}

/// Checks a parent: it exists and is not `id` itself or one of its descendants.
pub async fn check_parent(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: PartitionGroupId,
    parent: PartitionGroupId,
) -> Result<(), ApiError> {
    if parent == id {
        return Err(ApiError::field(
            "parentGroupId",
            "must not be the group itself",
        ));
    }
    // The parent's ancestors (itself included); the group must not be among them.
    let ancestors: Vec<PartitionGroupId> = sqlx::query_scalar(
        "WITH RECURSIVE up (group_id, parent_group_id, depth) AS (
             SELECT group_id, parent_group_id, 0 FROM partition_groups
              WHERE customer_id = $1 AND group_id = $2
             UNION ALL
             SELECT g.group_id, g.parent_group_id, up.depth + 1 FROM partition_groups g
               JOIN up ON g.customer_id = $1 AND g.group_id = up.parent_group_id
              WHERE up.depth < 1000)
         SELECT group_id FROM up",
    )
    .bind(customer)
    .bind(parent)
    .fetch_all(&mut *conn)
    .await?;
    if ancestors.is_empty() {
        return Err(ApiError::field(
            "parentGroupId",
            "must name a partition group of this customer",
        ));
    }
    if ancestors.contains(&id) {
        return Err(ApiError::field(
            "parentGroupId",
            "would make a cycle: the parent is inside this group",
        ));
    }
    Ok(())
}

/// A page of a customer's groups by name, after `(lower(name), id)`.
pub async fn list(
    conn: &mut PgConnection,
    customer: CustomerId,
    after: Option<(String, PartitionGroupId)>,
    limit: i64,
) -> Result<Vec<PartitionGroup>, ApiError> {
    let (name, id) = after.unzip();
    let sql = format!(
        "SELECT {COLUMNS} FROM partition_groups g WHERE g.customer_id = $1
            AND ($2::text IS NULL OR (lower(g.name), g.group_id) > ($2, $3))
          ORDER BY lower(g.name), g.group_id LIMIT $4"
    );
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(name)
        .bind(id)
        .bind(limit)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(PartitionGroup::from)
        .collect())
}

/// Serializes changes to a customer's tree until the transaction ends, so two moves cannot
/// close a cycle together.
pub async fn lock_tree(conn: &mut PgConnection, customer: CustomerId) -> Result<(), ApiError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
        .bind(customer)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes a group, first locking its member partitions and child groups (whose references
/// the foreign keys clear); returns them.
pub async fn delete(
    conn: &mut PgConnection,
    customer: CustomerId,
    group: PartitionGroupId,
) -> Result<(Vec<PartitionId>, Vec<PartitionGroupId>), ApiError> {
    let members: Vec<PartitionId> = sqlx::query_scalar(
        "SELECT partition_id FROM partitions WHERE customer_id = $1 AND group_id = $2 FOR UPDATE",
    )
    .bind(customer)
    .bind(group)
    .fetch_all(&mut *conn)
    .await?;
    let children: Vec<PartitionGroupId> = sqlx::query_scalar(
        "SELECT group_id FROM partition_groups WHERE customer_id = $1 AND parent_group_id = $2
          FOR UPDATE",
    )
    .bind(customer)
    .bind(group)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM partition_groups WHERE customer_id = $1 AND group_id = $2")
        .bind(customer)
        .bind(group)
        .execute(&mut *conn)
        .await?;
    Ok((members, children))
}

/// Removes a deleted customer's partition groups (its partitions are gone already).
pub async fn delete_all_of(conn: &mut PgConnection, id: CustomerId) -> Result<u64, ApiError> {
    Ok(
        sqlx::query("DELETE FROM partition_groups WHERE customer_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}
