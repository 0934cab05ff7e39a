//! `/v1/customers`: create, read, update, delete and list tenant accounts.
//!
//! Platform admins (PlatformAdmin*AllCustomers) create, list and delete any customer; a tenant
//! token reads and edits only its own customer. Every change writes its event to the outbox in
//! the same transaction.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::{Caller, Permission};
use shared_model::db::{self, Scope};
use shared_model::error::{ApiError, ApiJson, Problem, Validator};
use shared_model::events::Updated;
use shared_model::events::customer::{self as ev, Address, BusinessProfile, Customer};
use shared_model::http::idempotency::Idempotency;
use shared_model::http::{
    ApiPath, ApiQuery, IfMatch, Page, Patch, Trace, decode_cursor, page, page_limit, with_etag,
};
use shared_model::ids::CustomerId;
use shared_model::model::{CustomerStatus, CustomerType, Email, Locale, Phone, WebUrl};
use shared_model::outbox::Cause;
use shared_model::schema::ProductCodes;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store;
use super::validate::{
    same_set, validate_bootstrap_key, validate_products, validate_profile_allowed, validate_session,
};
use crate::AppState;
use crate::common::{changed_fields, validate_profile};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_customers, create_customer))
        .routes(routes!(get_customer, update_customer, delete_customer))
}

/// Body of `POST /v1/customers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCustomer {
    /// 1 to 200 characters.
    #[schema(value_type = shared_model::schema::Text200)]
    pub name: String,
    #[serde(rename = "type")]
    pub customer_type: CustomerType,
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub phone: Option<Phone>,
    #[serde(default)]
    pub website: Option<WebUrl>,
    #[serde(default)]
    pub address: Option<Address>,
    #[serde(default)]
    pub locale: Option<Locale>,
    /// Only for business customers.
    #[serde(default)]
    pub business_profile: Option<BusinessProfile>,
    /// 300 to 2,592,000 seconds; null means the platform default.
    #[serde(default)]
    #[schema(minimum = 300, maximum = 2_592_000)]
    pub session_expiration_seconds: Option<i32>,
    /// Links the customer to its authentication tenant: 3 to 128 of `A-Z a-z 0-9 . _ : -`,
    /// unique, immutable.
    #[schema(pattern = "^[A-Za-z0-9._:-]{3,128}$")]
    pub bootstrap_tenant_key: String,
    /// Product codes: lower-case `a-z 0-9 . _ -`, at most 64 characters each, at most 50.
    #[serde(default)]
    #[schema(value_type = ProductCodes)]
    pub products: Vec<String>,
}

/// Body of `PATCH /v1/customers/{id}` (JSON merge patch: absent = unchanged, null = cleared).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateCustomer {
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text200>)]
    pub name: Option<String>,
    /// Immutable: accepted only if equal to the current type.
    #[serde(default, rename = "type")]
    pub customer_type: Option<CustomerType>,
    #[serde(default)]
    #[schema(value_type = Option<Email>)]
    pub email: Patch<Email>,
    #[serde(default)]
    #[schema(value_type = Option<Phone>)]
    pub phone: Patch<Phone>,
    #[serde(default)]
    #[schema(value_type = Option<WebUrl>)]
    pub website: Patch<WebUrl>,
    #[serde(default)]
    #[schema(value_type = Option<Address>)]
    pub address: Patch<Address>,
    #[serde(default)]
    #[schema(value_type = Option<Locale>)]
    pub locale: Patch<Locale>,
    #[serde(default)]
    #[schema(value_type = Option<BusinessProfile>)]
    pub business_profile: Patch<BusinessProfile>,
    #[serde(default)]
    #[schema(value_type = Option<i32>, minimum = 300, maximum = 2_592_000)]
    pub session_expiration_seconds: Patch<i32>,
    /// Immutable: accepted only if equal to the current key.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._:-]{3,128}$")]
    pub bootstrap_tenant_key: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<ProductCodes>)]
    pub products: Option<Vec<String>>,
}

/// Query of `GET /v1/customers`.
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
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<CustomerType>)]
    pub customer_type: Option<CustomerType>,
    #[param(value_type = Option<CustomerStatus>)]
    pub status: Option<CustomerStatus>,
    /// Case-insensitive text contained in name, e-mail or website (1 to 100 characters).
    #[param(value_type = Option<shared_model::schema::Text100>)]
    pub q: Option<String>,
    /// RFC 3339 time: only customers updated at or after it.
    pub updated_since: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Position(
    #[serde(with = "time::serde::rfc3339")] OffsetDateTime,
    CustomerId,
);

