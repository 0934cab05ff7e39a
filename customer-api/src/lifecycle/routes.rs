//! Customer lifecycle: `POST /v1/customers/{id}/deactivate`, `.../reactivate`, the purge job
//! and `GET /v1/deactivations` (the feedback report for platform admins).
//!
//! A deactivated customer keeps its data, readable to its admins, until its window ends; every
//! write to it is refused with 409 `CUSTOMER_DEACTIVATED`. Reactivation is possible until the
//! window ends (409 `GRACE_PERIOD_ENDED` after). Once it has ended, the purge job (one purger
//! at a time across replicas, by advisory lock) deletes the customer with everything it owns
//! and publishes `customer.deleted`, once.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::{Caller, Permission};
use shared_model::db;
use shared_model::error::{ApiError, ApiJson, Problem, Validator};
use shared_model::events::customer::Customer;
use shared_model::http::idempotency::Idempotency;
use shared_model::http::{
    ApiPath, ApiQuery, Page, Trace, decode_cursor, page, page_limit, with_etag,
};
use shared_model::ids::CustomerId;
use shared_model::model::{CustomerStatus, DeactivationReason};
use shared_model::outbox::Cause;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store::{self, Feedback};
use crate::AppState;
use crate::customers::store as customers;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(deactivate_customer))
        .routes(routes!(reactivate_customer))
        .routes(routes!(list_deactivations))
}

/// Deactivation feedback.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeedbackBody {
    pub reason_code: DeactivationReason,
    /// At most 2,000 characters.
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text2000>)]
    pub text: Option<String>,
    /// 0 to 10: how likely the customer would recommend the product.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 10)]
    pub recommendation_score: Option<i32>,
    /// Free-form JSON object (at most 4 KiB), e.g. the plan or the screen the user left from.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Value>,
}

/// Body of `POST /v1/customers/{id}/deactivate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deactivate {
    /// RFC 3339; in the future and at most `service.max_window_days` (default 90) ahead. The
    /// customer can be reactivated until then and is purged after.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub window_ends_at: OffsetDateTime,
    pub feedback: FeedbackBody,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// RFC 3339 start (inclusive); default 30 days ago.
    pub from: Option<String>,
    /// RFC 3339 end (exclusive); default now.
    pub to: Option<String>,
    #[param(value_type = Option<DeactivationReason>)]
    pub reason_code: Option<DeactivationReason>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page, as returned (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

/// One deactivation in the report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeactivationEntry {
    pub customer_id: CustomerId,
    pub customer_name: String,
    pub requested_by: String,
    /// `request`, or `customer:<id>` / `client:<id>` for a cascade.
    pub cause: String,
    #[serde(with = "time::serde::rfc3339")]
    pub deactivated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub window_ends_at: OffsetDateTime,
    pub reason_code: DeactivationReason,
    pub text: Option<String>,
    pub recommendation_score: Option<i16>,
    pub context: Option<serde_json::Value>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub reactivated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub purged_at: Option<OffsetDateTime>,
}

/// `GET /v1/deactivations`: a page of deactivations and the summary of the whole range.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeactivationReport {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub total: i64,
    pub by_reason: BTreeMap<String, i64>,
    /// Over the deactivations that gave a score; null if none did.
    pub average_recommendation_score: Option<f64>,
    pub scored: i64,
    pub items: Vec<DeactivationEntry>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Position(
    #[serde(with = "time::serde::rfc3339")] OffsetDateTime,
    uuid::Uuid,
);

fn feedback(v: &mut Validator, f: FeedbackBody) -> Feedback {
    if f.reason_code == DeactivationReason::Cascade {
        v.add(
            "feedback.reasonCode",
            "cascade is set by the platform for cascaded deactivations",
        );
    }
    if let Some(s) = f.recommendation_score
        && !(0..=10).contains(&s)
    {
        v.add("feedback.recommendationScore", "must be 0 to 10");
    }
    let text = f.text.map(|t| v.text("feedback.text", &t, 1, 2000));
    if let Some(c) = &f.context {
        if !c.is_object() {
            v.add("feedback.context", "must be a JSON object");
        } else if c.to_string().len() > 4096 {
            v.add("feedback.context", "must be at most 4 KiB");
        }
    }
    Feedback {
        reason_code: f.reason_code,
        text,
        // 0 to 10, checked above.
        recommendation_score: f.recommendation_score.map(|s| s.clamp(0, 10) as i16),
        context: f.context,
    }
}

fn scope(caller: &Caller, id: CustomerId) -> Result<db::Scope, ApiError> {
    caller.for_customer(
        id,
        Permission::EditCustomer,
        Permission::PlatformAdminEditAllCustomers,
    )
}

