//! SQL for tag definitions.

use shared_model::error::{ApiError, ResultExt};
use shared_model::events::tenant::Tag;
use shared_model::ids::{ClientId, CustomerId, TagId};
use sqlx::PgConnection;

const COLUMNS: &str = "tag_id AS id, customer_id, name, color, version, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: TagId,
    customer_id: CustomerId,
    name: String,
    color: String,
    version: i64,
    created_at: time::OffsetDateTime,
    updated_at: time::OffsetDateTime,
}

impl From<Row> for Tag {
    fn from(r: Row) -> Tag {
        Tag {
            id: r.id,
            customer_id: r.customer_id,
            name: r.name,
            color: r.color,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn conflicts<T>(r: Result<T, sqlx::Error>) -> Result<T, ApiError> {
    r.on_constraint("tags_name_key", || {
        ApiError::conflict("CONFLICT", "a tag with this name already exists")
    })
}

pub async fn upsert(conn: &mut PgConnection, t: &Tag) -> Result<(), ApiError> {
    let r = sqlx::query(
        "INSERT INTO tags (customer_id, tag_id, name, color, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (customer_id, tag_id) DO UPDATE SET name = $3, color = $4, version = $5,
             updated_at = $7",
    )
    .bind(t.customer_id)
    .bind(t.id)
    .bind(&t.name)
    .bind(&t.color)
    .bind(t.version)
    .bind(t.created_at)
    .bind(t.updated_at)
    .execute(conn)
    .await;
    conflicts(r).map(|_| ())
}

pub async fn find(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: TagId,
    lock: bool,
) -> Result<Option<Tag>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tags WHERE customer_id = $1 AND tag_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(Tag::from))
}

/// Tags by name (case-insensitive order), after the position `(lower(name), id)`.
pub async fn list(
    conn: &mut PgConnection,
    customer: CustomerId,
    after: Option<(String, TagId)>,
    limit: i64,
) -> Result<Vec<Tag>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tags WHERE customer_id = $1
            AND ($2::text IS NULL OR (lower(name), tag_id) > ($2, $3))
          ORDER BY lower(name), tag_id LIMIT $4"
    );
    let (name, id) = after.unzip();
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(name)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Tag::from)
        .collect())
}

pub async fn delete(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: TagId,
) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM tags WHERE customer_id = $1 AND tag_id = $2")
        .bind(customer)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The clients carrying a tag.
pub async fn clients_with(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: TagId,
) -> Result<Vec<ClientId>, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT client_id FROM client_tags WHERE customer_id = $1 AND tag_id = $2
          ORDER BY client_id",
    )
    .bind(customer)
    .bind(id)
    .fetch_all(conn)
    .await?)
}

/// Applies (`on`) or removes a tag; true if that changed anything.
pub async fn set_applied(
    conn: &mut PgConnection,
    customer: CustomerId,
    client: ClientId,
    tag: TagId,
    on: bool,
    actor: &str,
) -> Result<bool, ApiError> {
    let r = if on {
        sqlx::query(
            "INSERT INTO client_tags (customer_id, client_id, tag_id, applied_at, applied_by)
             VALUES ($1, $2, $3, now(), $4) ON CONFLICT DO NOTHING",
        )
        .bind(customer)
        .bind(client)
        .bind(tag)
        .bind(actor)
        .execute(conn)
        .await?
    } else {
        sqlx::query(
            "DELETE FROM client_tags WHERE customer_id = $1 AND client_id = $2 AND tag_id = $3",
        )
        .bind(customer)
        .bind(client)
        .bind(tag)
        .execute(conn)
        .await?
    };
    Ok(r.rows_affected() > 0)
}
