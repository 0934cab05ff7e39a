//! The operational routes every service serves: readiness, Prometheus metrics and the
//! dead-letter endpoints (liveness and the document are added in [`super::finish`]).

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ApiQuery, Kit, page_limit, problems};

/// Liveness, readiness, metrics and the dead-letter endpoints.
pub(super) fn routes(kit: &Kit) -> Router {
    Router::new()
        .route(
            "/health/live",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics_route))
        .route("/internal/v1/dead-letters", get(list_dead_letters))
        .route(
            "/internal/v1/dead-letters/replay",
            post(replay_dead_letters),
        )
        .with_state(kit.clone())
}
use crate::auth::Caller;
use crate::error::ApiError;
use crate::telemetry;

/// How long readiness waits for the database (an outage must not hold the probe).
const READY_DB_TIMEOUT: Duration = Duration::from_millis(1000);

async fn ready(State(kit): State<Kit>) -> Response {
    let db = tokio::time::timeout(READY_DB_TIMEOUT, sqlx::query("SELECT 1").execute(&kit.pool))
        .await
        .is_ok_and(|r| r.is_ok());
    let broker = kit.broker.is_up();
    let consumers = kit
        .consumers_started
        .load(std::sync::atomic::Ordering::Relaxed)
        >= kit.consumers().len();
    let status = if db && broker && consumers {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if status == StatusCode::OK { "ok" } else { "unavailable" },
        "database": if db { "up" } else { "down" },
        "broker": if broker { "up" } else { "down" },
        "consumers": if consumers { "started" } else { "starting" },
    });
    (status, Json(body)).into_response()
}

/// Query of `GET /internal/v1/dead-letters`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeadLetterQuery {
    /// A consumer of this service (its queue name without the prefix).
    consumer: String,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Body of `POST /internal/v1/dead-letters/replay`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// A consumer of this service.
    consumer: String,
    /// 1 to 200 (default 50).
    #[schema(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// The document of the dead-letter endpoints, merged into every service's (see [`KitDoc`]).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_dead_letters, replay_dead_letters),
    components(schemas(ReplayBody, crate::bus::DeadLetter))
)]
pub(crate) struct DeadLetterDoc;

fn dead_letter_access(kit: &Kit, caller: &Caller, consumer: &str) -> Result<(), ApiError> {
    caller.require(crate::auth::Permission::PlatformAdminEditAllCustomers)?;
    if kit.consumers().iter().any(|c| c == consumer) {
        Ok(())
    } else {
        Err(ApiError::not_found("consumer"))
    }
}

/// Lists a consumer's dead letters without removing them (platform admins).
#[utoipa::path(
    get, path = "/internal/v1/dead-letters", tag = "operations",
    params(DeadLetterQuery),
    responses(
        (status = 200, description = "`{\"items\": [DeadLetter]}`, oldest first", content_type = "application/json"),
        problems::AuthErrors,
        (status = 404, description = "NOT_FOUND: no such consumer", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn list_dead_letters(
    State(kit): State<Kit>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DeadLetterQuery>,
) -> Result<Response, ApiError> {
    dead_letter_access(&kit, &caller, &q.consumer)?;
    let limit = page_limit(q.limit)? as usize;
    let items = crate::bus::list_dead_letters(&kit.config.amqp, &q.consumer, limit)
        .await
        .map_err(|e| {
            tracing::warn!(error = format!("{e:#}"), "listing dead letters failed");
            ApiError::unavailable("the broker is unreachable")
        })?;
    Ok(Json(serde_json::json!({ "items": items })).into_response())
}

/// Moves dead letters back onto the consumer's queue (platform admins).
#[utoipa::path(
    post, path = "/internal/v1/dead-letters/replay", tag = "operations",
    request_body = ReplayBody,
    responses(
        (status = 200, description = "`{\"replayed\": n}`", content_type = "application/json"),
        problems::AuthErrors,
        (status = 404, description = "NOT_FOUND: no such consumer", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn replay_dead_letters(
    State(kit): State<Kit>,
    caller: Caller,
    crate::error::ApiJson(body): crate::error::ApiJson<ReplayBody>,
) -> Result<Response, ApiError> {
    dead_letter_access(&kit, &caller, &body.consumer)?;
    let limit = page_limit(body.limit)? as usize;
    let replayed = crate::bus::replay_dead_letters(&kit.config.amqp, &body.consumer, limit)
        .await
        .map_err(|e| {
            tracing::warn!(error = format!("{e:#}"), "replaying dead letters failed");
            ApiError::unavailable("the broker is unreachable")
        })?;
    tracing::info!(
        consumer = body.consumer,
        replayed,
        by = caller.sub(),
        "dead letters replayed"
    );
    Ok(Json(serde_json::json!({ "replayed": replayed })).into_response())
}

async fn metrics_route(State(kit): State<Kit>) -> Response {
    if let Ok((n, age)) = crate::outbox::pending(&kit.pool).await {
        metrics::gauge!("outbox_pending_events").set(n as f64);
        metrics::gauge!("outbox_oldest_pending_seconds").set(age.map_or(0.0, |a| a.as_secs_f64()));
    }
    let pool = &kit.pool;
    metrics::gauge!("db_pool_connections").set(pool.size() as f64);
    metrics::gauge!("db_pool_idle_connections").set(pool.num_idle() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        telemetry::render_metrics(),
    )
        .into_response()
}
