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
use shared_model::error::{ApiError, ApiJson, Problem, ResultExt, Validator};
use shared_model::events::Updated;
use shared_model::events::partition::{self as ev, PartitionGroup};
use shared_model::http::idempotency::Idempotency;
use shared_model::http::{
    ApiPath, ApiQuery, IfMatch, Page, Patch, Trace, decode_cursor, page, page_limit, with_etag,
};
use shared_model::ids::{CustomerId, PartitionGroupId, PartitionId};
use shared_model::outbox;
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    /// 1 to 100 characters, unique per customer (case-insensitive).
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parent_group_id: Option<PartitionGroupId>,
}

/// Body of `PATCH .../partition-groups/{groupId}` (JSON merge patch).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateGroup {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
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
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Position(String, PartitionGroupId);

const COLUMNS: &str = "g.group_id AS id, g.customer_id, g.name, g.description, g.parent_group_id,
    (SELECT count(*) FROM partitions p WHERE p.customer_id = g.customer_id
        AND p.group_id = g.group_id) AS partition_count,
    g.version, g.created_at, g.updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: PartitionGroupId,
    customer_id: CustomerId,
    name: String,
    description: Option<String>,
    parent_group_id: Option<PartitionGroupId>,
    partition_count: i64,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<Row> for PartitionGroup {
    fn from(r: Row) -> Self {
        PartitionGroup {
            id: r.id,
            customer_id: r.customer_id,
            name: r.name,
            description: r.description,
            parent_group_id: r.parent_group_id,
            partition_count: r.partition_count,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

async fn find(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: PartitionGroupId,
    lock: bool,
) -> Result<Option<PartitionGroup>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM partition_groups g WHERE g.customer_id = $1 AND g.group_id = $2{}",
        if lock { " FOR UPDATE OF g" } else { "" }
    );
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(PartitionGroup::from))
}

async fn upsert(conn: &mut PgConnection, g: &PartitionGroup) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO partition_groups (customer_id, group_id, name, description, parent_group_id,
             version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (customer_id, group_id) DO UPDATE SET name = $3, description = $4,
             parent_group_id = $5, version = $6, updated_at = $8",
    )
    .bind(g.customer_id)
    .bind(g.id)
    .bind(&g.name)
    .bind(&g.description)
    .bind(g.parent_group_id)
    .bind(g.version)
    .bind(g.created_at)
    .bind(g.updated_at)
    .execute(conn)
    .await
    .on_constraint("partition_groups_name_key", || {
        ApiError::conflict(
            "CONFLICT",
            "a partition group with this name already exists",
        )
    })?;
    Ok(())
}

/// Checks a parent: it exists and is not `id` itself or one of its descendants.
async fn check_parent(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: PartitionGroupId,
    parent: PartitionGroupId,
) -> Result<(), ApiError> {
    if parent == id {
        return Err(ApiError::field(
            "parentGroupId",
            "must not be the group itself",
        ));
    }
    // The parent's ancestors (itself included); the group must not be among them.
    let ancestors: Vec<PartitionGroupId> = sqlx::query_scalar(
        "WITH RECURSIVE up (group_id, parent_group_id, depth) AS (
             SELECT group_id, parent_group_id, 0 FROM partition_groups
              WHERE customer_id = $1 AND group_id = $2
             UNION ALL
             SELECT g.group_id, g.parent_group_id, up.depth + 1 FROM partition_groups g
               JOIN up ON g.customer_id = $1 AND g.group_id = up.parent_group_id
              WHERE up.depth < 1000)
         SELECT group_id FROM up",
    )
    .bind(customer)
    .bind(parent)
    .fetch_all(&mut *conn)
    .await?;
    if ancestors.is_empty() {
        return Err(ApiError::field(
            "parentGroupId",
            "must name a partition group of this customer",
        ));
    }
    if ancestors.contains(&id) {
        return Err(ApiError::field(
            "parentGroupId",
            "would make a cycle: the parent is inside this group",
        ));
    }
    Ok(())
}