fn created(customer: &Customer) -> Response {
    let mut res = with_etag(StatusCode::CREATED, customer.version, customer);
    if let Ok(loc) = HeaderValue::from_str(&format!("/v1/customers/{}", customer.id)) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    res
}

/// Create a customer (platform admins).
#[utoipa::path(
    post, path = "/v1/customers", tag = "customers",
    request_body = CreateCustomer,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    responses(
        (status = 201, description = "Created", body = Customer, headers(("ETag" = String), ("Location" = String))),
        shared_model::http::problems::AuthErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "bootstrapTenantKey or externalId in use; Idempotency-Key reused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_customer(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiJson(mut body): ApiJson<CreateCustomer>,
) -> Result<Response, ApiError> {
    caller.require(Permission::PlatformAdminEditAllCustomers)?;
    let mut v = Validator::new();
    let name = v.text("name", &body.name, 1, 200);
    if let Some(a) = &body.address {
        a.validate(&mut v, "address");
    }
    validate_profile_allowed(&mut v, body.customer_type, &body.business_profile);
    if let Some(p) = &mut body.business_profile {
        validate_profile(&mut v, p, "businessProfile");
    }
    validate_session(&mut v, body.session_expiration_seconds);
    validate_bootstrap_key(&mut v, &body.bootstrap_tenant_key);
    validate_products(&mut v, &body.products);
    v.finish()?;

    let now = db::now();
    let customer = Customer {
        id: CustomerId::new(),
        name,
        customer_type: body.customer_type,
        email: body.email,
        phone: body.phone,
        website: body.website,
        address: body.address,
        locale: body.locale,
        business_profile: body.business_profile,
        session_expiration_seconds: body.session_expiration_seconds,
        bootstrap_tenant_key: body.bootstrap_tenant_key,
        products: body.products,
        status: CustomerStatus::Active,
        parent_customer_id: None,
        parent_client_id: None,
        deactivated_at: None,
        window_ends_at: None,
        logo: None,
        version: 1,
        created_at: now,
        created_by: caller.sub().to_string(),
        updated_at: now,
        updated_by: caller.sub().to_string(),
    };
    let cause = Cause::request(crate::SOURCE, caller.sub(), &trace.0);
    let deliver_claims = state.settings.claims_webhook_url.is_some();
    let mut tx = idem.begin(&state.kit.pool, Scope::PlatformAdmin).await?;
    store::insert(&mut tx, &customer, &cause, deliver_claims).await?;
    let res = idem.commit(tx, created(&customer)).await?;
    tracing::info!(customer_id = %customer.id, "customer created");
    Ok(res)
}

/// Get a customer.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}", tag = "customers",
    params(("customerId" = CustomerId, Path)),
    responses(
        (status = 200, body = Customer, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_customer(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<CustomerId>,
) -> Result<Response, ApiError> {
    let scope = caller.for_customer(
        id,
        Permission::ViewCustomer,
        Permission::PlatformAdminViewAllCustomers,
    )?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let customer = store::find(&mut tx, id, false)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, customer.version, &customer))
}

