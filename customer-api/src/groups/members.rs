//! `/v1/customers/{customerId}/groups/{groupId}/members`: which clients are in a group.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::{ApiError, Problem};
use shared_model::events::client::{self as client_ev, Membership};
use shared_model::http::{ApiPath, ApiQuery, Page, Trace, decode_cursor, page, page_limit};
use shared_model::ids::{ClientId, CustomerId, GroupId};
use shared_model::outbox::Cause;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::routes::ListQuery;
use super::store;
use crate::AppState;
use crate::access::scope;
use crate::clients::store as clients;
use crate::common::ensure_writable;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members))
        .routes(routes!(add_member, remove_member))
}

/// List a group's members by client id.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/groups/{groupId}/members", tag = "groups",
    params(("customerId" = CustomerId, Path), ("groupId" = GroupId, Path), ListQuery),
    responses(
        (status = 200, body = Page<Membership>),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_members(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath((customer_id, group_id)): ApiPath<(CustomerId, GroupId)>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, false)?;
    let limit = page_limit(q.limit)?;
    let after: Option<ClientId> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    store::find(&mut tx, customer_id, group_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    let rows = store::members(&mut tx, customer_id, group_id, after, limit).await?;
    drop(tx);
    let body: Page<Membership> = page(rows, limit, |m| m.client_id);
    Ok(axum::Json(body).into_response())
}

/// Put a client in a group: 201 with the new membership, or 200 with the existing one.
#[utoipa::path(
    put, path = "/v1/customers/{customerId}/groups/{groupId}/members/{clientId}", tag = "groups",
    params(("customerId" = CustomerId, Path), ("groupId" = GroupId, Path), ("clientId" = ClientId, Path)),
    responses(
        (status = 201, body = Membership),
        (status = 200, description = "Already a member", body = Membership),
        shared_model::http::problems::TenantErrors,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn add_member(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    ApiPath((customer_id, group_id, client_id)): ApiPath<(CustomerId, GroupId, ClientId)>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, true)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_writable(&mut tx, customer_id).await?;
    store::find(&mut tx, customer_id, group_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    clients::find(&mut tx, customer_id, client_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    let m = Membership {
        customer_id,
        client_id,
        group_id,
        assigned_at: db::now(),
        assigned_by: caller.sub().to_string(),
    };
    let res = match store::add_member(&mut tx, &m).await? {
        Some(m) => {
            Cause::request(crate::SOURCE, caller.sub(), &trace.0)
                .emit(
                    &mut tx,
                    client_ev::GROUP_ASSIGNED,
                    client_id,
                    customer_id,
                    &m,
                )
                .await?;
            (StatusCode::CREATED, axum::Json(m)).into_response()
        }
        None => {
            let existing = store::member(&mut tx, customer_id, group_id, client_id)
                .await?
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("membership vanished")))?;
            (StatusCode::OK, axum::Json(existing)).into_response()
        }
    };
    tx.commit().await?;
    Ok(res)
}

/// Take a client out of a group.
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/groups/{groupId}/members/{clientId}", tag = "groups",
    params(("customerId" = CustomerId, Path), ("groupId" = GroupId, Path), ("clientId" = ClientId, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "KEY_MISMATCH", body = Problem, content_type = "application/problem+json"),
        shared_model::http::problems::AuthErrors,
        (status = 404, description = "No such group, client or membership", body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn remove_member(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    ApiPath((customer_id, group_id, client_id)): ApiPath<(CustomerId, GroupId, ClientId)>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, true)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_writable(&mut tx, customer_id).await?;
    let m = store::remove_member(&mut tx, customer_id, group_id, client_id)
        .await?
        .ok_or_else(|| ApiError::not_found("membership"))?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(
            &mut tx,
            client_ev::GROUP_REMOVED,
            client_id,
            customer_id,
            &m,
        )
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
