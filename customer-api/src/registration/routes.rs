//! Domain-based self-registration.
//!
//! `PUT /v1/customers/{id}/registration` sets whether users may register themselves, the mail
//! domains that identify the customer (each domain belongs to at most one customer platform
//! wide; consumer mailbox domains from `consumer_domains.txt` never qualify), the roles a
//! registering user gets (existing roles of the customer) and an optional custom host.
//!
//! `POST /v1/registrations/resolve {email, host?}` is for the auth service (a service token with
//! PlatformAdminViewAllCustomers): it names the customer a registering user belongs to, the
//! roles to grant and the session expiration, or answers 404 `DOMAIN_NOT_FOUND`. A host, when
//! given and configured as a customer's custom host, selects that customer, whose allowed
//! domains must then include the e-mail's domain. Disabled registration and deactivated
//! customers resolve to nothing. Calls are rate-limited per caller
//! (`service.resolve_per_minute`).

use std::num::NonZeroU32;
use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};
use shared_model::auth::{Caller, Permission};
use shared_model::db::{self, Scope};
use shared_model::error::{ApiError, ApiJson, Problem, Validator};
use shared_model::http::{ApiPath, IfMatch, with_etag};
use shared_model::ids::CustomerId;
use shared_model::model::{CustomerStatus, Email};
use shared_model::outbox::Cause;
use shared_model::schema::{DomainNames, RoleNames};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::store;
use crate::AppState;
use crate::common::{ensure_visible, ensure_writable};
use crate::roles::store as roles;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_registration, put_registration))
        .routes(routes!(resolve))
}

const MAX_DOMAINS: usize = 50;
const MAX_ROLES: usize = 100;
/// The session lifetime granted when the customer has none configured.
pub const DEFAULT_SESSION_SECONDS: i32 = 86_400;

fn consumer_domains() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("consumer_domains.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

pub fn is_consumer_domain(d: &str) -> bool {
    consumer_domains().contains(&d)
}

/// A DNS host name: at least two labels of `a-z 0-9 -` (1 to 63 each, no leading or trailing
/// hyphen), an alphabetic top-level label, at most 253 characters.
pub fn is_hostname(d: &str) -> bool {
    let labels: Vec<&str> = d.split('.').collect();
    d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_lowercase()))
}

/// Registration settings of a customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub customer_id: CustomerId,
    pub enabled: bool,
    /// Lower-case mail domains, sorted.
    pub allowed_domains: Vec<String>,
    /// Names of the roles a registering user gets.
    pub auto_assign_roles: Vec<String>,
    pub custom_host: Option<String>,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

/// Body of `PUT /v1/customers/{id}/registration`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutRegistration {
    pub enabled: bool,
    /// At most 50 domains, e.g. `acme.com`; at least one when `enabled`; not consumer mail
    /// domains; unique platform-wide.
    #[serde(default)]
    #[schema(value_type = DomainNames)]
    pub allowed_domains: Vec<String>,
    /// Names of existing roles of the customer.
    #[serde(default)]
    #[schema(value_type = RoleNames)]
    pub auto_assign_roles: Vec<String>,
    /// A host name, unique platform-wide, that selects this customer at registration.
    #[serde(default)]
    #[schema(
        pattern = "^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}$",
        max_length = 253
    )]
    pub custom_host: Option<String>,
}

/// Body of `POST /v1/registrations/resolve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resolve {
    pub email: Email,
    /// The host the user registers on, if the auth service knows it.
    #[serde(default)]
    pub host: Option<String>,
}

/// Answer of `POST /v1/registrations/resolve`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    pub customer_id: CustomerId,
    pub roles: Vec<String>,
    /// The customer's session expiration, or the platform default (86,400).
    pub session_expiration_seconds: i32,
}

fn disabled(id: CustomerId) -> Registration {
    Registration {
        customer_id: id,
        enabled: false,
        allowed_domains: Vec::new(),
        auto_assign_roles: Vec::new(),
        custom_host: None,
        version: 0,
        updated_at: OffsetDateTime::UNIX_EPOCH,
        updated_by: String::new(),
    }
}