/// Update a customer (JSON merge patch; `If-Match` honoured).
#[utoipa::path(
    patch, path = "/v1/customers/{customerId}", tag = "customers",
    params(("customerId" = CustomerId, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version being changed")),
    request_body = UpdateCustomer,
    responses(
        (status = 200, body = Customer, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_customer(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath(id): ApiPath<CustomerId>,
    ApiJson(body): ApiJson<UpdateCustomer>,
) -> Result<Response, ApiError> {
    let scope = caller.for_customer(
        id,
        Permission::EditCustomer,
        Permission::PlatformAdminEditAllCustomers,
    )?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let before = store::find(&mut tx, id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;

    let mut v = Validator::new();
    let mut c = before.clone();
    if let Some(name) = &body.name {
        c.name = v.text("name", name, 1, 200);
    }
    if let Some(t) = body.customer_type
        && t != before.customer_type
    {
        v.add("type", "is immutable");
    }
    if let Some(key) = &body.bootstrap_tenant_key
        && *key != before.bootstrap_tenant_key
    {
        v.add("bootstrapTenantKey", "is immutable");
    }
    fn apply<T>(field: &mut Option<T>, p: Patch<T>) {
        match p {
            Patch::Absent => {}
            Patch::Null => *field = None,
            Patch::Value(x) => *field = Some(x),
        }
    }
    apply(&mut c.email, body.email);
    apply(&mut c.phone, body.phone);
    apply(&mut c.website, body.website);
    apply(&mut c.address, body.address);
    apply(&mut c.locale, body.locale);
    apply(&mut c.business_profile, body.business_profile);
    apply(
        &mut c.session_expiration_seconds,
        body.session_expiration_seconds,
    );
    // Products are a set: the same products in another order change nothing (and fire no
    // customer.updated, nor a claims push).
    if let Some(products) = body.products
        && !same_set(&products, &c.products)
    {
        c.products = products;
    }
    if let Some(a) = &c.address {
        a.validate(&mut v, "address");
    }
    validate_profile_allowed(&mut v, c.customer_type, &c.business_profile);
    if let Some(p) = &mut c.business_profile {
        validate_profile(&mut v, p, "businessProfile");
    }
    validate_session(&mut v, c.session_expiration_seconds);
    validate_products(&mut v, &c.products);
    v.finish()?;
    // An invalid body is 422 whatever its precondition says: checked after the fields.
    if_match.check(before.version)?;
    if before.status == CustomerStatus::Deactivated {
        return Err(crate::common::deactivated());
    }

    let changed = changed_fields(&before, &c)?;
    if changed.is_empty() {
        return Ok(with_etag(StatusCode::OK, before.version, &before));
    }
    c.version = before.version + 1;
    c.updated_at = db::now();
    c.updated_by = caller.sub().to_string();
    store::update(&mut tx, &c).await?;
    let data = Updated {
        entity: &c,
        changed_fields: changed,
    };
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::UPDATED, c.id, c.id, &data)
        .await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, c.version, &c))
}

/// Delete a customer (platform admins; `If-Match` honoured).
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}", tag = "customers",
    params(("customerId" = CustomerId, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 204, description = "Deleted"),
        shared_model::http::problems::AuthErrors,
        shared_model::http::problems::Stale,
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_customer(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    if_match: IfMatch,
    ApiPath(id): ApiPath<CustomerId>,
) -> Result<Response, ApiError> {
    caller.require(Permission::PlatformAdminEditAllCustomers)?;
    let mut tx = db::begin(&state.kit.pool, Scope::PlatformAdmin).await?;
    let mut c = store::find(&mut tx, id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    if_match.check(c.version)?;
    store::delete(&mut tx, id).await?;
    c.version += 1;
    c.updated_at = db::now();
    c.updated_by = caller.sub().to_string();
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, ev::DELETED, c.id, c.id, &c)
        .await?;
    tx.commit().await?;
    tracing::info!(customer_id = %id, "customer deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// List customers, most recently updated first (platform admins see all; a tenant its own).
#[utoipa::path(
    get, path = "/v1/customers", tag = "customers",
    params(ListQuery),
    responses(
        (status = 200, body = Page<Customer>),
        shared_model::http::problems::AuthErrors,
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []))
)]
pub async fn list_customers(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let (scope, only) = if caller.has(Permission::PlatformAdminViewAllCustomers) {
        (Scope::PlatformAdmin, None)
    } else {
        caller.require(Permission::ViewCustomer)?;
        let own = caller
            .claims
            .customer_id
            .ok_or_else(|| ApiError::forbidden("the token is not bound to a customer"))?;
        (Scope::Tenant(own), Some(own))
    };
    let limit = page_limit(q.limit)?;
    let mut v = Validator::new();
    let text = q.q.as_deref().map(|t| v.text("q", t, 1, 100));
    let updated_since = q.updated_since.as_deref().and_then(|s| {
        v.check(
            "updatedSince",
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|_| "must be an RFC 3339 date-time"),
        )
    });
    v.finish()?;
    let after = q
        .cursor
        .as_deref()
        .map(decode_cursor::<Position>)
        .transpose()?;
    let filter = store::Filter {
        only,
        customer_type: q.customer_type,
        status: q.status,
        text,
        updated_since,
        after: after.map(|p| (p.0, p.1)),
    };
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let rows = store::list(&mut tx, &filter, limit).await?;
    drop(tx); // read-only: rolled back off the request path
    let body: Page<Customer> = page(rows, limit, |c| Position(c.updated_at, c.id));
    Ok(axum::Json(body).into_response())
}