async fn write(
    conn: &mut PgConnection,
    kind: shared_model::events::EventType,
    g: &PartitionGroup,
    data: &impl serde::Serialize,
    caller: &Caller,
    trace: &Trace,
) -> Result<(), ApiError> {
    outbox::emit(
        conn,
        crate::SOURCE,
        kind,
        g.id,
        Some(g.customer_id),
        caller.sub(),
        trace.for_event(),
        data,
    )
    .await?;
    Ok(())
}

/// Create a partition group.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/partition-groups", tag = "partitions",
    params(("customerId" = CustomerId, Path), ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 characters: a retry with the same key and body gets the first answer (see the README)")),
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
        check_parent(&mut tx, customer_id, g.id, parent).await?;
    }
    upsert(&mut tx, &g).await?;
    write(&mut tx, ev::GROUP_CREATED, &g, &g, &caller, &trace).await?;
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
    let g = find(&mut tx, customer_id, group_id, false)
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
    let (name, id) = after.map(|p| (p.0, p.1)).unzip();
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_known(&mut tx, customer_id).await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM partition_groups g WHERE g.customer_id = $1
            AND ($2::text IS NULL OR (lower(g.name), g.group_id) > ($2, $3))
          ORDER BY lower(g.name), g.group_id LIMIT $4"
    );
    let rows: Vec<PartitionGroup> = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer_id)
        .bind(name)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(PartitionGroup::from)
        .collect();
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
    // Serializes changes to a customer's tree, so two moves cannot close a cycle together.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
        .bind(customer_id)
        .execute(&mut *tx)
        .await?;
    let before = find(&mut tx, customer_id, group_id, true)
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
        check_parent(&mut tx, customer_id, g.id, parent).await?;
    }
    if g == before {
        return Ok(with_etag(StatusCode::OK, g.version, &g));
    }
    g.version += 1;
    g.updated_at = db::now();
    upsert(&mut tx, &g).await?;
    let data = Updated::new(&before, &g).map_err(ApiError::internal)?;
    write(&mut tx, ev::GROUP_UPDATED, &g, &data, &caller, &trace).await?;
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
    let mut g = find(&mut tx, customer_id, group_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("partition group"))?;
    if_match.check(g.version)?;
    let members: Vec<PartitionId> = sqlx::query_scalar(
        "SELECT partition_id FROM partitions WHERE customer_id = $1 AND group_id = $2 FOR UPDATE",
    )
    .bind(customer_id)
    .bind(group_id)
    .fetch_all(&mut *tx)
    .await?;
    let children: Vec<PartitionGroupId> = sqlx::query_scalar(
        "SELECT group_id FROM partition_groups WHERE customer_id = $1 AND parent_group_id = $2
          FOR UPDATE",
    )
    .bind(customer_id)
    .bind(group_id)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM partition_groups WHERE customer_id = $1 AND group_id = $2")
        .bind(customer_id)
        .bind(group_id)
        .execute(&mut *tx)
        .await?;
    for id in children {
        if let Some(mut child) = find(&mut tx, customer_id, id, true).await? {
            // The foreign key made it top-level already; record that as a new version.
            child.version += 1;
            child.updated_at = db::now();
            upsert(&mut tx, &child).await?;
            let data = Updated::of(&child, &["parentGroupId"]);
            write(&mut tx, ev::GROUP_UPDATED, &child, &data, &caller, &trace).await?;
        }
    }
    for id in members {
        if let Some(mut p) = partitions::find(&mut tx, customer_id, id, true).await? {
            // The foreign key cleared the group already; record the change as a new version.
            p.version += 1;
            p.updated_at = db::now();
            partitions::upsert(&mut tx, &p).await?;
            let data = Updated::of(&p, &["groupId"]);
            crate::partitions::routes::write(&mut tx, ev::UPDATED, &p, &data, &caller, &trace)
                .await?;
        }
    }
    g.version += 1;
    g.updated_at = db::now();
    write(&mut tx, ev::GROUP_DELETED, &g, &g, &caller, &trace).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
