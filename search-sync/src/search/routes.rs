//! `POST /v1/search`: the search API. The caller's reach ([`super::scope`]) and the request's
//! filter are combined into one filter tree, run by the backend in a transaction under the
//! caller's row-level security.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared_model::db;
use shared_model::error::{ApiError, ApiJson};
use shared_model::http::{decode_cursor, encode_cursor};
use shared_model::ids::{ClientId, CustomerId, GroupId};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::request::{Asked, SearchRequest, SortName};
use crate::AppState;
use crate::index::filter::Expr;
use crate::index::postgres::Postgres;
use crate::index::query::{After, Hit, Query, SortKey};
use crate::index::{Kind, SearchBackend};
use crate::keys::access::{Searcher, preflight};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search, search_preflight))
}

/// A span of a field's text that matched, in UTF-16 code units (as JavaScript strings count).
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchRange {
    pub start: usize,
    pub length: usize,
}

/// A field that matched a word of `q`, and where.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchedField {
    /// `name`, `city`, `email`, `phone`, `domain` or `externalId`.
    pub field: &'static str,
    pub ranges: Vec<MatchRange>,
}

/// One hit: the document as the index holds it, and where it matched.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    /// `customer`, `client` or `contact`.
    pub kind: &'static str,
    pub id: uuid::Uuid,
    /// The customer the document is or belongs to.
    pub customer_id: CustomerId,
    /// The client the document is or belongs to (clients and clients' contacts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    /// A customer's parent tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<CustomerId>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// `business | consumer` (customers), `person | company` (clients), a contact's type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub doc_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub enabled: bool,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub industry_sector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub industry_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_range: Option<String>,
    pub groups: Vec<GroupId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The fields that matched `q` (none without a text).
    pub matches: Vec<MatchedField>,
}

