//! Deactivation, reactivation and purge of customers, shared by the endpoints, the cascade
//! reactions and the purge job.

use shared_model::db;
use shared_model::error::ApiError;
use shared_model::events::Updated;
use shared_model::events::customer::{self as ev, Customer};
use shared_model::ids::CustomerId;
use shared_model::model::{CustomerStatus, DeactivationReason};
use shared_model::outbox::Cause;
use sqlx::PgConnection;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::customers::store as customers;

/// Feedback given with a deactivation.
#[derive(Clone, Debug)]
pub struct Feedback {
    pub reason_code: DeactivationReason,
    pub text: Option<String>,
    pub recommendation_score: Option<i16>,
    pub context: Option<serde_json::Value>,
}

/// Deactivates a locked, active customer: status, window, audit row and `customer.deactivated`.
pub async fn deactivate(
    tx: &mut PgConnection,
    mut c: Customer,
    window_ends_at: OffsetDateTime,
    feedback: &Feedback,
    cause: &str,
    by: &Cause,
) -> Result<Customer, ApiError> {
    let now = db::now();
    c.status = CustomerStatus::Deactivated;
    c.deactivated_at = Some(now);
    c.window_ends_at = Some(window_ends_at);
    c.version += 1;
    c.updated_at = now;
    c.updated_by = by.actor().to_string();
    customers::update(tx, &c).await?;
    sqlx::query("UPDATE customers SET deactivation_cause = $2 WHERE customer_id = $1")
        .bind(c.id)
        .bind(cause)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO deactivations (customer_id, deactivation_id, customer_name, requested_by,
             cause, deactivated_at, window_ends_at, reason_code, feedback_text,
             recommendation_score, context)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(c.id)
    .bind(uuid::Uuid::now_v7())
    .bind(&c.name)
    .bind(by.actor())
    .bind(cause)
    .bind(now)
    .bind(window_ends_at)
    .bind(feedback.reason_code)
    .bind(&feedback.text)
    .bind(feedback.recommendation_score)
    .bind(feedback.context.as_ref().map(Json))
    .execute(&mut *tx)
    .await?;
    by.emit(
        tx,
        ev::DEACTIVATED,
        c.id,
        c.id,
        &Updated::of(&c, &["status"]),
    )
    .await?;
    tracing::info!(customer_id = %c.id, cause, "customer deactivated");
    Ok(c)
}

