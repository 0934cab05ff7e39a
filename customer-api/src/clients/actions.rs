//! What happens to a client besides editing: purchases (revenue), lead conversion, disabling
//! and enabling, and the customer's client statistics.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::{ApiError, ApiJson, Problem, Validator};
use shared_model::events::client::{self as ev, Client, Revenue};
use shared_model::events::customer::BusinessProfile;
use shared_model::http::idempotency::Idempotency;
use shared_model::http::{ApiPath, Trace, with_etag};
use shared_model::ids::{ClientId, CustomerId};
use shared_model::model::{ClientSource, ClientStatus, ClientType, CurrencyCode};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::changes::{lock_client, save};
use super::store;
use super::validate::validate_client;
use crate::AppState;
use crate::access::{client_scope, not_client_bound, scope};
use crate::common::ensure_visible;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(client_stats))
        .routes(routes!(add_purchase))
        .routes(routes!(convert_client))
        .routes(routes!(disable_client))
        .routes(routes!(enable_client))
}

/// The largest single purchase and the largest total, in minor units.
const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

/// The earliest purchase date recorded (an earlier one is a mistake, not history).
const EARLIEST_PURCHASE: OffsetDateTime = time::macros::datetime!(2000-01-01 0:00 UTC);

/// Body of `POST .../clients/{clientId}/purchases`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Purchase {
    /// In minor units (cents for EUR), 1 to 10^15.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    pub amount_minor: i64,
    /// Must be the client's revenue currency once it has one.
    pub currency: CurrencyCode,
    /// RFC 3339; default now; not in the future, and in the year 2000 or later.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub purchased_at: Option<OffsetDateTime>,
}

/// Body of `POST .../clients/{clientId}/convert`: the business details the lead brings.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConvertLead {
    /// The organisation's name; required when an individual lead becomes a business client.
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text200>)]
    pub name: Option<String>,
    /// Given for a business: the client becomes (or stays) a business client.
    #[serde(default)]
    pub business_profile: Option<BusinessProfile>,
    #[serde(default)]
    #[schema(value_type = Option<shared_model::schema::Text128>)]
    pub external_id: Option<String>,
}

/// Counts of a customer's clients and their revenue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientStats {
    pub total: i64,
    pub by_status: BTreeMap<String, i64>,
    pub by_source: BTreeMap<String, i64>,
    pub by_type: BTreeMap<String, i64>,
    pub revenue: Vec<CurrencyTotal>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrencyTotal {
    pub currency: String,
    pub total_minor: i64,
    pub clients: i64,
    pub purchases: i64,
}