/// The registration settings (a customer that never set any has registration disabled,
/// version 0).
#[utoipa::path(
    get, path = "/v1/customers/{customerId}/registration", tag = "registration",
    params(("customerId" = CustomerId, Path)),
    responses(
        (status = 200, body = Registration, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
    ),
    security(("bearer" = []))
)]
pub async fn get_registration(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<CustomerId>,
) -> Result<Response, ApiError> {
    let scope = caller.for_customer(
        id,
        Permission::EditRegistrationSettings,
        Permission::PlatformAdminViewAllCustomers,
    )?;
    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_visible(&mut tx, id).await?;
    let r = store::load(&mut tx, id, false)
        .await?
        .unwrap_or_else(|| disabled(id));
    drop(tx);
    Ok(with_etag(StatusCode::OK, r.version, &r))
}

/// Set the registration settings (`If-Match` honoured).
#[utoipa::path(
    put, path = "/v1/customers/{customerId}/registration", tag = "registration",
    params(("customerId" = CustomerId, Path), ("If-Match" = Option<String>, Header)),
    request_body = PutRegistration,
    responses(
        (status = 200, body = Registration, headers(("ETag" = String))),
        shared_model::http::problems::TenantErrors,
        shared_model::http::problems::Stale,
        shared_model::http::problems::Invalid,
        (status = 409, description = "DOMAIN_TAKEN; HOST_TAKEN; CUSTOMER_DEACTIVATED", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn put_registration(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    trace: shared_model::http::Trace,
    if_match: IfMatch,
    ApiPath(id): ApiPath<CustomerId>,
    ApiJson(body): ApiJson<PutRegistration>,
) -> Result<Response, ApiError> {
    let scope = caller.for_customer(
        id,
        Permission::EditRegistrationSettings,
        Permission::PlatformAdminEditAllCustomers,
    )?;
    let mut v = Validator::new();
    if body.allowed_domains.len() > MAX_DOMAINS {
        v.add(
            "allowedDomains",
            format!("must have at most {MAX_DOMAINS} domains"),
        );
    }
    let mut domains: Vec<String> = Vec::new();
    for (i, d) in body.allowed_domains.iter().enumerate() {
        let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
        let field = format!("allowedDomains[{i}]");
        if !is_hostname(&d) {
            v.add(field, "must be a domain name such as example.com");
        } else if is_consumer_domain(&d) {
            v.add(
                field,
                "is a consumer mail domain, which cannot identify an organisation",
            );
        } else if domains.contains(&d) {
            v.add(field, "must not repeat a domain");
        } else {
            domains.push(d);
        }
    }
    domains.sort();
    let host = body.custom_host.as_deref().map(|h| {
        let h = h.trim().to_ascii_lowercase();
        if !is_hostname(&h) {
            v.add(
                "customHost",
                "must be a host name such as portal.example.com",
            );
        }
        h
    });
    if body.enabled && domains.is_empty() && host.is_none() {
        v.add(
            "allowedDomains",
            "must name a domain when registration is enabled",
        );
    }
    if body.auto_assign_roles.len() > MAX_ROLES {
        v.add(
            "autoAssignRoles",
            format!("must have at most {MAX_ROLES} roles"),
        );
    }
    for (i, r) in body.auto_assign_roles.iter().enumerate() {
        if !crate::roles::routes::is_name(r) {
            v.add(
                format!("autoAssignRoles[{i}]"),
                crate::roles::routes::NAME_RULE,
            );
        } else if body.auto_assign_roles[..i]
            .iter()
            .any(|o| o.eq_ignore_ascii_case(r))
        {
            v.add(format!("autoAssignRoles[{i}]"), "must not repeat a role");
        }
    }
    v.finish()?;

    let mut tx = db::begin(&state.kit.pool, scope).await?;
    ensure_writable(&mut tx, id).await?;
    let before = store::load(&mut tx, id, true).await?;
    if_match.check(before.as_ref().map_or(0, |r| r.version))?;
    let existing = roles::existing_names(&mut tx, id, &body.auto_assign_roles).await?;
    let mut v = Validator::new();
    for (i, r) in body.auto_assign_roles.iter().enumerate() {
        if !existing.contains(&r.to_lowercase()) {
            v.add(
                format!("autoAssignRoles[{i}]"),
                "must name an existing role of this customer",
            );
        }
    }
    v.finish()?;
    let r = Registration {
        customer_id: id,
        enabled: body.enabled,
        allowed_domains: domains,
        auto_assign_roles: body.auto_assign_roles.clone(),
        custom_host: host,
        version: before.as_ref().map_or(0, |r| r.version) + 1,
        updated_at: db::now(),
        updated_by: caller.sub().to_string(),
    };
    if let Some(b) = &before {
        let mut same = r.clone();
        same.version = b.version;
        same.updated_at = b.updated_at;
        same.updated_by = b.updated_by.clone();
        if &same == b {
            return Ok(with_etag(StatusCode::OK, b.version, b));
        }
    }
    let mine = store::save(&mut tx, &r).await?;
    if let Some(taken) = r.allowed_domains.iter().find(|d| !mine.contains(d)) {
        return Err(ApiError::conflict(
            "DOMAIN_TAKEN",
            format!("{taken} is a registration domain of another customer"),
        ));
    }
    Cause::request(crate::SOURCE, caller.sub(), &trace.0)
        .emit(
            &mut tx,
            shared_model::events::customer::REGISTRATION_CHANGED,
            id,
            id,
            &r,
        )
        .await?;
    tx.commit().await?;
    Ok(with_etag(StatusCode::OK, r.version, &r))
}

/// Per-caller limit of the resolve endpoint: `per_minute` calls a minute, at most that many
/// at once (governor's GCRA, keyed by the caller).
pub struct RateLimiter(DefaultKeyedRateLimiter<String>);

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        RateLimiter(governor::RateLimiter::keyed(quota))
    }

    /// Takes one of `caller`'s calls; on refusal, the seconds until one is allowed again.
    pub fn take(&self, caller: &str) -> Result<(), u64> {
        if self.0.len() > 10_000 {
            // Forget the callers whose limit is back to full, so the map cannot grow without
            // bound.
            self.0.retain_recent();
        }
        self.0.check_key(&caller.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            (wait.as_secs_f64().ceil() as u64).max(1)
        })
    }
}

