//! HTTP plumbing every service shares: the middleware stack (request ids, observation,
//! timeouts, compression, head and body limits, `Idempotency-Key`), health/metrics/docs routes,
//! cursor pagination, `ETag`/`If-Match`; the server loop is in [`serve`]. Nothing here knows
//! about any resource.

mod extract;
pub mod idempotency;
mod limits;
pub mod nested;
mod observe;
pub mod openapi;
mod ops;
mod pagination;
pub mod serve;

pub use extract::{ApiPath, ApiQuery, IfMatch, Patch, created, etag, parse_if_match, with_etag};
pub use observe::Trace;
pub use openapi::{KitDoc, problems};
pub use pagination::{
    DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, decode_cursor, encode_cursor, page, page_limit,
};

pub(crate) use ops::DeadLetterDoc;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, Request};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use tower::util::{MapRequestLayer, MapResponseLayer};
use tower_http::body::Limited;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::{CompressionBody, CompressionLayer};
use tower_http::limit::{RequestBodyLimitLayer, ResponseBody};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use crate::auth::Verifier;
use crate::bus::BrokerHealth;
use crate::config::KitConfig;
use crate::error::ApiError;

/// What every service's state holds: the runtime pool, token verifier, broker health and
/// configuration. One pointer: routes and middlewares clone the state for every request.
#[derive(Clone)]
pub struct Kit(Arc<KitParts>);

/// The parts of a [`Kit`] (reached through it by `Deref`).
pub struct KitParts {
    pub service: &'static str,
    /// Names of the service's event consumers (for the dead-letter endpoints); see
    /// [`Kit::consumers`].
    consumers: std::sync::OnceLock<Box<[String]>>,
    pub pool: PgPool,
    pub verifier: Verifier,
    pub broker: BrokerHealth,
    /// How many of the consumers have declared their queue and started consuming once: until
    /// all have, events published meanwhile would find no queue, so the service is not ready.
    pub consumers_started: Arc<std::sync::atomic::AtomicUsize>,
    pub config: Arc<KitConfig>,
}

impl std::ops::Deref for Kit {
    type Target = KitParts;
    fn deref(&self) -> &KitParts {
        &self.0
    }
}

impl Kit {
    /// A kit of these parts; its consumer names are set once with [`Kit::set_consumers`].
    pub fn new(
        service: &'static str,
        pool: PgPool,
        verifier: Verifier,
        broker: BrokerHealth,
        config: Arc<KitConfig>,
    ) -> Kit {
        Kit(Arc::new(KitParts {
            service,
            consumers: std::sync::OnceLock::new(),
            pool,
            verifier,
            broker,
            consumers_started: Arc::default(),
            config,
        }))
    }

    /// Names of the service's event consumers (empty until set).
    pub fn consumers(&self) -> &[String] {
        self.consumers.get().map_or(&[], |c| c)
    }

    /// Sets the consumer names; only the first call counts.
    pub fn set_consumers(&self, names: impl IntoIterator<Item = String>) {
        let _ = self.consumers.set(names.into_iter().collect());
    }
}

impl FromRef<Kit> for Verifier {
    fn from_ref(k: &Kit) -> Verifier {
        k.verifier.clone()
    }
}

pub(crate) static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Wraps a service router in the standard middleware and adds the operational routes.
/// `openapi` is served at `/openapi.json` and rendered offline at `/docs`.
pub fn finish(router: Router, kit: &Kit, openapi: utoipa::openapi::OpenApi) -> Router {
    let cfg = &kit.config.http;
    let http = Arc::new(cfg.clone());
    let ops = ops::routes(kit);
    // The page loads the document relative to itself (`/docs/` → `../openapi.json`), so it
    // works behind an ingress that serves the service under a path prefix.
    let docs: Router = utoipa_swagger_ui::SwaggerUi::new("/docs")
        .url("/openapi.json", openapi)
        .config(utoipa_swagger_ui::Config::new(["../openapi.json"]))
        .into();
    // One tower stack, applied with one `layer` call: axum boxes each layered service into a
    // route and clones it, with everything inside it, for every request, so a `layer` call per
    // middleware made a request allocate and clone the stack once per layer.
    let stack = tower::ServiceBuilder::new()
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            ApiError::internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        // The request span, the log line, the metrics and problem documents for layer errors.
        .layer(observe::ObserveLayer)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(cfg.request_timeout_ms),
        ))
        .layer(MapResponseLayer::new(
            |res: Response<CompressionBody<Body>>| res.map(Body::new),
        ))
        .layer(CompressionLayer::new())
        .layer(limits::gate(http, limits::head_limits))
        // Bodies over the limit: 413 at once when their declared length says so, or when
        // reading them passes it (the problem document is added by `Observe`).
        .layer(MapResponseLayer::new(
            |res: Response<ResponseBody<Body>>| res.map(Body::new),
        ))
        .layer(RequestBodyLimitLayer::new(cfg.body_limit_bytes))
        .layer(MapRequestLayer::new(|req: Request<Limited<Body>>| {
            req.map(Body::new)
        }))
        .layer(axum::Extension(crate::error::BodyReadTimeout(
            Duration::from_millis(cfg.body_read_timeout_ms),
        )))
        .layer(crate::http::idempotency::IdempotencyLayer(kit.clone()));
    router
        .merge(ops)
        .merge(docs)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route") })
        .layer(stack)
}

/// Error responses made by layers (body limit 413, timeout 503, method not allowed 405) carry no
/// problem document; give them one so every error a client sees has the same shape. A JSON
/// document a handler wrote itself (a problem, or the readiness report's 503 naming what is
/// down) is kept.
pub(crate) fn problem_for_bare_errors(res: Response) -> Response {
    let status = res.status();
    let has_document = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with(crate::error::PROBLEM_JSON) || v.starts_with("application/json")
        });
    if !(status.is_client_error() || status.is_server_error()) || has_document {
        return res;
    }
    let (code, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("PAYLOAD_TOO_LARGE", "the request body is too large"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "METHOD_NOT_ALLOWED",
            "the method is not allowed on this route",
        ),
        StatusCode::SERVICE_UNAVAILABLE => ("UNAVAILABLE", "the request took too long; retry"),
        StatusCode::NOT_FOUND => ("NOT_FOUND", "no such route"),
        s if s.is_server_error() => ("INTERNAL", "internal error"),
        _ => ("BAD_REQUEST", "the request was rejected"),
    };
    let mut out = ApiError::new(status, code, detail).into_response();
    for h in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = res.headers().get(&h) {
            out.headers_mut().insert(h, v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Json;

    #[tokio::test]
    async fn bare_layer_errors_get_a_problem_and_handler_documents_are_kept() {
        let bare = problem_for_bare_errors(StatusCode::SERVICE_UNAVAILABLE.into_response());
        assert_eq!(
            bare.headers()[header::CONTENT_TYPE],
            crate::error::PROBLEM_JSON
        );
        let report = serde_json::json!({"status": "unavailable", "database": "down"});
        let kept = problem_for_bare_errors(
            (StatusCode::SERVICE_UNAVAILABLE, Json(report.clone())).into_response(),
        );
        assert_eq!(kept.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(kept.into_body(), 1 << 16)
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            report
        );
    }
}
