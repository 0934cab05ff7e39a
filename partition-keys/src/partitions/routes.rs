//! `/v1/customers/{customerId}/partitions`: a customer's data partitions.
//!
//! Tenant callers need ManagePartitions; platform admins PlatformAdminViewAllCustomers to read
//! and PlatformAdminEditAllCustomers to change. Partitions exist only for customers this
//! service knows (from customer events) and that are active: an unknown customer is 404, a
//! deactivated one 409 `CUSTOMER_DEACTIVATED`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::{Caller, Permission};
use shared_model::db;
use shared_model::error::{ApiError, ApiJson, Problem, Validator};
use shared_model::events::Updated;
use shared_model::events::partition::{self as ev, Partition};
use shared_model::http::idempotency::Idempotency;
use shared_model::http::{
    ApiPath, ApiQuery, IfMatch, Page, Patch, Trace, decode_cursor, page, page_limit, with_etag,
};
use shared_model::ids::{CustomerId, PartitionGroupId, PartitionId};
use shared_model::outbox::Cause;
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store;
use crate::AppState;
use crate::known_customers::store::{ensure_active, ensure_known};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_partitions, create_partition))
        .routes(routes!(get_partition, update_partition, delete_partition))
}

/// The standard environments; any other label of `a-z 0-9` (1 to 16) is a custom one.
pub const ENVIRONMENTS: [&str; 5] = ["dev", "qa", "staging", "prod", "demo"];

/// Body of `POST .../partitions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePartition {
    /// 1 to 100 characters (not blank), unique per customer (case-insensitive).
    #[schema(value_type = shared_model::schema::Text100)]
    pub name: String,
    /// `dev`, `qa`, `staging`, `prod`, `demo`, or a custom label of `a-z 0-9` (1 to 16).
    #[schema(pattern = "^[a-z0-9]{1,16}$")]
    pub environment: String,
    /// 1 to 500 characters (not blank).
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text500>)]
    pub description: Option<String>,
    /// A partition group of the customer.
    #[serde(default)]
    pub group_id: Option<PartitionGroupId>,
}

/// Body of `PATCH .../partitions/{partitionId}` (JSON merge patch; the environment is fixed,
/// as it is part of every key issued for the partition).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdatePartition {
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text100>)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text500>)]
    pub description: Patch<String>,
    /// `active` or `disabled` (keys of a disabled partition do not verify).
    #[serde(default)]
    #[schema(pattern = "^(active|disabled)$")]
    pub status: Option<String>,
    /// Moves the partition to a group (null: out of any group).
    #[serde(default)]
    #[schema(value_type = Option<PartitionGroupId>)]
    pub group_id: Patch<PartitionGroupId>,
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
    pub environment: Option<String>,
    /// Only the partitions of this group.
    #[param(value_type = Option<PartitionGroupId>)]
    pub group: Option<PartitionGroupId>,
}

#[derive(Serialize, Deserialize)]
struct Position(String, PartitionId);

pub fn read_scope(caller: &Caller, customer: CustomerId) -> Result<db::Scope, ApiError> {
    caller.for_customer(
        customer,
        Permission::ManagePartitions,
        Permission::PlatformAdminViewAllCustomers,
    )
}

pub fn edit_scope(caller: &Caller, customer: CustomerId) -> Result<db::Scope, ApiError> {
    caller.for_customer(
        customer,
        Permission::ManagePartitions,
        Permission::PlatformAdminEditAllCustomers,
    )
}

fn valid_environment(e: &str) -> bool {
    (1..=16).contains(&e.len())
        && e.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The group exists for this customer (422 on `groupId` otherwise).
async fn ensure_group(
    conn: &mut PgConnection,
    customer: CustomerId,
    group: PartitionGroupId,
) -> Result<(), ApiError> {
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM partition_groups WHERE customer_id = $1 AND group_id = $2 FOR SHARE",
    )
    .bind(customer)
    .bind(group)
    .fetch_optional(&mut *conn)
    .await?;
    found
        .map(|_| ())
        .ok_or_else(|| ApiError::field("groupId", "must name a partition group of this customer"))
}

