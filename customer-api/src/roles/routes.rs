//! `/v1/customers/{customerId}/roles`: the tenant's roles (named permission sets) the auth
//! service grants its users.
//!
//! Every customer gets TenantAdmin, ClientEditor and ClientViewer when it is created; they can
//! be re-described and their permissions changed, never renamed or deleted. Tenants add roles
//! of their own from the tenant permission set (never a PlatformAdmin* or service permission).
//! Every change publishes `customer.roles_changed` with all of the customer's roles.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::{Caller, Permission};
use shared_model::db;
use shared_model::error::{ApiError, ApiJson, Problem, Validator};
use shared_model::events::tenant::{self as ev, Role, RolesChanged};
use shared_model::http::idempotency::Idempotency;
use shared_model::http::{ApiPath, IfMatch, Patch, Trace, with_etag};
use shared_model::ids::{CustomerId, RoleId};
use shared_model::outbox::Cause;
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store;
use crate::AppState;
use crate::common::{ensure_visible, ensure_writable};
use shared_model::http::created;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles, create_role))
        .routes(routes!(get_role, update_role, delete_role))
}

/// The roles every customer starts with: (name, description, permissions).
pub const DEFAULT_ROLES: &[(&str, &str, &[Permission])] = &[
    (
        "TenantAdmin",
        "Administers the tenant",
        &[
            Permission::EditCustomer,
            Permission::ViewCustomer,
            Permission::EditClient,
            Permission::ViewClient,
            Permission::ManagePartitions,
            Permission::EditRegistrationSettings,
            Permission::SearchTenants,
            Permission::ManageOrgStructure,
            Permission::ManageGdpr,
        ],
    ),
    (
        "ClientEditor",
        "Edits clients",
        &[
            Permission::ViewCustomer,
            Permission::EditClient,
            Permission::ViewClient,
        ],
    ),
    (
        "ClientViewer",
        "Reads clients",
        &[Permission::ViewCustomer, Permission::ViewClient],
    ),
];

/// The permissions a tenant may put in its roles.
pub fn tenant_grantable(p: Permission) -> bool {
    !p.is_service()
        && !matches!(
            p,
            Permission::PlatformAdminEditAllCustomers
                | Permission::PlatformAdminViewAllCustomers
                | Permission::PlatformAdminSearchAllCustomers
        )
}

/// A permission a role may grant, in the document: one of the tenant-grantable permissions.
pub struct TenantPermission;

impl utoipa::PartialSchema for TenantPermission {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let names = Permission::ALL
            .iter()
            .filter(|p| tenant_grantable(**p))
            .map(|p| p.as_str());
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "A tenant permission (no PlatformAdmin* or service permission)",
            ))
            .enum_values(Some(names))
            .into()
    }
}

impl utoipa::ToSchema for TenantPermission {}

/// A role's permissions in the document: at least one, none repeated.
pub struct TenantPermissions;

impl utoipa::PartialSchema for TenantPermissions {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(<TenantPermission as utoipa::PartialSchema>::schema())
            .min_items(Some(1))
            .unique_items(true)
            .into()
    }
}

impl utoipa::ToSchema for TenantPermissions {}

/// The default roles of a new customer.
pub fn default_roles(customer: CustomerId, at: time::OffsetDateTime) -> Vec<Role> {
    DEFAULT_ROLES
        .iter()
        .map(|(name, description, perms)| Role {
            id: RoleId::new(),
            customer_id: customer,
            name: (*name).to_string(),
            description: Some((*description).to_string()),
            permissions: perms.iter().map(|p| p.as_str().to_string()).collect(),
            is_default: true,
            version: 1,
            created_at: at,
            updated_at: at,
        })
        .collect()
}

/// Body of `POST .../roles`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRole {
    /// 1 to 64 of `A-Z a-z 0-9 _ -`, unique per customer (case-insensitive).
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub name: String,
    /// At most 500 characters.
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text500>)]
    pub description: Option<String>,
    /// Tenant permissions (no PlatformAdmin* or service permission), at least one.
    #[schema(value_type = TenantPermissions)]
    pub permissions: Vec<String>,
}

