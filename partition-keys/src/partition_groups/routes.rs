//! `/v1/customers/{customerId}/partition-groups`: groups of partitions, forming a tree (a group
//! may name a parent; a change that would close a cycle is refused). A partition is in at most
//! one group (`groupId`); `GET .../partitions?group=` lists a group's partitions. Deleting a
//! group takes its partitions out of it (each gets `partition.updated`) and makes its child
//! groups top-level.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::{ApiError, ApiJson, Problem, Validator};
use shared_model::events::Updated;
use shared_model::events::partition::{self as ev, PartitionGroup};
use shared_model::http::idempotency::Idempotency;
use shared_model::http::{
    ApiPath, ApiQuery, IfMatch, Page, Patch, Trace, decode_cursor, page, page_limit, with_etag,
};
use shared_model::ids::{CustomerId, PartitionGroupId};
use shared_model::outbox::Cause;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store;
use crate::AppState;
use crate::known_customers::store::{ensure_active, ensure_known};
use crate::partitions::routes::{edit_scope, read_scope};
use crate::partitions::store as partitions;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(get_group, update_group, delete_group))
}

/// Body of `POST .../partition-groups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateGroup {
    /// 1 to 100 characters (not blank), unique per customer (case-insensitive).
    #[schema(value_type = shared_model::schema::Text100)]
    pub name: String,
    /// 1 to 500 characters (not blank).
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text500>)]
    pub description: Option<String>,
    #[serde(default)]
    pub parent_group_id: Option<PartitionGroupId>,
}

/// Body of `PATCH .../partition-groups/{groupId}` (JSON merge patch).
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
    #[schema(value_type = Option<PartitionGroupId>)]
    pub parent_group_id: Patch<PartitionGroupId>,
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
struct Position(String, PartitionGroupId);