impl From<Hit> for SearchHit {
    fn from(h: Hit) -> SearchHit {
        let d = h.doc;
        SearchHit {
            kind: d.kind.as_str(),
            id: d.id,
            customer_id: d.customer_id,
            client_id: d.client_id,
            parent_id: d.parent_id,
            name: d.name,
            email: d.email,
            phone: d.phone,
            domain: d.domain,
            external_id: d.external_id,
            doc_type: d.doc_type,
            status: d.status,
            enabled: d.enabled,
            tags: d.tags,
            assignee: d.assignee,
            country: d.country,
            city: d.city,
            industry_sector: d.industry_sector,
            industry_group: d.industry_group,
            size_range: d.size_range,
            groups: h.groups,
            created_at: d.created_at,
            updated_at: d.updated_at,
            matches: h
                .matches
                .into_iter()
                .map(|m| MatchedField {
                    field: m.field,
                    ranges: m
                        .ranges
                        .into_iter()
                        .map(|r| MatchRange {
                            start: r.start,
                            length: r.length,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A value of a facet and how many hits have it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FacetCount {
    pub value: String,
    pub count: i64,
}

/// What a search found.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    /// Per facet asked, its most frequent values (at most 20) over every hit, most frequent
    /// first.
    pub facets: BTreeMap<String, Vec<FacetCount>>,
    /// How many documents match in all (counted when the first page is made; a later page
    /// repeats the count of the page before when it finds none).
    pub estimated_total_hits: i64,
    /// Pass as `cursor` (with the same `sort`) for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// The server's time for the search, in milliseconds.
    pub processing_time_ms: f64,
}

/// What a cursor holds: the sort it belongs to, the last hit's sort key, and the total.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    s: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<(i64, i64, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<i64>,
    k: String,
    i: uuid::Uuid,
    total: i64,
}

fn kind_named(s: &str) -> Option<Kind> {
    match s {
        "customer" => Some(Kind::Customer),
        "client" => Some(Kind::Client),
        "contact" => Some(Kind::Contact),
        _ => None,
    }
}

fn encode(sort: SortName, after: &After, total: i64) -> String {
    let mut p = Position {
        s: sort.as_str().to_string(),
        r: None,
        n: None,
        t: None,
        k: after.kind.as_str().to_string(),
        i: after.id,
        total,
    };
    match &after.key {
        SortKey::Relevance(a, b, c) => p.r = Some((*a, *b, *c)),
        SortKey::Name(n) => p.n = Some(n.clone()),
        SortKey::Time(t) => p.t = Some(*t),
    }
    encode_cursor(&p)
}

/// The position and total a cursor holds; 422 on `cursor` unless this endpoint made it for
/// the same sort.
fn decode(cursor: &str, sort: SortName) -> Result<(After, i64), ApiError> {
    let p: Position = decode_cursor(cursor)?;
    let wrong = || ApiError::field("cursor", "is not a cursor returned for this sort");
    if p.s != sort.as_str() {
        return Err(wrong());
    }
    let key = match (sort, p.r, p.n, p.t) {
        (SortName::Relevance, Some((a, b, c)), None, None) => SortKey::Relevance(a, b, c),
        (SortName::Name | SortName::NameDesc, None, Some(n), None) => SortKey::Name(n),
        (
            SortName::CreatedAt
            | SortName::CreatedAtDesc
            | SortName::UpdatedAt
            | SortName::UpdatedAtDesc,
            None,
            None,
            Some(t),
        ) => SortKey::Time(t),
        _ => return Err(wrong()),
    };
    let kind = kind_named(&p.k).ok_or_else(wrong)?;
    Ok((After { key, kind, id: p.i }, p.total))
}

/// Runs a validated search under `filter` (the caller's reach, or a key's) in `rows`.
pub async fn run(
    state: &AppState,
    rows: db::Scope,
    reach: Expr,
    asked: Asked,
    cursor: Option<&str>,
    started: Instant,
) -> Result<SearchResults, ApiError> {
    let after = cursor.map(|c| decode(c, asked.sort)).transpose()?;
    let query = Query {
        text: asked.text,
        kinds: asked.kinds,
        filter: reach.and(asked.filter),
        sort: asked.sort.sort(),
        facets: asked.facets,
        limit: asked.limit,
        after: after.as_ref().map(|(a, _)| a.clone()),
    };
    let mut tx = db::begin_with(&state.kit.pool, rows, Postgres::SEARCH_SETTINGS).await?;
    let mut results = Postgres::search(&mut tx, &query).await?;
    drop(tx);
    let total = if results.hits.is_empty() {
        after.map_or(0, |(_, t)| t)
    } else {
        results.total
    };
    let more = results.hits.len() as i64 > query.limit;
    results.hits.truncate(query.limit as usize);
    let next_cursor = if more {
        results
            .hits
            .last()
            .map(|h| encode(asked.sort, &h.position, total))
    } else {
        None
    };
    let facets = results
        .facets
        .into_iter()
        .map(|(f, values)| {
            (
                f.as_str().to_string(),
                values
                    .into_iter()
                    .map(|(value, count)| FacetCount { value, count })
                    .collect(),
            )
        })
        .collect();
    let hits: Vec<SearchHit> = results.hits.into_iter().map(SearchHit::from).collect();
    let took = started.elapsed().as_secs_f64() * 1000.0;
    tracing::debug!(hits = hits.len(), total, took_ms = took, "search");
    Ok(SearchResults {
        hits,
        facets,
        estimated_total_hits: total,
        next_cursor,
        processing_time_ms: (took * 1000.0).round() / 1000.0,
    })
}

/// Search customers, clients and contacts.
///
/// All words of `q` must match; the last as a prefix (search as you type). A word may have
/// typos: none under 4 characters, one from 4, two from 8. E-mail addresses, phone numbers,
/// domains, external ids and codes match exactly or as a prefix of the last word, never with
/// typos. Ranking: fewer typos (exact, then prefix, then one typo, then two), then matches in
/// the name before other fields, then the most recently updated.
///
/// Authenticated by a bearer token or, instead, a search key in `X-Search-Key` (a browser
/// front end's): the key's kind, with its filter, is what it reaches; a key that is revoked,
/// expired or not known is 401, one used from an origin it does not list 403
/// ORIGIN_NOT_ALLOWED, one past its rate 429 RATE_LIMITED (with `Retry-After`); a listed
/// origin gets `Access-Control-Allow-Origin`.
///
/// What a token reaches: PlatformAdminSearchAllCustomers every document; a tenant's token
/// with SearchTenants its sub-tenant customers, with ViewCustomer its own customer document and
/// contacts, with ViewClient its clients and their contacts (the union of what it holds); a
/// token bound to a client (with ViewClient) that client and its contacts. The request's filter
/// narrows that, never widens it.
///
/// Rules the schema cannot state, each a 422 naming the field: a filter's `customerId`,
/// `clientId` and `groups` values are UUIDs and its `kind` values kinds; a range bound is an
/// RFC 3339 time for `createdAt` and `updatedAt`, an integer for `version`; no kind or facet
/// twice; filters nest at most 6 deep, 50 conditions in all; a cursor is one this operation
/// returned, for the same `sort`.
#[utoipa::path(
    post, path = "/v1/search", tag = "search",
    params(("X-Search-Key" = Option<String>, Header, description = "A search key, instead of a bearer token")),
    request_body = SearchRequest,
    responses(
        (status = 200, body = SearchResults),
        (status = 400, description = "AMBIGUOUS_CREDENTIALS: both a bearer token and a search key", body = shared_model::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "NOT_AUTHORIZED: no valid bearer token or search key (revoked, expired, unknown)", body = shared_model::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "FORBIDDEN: the token reaches nothing; ORIGIN_NOT_ALLOWED: the key does not list the request's origin", body = shared_model::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "RATE_LIMITED: the key's rate is used up (with Retry-After)", body = shared_model::error::Problem, content_type = "application/problem+json"),
        shared_model::http::problems::Invalid,
    ),
    security(("bearer" = []), ("searchKey" = []))
)]
pub async fn search(
    State(state): State<AppState>,
    searcher: Searcher,
    ApiJson(body): ApiJson<SearchRequest>,
) -> Result<Response, Response> {
    let started = Instant::now();
    let answer = async {
        let reach = searcher.reach()?;
        let asked = body.validate()?;
        run(
            &state,
            reach.rows,
            reach.filter,
            asked,
            body.cursor.as_deref(),
            started,
        )
        .await
    }
    .await;
    let mut res = match answer {
        Ok(results) => Json(results).into_response(),
        Err(e) => e.into_response(),
    };
    searcher.cors(&mut res);
    Ok(res)
}

/// A browser's CORS preflight of a search with a key: allowed for any origin (the preflight
/// carries no key); the search itself answers only the key's allowed origins.
#[utoipa::path(
    options, path = "/v1/search", tag = "search",
    params(("Origin" = Option<String>, Header, description = "The page's origin")),
    responses(
        (status = 204, description = "The methods and headers a search may use, for the origin"),
    )
)]
pub async fn search_preflight(headers: HeaderMap) -> Response {
    preflight(&headers)
}
