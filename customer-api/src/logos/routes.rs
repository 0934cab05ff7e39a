//! Logos of customers and clients.
//!
//! `PUT /v1/customers/{id}/logo` and `PUT /v1/customers/{customerId}/clients/{clientId}/logo`
//! take the image as the raw body: PNG, JPEG or WebP, recognised by content (the declared
//! Content-Type is ignored), at most 1 MiB and 4096 px per side. Images are stored once per
//! SHA-256 and served publicly at `GET /v1/logos/{sha256}` with a strong ETag and
//! `Cache-Control: public, max-age=31536000, immutable`, so a CDN can front them. The customer
//! or client keeps the receipt `{url, contentType, size, width, height, sha256, uploadedAt}`;
//! `DELETE` removes it, and the image once nothing refers to it any more.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use shared_model::auth::{Caller, Permission};
use shared_model::db::{self, Scope};
use shared_model::error::{ApiBytes, ApiError, Problem};
use shared_model::events::Updated;
use shared_model::events::client as client_ev;
use shared_model::events::customer::{self as customer_ev, LogoReceipt};
use shared_model::http::{ApiPath, Trace, with_etag};
use shared_model::ids::{ClientId, CustomerId};
use shared_model::model::CustomerStatus;
use shared_model::outbox::Cause;
use sqlx::PgConnection;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{image, store};
use crate::AppState;
use crate::access::client_scope;
use crate::clients::changes::{lock_client, save};
use crate::common::{changed_fields, deactivated};
use crate::customers::store as customers;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_customer_logo, delete_customer_logo))
        .routes(routes!(put_client_logo, delete_client_logo))
        .routes(routes!(get_logo))
}

pub const MAX_BYTES: usize = 1 << 20;
pub const MAX_SIDE: u32 = 4096;

/// Checks an upload and stores its image; returns the receipt.
async fn store_image(
    tx: &mut PgConnection,
    body: &Bytes,
    base_url: &str,
) -> Result<LogoReceipt, ApiError> {
    if body.is_empty() {
        return Err(ApiError::field("body", "must be a PNG, JPEG or WebP image"));
    }
    if body.len() > MAX_BYTES {
        return Err(ApiError::field("body", "must be at most 1 MiB"));
    }
    let img = image::inspect(body).map_err(|rule| ApiError::field("body", rule))?;
    if img.width > MAX_SIDE || img.height > MAX_SIDE {
        return Err(ApiError::field(
            "body",
            format!(
                "must be at most {MAX_SIDE} px per side (this image is {}x{})",
                img.width, img.height
            ),
        ));
    }
    let sha = hex(&Sha256::digest(body));
    // Blobs are shared by content across tenants: written as the system.
    db::set_scope(tx, Scope::System).await?;
    store::insert(tx, &sha, img.content_type, body).await?;
    Ok(LogoReceipt {
        url: format!("{base_url}/v1/logos/{sha}"),
        content_type: img.content_type.to_string(),
        size: body.len() as i64,
        width: img.width,
        height: img.height,
        sha256: sha,
        uploaded_at: db::now(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn set_customer_logo(
    state: AppState,
    caller: Caller,
    trace: Trace,
    id: CustomerId,
    logo: Option<Bytes>,
) -> Result<Response, ApiError> {
    let scope = caller.for_customer(
        id,
        Permission::EditCustomer,
        Permission::PlatformAdminEditAllCustomers,
    )?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let before = customers::find(&mut tx, id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    if before.status == CustomerStatus::Deactivated {
        return Err(deactivated());
    }
    let mut c = before.clone();
    c.logo = match &logo {
        Some(body) => Some(store_image(&mut tx, body, &state.settings.public_base_url).await?),
        None => None,
    };
    if before.logo.as_ref().map(|l| &l.sha256) == c.logo.as_ref().map(|l| &l.sha256) {
        return Ok(with_etag(StatusCode::OK, before.version, &before));
    }
    c.version += 1;
    c.updated_at = db::now();
    c.updated_by = caller.sub().to_string();
    customers::update(&mut tx, &c).await?;
    let changed = changed_fields(&before, &c)?;
    let data = Updated {
        entity: &c,
        changed_fields: changed,
    };
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(&mut tx, customer_ev::UPDATED, c.id, c.id, &data)
        .await?;
    if let Some(old) = &before.logo {
        store::collect(&mut tx, &old.sha256).await?;
    }
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, c.version, &c))
}

async fn set_client_logo(
    state: AppState,
    caller: Caller,
    trace: Trace,
    (customer_id, client_id): (CustomerId, ClientId),
    logo: Option<Bytes>,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, true)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    let before = lock_client(&mut tx, customer_id, client_id).await?;
    let mut c = before.clone();
    c.logo = match &logo {
        Some(body) => Some(store_image(&mut tx, body, &state.settings.public_base_url).await?),
        None => None,
    };
    if before.logo.as_ref().map(|l| &l.sha256) == c.logo.as_ref().map(|l| &l.sha256) {
        return Ok(with_etag(StatusCode::OK, before.version, &before));
    }
    let c = save(
        &mut tx,
        &before,
        c,
        client_ev::UPDATED,
        &caller,
        &trace,
        None,
    )
    .await?;
    if let Some(old) = &before.logo {
        store::collect(&mut tx, &old.sha256).await?;
    }
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, c.version, &c))
}

