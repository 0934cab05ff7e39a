//! The index in search-sync's own PostgreSQL database (`documents`, migration 1000): trigram
//! and accent-folded matching over GIN indexes.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use shared_model::error::ApiError;
use shared_model::ids::{ClientId, CustomerId, GroupId};
use sqlx::PgConnection;

use super::query::{Query, Results};
use super::{Document, Place, Removal, SearchBackend};

/// The PostgreSQL backend.
pub struct Postgres;

/// The condition of a write under an owner (`$1` kind, `$3` customer, `$4` client): the
/// customer is not a tombstone (for its clients and contacts), nor the client (for its
/// contacts).
macro_rules! unless_owner_deleted {
    () => {
        "      WHERE NOT EXISTS (
            SELECT 1 FROM documents o
             WHERE o.deleted
               AND ((o.kind = 'customer' AND o.id = $3 AND $1 <> 'customer')
                 OR (o.kind = 'client' AND o.id = $4 AND $1 = 'contact')))"
    };
}

/// The upsert: version-guarded, and refused under a deleted owner (the customer's tombstone for
/// its clients and contacts, the client's for its contacts), so that a late event of a deleted
/// owner's entity does not bring it back into the index. `indexed_at` is the write's own time
/// (just before the consumer's commit): what search-freshness measures.
const UPSERT_SQL: &str = concat!(
    r#"INSERT INTO documents (kind, id, customer_id, client_id, parent_id,
        version, name, email, phone, domain, external_id, codes, type, status, tags, assignee,
        country, city, industry_sector, industry_group, size_range, created_at, updated_at,
        enabled, indexed_at)
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
            $19, $20, $21, $22, $23, $24, clock_timestamp()
"#,
    unless_owner_deleted!(),
    r#"
     ON CONFLICT (kind, id) DO UPDATE SET customer_id = EXCLUDED.customer_id,
        client_id = EXCLUDED.client_id, parent_id = EXCLUDED.parent_id,
        version = EXCLUDED.version, deleted = false, name = EXCLUDED.name,
        email = EXCLUDED.email, phone = EXCLUDED.phone, domain = EXCLUDED.domain,
        external_id = EXCLUDED.external_id, codes = EXCLUDED.codes, type = EXCLUDED.type,
        status = EXCLUDED.status, tags = EXCLUDED.tags, assignee = EXCLUDED.assignee,
        country = EXCLUDED.country, city = EXCLUDED.city,
        industry_sector = EXCLUDED.industry_sector, industry_group = EXCLUDED.industry_group,
        size_range = EXCLUDED.size_range, created_at = EXCLUDED.created_at,
        updated_at = EXCLUDED.updated_at, enabled = EXCLUDED.enabled, indexed_at = EXCLUDED.indexed_at
      WHERE documents.version < EXCLUDED.version AND NOT documents.deleted"#
);

/// The tombstone: every searchable field cleared, the version kept; none under a deleted owner
/// (the owner's deletion removed the document already).
const DELETE_SQL: &str = concat!(
    r#"INSERT INTO documents (kind, id, customer_id, client_id, version, deleted, enabled,
        indexed_at)
     SELECT $1, $2, $3, $4, $5, true, false, clock_timestamp()
"#,
    unless_owner_deleted!(),
    r#"
     ON CONFLICT (kind, id) DO UPDATE SET version = EXCLUDED.version, deleted = true, name = '',
        email = NULL, phone = NULL, domain = NULL, external_id = NULL, codes = '{}', type = NULL,
        status = NULL, tags = '{}', assignee = NULL, country = NULL, city = NULL,
        industry_sector = NULL, industry_group = NULL, size_range = NULL, groups = '{}',
        enabled = false, indexed_at = EXCLUDED.indexed_at
      WHERE documents.version < EXCLUDED.version"#
);

impl SearchBackend for Postgres {
    const SEARCH_SETTINGS: &'static [shared_model::db::Setting] = super::search::SEARCH_SETTINGS;