/// Body of `PATCH .../roles/{roleId}` (JSON merge patch).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateRole {
    /// Default roles cannot be renamed.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text500>)]
    pub description: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<TenantPermissions>)]
    pub permissions: Option<Vec<String>>,
}

/// `GET .../roles`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoleList {
    pub items: Vec<Role>,
}

/// The rule of a role name, as its schema states it: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub const NAME_RULE: &str = "must be 1 to 64 of A-Z a-z 0-9 _ -";

pub fn is_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn validate_name(v: &mut Validator, name: &str) -> String {
    if !is_name(name) {
        v.add("name", NAME_RULE);
    }
    name.to_string()
}

fn validate_permissions(v: &mut Validator, perms: &[String]) -> Vec<String> {
    if perms.is_empty() {
        v.add("permissions", "must have at least one permission");
    }
    let mut out = Vec::new();
    for (i, p) in perms.iter().enumerate() {
        match Permission::parse(p) {
            None => v.add(format!("permissions[{i}]"), "is not a known permission"),
            Some(p) if !tenant_grantable(p) => v.add(
                format!("permissions[{i}]"),
                "is not a tenant permission (platform and service permissions cannot be granted by a tenant)",
            ),
            Some(p) if out.contains(&p.as_str().to_string()) => {
                v.add(format!("permissions[{i}]"), "must not repeat a permission")
            }
            Some(p) => out.push(p.as_str().to_string()),
        }
    }
    out
}

fn read_scope(caller: &Caller, customer: CustomerId) -> Result<db::Scope, ApiError> {
    caller.for_customer(
        customer,
        Permission::ViewCustomer,
        Permission::PlatformAdminViewAllCustomers,
    )
}

fn edit_scope(caller: &Caller, customer: CustomerId) -> Result<db::Scope, ApiError> {
    caller.for_customer(
        customer,
        Permission::EditCustomer,
        Permission::PlatformAdminEditAllCustomers,
    )
}

/// Publishes `customer.roles_changed` with every role of the customer.
pub async fn roles_changed(
    tx: &mut PgConnection,
    customer: CustomerId,
    actor: &str,
    trace: &Trace,
) -> Result<(), ApiError> {
    let roles = store::all(tx, customer).await?;
    let data = RolesChanged {
        customer_id: customer,
        roles,
    };
    Cause::request(crate::SOURCE, actor, &trace.0)
        .emit(tx, ev::ROLES_CHANGED, customer, customer, &data)
        .await?;
    Ok(())
}