/// Which customer a registering user belongs to.
#[utoipa::path(
    post, path = "/v1/registrations/resolve", tag = "registration",
    request_body = Resolve,
    responses(
        (status = 200, body = Resolution),
        shared_model::http::problems::AuthErrors,
        shared_model::http::problems::Invalid,
        (status = 404, description = "DOMAIN_NOT_FOUND", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "RATE_LIMITED (with Retry-After)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn resolve(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Resolve>,
) -> Result<Response, ApiError> {
    caller.require(Permission::PlatformAdminViewAllCustomers)?;
    if let Err(wait) = state.state.resolve_limiter.take(caller.sub()) {
        let mut res = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            format!("too many resolve calls; retry in {wait} s"),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(res);
    }
    let domain = body
        .email
        .as_str()
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    let host = body.host.map(|h| h.trim().to_ascii_lowercase());
    let mut tx = db::begin(&state.kit.pool, Scope::System).await?;
    let row = store::candidate(&mut tx, &domain, host.as_deref()).await?;
    drop(tx);
    match row {
        Some((customer_id, true, roles, CustomerStatus::Active, session)) => {
            Ok(axum::Json(Resolution {
                customer_id,
                roles,
                session_expiration_seconds: session.unwrap_or(DEFAULT_SESSION_SECONDS),
            })
            .into_response())
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "DOMAIN_NOT_FOUND",
            "no customer with open registration has this domain",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert!(is_hostname("acme.com"));
        assert!(is_hostname("mail.acme-corp.co.uk"));
        assert!(!is_hostname("acme"));
        assert!(!is_hostname("-acme.com"));
        assert!(!is_hostname("acme.c0m"));
        assert!(!is_hostname("ac me.com"));
        assert!(!is_hostname("Acme.com"));
        assert!(is_consumer_domain("gmail.com"));
        assert!(!is_consumer_domain("acme.com"));
    }

    #[test]
    fn buckets_refill() {
        let l = RateLimiter::new(3);
        for _ in 0..3 {
            assert!(l.take("a").is_ok());
        }
        assert_eq!(l.take("a"), Err(20));
        assert!(l.take("b").is_ok());
    }
}