/// Record a purchase: adds it to the client's revenue atomically.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/clients/{clientId}/purchases", tag = "clients",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: send one so a retried purchase is counted once (see the README)")),
    request_body = Purchase,
    responses(
        (status = 200, body = Client, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn add_purchase(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath((customer_id, client_id)): ApiPath<(CustomerId, ClientId)>,
    ApiJson(body): ApiJson<Purchase>,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, true)?;
    not_client_bound(&caller)?;
    let now = db::now();
    let mut v = Validator::new();
    if !(1..=MAX_AMOUNT_MINOR).contains(&body.amount_minor) {
        v.add("amountMinor", format!("must be 1 to {MAX_AMOUNT_MINOR}"));
    }
    let at = body.purchased_at.unwrap_or(now);
    if at > now + time::Duration::minutes(5) {
        v.add("purchasedAt", "must not be in the future");
    } else if at < EARLIEST_PURCHASE {
        v.add("purchasedAt", "must be in the year 2000 or later");
    }
    v.finish()?;
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    let before = lock_client(&mut tx, customer_id, client_id).await?;
    let mut c = before.clone();
    c.revenue = Some(match before.revenue.clone() {
        None => Revenue {
            currency: body.currency,
            total_minor: body.amount_minor,
            purchase_count: 1,
            first_purchase_at: at,
            last_purchase_at: at,
        },
        Some(r) => {
            if r.currency != body.currency {
                return Err(ApiError::field(
                    "currency",
                    format!(
                        "must be {}, the currency of this client's revenue",
                        r.currency
                    ),
                ));
            }
            let total = r
                .total_minor
                .checked_add(body.amount_minor)
                .filter(|t| *t <= MAX_AMOUNT_MINOR)
                .ok_or_else(|| {
                    ApiError::field(
                        "amountMinor",
                        format!("would take the revenue total above {MAX_AMOUNT_MINOR}"),
                    )
                })?;
            Revenue {
                currency: r.currency,
                total_minor: total,
                purchase_count: r.purchase_count + 1,
                first_purchase_at: r.first_purchase_at.min(at),
                last_purchase_at: r.last_purchase_at.max(at),
            }
        }
    });
    let c = save(&mut tx, &before, c, ev::UPDATED, &caller, &trace, None).await?;
    idem.commit(tx, with_etag(StatusCode::OK, c.version, &c))
        .await
}

/// Convert a lead: status becomes `active`; given business details make it a business client.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/clients/{clientId}/convert", tag = "clients",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    request_body = ConvertLead,
    responses(
        (status = 200, body = Client, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Invalid,
        (status = 409, description = "NOT_A_LEAD; CUSTOMER_DEACTIVATED", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn convert_client(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath((customer_id, client_id)): ApiPath<(CustomerId, ClientId)>,
    ApiJson(body): ApiJson<ConvertLead>,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, true)?;
    not_client_bound(&caller)?;
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    let before = lock_client(&mut tx, customer_id, client_id).await?;
    if before.status != ClientStatus::Lead {
        return Err(ApiError::conflict(
            "NOT_A_LEAD",
            format!(
                "only a lead can be converted; this client is {}",
                before.status
            ),
        ));
    }
    let mut v = Validator::new();
    let mut c = before.clone();
    c.status = ClientStatus::Active;
    let becomes_business = body.business_profile.is_some() || body.name.is_some();
    if becomes_business && c.client_type == ClientType::Individual {
        c.client_type = ClientType::Business;
        c.first_name = None;
        c.last_name = None;
        if body.name.is_none() {
            v.add(
                "name",
                "is required when an individual lead becomes a business client",
            );
        }
    }
    if let Some(n) = &body.name {
        c.name = v.text("name", n, 1, 200);
    }
    if let Some(p) = body.business_profile {
        c.business_profile = Some(p);
    }
    if let Some(e) = body.external_id {
        c.external_id = Some(v.text("externalId", &e, 1, 128));
    }
    validate_client(&mut v, &mut c);
    v.finish()?;
    let c = save(&mut tx, &before, c, ev::UPDATED, &caller, &trace, None).await?;
    let res = idem
        .commit(tx, with_etag(StatusCode::OK, c.version, &c))
        .await?;
    tracing::info!(customer_id = %customer_id, client_id = %client_id, "lead converted");
    Ok(res)
}

async fn set_disabled(
    state: AppState,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    customer_id: CustomerId,
    client_id: ClientId,
    disabled: bool,
) -> Result<Response, ApiError> {
    let scope = client_scope(&caller, customer_id, client_id, true)?;
    not_client_bound(&caller)?;
    let mut tx = idem.begin(&state.kit.pool, scope).await?;
    let before = lock_client(&mut tx, customer_id, client_id).await?;
    let mut c = before.clone();
    c.disabled = disabled;
    let kind = if disabled { ev::DISABLED } else { ev::ENABLED };
    let c = save(&mut tx, &before, c, kind, &caller, &trace, None).await?;
    idem.commit(tx, with_etag(StatusCode::OK, c.version, &c))
        .await
}

/// Disable a client (its provisioned customer is deactivated by the reaction to
/// `client.disabled`). Disabling a disabled client changes nothing.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/clients/{clientId}/disable", tag = "clients",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    responses(
        (status = 200, body = Client, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn disable_client(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath((customer_id, client_id)): ApiPath<(CustomerId, ClientId)>,
) -> Result<Response, ApiError> {
    set_disabled(state, caller, idem, trace, customer_id, client_id, true).await
}

/// Enable a disabled client.
#[utoipa::path(
    post, path = "/v1/customers/{customerId}/clients/{clientId}/enable", tag = "clients",
    params(("customerId" = CustomerId, Path), ("clientId" = ClientId, Path), ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "1 to 255 visible ASCII characters: a retry with the same key and body gets the first answer (see the README)")),
    responses(
        (status = 200, body = Client, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn enable_client(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    idem: Idempotency,
    trace: Trace,
    ApiPath((customer_id, client_id)): ApiPath<(CustomerId, ClientId)>,
) -> Result<Response, ApiError> {
    set_disabled(state, caller, idem, trace, customer_id, client_id, false).await
}

/// Counts of the customer's clients by status, source and type, and revenue per currency.
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/clients/stats", tag = "clients",
    params(("customerId" = CustomerId, Path)),
    responses(
        (status = 200, body = ClientStats),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn client_stats(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath(customer_id): ApiPath<CustomerId>,
) -> Result<Response, ApiError> {
    let scope = scope(&caller, customer_id, false)?;
    not_client_bound(&caller)?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_visible(&mut tx, customer_id).await?;
    let mut stats = ClientStats {
        total: 0,
        by_status: ClientStatus::ALL
            .iter()
            .map(|s| (s.to_string(), 0))
            .collect(),
        by_source: ClientSource::ALL
            .iter()
            .map(|s| (s.to_string(), 0))
            .collect(),
        by_type: ClientType::ALL.iter().map(|s| (s.to_string(), 0)).collect(),
        revenue: Vec::new(),
    };
    for (k, n) in store::count_by(&mut tx, customer_id, "status").await? {
        stats.total += n;
        stats.by_status.insert(k, n);
    }
    for (k, n) in store::count_by(&mut tx, customer_id, "source").await? {
        stats.by_source.insert(k, n);
    }
    for (k, n) in store::count_by(&mut tx, customer_id, "client_type").await? {
        stats.by_type.insert(k, n);
    }
    stats.revenue = store::revenue_totals(&mut tx, customer_id)
        .await?
        .into_iter()
        .map(
            |(currency, total_minor, clients, purchases)| CurrencyTotal {
                currency,
                total_minor,
                clients,
                purchases,
            },
        )
        .collect();
    drop(tx);
    Ok(axum::Json(stats).into_response())
}