/// Create a role.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/roles", tag = "roles",
    params(("customerId" = CustomerId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    request_body = CreateRole,
    responses(
        (status = 201, body = Role, headers(("ETag" = String), ("Location" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_role(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath(customer_id): ApiPath<CustomerId>,
    ApiJson(body): ApiJson<CreateRole>,
) -> Result<Response, ApiError> {
    let scope = edit_scope(&caller, customer_id)?;
    let mut v = Validator::new();
    let now = db::now();
    let role = Role {
        id: RoleId::new(),
        customer_id,
        name: validate_name(&mut v, &body.name),
        description: body.description.map(|d| v.text("description", &d, 1, 500)),
        permissions: validate_permissions(&mut v, &body.permissions),
        is_default: false,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    v.finish()?;
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    ensure_writable(&mut tx, customer_id).await?;
    store::upsert(&mut tx, &role).await?;
    roles_changed(&mut tx, customer_id, caller.sub(), &trace).await?;
    idem.commit(
        tx,
        created(
            format!("/v1/customers/{customer_id}/roles/{}", role.id),
            role.version,
            &role,
        ),
    )
    .await
}

/// Every role of the customer, by name.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/roles", tag = "roles",
    params(("customerId" = CustomerId, Path)),
    responses(
        (status = 200, body = RoleList),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn list_roles(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath(customer_id): ApiPath<CustomerId>,
) -> Result<Response, ApiError> {
    let scope = read_scope(&caller, customer_id)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_visible(&mut tx, customer_id).await?;
    let items = store::all(&mut tx, customer_id).await?;
    drop(tx);
    Ok(axum::Json(RoleList { items }).into_response())
}

/// Get a role.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/roles/{roleId}", tag = "roles",
    params(("customerId" = CustomerId, Path), ("roleId" = RoleId, Path)),
    responses(
        (status = 200, body = Role, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_role(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath((customer_id, role_id)): ApiPath<(CustomerId, RoleId)>,
) -> Result<Response, ApiError> {
    let scope = read_scope(&caller, customer_id)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let r = store::find(&mut tx, customer_id, role_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("role"))?;
    drop(tx);
    Ok(with_etag(StatusCode::OK, r.version, &r))
}

/// Change a role (JSON merge patch; `If-Match` honoured).
#[utoipa::path(
    patch, path = "/v1/customers/{customerId}/roles/{roleId}", tag = "roles",
    params(("customerId" = CustomerId, Path), ("roleId" = RoleId, Path), ("If-Match" = Option<String>, Header)),
    request_body = UpdateRole,
    responses(
        (status = 200, body = Role, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_role(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath((customer_id, role_id)): ApiPath<(CustomerId, RoleId)>,
    ApiJson(body): ApiJson<UpdateRole>,
) -> Result<Response, ApiError> {
    let scope = edit_scope(&caller, customer_id)?;
    let mut v = Validator::new();
    let name = body.name.as_deref().map(|n| validate_name(&mut v, n));
    let description = body.description.map(|d| v.text("description", &d, 1, 500));
    let permissions = body
        .permissions
        .as_deref()
        .map(|p| validate_permissions(&mut v, p));
    v.finish()?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_writable(&mut tx, customer_id).await?;
    let before = store::find(&mut tx, customer_id, role_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("role"))?;
    if_match.check(before.version)?;
    let mut r = before.clone();
    if let Some(n) = name
        && n != before.name
    {
        if before.is_default {
            return Err(ApiError::field("name", "a default role cannot be renamed"));
        }
        r.name = n;
    }
    description.apply(&mut r.description);
    if let Some(p) = permissions {
        r.permissions = p;
    }
    if r == before {
        return Ok(with_etag(StatusCode::OK, r.version, &r));
    }
    r.version += 1;
    r.updated_at = db::now();
    store::upsert(&mut tx, &r).await?;
    roles_changed(&mut tx, customer_id, caller.sub(), &trace).await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, r.version, &r))
}

/// Delete a role (not a default role).
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/roles/{roleId}", tag = "roles",
    params(("customerId" = CustomerId, Path), ("roleId" = RoleId, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 204, description = "Deleted"),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        (status = 409, description = "DEFAULT_ROLE; CUSTOMER_DEACTIVATED", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_role(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath((customer_id, role_id)): ApiPath<(CustomerId, RoleId)>,
) -> Result<Response, ApiError> {
    let scope = edit_scope(&caller, customer_id)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_writable(&mut tx, customer_id).await?;
    let r = store::find(&mut tx, customer_id, role_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("role"))?;
    if_match.check(r.version)?;
    if r.is_default {
        return Err(ApiError::conflict(
            "DEFAULT_ROLE",
            format!("{} is a default role and cannot be deleted", r.name),
        ));
    }
    store::delete(&mut tx, customer_id, role_id).await?;
    roles_changed(&mut tx, customer_id, caller.sub(), &trace).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_roles_use_only_tenant_permissions() {
        for (_, _, perms) in DEFAULT_ROLES {
            assert!(perms.iter().all(|p| tenant_grantable(*p)));
        }
        assert!(!tenant_grantable(Permission::PlatformAdminEditAllCustomers));
        assert!(!tenant_grantable(Permission::VerifyApiKeys));
    }
}
