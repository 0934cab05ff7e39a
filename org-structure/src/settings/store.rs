//! SQL of the per-customer settings.

use shared_model::error::ApiError;
use shared_model::events::org::OrgSettings;
use shared_model::ids::CustomerId;
use sqlx::PgConnection;

/// The customer's settings (the defaults, version 0, when never changed); `lock` locks them.
pub async fn get(
    conn: &mut PgConnection,
    customer: CustomerId,
    lock: bool,
) -> Result<OrgSettings, ApiError> {
    let sql = format!(
        "SELECT client_hq_from_address, version, updated_at FROM org_settings
          WHERE customer_id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<(bool, i64, time::OffsetDateTime)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .fetch_optional(conn)
        .await?;
    let (client_hq_from_address, version, updated_at) =
        row.unwrap_or((false, 0, time::OffsetDateTime::UNIX_EPOCH));
    Ok(OrgSettings {
        customer_id: customer,
        client_hq_from_address,
        version,
        updated_at,
    })
}

pub async fn save(conn: &mut PgConnection, s: &OrgSettings) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO org_settings (customer_id, client_hq_from_address, version, updated_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (customer_id) DO UPDATE
            SET client_hq_from_address = $2, version = $3, updated_at = $4",
    )
    .bind(s.customer_id)
    .bind(s.client_hq_from_address)
    .bind(s.version)
    .bind(s.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}
