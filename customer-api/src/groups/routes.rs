//! `/v1/customers/{customerId}/groups`: client groups (shopper groups) linked to a price list,
//! their memberships, and the internal endpoints other platform services read a client's
//! pricing and shipping facts from.
//!
//! **Effective price list.** A client in several groups buys from the price list of the group
//! with the highest `priority` among its groups that have a `priceListId`; on equal priority the
//! group the client joined first wins, and on equal join time the smaller group id. A client in
//! no group with a price list has none.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::{ApiError, ApiJson, Problem, Validator};
use shared_model::events::Updated;
use shared_model::events::client::{self as client_ev};
use shared_model::events::tenant::{self as ev, Group};
use shared_model::http::idempotency::Idempotency;
use shared_model::http::{
    ApiPath, ApiQuery, IfMatch, Page, Patch, Trace, decode_cursor, page, page_limit, with_etag,
};
use shared_model::ids::{CustomerId, GroupId};
use shared_model::outbox::Cause;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store;
use crate::AppState;
use crate::access::scope;
use crate::common::{ensure_visible, ensure_writable, optional_text};
use shared_model::http::created;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, update_group, delete_group))
        .merge(super::members::router())
        .merge(super::snapshots::router())
}

const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;

/// Body of `POST .../groups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateGroup {
    /// 1 to 100 characters, unique per customer (case-insensitive).
    #[schema(value_type = shared_model::schema::Text100)]
    pub name: String,
    /// At most 500 characters.
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text500>)]
    pub description: Option<String>,
    /// 1 to 128 characters.
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text128>)]
    pub price_list_id: Option<String>,
    /// -1000 to 1000, default 0; higher wins.
    #[serde(default)]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: Option<i32>,
}

/// Body of `PATCH .../groups/{groupId}` (JSON merge patch).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateGroup {
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text100>)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text500>)]
    pub description: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text128>)]
    pub price_list_id: Patch<String>,
    #[serde(default)]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: Option<i32>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page, as returned (opaque).
    #[param(pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Position(String, GroupId);

fn validate(v: &mut Validator, name: Option<&str>, priority: Option<i32>) -> Option<String> {
    if let Some(p) = priority
        && !PRIORITY_RANGE.contains(&p)
    {
        v.add("priority", "must be -1000 to 1000");
    }
    name.map(|n| v.text("name", n, 1, 100))
}

/// Create a group.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/groups", tag = "groups",
    params(("customerId" = CustomerId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    request_body = CreateGroup,
    responses(
        (status = 201, body = Group, headers(("ETag" = String), ("Location" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_group(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath(customer_id): ApiPath<CustomerId>,
    ApiJson(body): ApiJson<CreateGroup>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, true)?;
    let mut v = Validator::new();
    let name = validate(&mut v, Some(&body.name), body.priority).unwrap_or_default();
    let now = db::now();
    let g = Group {
        id: GroupId::new(),
        customer_id,
        name,
        description: optional_text(&mut v, "description", body.description, 500),
        price_list_id: optional_text(&mut v, "priceListId", body.price_list_id, 128),
        priority: body.priority.unwrap_or(0),
        member_count: 0,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    v.finish()?;
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    ensure_writable(&mut tx, customer_id).await?;
    store::upsert(&mut tx, &g).await?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::GROUP_CREATED, g.id, customer_id, &g)
        .await?;
    idem.commit(
        tx,
        created(
            format!("/v1/customers/{customer_id}/groups/{}", g.id),
            g.version,
            &g,
        ),
    )
    .await
}

/// Get a group.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/groups/{groupId}", tag = "groups",
    params(("customerId" = CustomerId, Path), ("groupId" = GroupId, Path)),
    responses(
        (status = 200, body = Group, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_group(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath((customer_id, group_id)): ApiPath<(CustomerId, GroupId)>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, false)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let g = store::find(&mut tx, customer_id, group_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    drop(tx);
    Ok(with_etag(StatusCode::OK, g.version, &g))
}

/// List groups by name.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/groups", tag = "groups",
    params(("customerId" = CustomerId, Path), ListQuery),
    responses(
        (status = 200, body = Page<Group>),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_groups(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath(customer_id): ApiPath<CustomerId>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, false)?;
    let limit = page_limit(q.limit)?;
    let after: Option<Position> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_visible(&mut tx, customer_id).await?;
    let rows = store::list(&mut tx, customer_id, after.map(|p| (p.0, p.1)), limit).await?;
    drop(tx);
    let body: Page<Group> = page(rows, limit, |g| Position(g.name.to_lowercase(), g.id));
    Ok(axum::Json(body).into_response())
}

/// Update a group (JSON merge patch; `If-Match` honoured).
#[utoipa::path(
    patch, path = "/v1/customers/{customerId}/groups/{groupId}", tag = "groups",
    params(("customerId" = CustomerId, Path), ("groupId" = GroupId, Path), ("If-Match" = Option<String>, Header)),
    request_body = UpdateGroup,
    responses(
        (status = 200, body = Group, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_group(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath((customer_id, group_id)): ApiPath<(CustomerId, GroupId)>,
    ApiJson(body): ApiJson<UpdateGroup>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, true)?;
    let mut v = Validator::new();
    let name = validate(&mut v, body.name.as_deref(), body.priority);
    let description = body.description.map(|d| v.text("description", &d, 1, 500));
    let price_list = body
        .price_list_id
        .map(|p| v.text("priceListId", &p, 1, 128));
    v.finish()?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_writable(&mut tx, customer_id).await?;
    let before = store::find(&mut tx, customer_id, group_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    if_match.check(before.version)?;
    let mut g = before.clone();
    if let Some(n) = name {
        g.name = n;
    }
    description.apply(&mut g.description);
    price_list.apply(&mut g.price_list_id);
    if let Some(p) = body.priority {
        g.priority = p;
    }
    if g == before {
        return Ok(with_etag(StatusCode::OK, g.version, &g));
    }
    g.version += 1;
    g.updated_at = db::now();
    store::upsert(&mut tx, &g).await?;
    let data = Updated::new(&before, &g).map_err(ApiError::internal)?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::GROUP_UPDATED, g.id, customer_id, &data)
        .await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, g.version, &g))
}

/// Delete a group; each member gets `client.group_removed`.
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/groups/{groupId}", tag = "groups",
    params(("customerId" = CustomerId, Path), ("groupId" = GroupId, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 204, description = "Deleted"),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_group(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath((customer_id, group_id)): ApiPath<(CustomerId, GroupId)>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, true)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_writable(&mut tx, customer_id).await?;
    let mut g = store::find(&mut tx, customer_id, group_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    if_match.check(g.version)?;
    let members = store::all_members(&mut tx, customer_id, group_id).await?;
    store::delete(&mut tx, customer_id, group_id).await?;
    for m in &members {
        Cause::request(crate::SOURCE, caller.sub(), &trace.0)
            .emit(
                &mut tx,
                client_ev::GROUP_REMOVED,
                m.client_id,
                customer_id,
                m,
            )
            .await?;
    }
    g.version += 1;
    g.updated_at = db::now();
    g.member_count = 0;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::GROUP_DELETED, g.id, customer_id, &g)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