/// Create a partition.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/partitions", tag = "partitions",
    params(("customerId" = CustomerId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    request_body = CreatePartition,
    responses(
        (status = 201, body = Partition, headers(("ETag" = String), ("Location" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "name in use; CUSTOMER_DEACTIVATED", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_partition(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath(customer_id): ApiPath<CustomerId>,
    ApiJson(body): ApiJson<CreatePartition>,
) -> Result<Response, ApiError> {
    let scope = edit_scope(&caller, customer_id)?;
    let mut v = Validator::new();
    let name = v.text("name", &body.name, 1, 100);
    let environment = body.environment.trim().to_string();
    if !valid_environment(&environment) {
        v.add(
            "environment",
            "must be dev, qa, staging, prod, demo or a custom label of a-z 0-9 (1 to 16)",
        );
    }
    let description = body.description.map(|d| v.text("description", &d, 1, 500));
    v.finish()?;
    let now = db::now();
    let p = Partition {
        id: PartitionId::new(),
        customer_id,
        name,
        environment,
        description,
        status: "active".into(),
        group_id: body.group_id,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    ensure_active(&mut tx, customer_id).await?;
    if let Some(g) = p.group_id {
        ensure_group(&mut tx, customer_id, g).await?;
    }
    store::upsert(&mut tx, &p).await?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::CREATED, p.id, p.customer_id, &p)
        .await?;
    let mut res = with_etag(StatusCode::CREATED, p.version, &p);
    if let Ok(loc) = format!("/v1/customers/{customer_id}/partitions/{}", p.id).parse() {
        res.headers_mut().insert(axum::http::header::LOCATION, loc);
    }
    idem.commit(tx, res).await
}

/// Get a partition.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/partitions/{partitionId}", tag = "partitions",
    params(("customerId" = CustomerId, Path), ("partitionId" = PartitionId, Path)),
    responses(
        (status = 200, body = Partition, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_partition(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath((customer_id, partition_id)): ApiPath<(CustomerId, PartitionId)>,
) -> Result<Response, ApiError> {
    let scope = read_scope(&caller, customer_id)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let p = store::find(&mut tx, customer_id, partition_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("partition"))?;
    drop(tx);
    Ok(with_etag(StatusCode::OK, p.version, &p))
}

/// List partitions by name.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/partitions", tag = "partitions",
    params(("customerId" = CustomerId, Path), ListQuery),
    responses(
        (status = 200, body = Page<Partition>),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_partitions(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath(customer_id): ApiPath<CustomerId>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let scope = read_scope(&caller, customer_id)?;
    let limit = page_limit(q.limit)?;
    let after: Option<Position> = q.cursor.as_deref().map(decode_cursor).transpose()?;
    if let Some(e) = &q.environment
        && !valid_environment(e)
    {
        return Err(ApiError::field(
            "environment",
            "must be an environment label",
        ));
    }
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_known(&mut tx, customer_id).await?;
    let rows = store::list(
        &mut tx,
        customer_id,
        q.environment.as_deref(),
        q.group,
        after.map(|p| (p.0, p.1)),
        limit,
    )
    .await?;
    drop(tx);
    let body: Page<Partition> = page(rows, limit, |p| Position(p.name.to_lowercase(), p.id));
    Ok(axum::Json(body).into_response())
}

/// Update a partition (JSON merge patch; `If-Match` honoured).
#[utoipa::path(
    patch, path = "/v1/customers/{customerId}/partitions/{partitionId}", tag = "partitions",
    params(("customerId" = CustomerId, Path), ("partitionId" = PartitionId, Path), ("If-Match" = Option<String>, Header)),
    request_body = UpdatePartition,
    responses(
        (status = 200, body = Partition, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_partition(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath((customer_id, partition_id)): ApiPath<(CustomerId, PartitionId)>,
    ApiJson(body): ApiJson<UpdatePartition>,
) -> Result<Response, ApiError> {
    let scope = edit_scope(&caller, customer_id)?;
    let mut v = Validator::new();
    let name = body.name.map(|n| v.text("name", &n, 1, 100));
    let description = body.description.map(|d| v.text("description", &d, 1, 500));
    if let Some(s) = &body.status
        && s != "active"
        && s != "disabled"
    {
        v.add("status", "must be active or disabled");
    }
    v.finish()?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_active(&mut tx, customer_id).await?;
    let before = store::find(&mut tx, customer_id, partition_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("partition"))?;
    if_match.check(before.version)?;
    let mut p = before.clone();
    if let Some(n) = name {
        p.name = n;
    }
    description.apply(&mut p.description);
    if let Some(s) = body.status {
        p.status = s;
    }
    body.group_id.apply(&mut p.group_id);
    if let Some(g) = p.group_id
        && p.group_id != before.group_id
    {
        ensure_group(&mut tx, customer_id, g).await?;
    }
    if p == before {
        return Ok(with_etag(StatusCode::OK, p.version, &p));
    }
    p.version += 1;
    p.updated_at = db::now();
    store::upsert(&mut tx, &p).await?;
    let data = Updated::new(&before, &p).map_err(ApiError::internal)?;
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::UPDATED, p.id, p.customer_id, &data)
        .await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, p.version, &p))
}

/// Delete a partition; its keys expire at once.
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/partitions/{partitionId}", tag = "partitions",
    params(("customerId" = CustomerId, Path), ("partitionId" = PartitionId, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 204, description = "Deleted"),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
    ),
    security(("bearer" = []))
)]
pub async fn delete_partition(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath((customer_id, partition_id)): ApiPath<(CustomerId, PartitionId)>,
) -> Result<Response, ApiError> {
    let scope = edit_scope(&caller, customer_id)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let p = store::find(&mut tx, customer_id, partition_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("partition"))?;
    if_match.check(p.version)?;
    let cause = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    store::delete_with_keys(&mut tx, &p, &cause).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
