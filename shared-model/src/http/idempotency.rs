//! `Idempotency-Key` on `POST`: the answer to a change is replayed for a retry of the same
//! request, and stored in the very transaction that makes the change.
//!
//! - The layer ([`IdempotencyLayer`]) authenticates first (a request without a valid token goes
//!   on to the handler, which answers 401, whatever its headers), checks the header, reads the
//!   body and hashes it, and hands the request's [`Idempotency`] to the handler. It touches no
//!   table and holds no lock.
//! - A handler whose operation honours the header authorizes the caller, then opens its
//!   transaction with [`Idempotency::begin`]: that takes a transaction-level advisory lock on the
//!   key (a concurrent retry waits for the first to end) and looks the key up; a stored answer is
//!   replayed (`Idempotent-Replayed: true`). It commits with [`Idempotency::commit`], which
//!   writes the answer in the same transaction. So a committed change always has its answer
//!   stored, an uncommitted one leaves nothing, and no key is ever left locked by a request that
//!   is no longer running.
//! - Operations that never call them (verification, resolution: their answer depends on state
//!   that changes, and they change nothing) ignore the header; nothing is stored for them.
//! - The record is bound to the caller (`customer_id`, `sub`) and the route; it also remembers
//!   the caller's access (client binding, platform-admin flag, permissions) and the body's hash.
//!   Another body, or a token with other access, gets 409 `IDEMPOTENCY_KEY_REUSED`, never the
//!   stored answer. Error answers are not stored (no change was committed): a retry runs again.
//!
//! Records live 24 hours in `idempotency_records`, a tenant table under row-level security.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::auth::Caller;
use crate::db::{self, Scope, Tx};
use crate::error::ApiError;
use crate::http::Kit;
use crate::ids::CustomerId;

const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Response headers replayed with a stored response.
const REPLAYED_HEADERS: &[&str] = &["content-type", "etag", "location"];
/// How long a record is replayed.
pub const RETENTION_HOURS: i64 = 24;

/// The layer of the idempotency middleware (see the module documentation).
#[derive(Clone)]
pub struct IdempotencyLayer(pub Kit);

impl<S> tower::Layer<S> for IdempotencyLayer {
    type Service = IdempotencyService<S>;
    fn layer(&self, inner: S) -> IdempotencyService<S> {
        IdempotencyService {
            kit: self.0.clone(),
            inner,
        }
    }
}

/// Prepares the [`Idempotency`] of a `POST` carrying the header. Every other request goes
/// straight to the inner service: no clone of it, no boxed future.
#[derive(Clone)]
pub struct IdempotencyService<S> {
    kit: Kit,
    inner: S,
}

impl<S> tower::Service<Request> for IdempotencyService<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::Either<
        S::Future,
        futures_util::future::BoxFuture<'static, Result<Response, std::convert::Infallible>>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.method() != Method::POST || !req.headers().contains_key(IDEMPOTENCY_KEY) {
            return futures_util::future::Either::Left(self.inner.call(req));
        }
        // The ready service runs this request; a clone stays for the next.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let kit = self.kit.clone();
        futures_util::future::Either::Right(Box::pin(async move {
            let req = match prepare(&kit, req).await {
                Ok(req) => req,
                Err(e) => return Ok(e.into_response()),
            };
            ready.call(req).await
        }))
    }
}

/// Attaches the request's [`Claim`] (when its caller is authenticated and its header valid).
async fn prepare(kit: &Kit, req: Request) -> Result<Request, ApiError> {
    let (mut parts, body) = req.into_parts();
    // Authentication comes first: without a valid token the handler answers 401.
    let caller = match crate::auth::bearer(&parts) {
        Ok(token) => kit.verifier.caller(token).await.ok(),
        Err(_) => None,
    };
    let Some(caller) = caller else {
        return Ok(Request::from_parts(parts, body));
    };
    let key = parts
        .headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::field(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
        })?
        .to_string();
    let timeout = parts.extensions.get().copied();
    let bytes = crate::error::read_body_within(body, timeout).await?;
    let claim = Claim::new(&caller, &parts.method, parts.uri.path(), &key, &bytes);
    parts.extensions.insert(Idempotency(Some(Arc::new(claim))));
    // The handler's `Caller` extractor takes it from here rather than verifying again.
    parts.extensions.insert(caller);
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// What identifies an idempotent request and what its replay must match.
#[derive(Debug)]
struct Claim {
    /// SHA-256 of (customer, sub, method, path, key): the record's primary key.
    id: [u8; 32],
    /// The transaction-level advisory lock taken for the key (the id's first 8 bytes).
    lock: i64,
    customer_id: Option<CustomerId>,
    request_hash: [u8; 32],
    /// SHA-256 of everything that decides the caller's access: client binding, platform-admin
    /// flag, permissions (sorted).
    access_hash: [u8; 32],
}