/// Deactivate a customer.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/deactivate", tag = "lifecycle",
    params(("customerId" = CustomerId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    request_body = Deactivate,
    responses(
        (status = 200, body = Customer, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "CUSTOMER_DEACTIVATED: already deactivated", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn deactivate_customer(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath(id): ApiPath<CustomerId>,
    ApiJson(body): ApiJson<Deactivate>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, id)?;
    let now = db::now();
    let mut v = Validator::new();
    let max = state.settings.max_window_days;
    if body.window_ends_at <= now {
        v.add("windowEndsAt", "must be in the future");
    } else if body.window_ends_at > now + time::Duration::days(i64::from(max)) {
        v.add("windowEndsAt", format!("must be at most {max} days ahead"));
    }
    let feedback = feedback(&mut v, body.feedback);
    v.finish()?;
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    let c = customers::find(&mut tx, id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    if c.status == CustomerStatus::Deactivated {
        return Err(ApiError::conflict(
            "CUSTOMER_DEACTIVATED",
            "the customer is already deactivated",
        ));
    }
    let by = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    let c = store::deactivate(&mut tx, c, body.window_ends_at, &feedback, "request", &by).await?;
    idem.commit(tx, with_etag(StatusCode::OK, c.version, &c))
        .await
}

/// Reactivate a deactivated customer within its window.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/reactivate", tag = "lifecycle",
    params(("customerId" = CustomerId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    responses(
        (status = 200, body = Customer, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        (status = 409, description = "NOT_DEACTIVATED; GRACE_PERIOD_ENDED", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn reactivate_customer(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath(id): ApiPath<CustomerId>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, id)?;
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    let c = customers::find(&mut tx, id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    if c.status != CustomerStatus::Deactivated {
        return Err(ApiError::conflict(
            "NOT_DEACTIVATED",
            "the customer is not deactivated",
        ));
    }
    if let Some(end) = c.window_ends_at
        && end <= db::now()
    {
        let end = end.format(&Rfc3339).unwrap_or_default();
        return Err(ApiError::conflict(
            "GRACE_PERIOD_ENDED",
            format!("the reactivation window ended at {end}; the customer is being purged"),
        ));
    }
    let by = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    let c = store::reactivate(&mut tx, c, &by).await?;
    idem.commit(tx, with_etag(StatusCode::OK, c.version, &c))
        .await
}

/// Deactivation feedback over a time range (platform admins).
#[utoipa::path(
    get, path = "/v1/deactivations", tag = "lifecycle",
    params(ReportQuery),
    responses(
        (status = 200, body = DeactivationReport),
        shared_model::http::problems::AuthErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_deactivations(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    caller.require(Permission::PlatformAdminViewAllCustomers)?;
    let limit = page_limit(q.limit)?;
    let after: Option<Position> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let now = db::now();
    let mut v = Validator::new();
    let mut time_param = |field: &str, s: Option<String>, default: OffsetDateTime| match s {
        None => default,
        Some(s) => v
            .check(
                field,
                OffsetDateTime::parse(&s, &Rfc3339).map_err(|_| "must be an RFC 3339 time"),
            )
            .unwrap_or(default),
    };
    let from = time_param("from", q.from, now - time::Duration::days(30));
    let to = time_param("to", q.to, now + time::Duration::seconds(1));
    if from >= to {
        v.add("to", "must be after from");
    }
    v.finish()?;
    let mut tx = db::begin(&state.kit.pool, db::Scope::PlatformAdmin).await?;
    let rows = store::deactivations(
        &mut tx,
        from,
        to,
        q.reason_code,
        after.map(|p| (p.0, p.1)),
        limit,
    )
    .await?;
    let (counts, average, scored) = store::summary(&mut tx, from, to, q.reason_code).await?;
    drop(tx);
    let entries: Page<(OffsetDateTime, uuid::Uuid, DeactivationEntry)> = page(
        rows.into_iter()
            .map(|r| {
                (
                    r.deactivated_at,
                    r.deactivation_id,
                    DeactivationEntry {
                        customer_id: r.customer_id,
                        customer_name: r.customer_name,
                        requested_by: r.requested_by,
                        cause: r.cause,
                        deactivated_at: r.deactivated_at,
                        window_ends_at: r.window_ends_at,
                        reason_code: r.reason_code,
                        text: r.feedback_text,
                        recommendation_score: r.recommendation_score,
                        context: r.context.map(|c| c.0),
                        reactivated_at: r.reactivated_at,
                        purged_at: r.purged_at,
                    },
                )
            })
            .collect(),
        limit,
        |(at, id, _)| Position(*at, *id),
    );
    let mut by_reason: BTreeMap<String, i64> = DeactivationReason::ALL
        .iter()
        .map(|r| (r.to_string(), 0))
        .collect();
    let mut total = 0;
    for (reason, n) in counts {
        total += n;
        by_reason.insert(reason, n);
    }
    Ok(axum::Json(DeactivationReport {
        from,
        to,
        total,
        by_reason,
        average_recommendation_score: average.map(|a| (a * 100.0).round() / 100.0),
        scored,
        items: entries.items.into_iter().map(|(_, _, e)| e).collect(),
        next_cursor: entries.next_cursor,
    })
    .into_response())
}
