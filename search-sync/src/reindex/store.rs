//! SQL for reindexes: their rows, the rebuild beside the live index, and the switch.

use shared_model::error::ApiError;
use shared_model::ids::CustomerId;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;

use super::ENTITIES;
use crate::index::Document;

/// What a document holds besides its key (`kind`, `id`), in the order `rebuild` binds them:
/// the columns the next generation copies into the live index.
const FIELDS: [&str; 23] = [
    "customer_id",
    "client_id",
    "parent_id",
    "version",
    "name",
    "email",
    "phone",
    "domain",
    "external_id",
    "codes",
    "type",
    "status",
    "enabled",
    "tags",
    "assignee",
    "country",
    "city",
    "industry_sector",
    "industry_group",
    "size_range",
    "groups",
    "created_at",
    "updated_at",
];

/// The fields, each prefixed with `table.` (none with an empty prefix), comma-separated.
fn fields(table: &str) -> String {
    let dot = if table.is_empty() { "" } else { "." };
    FIELDS
        .iter()
        .map(|c| format!("{table}{dot}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `field = EXCLUDED.field, ...`: an upsert taking every field from the row it was given.
fn set_all() -> String {
    FIELDS
        .iter()
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Row {
    pub reindex_id: uuid::Uuid,
    pub customer_id: Option<CustomerId>,
    pub state: String,
    pub requested_by: String,
    pub requested_at: OffsetDateTime,
    pub progress_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
    pub error: Option<String>,
    pub written: i64,
    pub removed: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Part {
    pub entity: String,
    pub source: Option<String>,
    pub expected: Option<i64>,
    pub received: i64,
    pub done: bool,
}

const COLUMNS: &str = "reindex_id, customer_id, state, requested_by, requested_at, progress_at, \
    completed_at, error, written, removed";

/// Records a running reindex and the parts it waits for; false if one is running already.
pub async fn insert(conn: &mut PgConnection, r: &Row) -> Result<bool, ApiError> {
    let inserted = sqlx::query(
        "INSERT INTO reindexes (reindex_id, customer_id, state, requested_by, requested_at,
             progress_at)
         VALUES ($1, $2, 'running', $3, $4, $4)
         ON CONFLICT ((true)) WHERE state = 'running' DO NOTHING",
    )
    .bind(r.reindex_id)
    .bind(r.customer_id)
    .bind(&r.requested_by)
    .bind(r.requested_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO reindex_parts (reindex_id, entity, position)
         SELECT $1, e, p::int FROM UNNEST($2::text[]) WITH ORDINALITY AS t(e, p)",
    )
    .bind(r.reindex_id)
    .bind(ENTITIES)
    .execute(conn)
    .await?;
    Ok(true)
}

pub async fn running(conn: &mut PgConnection) -> Result<Option<uuid::Uuid>, ApiError> {
    Ok(
        sqlx::query_scalar("SELECT reindex_id FROM reindexes WHERE state = 'running'")
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn get(conn: &mut PgConnection, id: uuid::Uuid) -> Result<Option<Row>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM reindexes WHERE reindex_id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// The running reindex `id`, locked: pages of one reindex apply one after the other.
pub async fn lock_running(
    conn: &mut PgConnection,
    id: uuid::Uuid,
) -> Result<Option<Row>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM reindexes WHERE reindex_id = $1 AND state = 'running' FOR UPDATE"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

pub async fn parts(conn: &mut PgConnection, id: uuid::Uuid) -> Result<Vec<Part>, ApiError> {
    Ok(sqlx::query_as(
        "SELECT entity, source, expected, received, done FROM reindex_parts
          WHERE reindex_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(conn)
    .await?)
}

/// A source's announcement: who sends the entity and how many to expect.
pub async fn expect(
    conn: &mut PgConnection,
    id: uuid::Uuid,
    entity: &str,
    source: &str,
    expected: i64,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE reindex_parts SET source = $3, expected = $4 WHERE reindex_id = $1 AND entity = $2",
    )
    .bind(id)
    .bind(entity)
    .bind(source)
    .bind(expected)
    .execute(&mut *conn)
    .await?;
    touch(conn, id).await
}

/// A page received: page `sequence` of the entity, holding `n` of it, and whether it was the
/// last. The part is done once every page up to the last has been applied.
pub async fn received(
    conn: &mut PgConnection,
    id: uuid::Uuid,
    entity: &str,
    source: &str,
    n: i64,
    (sequence, last): (i64, bool),
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE reindex_parts SET source = $3, received = received + $4, pages = pages + 1,
                last_page = CASE WHEN $5 THEN $6 ELSE last_page END,
                done = coalesce(pages + 1 = CASE WHEN $5 THEN $6 ELSE last_page END, false)
          WHERE reindex_id = $1 AND entity = $2",
    )
    .bind(id)
    .bind(entity)
    .bind(source)
    .bind(n)
    .bind(last)
    .bind(sequence)
    .execute(&mut *conn)
    .await?;
    touch(conn, id).await
}

async fn touch(conn: &mut PgConnection, id: uuid::Uuid) -> Result<(), ApiError> {
    sqlx::query("UPDATE reindexes SET progress_at = clock_timestamp() WHERE reindex_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes documents of the next generation (a later page's copy of one wins).
pub async fn rebuild(
    conn: &mut PgConnection,
    id: uuid::Uuid,
    docs: &[(Document, Vec<uuid::Uuid>)],
) -> Result<(), ApiError> {
    if docs.is_empty() {
        return Ok(());
    }
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "INSERT INTO rebuild_documents (reindex_id, kind, id, {}) ",
        fields("")
    ));
    q.push_values(docs, |mut b, (d, groups)| {
        b.push_bind(id)
            .push_bind(d.kind.as_str())
            .push_bind(d.id)
            .push_bind(d.customer_id)
            .push_bind(d.client_id)
            .push_bind(d.parent_id)
            .push_bind(d.version)
            .push_bind(d.name.clone())
            .push_bind(d.email.clone())
            .push_bind(d.phone.clone())
            .push_bind(d.domain.clone())
            .push_bind(d.external_id.clone())
            .push_bind(d.codes.clone())
            .push_bind(d.doc_type.clone())
            .push_bind(d.status.clone())
            .push_bind(d.enabled)
            .push_bind(d.tags.clone())
            .push_bind(d.assignee.clone())
            .push_bind(d.country.clone())
            .push_bind(d.city.clone())
            .push_bind(d.industry_sector.clone())
            .push_bind(d.industry_group.clone())
            .push_bind(d.size_range.clone())
            .push_bind(groups.clone())
            .push_bind(d.created_at)
            .push_bind(d.updated_at);
    });
    q.push(format!(
        " ON CONFLICT (reindex_id, kind, id) DO UPDATE SET {}
          WHERE rebuild_documents.version <= EXCLUDED.version",
        set_all()
    ));
    q.build().execute(conn).await?;
    Ok(())
}

/// The switch, in the caller's transaction: clients of the rebuild take their place from the
/// address book; each rebuilt document replaces the live one unless the live one is newer
/// (a higher version, or the same version written since the reindex was asked for) or a
/// tombstone, or its owner is one; live documents of the reindex's scope that no snapshot
/// holds and that nothing wrote since the reindex was asked for become tombstones. Returns
/// (written, removed).
pub async fn switch(conn: &mut PgConnection, r: &Row) -> Result<(u64, u64), ApiError> {
    sqlx::query(
        "UPDATE rebuild_documents r SET (city, country) = (
             SELECT a.city, a.country FROM client_addresses a
              WHERE a.customer_id = r.customer_id AND a.client_id = r.id AND NOT a.deleted
              ORDER BY a.default_billing DESC, a.default_shipping DESC,
                       CASE WHEN a.default_billing OR a.default_shipping THEN a.updated_at END DESC,
                       a.created_at, a.address_id
              LIMIT 1)
          WHERE r.reindex_id = $1 AND r.kind = 'client'",
    )
    .bind(r.reindex_id)
    .execute(&mut *conn)
    .await?;
    let written = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO documents AS d (kind, id, {fields}, indexed_at)
         SELECT r.kind, r.id, {rebuilt}, clock_timestamp()
           FROM rebuild_documents r
          WHERE r.reindex_id = $1
            AND NOT EXISTS (
                SELECT 1 FROM documents o
                 WHERE o.deleted
                   AND ((o.kind = 'customer' AND o.id = r.customer_id AND r.kind <> 'customer')
                     OR (o.kind = 'client' AND o.id = r.client_id AND r.kind = 'contact')))
         ON CONFLICT (kind, id) DO UPDATE SET {set}, indexed_at = EXCLUDED.indexed_at
          WHERE NOT d.deleted
            AND (d.version < EXCLUDED.version
                 OR (d.version = EXCLUDED.version AND d.indexed_at < $2))
            AND ({live}) IS DISTINCT FROM ({excluded})",
        fields = fields(""),
        rebuilt = fields("r"),
        set = set_all(),
        live = fields("d"),
        excluded = fields("EXCLUDED"),
    )))
    .bind(r.reindex_id)
    .bind(r.requested_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let removed = sqlx::query(
        "UPDATE documents d SET deleted = true, name = '', email = NULL, phone = NULL,
                domain = NULL, external_id = NULL, codes = '{}', type = NULL, status = NULL,
                tags = '{}', assignee = NULL, country = NULL, city = NULL,
                industry_sector = NULL, industry_group = NULL, size_range = NULL,
                groups = '{}', enabled = false, indexed_at = clock_timestamp()
          WHERE NOT d.deleted AND ($2::uuid IS NULL OR d.customer_id = $2)
            AND d.indexed_at < $3
            AND NOT EXISTS (SELECT 1 FROM rebuild_documents r
                             WHERE r.reindex_id = $1 AND r.kind = d.kind AND r.id = d.id)",
    )
    .bind(r.reindex_id)
    .bind(r.customer_id)
    .bind(r.requested_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM rebuild_documents WHERE reindex_id = $1")
        .bind(r.reindex_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE reindexes SET state = 'completed', completed_at = clock_timestamp(),
                written = $2, removed = $3
          WHERE reindex_id = $1",
    )
    .bind(r.reindex_id)
    .bind(written as i64)
    .bind(removed as i64)
    .execute(conn)
    .await?;
    Ok((written, removed))
}

/// Fails the running reindexes that received nothing for `stall` seconds, dropping their
/// rebuilds; returns their ids.
pub async fn fail_stalled(
    conn: &mut PgConnection,
    stall: i64,
) -> Result<Vec<uuid::Uuid>, ApiError> {
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE reindexes SET state = 'failed', completed_at = clock_timestamp(),
                error = 'no snapshot page arrived for ' || $1::bigint
                        || ' s: is every owning service running?'
          WHERE state = 'running'
            AND progress_at < clock_timestamp() - make_interval(secs => $1::bigint)
          RETURNING reindex_id",
    )
    .bind(stall)
    .fetch_all(&mut *conn)
    .await?;
    if !ids.is_empty() {
        sqlx::query("DELETE FROM rebuild_documents WHERE reindex_id = ANY($1)")
            .bind(&ids)
            .execute(conn)
            .await?;
    }
    Ok(ids)
}