impl Claim {
    fn new(caller: &Caller, method: &Method, path: &str, key: &str, body: &[u8]) -> Claim {
        let customer = caller
            .customer_id()
            .map(|c| c.to_string())
            .unwrap_or_default();
        let mut id = Sha256::new();
        for part in [
            customer.as_bytes(),
            caller.sub().as_bytes(),
            method.as_str().as_bytes(),
            path.as_bytes(),
            key.as_bytes(),
        ] {
            id.update((part.len() as u64).to_be_bytes());
            id.update(part);
        }
        let id: [u8; 32] = id.finalize().into();
        Claim {
            id,
            lock: i64::from_be_bytes(id[..8].try_into().unwrap_or_default()),
            customer_id: caller.customer_id(),
            request_hash: Sha256::digest(body).into(),
            access_hash: access_hash(caller),
        }
    }
}

fn access_hash(caller: &Caller) -> [u8; 32] {
    let mut permissions: Vec<&str> = caller
        .claims
        .permissions
        .iter()
        .map(String::as_str)
        .collect();
    permissions.sort_unstable();
    permissions.dedup();
    let client = caller
        .client_id()
        .map(|c| c.to_string())
        .unwrap_or_default();
    let mut h = Sha256::new();
    h.update((client.len() as u64).to_be_bytes());
    h.update(client.as_bytes());
    h.update([u8::from(caller.claims.platform_admin)]);
    for p in permissions {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

/// A request's `Idempotency-Key`, if it carried one (extracted by handlers whose operation
/// honours the header; see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct Idempotency(Option<Arc<Claim>>);

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Idempotency>()
            .cloned()
            .unwrap_or_default())
    }
}

/// (request hash, access hash, status, headers, body) of a stored answer.
type Stored = (Vec<u8>, Vec<u8>, i32, Option<serde_json::Value>, Vec<u8>);

impl Idempotency {
    /// Whether the request carried a valid `Idempotency-Key` of an authenticated caller.
    pub fn is_requested(&self) -> bool {
        self.0.is_some()
    }

    /// Begins the handler's transaction (as [`db::begin`]). With a key: waits for any other
    /// request holding the same key to end, then answers a stored response as the error
    /// [`ApiError::answered`] (a replay), or 409 when the stored one was made for another body
    /// or by a caller with other access. Call it after authorizing the caller.
    pub async fn begin(&self, pool: &PgPool, scope: Scope) -> Result<Tx, ApiError> {
        let mut tx = db::begin(pool, scope).await?;
        let Some(claim) = &self.0 else {
            return Ok(tx);
        };
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(claim.lock)
            .execute(&mut *tx)
            .await?;
        let stored: Option<Stored> = sqlx::query_as(
            "SELECT request_hash, access_hash, status_code, response_headers, response_body
               FROM idempotency_records
              WHERE id = $1
                AND created_at > now() - make_interval(hours => $2::int)",
        )
        .bind(&claim.id[..])
        .bind(RETENTION_HOURS as i32)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((request_hash, access, status, headers, body)) = stored else {
            return Ok(tx);
        };
        if request_hash != claim.request_hash {
            return Err(ApiError::conflict(
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used with a different request body",
            ));
        }
        if access != claim.access_hash {
            return Err(ApiError::conflict(
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used by a token with other access; use a new key",
            ));
        }
        Err(ApiError::answered(replay(status, headers, body)))
    }

