//! Using a search key: `X-Search-Key` instead of a bearer token on `POST /v1/search`. The key
//! is looked up by its keyed hash on every request (so a revocation or an expiry holds at once
//! on every replica), its origin checked, its rate limited, and its reach (the kind's, with
//! the key's filter) combined with the request's filter.
//!
//! CORS: a browser's preflight (`OPTIONS /v1/search`) carries no key, so it is answered for any
//! origin; the search itself is refused (403 ORIGIN_NOT_ALLOWED) from an origin the key does
//! not list, and only a listed origin gets `Access-Control-Allow-Origin`, so a page of
//! another origin cannot read an answer.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use shared_model::auth::Caller;
use shared_model::db::{self, Scope};
use shared_model::error::{ApiError, Validator};

use super::{FORMAT, store};
use crate::AppState;
use crate::search::filter::{Filter, filter_expr};
use crate::search::scope::{self, Reach};

/// The header a search key is presented in.
pub const HEADER: &str = "x-search-key";

/// At most this many keys' limiters are kept per replica; past it they start afresh.
const MAX_LIMITERS: usize = 100_000;

/// Per-key rate limiters of this replica.
#[derive(Default)]
pub struct Limits(Mutex<HashMap<uuid::Uuid, (u32, Arc<DefaultDirectRateLimiter>)>>);

impl Limits {
    /// Takes one search of the key's `per_minute`; on refusal, the seconds until one is free.
    pub fn take(&self, key: uuid::Uuid, per_minute: u32) -> Result<(), u64> {
        let limiter = {
            let mut map = shared_model::lock(&self.0);
            if map.len() >= MAX_LIMITERS && !map.contains_key(&key) {
                map.clear();
            }
            let entry = map
                .entry(key)
                .or_insert_with(|| (per_minute, Arc::new(limiter(per_minute))));
            if entry.0 != per_minute {
                *entry = (per_minute, Arc::new(limiter(per_minute)));
            }
            entry.1.clone()
        };
        limiter.check().map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }
}

fn limiter(per_minute: u32) -> DefaultDirectRateLimiter {
    RateLimiter::direct(Quota::per_minute(
        NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN),
    ))
}

/// Who is searching: a user's token, or a key.
pub enum Searcher {
    User(Caller),
    Key(KeyUse),
}

/// A verified key's use: what it reaches, and the origin to answer CORS for.
pub struct KeyUse {
    pub id: uuid::Uuid,
    pub reach: Reach,
    pub origin: Option<HeaderValue>,
}

impl Searcher {
    /// What the searcher reaches.
    pub fn reach(&self) -> Result<Reach, ApiError> {
        match self {
            Searcher::User(caller) => scope::of(caller),
            Searcher::Key(k) => Ok(k.reach.clone()),
        }
    }

    /// The CORS headers of an answer to this searcher.
    pub fn cors(&self, res: &mut Response) {
        if let Searcher::Key(KeyUse {
            origin: Some(o), ..
        }) = self
        {
            allow_origin(res.headers_mut(), o.clone());
        }
    }
}

fn allow_origin(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
}

/// An answer refusing a key, readable by the page when the key allows its origin.
fn refuse(err: ApiError, origin: Option<HeaderValue>) -> Response {
    let mut res = err.into_response();
    if let Some(o) = origin {
        allow_origin(res.headers_mut(), o);
    }
    res
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::not_authorized(detail)
}

impl FromRequestParts<AppState> for Searcher {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(presented) = parts.headers.get(HEADER) else {
            return Caller::from_request_parts(parts, state)
                .await
                .map(Searcher::User)
                .map_err(IntoResponse::into_response);
        };
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Err(ApiError::bad_request(
                "AMBIGUOUS_CREDENTIALS",
                "give a bearer token or a search key, not both",
            )
            .into_response());
        }
        let origin = parts.headers.get(header::ORIGIN).cloned();
        verify(state, presented, origin).await.map(Searcher::Key)
    }
}

/// Verifies a presented key: well formed, known, neither revoked nor expired, used from an
/// origin it allows, within its rate.
async fn verify(
    state: &AppState,
    presented: &HeaderValue,
    origin: Option<HeaderValue>,
) -> Result<KeyUse, Response> {
    let secret = presented
        .to_str()
        .ok()
        .filter(|s| FORMAT.public_prefix(s).is_some())
        .ok_or_else(|| unauthorized("X-Search-Key is not a search key").into_response())?;
    let hash = state.state.hasher.hash(secret);
    let row = async {
        let mut tx = db::begin(&state.kit.pool, Scope::System).await?;
        store::by_hash(&mut tx, &hash).await
    }
    .await
    .map_err(IntoResponse::into_response)?
    .ok_or_else(|| unauthorized("the search key is not known").into_response())?;
    let allowed = origin
        .as_ref()
        .filter(|o| {
            o.to_str()
                .is_ok_and(|o| row.allowed_origins.iter().any(|a| a == o))
        })
        .cloned();
    if row.revoked_at.is_some() {
        return Err(refuse(unauthorized("the search key is revoked"), allowed));
    }
    if row.expires_at <= db::now() {
        return Err(refuse(unauthorized("the search key has expired"), allowed));
    }
    if allowed.is_none() && (origin.is_some() || !row.allowed_origins.is_empty()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ORIGIN_NOT_ALLOWED",
            "the search key is not allowed from this origin",
        )
        .into_response());
    }
    if let Err(wait) = state
        .state
        .limits
        .take(row.id, u32::try_from(row.rate_per_minute).unwrap_or(1))
    {
        let mut res = refuse(
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!("the search key's rate is used up; retry in {wait} s"),
            ),
            allowed.clone(),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Err(res);
    }
    let kind = row.kind().map_err(IntoResponse::into_response)?;
    let mut reach = kind.reach(row.customer_id);
    if let Some(f) = &row.filter {
        let filter: Filter =
            serde_json::from_value(f.clone()).map_err(|e| ApiError::internal(e).into_response())?;
        let mut v = Validator::new();
        let expr = filter_expr(&filter, "filter", &mut v);
        v.finish().map_err(|e| {
            ApiError::internal(format!("a stored key filter is invalid: {e:?}")).into_response()
        })?;
        reach.filter = reach.filter.and(expr);
    }
    Ok(KeyUse {
        id: row.id,
        reach,
        origin: allowed,
    })
}

/// The answer to a browser's preflight of `POST /v1/search`.
pub fn preflight(headers: &HeaderMap) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    if let Some(o) = headers
        .get(header::ORIGIN)
        .filter(|o| o.to_str().is_ok_and(super::bodies::is_origin))
    {
        allow_origin(h, o.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, x-search-key"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    res
}