/// Upload a customer's logo (raw image body).
/// A logo upload's body in the document: the image's bytes.
pub struct ImageBody;

impl utoipa::PartialSchema for ImageBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::Binary,
            )))
            .into()
    }
}

impl utoipa::ToSchema for ImageBody {}

#[utoipa::path(
    put, path = "/v1/customers/{customerId}/logo", tag = "logos",
    params(("customerId" = CustomerId, Path)),
    request_body(content((ImageBody = "image/png"), (ImageBody = "image/jpeg"), (ImageBody = "image/webp")), description = "The image itself: PNG, JPEG or WebP, recognised by its bytes (the Content-Type is not relied on); at most 1 MiB and 4096 px per side. Other bytes are 422."),
    responses(
        (status = 200, description = "The customer with its logo receipt", body = shared_model::events::customer::Customer, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an accepted image, or too large", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn put_customer_logo(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    ApiPath(id): ApiPath<CustomerId>,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    set_customer_logo(state, caller, trace, id, Some(body)).await
}

/// Remove a customer's logo.
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/logo", tag = "logos",
    params(("customerId" = CustomerId, Path)),
    responses(
        (status = 200, body = shared_model::events::customer::Customer, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_customer_logo(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    ApiPath(id): ApiPath<CustomerId>,
) -> Result<Response, ApiError> {
    set_customer_logo(state, caller, trace, id, None).await
}

/// Upload a client's logo (raw image body).
#[utoipa::path(
    put, path = "/v1/customers/{customerId}/clients/{clientId}/logo", tag = "logos",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path)),
    request_body(content((ImageBody = "image/png"), (ImageBody = "image/jpeg"), (ImageBody = "image/webp")), description = "The image itself: PNG, JPEG or WebP, recognised by its bytes (the Content-Type is not relied on); at most 1 MiB and 4096 px per side. Other bytes are 422."),
    responses(
        (status = 200, description = "The client with its logo receipt", body = shared_model::events::client::Client, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn put_client_logo(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    ApiPath(ids): ApiPath<(CustomerId, ClientId)>,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    set_client_logo(state, caller, trace, ids, Some(body)).await
}

/// Remove a client's logo.
#[utoipa::path(
    delete, path = "/v1/customers/{customerId}/clients/{clientId}/logo", tag = "logos",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path)),
    responses(
        (status = 200, body = shared_model::events::client::Client, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_client_logo(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: Trace,
    ApiPath(ids): ApiPath<(CustomerId, ClientId)>,
) -> Result<Response, ApiError> {
    set_client_logo(state, caller, trace, ids, None).await
}

/// A logo image. Public by design (no token: a CDN may serve it); its address is the image's
/// SHA-256, learnt only from a customer or client record. Immutable, so cacheable for a year.
#[utoipa::path(
    get, path = "/v1/logos/{sha256}", tag = "logos",
    params(("sha256" = String, Path, pattern = "^[0-9a-f]{64}$", description = "64 lower-case hex digits")),
    responses(
        (status = 200, description = "The image", content_type = "image/*", headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        shared_model::http::problems::Invalid,
    )
)]
pub async fn get_logo(
    axum::extract::State(state): axum::extract::State<AppState>,
    ApiPath(sha): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if sha.len() != 64
        || !sha
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    {
        return Err(ApiError::field(
            "sha256",
            "must be 64 lower-case hex digits",
        ));
    }
    let etag = format!("\"{sha}\"");
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut res = StatusCode::NOT_MODIFIED.into_response();
        res.headers_mut().insert(header::CACHE_CONTROL, cache);
        if let Ok(v) = HeaderValue::from_str(&etag) {
            res.headers_mut().insert(header::ETAG, v);
        }
        return Ok(res);
    }
    let mut tx = db::begin(&state.kit.pool, Scope::System).await?;
    let row = store::find(&mut tx, &sha).await?;
    drop(tx);
    let (content_type, data) = row.ok_or_else(|| ApiError::not_found("logo"))?;
    let mut res = data.into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, cache);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(res)
}