    /// Commits the handler's transaction; with a key, stores `res` (its status, `Content-Type`,
    /// `ETag`, `Location` and body) in it first, so the change and its answer commit together.
    pub async fn commit(&self, mut tx: Tx, res: Response) -> Result<Response, ApiError> {
        let Some(claim) = &self.0 else {
            tx.commit().await?;
            return Ok(res);
        };
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(ApiError::internal)?;
        let headers: serde_json::Map<String, serde_json::Value> = REPLAYED_HEADERS
            .iter()
            .filter_map(|h| {
                parts
                    .headers
                    .get(*h)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| (h.to_string(), v.into()))
            })
            .collect();
        sqlx::query(
            "INSERT INTO idempotency_records
                 (id, customer_id, request_hash, access_hash, status_code, response_headers,
                  response_body)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE
                SET customer_id = EXCLUDED.customer_id, request_hash = EXCLUDED.request_hash,
                    access_hash = EXCLUDED.access_hash, status_code = EXCLUDED.status_code,
                    response_headers = EXCLUDED.response_headers,
                    response_body = EXCLUDED.response_body, created_at = now()",
        )
        .bind(&claim.id[..])
        .bind(claim.customer_id)
        .bind(&claim.request_hash[..])
        .bind(&claim.access_hash[..])
        .bind(i32::from(parts.status.as_u16()))
        .bind(serde_json::Value::Object(headers))
        .bind(bytes.as_ref())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Response::from_parts(parts, Body::from(bytes)))
    }
}

/// A stored answer as a response.
fn replay(status: i32, headers: Option<serde_json::Value>, body: Vec<u8>) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    if let Some(serde_json::Value::Object(h)) = headers {
        for (k, v) in h {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(k),
                v.as_str().map(HeaderValue::from_str),
            ) {
                res.headers_mut().insert(name, value);
            }
        }
    }
    res.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    res
}

/// Deletes records older than the retention (all tenants': the service's housekeeping).
pub async fn expire(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let n = sqlx::query(
        "DELETE FROM idempotency_records
          WHERE created_at < now() - make_interval(hours => $1::int)",
    )
    .bind(RETENTION_HOURS as i32)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n)
}

/// Refuses `Idempotency-Key` where the response holds a secret (a key shown once): a replay
/// would need the secret stored with the response, and the secret is stored nowhere.
pub fn no_replay(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    if headers.contains_key("idempotency-key") {
        return Err(ApiError::field(
            "Idempotency-Key",
            "is not accepted here: the response shows a secret once, and a replay would need it stored",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Claims, Permission};

    fn caller(perms: &[&str], client: Option<crate::ids::ClientId>) -> Caller {
        Caller::new(Claims {
            sub: "u".into(),
            iss: "i".into(),
            aud: "a".into(),
            exp: u64::MAX,
            nbf: None,
            iat: None,
            customer_id: Some(CustomerId::from(uuid::Uuid::nil())),
            client_id: client,
            permissions: perms.iter().map(|p| p.to_string()).collect(),
            platform_admin: false,
        })
    }

    #[test]
    fn the_record_is_the_callers_and_remembers_its_access() {
        let edit = Permission::EditClient.as_str();
        let view = Permission::ViewClient.as_str();
        let a = Claim::new(
            &caller(&[edit, view], None),
            &Method::POST,
            "/x",
            "k",
            b"{}",
        );
        let same = Claim::new(
            &caller(&[view, edit], None),
            &Method::POST,
            "/x",
            "k",
            b"{}",
        );
        assert_eq!(a.id, same.id);
        assert_eq!(
            a.access_hash, same.access_hash,
            "order of permissions is no access"
        );
        let fewer = Claim::new(&caller(&[view], None), &Method::POST, "/x", "k", b"{}");
        assert_eq!(a.id, fewer.id, "the same caller's key");
        assert_ne!(a.access_hash, fewer.access_hash);
        let bound = Claim::new(
            &caller(&[edit, view], Some(crate::ids::ClientId::new())),
            &Method::POST,
            "/x",
            "k",
            b"{}",
        );
        assert_ne!(a.access_hash, bound.access_hash);
        let other_path = Claim::new(&caller(&[edit], None), &Method::POST, "/y", "k", b"{}");
        assert_ne!(a.id, other_path.id);
        let other_body = Claim::new(&caller(&[edit], None), &Method::POST, "/x", "k", b"[]");
        assert_ne!(a.request_hash, other_body.request_hash);
    }
}
