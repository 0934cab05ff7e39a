//! The SQL of registration settings and domains.

use shared_model::error::{ApiError, ResultExt};
use shared_model::ids::CustomerId;
use shared_model::model::CustomerStatus;
use sqlx::PgConnection;
use time::OffsetDateTime;

use super::routes::Registration;

#[derive(sqlx::FromRow)]
struct Row {
    customer_id: CustomerId,
    enabled: bool,
    auto_roles: Vec<String>,
    custom_host: Option<String>,
    version: i64,
    updated_at: OffsetDateTime,
    updated_by: String,
    domains: Vec<String>,
}

pub async fn load(
    conn: &mut PgConnection,
    id: CustomerId,
    lock: bool,
) -> Result<Option<Registration>, ApiError> {
    let sql = format!(
        "SELECT s.customer_id, s.enabled, s.auto_roles, s.custom_host, s.version, s.updated_at,
                s.updated_by,
                ARRAY(SELECT d.domain FROM registration_domains d
                       WHERE d.customer_id = s.customer_id ORDER BY d.domain) AS domains
           FROM registration_settings s WHERE s.customer_id = $1{}",
        if lock { " FOR UPDATE OF s" } else { "" }
    );
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| Registration {
        customer_id: r.customer_id,
        enabled: r.enabled,
        allowed_domains: r.domains,
        auto_assign_roles: r.auto_roles,
        custom_host: r.custom_host,
        version: r.version,
        updated_at: r.updated_at,
        updated_by: r.updated_by,
    }))
}

/// Stores `r` and its domains (a domain another customer holds is left out); returns the
/// domains the customer holds now.
pub async fn save(conn: &mut PgConnection, r: &Registration) -> Result<Vec<String>, ApiError> {
    sqlx::query(
        "INSERT INTO registration_settings (customer_id, enabled, auto_roles, custom_host, version,
             updated_at, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (customer_id) DO UPDATE SET enabled = $2, auto_roles = $3, custom_host = $4,
             version = $5, updated_at = $6, updated_by = $7",
    )
    .bind(r.customer_id)
    .bind(r.enabled)
    .bind(&r.auto_assign_roles)
    .bind(&r.custom_host)
    .bind(r.version)
    .bind(r.updated_at)
    .bind(&r.updated_by)
    .execute(&mut *conn)
    .await
    .on_constraint("registration_settings_custom_host_key", || {
        ApiError::conflict("HOST_TAKEN", "customHost is used by another customer")
    })?;
    sqlx::query(
        "DELETE FROM registration_domains WHERE customer_id = $1 AND NOT (domain = ANY($2))",
    )
    .bind(r.customer_id)
    .bind(&r.allowed_domains)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO registration_domains (domain, customer_id)
         SELECT d, $1 FROM unnest($2::text[]) AS d
         ON CONFLICT (domain) DO NOTHING",
    )
    .bind(r.customer_id)
    .bind(&r.allowed_domains)
    .execute(&mut *conn)
    .await?;
    // A domain another customer holds (RLS hides its row; the key still collides) is not
    // inserted above: find which. A racing claim waits for the first to commit, then sees it.
    let mine: Vec<String> =
        sqlx::query_scalar("SELECT domain FROM registration_domains WHERE customer_id = $1")
            .bind(r.customer_id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(mine)
}

/// (customer, registration enabled, roles, customer status, session expiration).
pub type Candidate = (CustomerId, bool, Vec<String>, CustomerStatus, Option<i32>);

/// The customer whose registration domain `domain` is (and whose custom host is `host`, when
/// one is given).
pub async fn candidate(
    conn: &mut PgConnection,
    domain: &str,
    host: Option<&str>,
) -> Result<Option<Candidate>, ApiError> {
    let by_host: Option<CustomerId> = match host {
        Some(h) => {
            sqlx::query_scalar(
                "SELECT customer_id FROM registration_settings WHERE custom_host = $1",
            )
            .bind(h)
            .fetch_optional(&mut *conn)
            .await?
        }
        None => None,
    };
    Ok(sqlx::query_as(
        "SELECT s.customer_id, s.enabled, s.auto_roles, c.status, c.session_expiration_seconds
           FROM registration_domains d
           JOIN registration_settings s ON s.customer_id = d.customer_id
           JOIN customers c ON c.customer_id = s.customer_id
          WHERE d.domain = $1 AND ($2::uuid IS NULL OR d.customer_id = $2)",
    )
    .bind(domain)
    .bind(by_host)
    .fetch_optional(&mut *conn)
    .await?)
}