/// Create a partition group.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/partition-groups", tag = "partitions",
    params(("customerId" = CustomerId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    request_body = CreateGroup,
    responses(
        (status = 201, body = PartitionGroup, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "name in use; CUSTOMER_DEACTIVATED", body = Problem, content_type = "application/problem+json"),
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
    let scope = edit_scope(&caller, customer_id)?;
    let mut v = Validator::new();
    let now = db::now();
    let g = PartitionGroup {
        id: PartitionGroupId::new(),
        customer_id,
        name: v.text("name", &body.name, 1, 100),
        description: body.description.map(|d| v.text("description", &d, 1, 500)),
        parent_group_id: body.parent_group_id,
        partition_count: 0,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    v.finish()?;
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    ensure_active(&mut tx, customer_id).await?;
    if let Some(parent) = g.parent_group_id {
        store::check_parent(&mut tx, customer_id, g.id, parent).await?;
    }
    store::upsert(&mut tx, &g).await?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::GROUP_CREATED, g.id, g.customer_id, &g)
        .await?;
    idem.commit(tx, with_etag(StatusCode::CREATED, g.version, &g))
        .await
}

/// Get a partition group.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/partition-groups/{groupId}", tag = "partitions",
    params(("customerId" = CustomerId, Path), ("groupId" = PartitionGroupId, Path)),
    responses(
        (status = 200, body = PartitionGroup, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_group(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath((customer_id, group_id)): ApiPath<(CustomerId, PartitionGroupId)>,
) -> Result<Response, ApiError> {
    let scope = read_scope(&caller, customer_id)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let g = store::find(&mut tx, customer_id, group_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("partition group"))?;
    drop(tx);
    Ok(with_etag(StatusCode::OK, g.version, &g))
}

/// List partition groups by name.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/partition-groups", tag = "partitions",
    params(("customerId" = CustomerId, Path), ListQuery),
    responses(
        (status = 200, body = Page<PartitionGroup>),
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
    let scope = read_scope(&caller, customer_id)?;
    let limit = page_limit(q.limit)?;
    let after: Option<Position> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_known(&mut tx, customer_id).await?;
    let rows = store::list(&mut tx, customer_id, after.map(|p| (p.0, p.1)), limit + 1).await?;
    drop(tx);
    let body: Page<PartitionGroup> = page(rows, limit, |g| Position(g.name.to_lowercase(), g.id));
    Ok(axum::Json(body).into_response())
}

/// Update a partition group (JSON merge patch; `If-Match` honoured).
#[utoipa::path(
    patch, path = "/v1/customers/{customerId}/partition-groups/{groupId}", tag = "partitions",
    params(("customerId" = CustomerId, Path), ("groupId" = PartitionGroupId, Path), ("If-Match" = Option<String>, Header)),
    request_body = UpdateGroup,
    responses(
        (status = 200, body = PartitionGroup, headers(("ETag" = String))),
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
    ApiPath((customer_id, group_id)): ApiPath<(CustomerId, PartitionGroupId)>,
    ApiJson(body): ApiJson<UpdateGroup>,
) -> Result<Response, ApiError> {
    let scope = edit_scope(&caller, customer_id)?;
    let mut v = Validator::new();
    let name = body.name.map(|n| v.text("name", &n, 1, 100));
    let description = body.description.map(|d| v.text("description", &d, 1, 500));
    v.finish()?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_active(&mut tx, customer_id).await?;
    store::lock_tree(&mut tx, customer_id).await?;
    let before = store::find(&mut tx, customer_id, group_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("partition group"))?;
    if_match.check(before.version)?;
    let mut g = before.clone();
    if let Some(n) = name {
        g.name = n;
    }
    description.apply(&mut g.description);
    body.parent_group_id.apply(&mut g.parent_group_id);
    if let Some(parent) = g.parent_group_id
        && g.parent_group_id != before.parent_group_id
    {
        store::check_parent(&mut tx, customer_id, g.id, parent).await?;
    }
    if g == before {
        return Ok(with_etag(StatusCode::OK, g.version, &g));
    }
    g.version += 1;
    g.updated_at = db::now();
    store::upsert(&mut tx, &g).await?;
    let data = Updated::new(&before, &g).map_err(ApiError::internal)?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::GROUP_UPDATED, g.id, g.customer_id, &data)
        .await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, g.version, &g))
}

/// Delete a partition group; its partitions leave it and its child groups become top-level.
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/partition-groups/{groupId}", tag = "partitions",
    params(("customerId" = CustomerId, Path), ("groupId" = PartitionGroupId, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 204, description = "Deleted"),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
    ),
    security(("bearer" = []))
)]
pub async fn delete_group(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath((customer_id, group_id)): ApiPath<(CustomerId, PartitionGroupId)>,
) -> Result<Response, ApiError> {
    let scope = edit_scope(&caller, customer_id)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let mut g = store::find(&mut tx, customer_id, group_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("partition group"))?;
    if_match.check(g.version)?;
    let (members, children) = store::delete(&mut tx, customer_id, group_id).await?;
    for id in children {
        if let Some(mut child) = store::find(&mut tx, customer_id, id, true).await? {
            // The foreign key made it top-level already; record that as a new version.
            child.version += 1;
            child.updated_at = db::now();
            store::upsert(&mut tx, &child).await?;
            let data = Updated::of(&child, &["parentGroupId"]);
            Cause::request(crate::SOURCE, caller.sub(), &trace.0)
                .emit(
                    &mut tx,
                    ev::GROUP_UPDATED,
                    child.id,
                    child.customer_id,
                    &data,
                )
                .await?;
        }
    }
    for id in members {
        if let Some(mut p) = partitions::find(&mut tx, customer_id, id, true).await? {
            // The foreign key cleared the group already; record the change as a new version.
            p.version += 1;
            p.updated_at = db::now();
            partitions::upsert(&mut tx, &p).await?;
            let data = Updated::of(&p, &["groupId"]);
            Cause::request(crate::SOURCE, caller.sub(), &trace.0)
                .emit(&mut tx, ev::UPDATED, p.id, p.customer_id, &data)
                .await?;
        }
    }
    g.version += 1;
    g.updated_at = db::now();
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::GROUP_DELETED, g.id, g.customer_id, &g)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