/// Why a deactivated customer is deactivated.
pub async fn cause(tx: &mut PgConnection, id: CustomerId) -> Result<Option<String>, ApiError> {
    Ok(
        sqlx::query_scalar("SELECT deactivation_cause FROM customers WHERE customer_id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .flatten(),
    )
}

/// Reactivates a locked, deactivated customer whose window has not ended.
pub async fn reactivate(
    tx: &mut PgConnection,
    mut c: Customer,
    by: &Cause,
) -> Result<Customer, ApiError> {
    let now = db::now();
    c.status = CustomerStatus::Active;
    c.deactivated_at = None;
    c.window_ends_at = None;
    c.version += 1;
    c.updated_at = now;
    c.updated_by = by.actor().to_string();
    customers::update(tx, &c).await?;
    sqlx::query("UPDATE customers SET deactivation_cause = NULL WHERE customer_id = $1")
        .bind(c.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE deactivations SET reactivated_at = $2, reactivated_by = $3
          WHERE customer_id = $1 AND reactivated_at IS NULL AND purged_at IS NULL",
    )
    .bind(c.id)
    .bind(now)
    .bind(by.actor())
    .execute(&mut *tx)
    .await?;
    by.emit(
        tx,
        ev::REACTIVATED,
        c.id,
        c.id,
        &Updated::of(&c, &["status"]),
    )
    .await?;
    tracing::info!(customer_id = %c.id, "customer reactivated");
    Ok(c)
}

/// Advisory lock key of the purge job (one purger at a time across replicas).
const PURGE_LOCK_KEY: i64 = 0x0070_7572_6765; // "purge"

/// Purges up to `batch` customers whose window has ended, in one transaction, if no other
/// replica is purging. Returns how many were purged.
pub async fn purge_due(pool: &sqlx::PgPool, batch: i64) -> Result<usize, ApiError> {
    let mut tx = db::begin(pool, db::Scope::System).await?;
    let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(PURGE_LOCK_KEY)
        .fetch_one(&mut *tx)
        .await?;
    if !leader {
        return Ok(0);
    }
    let due: Vec<CustomerId> = sqlx::query_scalar(
        "SELECT customer_id FROM customers
          WHERE status = 'deactivated' AND window_ends_at <= now()
          ORDER BY window_ends_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    // A run of the purge is a trace of its own.
    let by = Cause::job(crate::SOURCE);
    let mut n = 0;
    for id in due {
        let Some(mut c) = customers::find(&mut tx, id, true).await? else {
            continue;
        };
        customers::delete(&mut tx, id).await?;
        sqlx::query(
            "UPDATE deactivations SET purged_at = now()
              WHERE customer_id = $1 AND reactivated_at IS NULL AND purged_at IS NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        c.version += 1;
        c.updated_at = db::now();
        c.updated_by = by.actor().to_string();
        by.emit(&mut tx, ev::DELETED, c.id, c.id, &c).await?;
        tracing::info!(customer_id = %id, "customer purged after its grace window");
        n += 1;
    }
    tx.commit().await?;
    Ok(n)
}

/// One row of the deactivation report.
#[derive(Debug, sqlx::FromRow)]
pub struct DeactivationRow {
    pub customer_id: CustomerId,
    pub deactivation_id: uuid::Uuid,
    pub customer_name: String,
    pub requested_by: String,
    pub cause: String,
    pub deactivated_at: OffsetDateTime,
    pub window_ends_at: OffsetDateTime,
    pub reason_code: DeactivationReason,
    pub feedback_text: Option<String>,
    pub recommendation_score: Option<i16>,
    pub context: Option<Json<serde_json::Value>>,
    pub reactivated_at: Option<OffsetDateTime>,
    pub purged_at: Option<OffsetDateTime>,
}

/// Deactivations in `[from, to)`, newest first, after `(deactivated_at, id)`.
pub async fn deactivations(
    tx: &mut PgConnection,
    from: OffsetDateTime,
    to: OffsetDateTime,
    reason: Option<DeactivationReason>,
    after: Option<(OffsetDateTime, uuid::Uuid)>,
    limit: i64,
) -> Result<Vec<DeactivationRow>, ApiError> {
    let (at, id) = after.unzip();
    Ok(sqlx::query_as(
        "SELECT customer_id, deactivation_id, customer_name, requested_by, cause, deactivated_at,
                window_ends_at, reason_code, feedback_text, recommendation_score, context,
                reactivated_at, purged_at
           FROM deactivations
          WHERE deactivated_at >= $1 AND deactivated_at < $2
            AND ($3::text IS NULL OR reason_code = $3)
            AND ($4::timestamptz IS NULL OR (deactivated_at, deactivation_id) < ($4, $5))
          ORDER BY deactivated_at DESC, deactivation_id DESC LIMIT $6",
    )
    .bind(from)
    .bind(to)
    .bind(reason)
    .bind(at)
    .bind(id)
    .bind(limit + 1)
    .fetch_all(&mut *tx)
    .await?)
}

/// Counts per reason and the average recommendation score in `[from, to)`.
pub async fn summary(
    tx: &mut PgConnection,
    from: OffsetDateTime,
    to: OffsetDateTime,
    reason: Option<DeactivationReason>,
) -> Result<(Vec<(String, i64)>, Option<f64>, i64), ApiError> {
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT reason_code, count(*) FROM deactivations
          WHERE deactivated_at >= $1 AND deactivated_at < $2
            AND ($3::text IS NULL OR reason_code = $3)
          GROUP BY 1 ORDER BY 1",
    )
    .bind(from)
    .bind(to)
    .bind(reason)
    .fetch_all(&mut *tx)
    .await?;
    let (avg, scored): (Option<f64>, i64) = sqlx::query_as(
        "SELECT avg(recommendation_score)::float8, count(recommendation_score) FROM deactivations
          WHERE deactivated_at >= $1 AND deactivated_at < $2
            AND ($3::text IS NULL OR reason_code = $3)",
    )
    .bind(from)
    .bind(to)
    .bind(reason)
    .fetch_one(&mut *tx)
    .await?;
    Ok((counts, avg, scored))
}
