//! `/v1/reindexes`: rebuild the index (all of it, or one tenant's documents) from the owning
//! services without downtime, and follow its progress. Platform admins only
//! (PlatformAdminSearchAllCustomers).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::{Caller, Permission};
use shared_model::db::{self, Scope};
use shared_model::error::{ApiError, ApiJson, Problem};
use shared_model::events::snapshot::{SNAPSHOT_REQUESTED, SnapshotRequest};
use shared_model::http::idempotency::Idempotency;
use shared_model::http::{ApiPath, Trace};
use shared_model::ids::CustomerId;
use shared_model::outbox::Cause;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ENTITIES;
use super::store::{self, Part, Row};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_reindex))
        .routes(routes!(get_reindex))
}

/// Body of `POST /v1/reindexes`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartReindex {
    /// Rebuild only this customer's documents (its own, its clients' and their contacts');
    /// absent: the whole index.
    pub customer_id: Option<CustomerId>,
}

/// One entity's part of a reindex.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReindexPart {
    /// `customer`, `client`, `client_address` or `contact`.
    pub entity: String,
    /// The service sending it, once it has answered.
    pub source: Option<String>,
    /// How many it announced (null until it answers).
    pub expected: Option<i64>,
    pub received: i64,
    pub done: bool,
}

/// A reindex and its progress.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reindex {
    pub id: uuid::Uuid,
    pub customer_id: Option<CustomerId>,
    /// `running` (snapshots arriving; the live index answers searches), `completed` (the new
    /// generation switched in) or `failed` (see `error`; the live index is unchanged).
    pub state: String,
    pub requested_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    pub error: Option<String>,
    /// Entities received so far, over every part.
    pub received: i64,
    /// Entities announced by the sources that have answered; null until all have.
    pub expected: Option<i64>,
    /// Entities received per second since the request.
    pub rate_per_second: f64,
    /// Seconds until every announced entity has arrived at that rate; null when not known
    /// (no rate yet, or not every source has answered) or not running.
    pub eta_seconds: Option<f64>,
    /// At the switch: documents written from the new generation, and documents removed
    /// because no owning service has them any more.
    pub written: i64,
    pub removed: i64,
    pub parts: Vec<ReindexPart>,
}

impl Reindex {
    fn of(r: Row, parts: Vec<Part>) -> Reindex {
        let received: i64 = parts.iter().map(|p| p.received).sum();
        let expected = parts.iter().map(|p| p.expected).sum::<Option<i64>>();
        let end = r.completed_at.unwrap_or_else(db::now);
        let seconds = (end - r.requested_at).as_seconds_f64().max(0.001);
        let rate = received as f64 / seconds;
        let eta = match (r.state.as_str(), expected) {
            ("running", Some(e)) if rate > 0.0 => Some(((e - received).max(0) as f64) / rate),
            _ => None,
        };
        Reindex {
            id: r.reindex_id,
            customer_id: r.customer_id,
            state: r.state,
            requested_by: r.requested_by,
            requested_at: r.requested_at,
            completed_at: r.completed_at,
            error: r.error,
            received,
            expected,
            rate_per_second: (rate * 10.0).round() / 10.0,
            eta_seconds: eta.map(|e| e.ceil()),
            written: r.written,
            removed: r.removed,
            parts: parts
                .into_iter()
                .map(|p| ReindexPart {
                    entity: p.entity,
                    source: p.source,
                    expected: p.expected,
                    received: p.received,
                    done: p.done,
                })
                .collect(),
        }
    }
}

/// Start a reindex: search-sync asks the owning services (customer-api, org-structure) for a
/// snapshot of their entities (`snapshot.requested`), builds the next generation of the index
/// from their pages beside the live one, and switches when every part has arrived. Searches
/// answer from the live index all along; events keep applying to it, and at the switch a live
/// document changed since the request is kept where it is newer. 409 REINDEX_RUNNING while
/// another reindex runs.
#[utoipa::path(
    post, path = "/v1/reindexes", tag = "reindexes",
    request_body = StartReindex,
    responses(
        (status = 202, description = "Started", body = Reindex, headers(("Location" = String))),
        shared_model::http::problems::AuthErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "REINDEX_RUNNING: another reindex runs; Idempotency-Key reused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn start_reindex(
    State(state): State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiJson(body): ApiJson<StartReindex>,
) -> Result<Response, ApiError> {
    caller.require(Permission::PlatformAdminSearchAllCustomers)?;
    let row = Row {
        reindex_id: uuid::Uuid::now_v7(),
        customer_id: body.customer_id,
        state: "running".into(),
        requested_by: caller.sub().to_string(),
        requested_at: db::now(),
        progress_at: db::now(),
        completed_at: None,
        error: None,
        written: 0,
        removed: 0,
    };
    let mut tx = idem.begin(&state.kit.pool, Scope::PlatformAdmin).await?;
    if !store::insert(&mut tx, &row).await? {
        let running = store::running(&mut tx).await?;
        return Err(ApiError::conflict(
            "REINDEX_RUNNING",
            match running {
                Some(id) => format!("reindex {id} is running; one runs at a time"),
                None => "another reindex is running; one runs at a time".into(),
            },
        ));
    }
    let request = SnapshotRequest {
        snapshot_id: row.reindex_id,
        customer_id: row.customer_id,
        entities: ENTITIES.iter().map(|e| e.to_string()).collect(),
    };
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(
            &mut tx,
            SNAPSHOT_REQUESTED,
            row.reindex_id,
            row.customer_id,
            &request,
        )
        .await?;
    let parts = store::parts(&mut tx, row.reindex_id).await?;
    let id = row.reindex_id;
    let body = Reindex::of(row, parts);
    let res = (
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/reindexes/{id}"))],
        axum::Json(&body),
    )
        .into_response();
    let res = idem.commit(tx, res).await?;
    tracing::info!(reindex_id = %id, customer_id = ?body.customer_id, "reindex requested");
    Ok(res)
}

/// A reindex's state and progress: entities received and expected, the rate, the time left.
#[utoipa::path(
    get, path = "/v1/reindexes/{reindexId}", tag = "reindexes",
    params(("reindexId" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = Reindex),
        shared_model::http::problems::AuthErrors,
        (status = 404, description = "No such reindex", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_reindex(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> Result<Response, ApiError> {
    caller.require(Permission::PlatformAdminSearchAllCustomers)?;
    let mut tx = db::begin(&state.kit.pool, Scope::PlatformAdmin).await?;
    let row = store::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("reindex"))?;
    let parts = store::parts(&mut tx, id).await?;
    drop(tx);
    Ok(axum::Json(Reindex::of(row, parts)).into_response())
}
