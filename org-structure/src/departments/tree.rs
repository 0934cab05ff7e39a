//! The department tree of one owner: at most [`MAX_DEPTH`] levels, no cycles. Changes of a
//! parent are serialized per owner, so two moves cannot together make a cycle.

use shared_model::error::ApiError;
use shared_model::ids::DepartmentId;
use sqlx::PgConnection;

use crate::entity;
use crate::owners::Owner;

/// Levels of a department tree, the top level counting as one.
pub const MAX_DEPTH: i32 = 5;

/// Holds the owner's tree until the end of the transaction.
pub async fn lock(conn: &mut PgConnection, owner: &Owner) -> Result<(), ApiError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text || '/departments', 0))")
        .bind(owner.id())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The level of `id` (1 at the top), walking up its parents.
async fn depth(conn: &mut PgConnection, owner: &Owner, id: DepartmentId) -> Result<i32, ApiError> {
    let depth: Option<i32> = sqlx::query_scalar(
        "WITH RECURSIVE up (id, parent, depth) AS (
             SELECT department_id, parent_id, 1 FROM departments
              WHERE customer_id = $1 AND owner_id = $2 AND department_id = $3
             UNION ALL
             SELECT d.department_id, d.parent_id, up.depth + 1
               FROM departments d JOIN up
                 ON d.customer_id = $1 AND d.owner_id = $2 AND d.department_id = up.parent
              WHERE up.depth <= $4)
         SELECT max(depth) FROM up",
    )
    .bind(owner.customer)
    .bind(owner.id())
    .bind(id)
    .bind(MAX_DEPTH)
    .fetch_one(&mut *conn)
    .await?;
    Ok(depth.unwrap_or(0))
}

/// The height of the subtree under `id` (1 for a leaf) and whether `other` lies in it.
async fn subtree(
    conn: &mut PgConnection,
    owner: &Owner,
    id: DepartmentId,
    other: DepartmentId,
) -> Result<(i32, bool), ApiError> {
    let (height, contains): (Option<i32>, Option<bool>) = sqlx::query_as(
        "WITH RECURSIVE down (id, depth) AS (
             SELECT $3::uuid, 1
             UNION ALL
             SELECT d.department_id, down.depth + 1
               FROM departments d JOIN down
                 ON d.customer_id = $1 AND d.owner_id = $2 AND d.parent_id = down.id
              WHERE down.depth <= $5)
         SELECT max(depth), bool_or(id = $4) FROM down",
    )
    .bind(owner.customer)
    .bind(owner.id())
    .bind(id)
    .bind(other)
    .bind(MAX_DEPTH)
    .fetch_one(&mut *conn)
    .await?;
    Ok((height.unwrap_or(1), contains.unwrap_or(false)))
}

/// `parent` can hold `department` (a new one when None): it is a department of the owner, not
/// the department itself nor below it, and the tree stays within [`MAX_DEPTH`] levels. 422 on
/// `parentId` otherwise. Call with the tree locked.
pub async fn check_parent(
    conn: &mut PgConnection,
    owner: &Owner,
    department: Option<DepartmentId>,
    parent: DepartmentId,
) -> Result<(), ApiError> {
    if entity::find(conn, owner, parent, false).await?.is_none() {
        return Err(ApiError::field(
            "parentId",
            "must name a department of the same owner",
        ));
    }
    let height = match department {
        None => 1,
        Some(id) => {
            let (height, below) = subtree(conn, owner, id, parent).await?;
            if below || id == parent {
                return Err(ApiError::field(
                    "parentId",
                    "must not be the department itself or one below it",
                ));
            }
            height
        }
    };
    if depth(conn, owner, parent).await? + height > MAX_DEPTH {
        return Err(ApiError::field(
            "parentId",
            format!("would make the tree deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(())
}