    fn search<'c>(
        conn: &'c mut PgConnection,
        query: &'c Query,
    ) -> BoxFuture<'c, Result<Results, ApiError>> {
        Postgres::run_search(conn, query).boxed()
    }

    fn upsert<'c>(
        conn: &'c mut PgConnection,
        d: &'c Document,
    ) -> BoxFuture<'c, Result<bool, ApiError>> {
        async move {
            let done = sqlx::query(UPSERT_SQL)
                .bind(d.kind.as_str())
                .bind(d.id)
                .bind(d.customer_id)
                .bind(d.client_id)
                .bind(d.parent_id)
                .bind(d.version)
                .bind(&d.name)
                .bind(&d.email)
                .bind(&d.phone)
                .bind(&d.domain)
                .bind(&d.external_id)
                .bind(&d.codes)
                .bind(&d.doc_type)
                .bind(&d.status)
                .bind(&d.tags)
                .bind(&d.assignee)
                .bind(&d.country)
                .bind(&d.city)
                .bind(&d.industry_sector)
                .bind(&d.industry_group)
                .bind(&d.size_range)
                .bind(d.created_at)
                .bind(d.updated_at)
                .bind(d.enabled)
                .execute(conn)
                .await?;
            Ok(done.rows_affected() == 1)
        }
        .boxed()
    }

    fn delete<'c>(conn: &'c mut PgConnection, r: Removal) -> BoxFuture<'c, Result<bool, ApiError>> {
        async move {
            let done = sqlx::query(DELETE_SQL)
                .bind(r.kind.as_str())
                .bind(r.id)
                .bind(r.customer_id)
                .bind(r.client_id)
                .bind(r.version)
                .execute(conn)
                .await?;
            Ok(done.rows_affected() == 1)
        }
        .boxed()
    }

    fn delete_owned<'c>(
        conn: &'c mut PgConnection,
        customer: CustomerId,
        client: Option<ClientId>,
    ) -> BoxFuture<'c, Result<u64, ApiError>> {
        async move {
            let done = match client {
                None => {
                    sqlx::query(
                        "DELETE FROM documents WHERE customer_id = $1 AND kind <> 'customer'",
                    )
                    .bind(customer)
                    .execute(conn)
                    .await?
                }
                Some(client) => {
                    sqlx::query(
                        "DELETE FROM documents
                          WHERE customer_id = $1 AND client_id = $2 AND kind = 'contact'",
                    )
                    .bind(customer)
                    .bind(client)
                    .execute(conn)
                    .await?
                }
            };
            Ok(done.rows_affected())
        }
        .boxed()
    }

    fn set_place<'c>(
        conn: &'c mut PgConnection,
        client: ClientId,
        place: Place,
    ) -> BoxFuture<'c, Result<bool, ApiError>> {
        async move {
            let done = sqlx::query(
                "UPDATE documents SET city = $2, country = $3, indexed_at = clock_timestamp()
                  WHERE kind = 'client' AND id = $1 AND NOT deleted
                    AND (city, country) IS DISTINCT FROM ($2, $3)",
            )
            .bind(client)
            .bind(&place.city)
            .bind(&place.country)
            .execute(conn)
            .await?;
            Ok(done.rows_affected() == 1)
        }
        .boxed()
    }

    fn set_group<'c>(
        conn: &'c mut PgConnection,
        client: ClientId,
        group: GroupId,
        member: bool,
    ) -> BoxFuture<'c, Result<bool, ApiError>> {
        async move {
            let sql = if member {
                "UPDATE documents SET groups = array_append(groups, $2), indexed_at = clock_timestamp()
                  WHERE kind = 'client' AND id = $1 AND NOT deleted AND NOT ($2 = ANY (groups))"
            } else {
                "UPDATE documents SET groups = array_remove(groups, $2), indexed_at = clock_timestamp()
                  WHERE kind = 'client' AND id = $1 AND $2 = ANY (groups)"
            };
            let done = sqlx::query(sql)
                .bind(client)
                .bind(group)
                .execute(conn)
                .await?;
            Ok(done.rows_affected() == 1)
        }
        .boxed()
    }
}
