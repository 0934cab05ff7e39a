//! HTTP plumbing every service shares: the middleware stack (request ids, observation,
//! timeouts, compression, head and body limits, `Idempotency-Key`), health/metrics/docs routes,
//! cursor pagination, `ETag`/`If-Match`; the server loop is in [`serve`]. Nothing here knows
//! about any resource.

pub mod openapi;
pub mod serve;

pub use openapi::{KitDoc, problems};

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRef, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::{CompressionBody, CompressionLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use utoipa::ToSchema;

use crate::auth::{Caller, Verifier};
use crate::bus::BrokerHealth;
use crate::config::{HttpConfig, KitConfig};
use crate::error::{ApiError, FieldError};
use crate::telemetry::{self, TraceContext};

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
    /// State a service shares between its routes and its background jobs (see [`Kit::shared`]).
    pub shared: Arc<std::sync::Mutex<axum::http::Extensions>>,
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
            shared: Arc::default(),
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

    /// The one value of type `T` of this running service, made by `init` on first use: lets the
    /// routes and the background jobs share e.g. a cache.
    pub fn shared<T: Clone + Send + Sync + 'static>(&self, init: impl FnOnce() -> T) -> T {
        let mut ext = crate::lock(&self.shared);
        if let Some(v) = ext.get::<T>() {
            return v.clone();
        }
        let v = init();
        ext.insert(v.clone());
        v
    }
}

impl FromRef<Kit> for Verifier {
    fn from_ref(k: &Kit) -> Verifier {
        k.verifier.clone()
    }
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Wraps a service router in the standard middleware and adds the operational routes.
/// `openapi` is served at `/openapi.json` and rendered offline at `/docs`.
pub fn finish(router: Router, kit: &Kit, openapi: utoipa::openapi::OpenApi) -> Router {
    let cfg = &kit.config.http;
    let http = Arc::new(cfg.clone());
    let ops = Router::new()
        .route(
            "/health/live",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics_route))
        .route("/internal/v1/dead-letters", get(list_dead_letters))
        .route(
            "/internal/v1/dead-letters/replay",
            axum::routing::post(replay_dead_letters),
        )
        .with_state(kit.clone());
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
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), FastRequestId))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        // The request span, the log line, the metrics and problem documents for layer errors.
        .layer(ObserveLayer)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(cfg.request_timeout_ms),
        ))
        .layer(tower::layer::layer_fn(|inner| CompressionWhenAccepted {
            compression: tower::Layer::layer(&CompressionLayer::new(), Clone::clone(&inner)),
            inner,
        }))
        .layer(gate(http.clone(), head_limits))
        .layer(gate(http, body_limits))
        .layer(crate::idempotency::IdempotencyLayer(kit.clone()));
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
fn problem_for_bare_errors(res: Response) -> Response {
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

/// Compression of responses for requests that accept an encoding; any other request goes
/// straight to the inner service (the compression layer would wrap its response body, to be
/// boxed again, only to pass it through).
#[derive(Clone)]
struct CompressionWhenAccepted<S> {
    compression: tower_http::compression::Compression<S>,
    inner: S,
}

impl<S> tower::Service<Request> for CompressionWhenAccepted<S>
where
    S: tower::Service<Request, Response = Response>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = Response;
    type Error = S::Error;
    /// (The compression's future is not nameable: boxed, on the path that compresses anyway.)
    type Future = futures_util::future::Either<
        futures_util::future::MapOk<S::Future, fn(Response) -> Response>,
        futures_util::future::BoxFuture<'static, Result<Response, S::Error>>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        std::task::ready!(self.inner.poll_ready(cx))?;
        self.compression.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        use futures_util::TryFutureExt;
        if !req.headers().contains_key(header::ACCEPT_ENCODING) {
            let vary: fn(Response) -> Response = vary_if_compressible;
            return futures_util::future::Either::Left(self.inner.call(req).map_ok(vary));
        }
        let compressed = self
            .compression
            .call(req)
            .map_ok(|res: Response<CompressionBody<Body>>| res.map(Body::new));
        futures_util::future::Either::Right(Box::pin(compressed))
    }
}

/// What the compression layer does to a response it does not compress for want of an accepted
/// encoding: a response it would compress for another request says it varies by
/// `Accept-Encoding`, so a cache does not serve this one to a client that asked for gzip.
fn vary_if_compressible(mut res: Response) -> Response {
    use tower_http::compression::Predicate;
    let varies = || {
        res.headers().get_all(header::VARY).iter().any(|v| {
            v.as_bytes()
                .windows(b"accept-encoding".len())
                .any(|w| w.eq_ignore_ascii_case(b"accept-encoding"))
        })
    };
    if !res.headers().contains_key(header::CONTENT_ENCODING)
        && !res.headers().contains_key(header::CONTENT_RANGE)
        && tower_http::compression::DefaultPredicate::new().should_compress(&res)
        && !varies()
    {
        res.headers_mut()
            .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    res
}

/// A service that lets a request through `check` before `inner`: `check` may answer it at
/// once (a refusal) or pass it on, changed or not.
#[derive(Clone)]
struct Gate<S> {
    check: fn(&HttpConfig, Request) -> Result<Request, ApiError>,
    cfg: Arc<HttpConfig>,
    inner: S,
}

impl<S> tower::Service<Request> for Gate<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future =
        futures_util::future::Either<S::Future, std::future::Ready<Result<Response, S::Error>>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        match (self.check)(&self.cfg, req) {
            Ok(req) => futures_util::future::Either::Left(self.inner.call(req)),
            Err(refused) => {
                futures_util::future::Either::Right(std::future::ready(Ok(refused.into_response())))
            }
        }
    }
}

/// The layer of a [`Gate`].
fn gate<S>(
    cfg: Arc<HttpConfig>,
    check: fn(&HttpConfig, Request) -> Result<Request, ApiError>,
) -> impl tower::Layer<S, Service = Gate<S>> + Clone {
    tower::layer::layer_fn(move |inner| Gate {
        check,
        cfg: cfg.clone(),
        inner,
    })
}

/// The longest request target served (a longer one is 414).
const MAX_URI_BYTES: usize = 8 * 1024;
/// The most request header fields, and their total size, served (more is 431).
const MAX_HEADERS: usize = 100;
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// 414 for a request target over [`MAX_URI_BYTES`], 431 for headers over [`MAX_HEADERS`] or
/// [`MAX_HEADER_BYTES`], with a problem document. (The connection's own limits, which answer
/// without one, are set well above these: see [`serve`].)
fn head_limits(_: &HttpConfig, req: Request) -> Result<Request, ApiError> {
    let uri = req.uri();
    let uri_len = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "URI_TOO_LONG",
            format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
            format!(
                "the request has more than {MAX_HEADERS} header fields or {MAX_HEADER_BYTES} \
                 bytes of them"
            ),
        ));
    }
    Ok(req)
}

/// Request bodies over `http.body_limit_bytes` are refused with 413: at once when their
/// declared length says so, or when reading them passes the limit (a body of unknown length is
/// read through a limit; one of known length is held to it by the connection). A request with a
/// body carries its [`BodyReadTimeout`](crate::error::BodyReadTimeout), which the extractors
/// apply (see [`crate::error::read_body`]); one without is passed on as it is.
fn body_limits(cfg: &HttpConfig, req: Request) -> Result<Request, ApiError> {
    use axum::body::HttpBody;
    let hint = req.body().size_hint();
    let limit = cfg.body_limit_bytes as u64;
    if hint.lower() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "the request body is too large",
        ));
    }
    if hint.upper() == Some(0) {
        return Ok(req);
    }
    let mut req = if hint.upper().is_some_and(|n| n <= limit) {
        req
    } else {
        req.map(|body| Body::new(http_body_util::Limited::new(body, cfg.body_limit_bytes)))
    };
    req.extensions_mut()
        .insert(crate::error::BodyReadTimeout(Duration::from_millis(
            cfg.body_read_timeout_ms,
        )));
    Ok(req)
}

/// Request ids: random UUIDs without a system call each.
#[derive(Clone, Copy)]
struct FastRequestId;

impl MakeRequestId for FastRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = telemetry::fast_uuid().hyphenated().encode_lower(&mut text);
        HeaderValue::from_str(text).ok().map(RequestId::new)
    }
}

/// How long readiness waits for the database (an outage must not hold the probe).
const READY_DB_TIMEOUT: Duration = Duration::from_millis(1000);

async fn ready(State(kit): State<Kit>) -> Response {
    let db = tokio::time::timeout(READY_DB_TIMEOUT, sqlx::query("SELECT 1").execute(&kit.pool))
        .await
        .is_ok_and(|r| r.is_ok());
    let broker = kit.broker.is_up();
    let consumers = kit
        .consumers_started
        .load(std::sync::atomic::Ordering::Relaxed)
        >= kit.consumers().len();
    let status = if db && broker && consumers {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if status == StatusCode::OK { "ok" } else { "unavailable" },
        "database": if db { "up" } else { "down" },
        "broker": if broker { "up" } else { "down" },
        "consumers": if consumers { "started" } else { "starting" },
    });
    (status, Json(body)).into_response()
}

/// Query of `GET /internal/v1/dead-letters`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeadLetterQuery {
    /// A consumer of this service (its queue name without the prefix).
    consumer: String,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Body of `POST /internal/v1/dead-letters/replay`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// A consumer of this service.
    consumer: String,
    /// 1 to 200 (default 50).
    #[schema(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// The document of the dead-letter endpoints, merged into every service's (see [`KitDoc`]).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_dead_letters, replay_dead_letters),
    components(schemas(ReplayBody, crate::bus::DeadLetter))
)]
pub(crate) struct DeadLetterDoc;

fn dead_letter_access(kit: &Kit, caller: &Caller, consumer: &str) -> Result<(), ApiError> {
    caller.require(crate::auth::Permission::PlatformAdminEditAllCustomers)?;
    if kit.consumers().iter().any(|c| c == consumer) {
        Ok(())
    } else {
        Err(ApiError::not_found("consumer"))
    }
}

/// Lists a consumer's dead letters without removing them (platform admins).
#[utoipa::path(
    get, path = "/internal/v1/dead-letters", tag = "operations",
    params(DeadLetterQuery),
    responses(
        (status = 200, description = "`{\"items\": [DeadLetter]}`, oldest first", content_type = "application/json"),
        problems::AuthErrors,
        (status = 404, description = "NOT_FOUND: no such consumer", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn list_dead_letters(
    State(kit): State<Kit>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DeadLetterQuery>,
) -> Result<Response, ApiError> {
    dead_letter_access(&kit, &caller, &q.consumer)?;
    let limit = page_limit(q.limit)? as usize;
    let items = crate::bus::list_dead_letters(&kit.config.amqp, &q.consumer, limit)
        .await
        .map_err(|e| {
            tracing::warn!(error = format!("{e:#}"), "listing dead letters failed");
            ApiError::unavailable("the broker is unreachable")
        })?;
    Ok(Json(serde_json::json!({ "items": items })).into_response())
}

/// Moves dead letters back onto the consumer's queue (platform admins).
#[utoipa::path(
    post, path = "/internal/v1/dead-letters/replay", tag = "operations",
    request_body = ReplayBody,
    responses(
        (status = 200, description = "`{\"replayed\": n}`", content_type = "application/json"),
        problems::AuthErrors,
        (status = 404, description = "NOT_FOUND: no such consumer", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn replay_dead_letters(
    State(kit): State<Kit>,
    caller: Caller,
    crate::error::ApiJson(body): crate::error::ApiJson<ReplayBody>,
) -> Result<Response, ApiError> {
    dead_letter_access(&kit, &caller, &body.consumer)?;
    let limit = page_limit(body.limit)? as usize;
    let replayed = crate::bus::replay_dead_letters(&kit.config.amqp, &body.consumer, limit)
        .await
        .map_err(|e| {
            tracing::warn!(error = format!("{e:#}"), "replaying dead letters failed");
            ApiError::unavailable("the broker is unreachable")
        })?;
    tracing::info!(
        consumer = body.consumer,
        replayed,
        by = caller.sub(),
        "dead letters replayed"
    );
    Ok(Json(serde_json::json!({ "replayed": replayed })).into_response())
}

async fn metrics_route(State(kit): State<Kit>) -> Response {
    if let Ok((n, age)) = crate::outbox::pending(&kit.pool).await {
        metrics::gauge!("outbox_pending_events").set(n as f64);
        metrics::gauge!("outbox_oldest_pending_seconds").set(age.map_or(0.0, |a| a.as_secs_f64()));
    }
    let pool = &kit.pool;
    metrics::gauge!("db_pool_connections").set(pool.size() as f64);
    metrics::gauge!("db_pool_idle_connections").set(pool.num_idle() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        telemetry::metrics_handle().render(),
    )
        .into_response()
}

/// The layer of [`Observe`].
#[derive(Clone, Copy)]
struct ObserveLayer;

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

/// Continues the caller's W3C trace (or starts one) and runs the request with its log fields
/// (and in a span where spans are read: see [`telemetry::request_spans`]); then gives layer
/// errors a problem document, writes the request's log line, records its count and duration by
/// method, route template and status, and echoes the `traceparent` of this hop.
///
/// A service of its own rather than `axum::middleware::from_fn`, which clones and boxes the
/// inner stack and boxes its future for every request: this one wraps the inner future in
/// place.
#[derive(Clone)]
struct Observe<S> {
    inner: S,
}

impl<S> tower::Service<Request> for Observe<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future =
        tokio::task::futures::TaskLocalFuture<telemetry::RequestFields, Observed<S::Future>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let start = Instant::now();
        let method = req.method().clone();
        let route = req.extensions().get::<MatchedPath>().cloned();
        let parent = req
            .headers()
            .get(&TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse);
        let ctx = parent
            .as_ref()
            .map(TraceContext::child)
            .unwrap_or_else(TraceContext::root);
        let request_id = req.headers().get(&REQUEST_ID).cloned();
        let span = telemetry::request_spans().then(|| {
            let span = tracing::info_span!(
                "request",
                method = %method,
                path = %req.uri().path(),
                trace_id = %ctx.trace_id,
                request_id = request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or(""),
                status = tracing::field::Empty,
            );
            if let Some(p) = &parent {
                telemetry::set_remote_parent(&span, p);
            }
            span
        });
        let fields = telemetry::RequestFields {
            method: method.clone(),
            uri: req.uri().clone(),
            trace_id: ctx.trace_id.clone(),
            request_id,
        };
        let traceparent = HeaderValue::try_from(ctx.header()).ok();
        req.extensions_mut().insert(ctx);
        let future = {
            let _enter = span.as_ref().map(tracing::Span::enter);
            self.inner.call(req)
        };
        telemetry::in_request(
            fields,
            Observed {
                future,
                start,
                method,
                route,
                span,
                traceparent,
            },
        )
    }
}

pin_project_lite::pin_project! {
    /// A request's response future under [`Observe`]: polled in the request's span (if any),
    /// and finished (log line, metrics, `traceparent`) when it completes.
    struct Observed<F> {
        #[pin]
        future: F,
        start: Instant,
        method: Method,
        route: Option<MatchedPath>,
        span: Option<tracing::Span>,
        traceparent: Option<HeaderValue>,
    }
}

impl<F, E> std::future::Future for Observed<F>
where
    F: std::future::Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let _enter = this.span.as_ref().map(tracing::Span::enter);
        let res = std::task::ready!(this.future.poll(cx))?;
        let mut res = problem_for_bare_errors(res);
        let status = res.status().as_u16();
        let elapsed = this.start.elapsed();
        if let Some(span) = this.span.as_ref() {
            span.record("status", status);
        }
        let ms = elapsed.as_micros() as f64 / 1000.0;
        if res.status().is_server_error() {
            tracing::error!(status, ms, "request finished");
        } else {
            tracing::info!(status, ms, "request finished");
        }
        record_request(this.method, this.route.as_ref(), res.status(), elapsed);
        if let Some(v) = this.traceparent.take() {
            res.headers_mut().insert(TRACEPARENT.clone(), v);
        }
        std::task::Poll::Ready(Ok(res))
    }
}

/// The method as a metric label: the standard ones by name, any other as `OTHER` (a client
/// choosing methods must not create series).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// A request series' metric handles.
type RequestSeries = (metrics::Counter, metrics::Histogram);

/// Request series by (method, status), then by route template (neither chosen by clients).
type SeriesByRoute = std::collections::HashMap<
    (&'static str, u16),
    std::collections::HashMap<Box<str>, RequestSeries, foldhash::fast::RandomState>,
    foldhash::fast::RandomState,
>;

thread_local! {
    /// Each thread's handles of the request series it has recorded: the recorder's own lookup
    /// builds and hashes the labels each time (the series are bounded: known methods, route
    /// templates, status codes).
    static REQUEST_SERIES: std::cell::RefCell<SeriesByRoute> =
        std::cell::RefCell::new(SeriesByRoute::default());
}

/// Counts the request in `http_requests_total` and its duration in
/// `http_request_duration_seconds`, labelled by method, route template (`unmatched` when no
/// route matched) and status.
fn record_request(
    method: &Method,
    route: Option<&MatchedPath>,
    status: StatusCode,
    took: Duration,
) {
    let method = method_label(method);
    let route = route.map_or("unmatched", |r| r.as_str());
    REQUEST_SERIES.with_borrow_mut(|series| {
        let by_route = series.entry((method, status.as_u16())).or_default();
        if !by_route.contains_key(route) {
            let labels = [
                ("method", metrics::SharedString::const_str(method)),
                ("route", metrics::SharedString::from(route.to_string())),
                (
                    "status",
                    metrics::SharedString::from(status.as_str().to_string()),
                ),
            ];
            by_route.insert(
                route.into(),
                (
                    metrics::counter!("http_requests_total", &labels),
                    metrics::histogram!("http_request_duration_seconds", &labels),
                ),
            );
        }
        if let Some((count, duration)) = by_route.get(route) {
            count.increment(1);
            duration.record(took.as_secs_f64());
        }
    });
}

/// The trace context of the current request (always present behind `finish`).
pub struct Trace(pub TraceContext);

impl<S: Send + Sync> FromRequestParts<S> for Trace {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Trace(
            parts
                .extensions
                .get::<TraceContext>()
                .cloned()
                .unwrap_or_else(TraceContext::root),
        ))
    }
}

impl Trace {
    /// The `traceparent` to write into events caused by this request.
    pub fn for_event(&self) -> Option<String> {
        Some(self.0.child().header())
    }
}

// ---------------------------------------------------------------------------------------------
// Pagination

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;

/// A page of a collection.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Validates `limit` (1..=200, default 50).
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::field(
            "limit",
            format!("must be 1 to {MAX_PAGE_SIZE}"),
        )),
    }
}

/// An opaque cursor: base64url of the position's JSON.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(position).unwrap_or_default())
}

/// The position a cursor holds. A cursor is the client's text: one that does not decode, or
/// whose position holds U+0000 (never in a cursor this service made), is a 422 on `cursor`.
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Result<T, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(|v| crate::error::text_with_nul(v, String::new()).is_none())
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| ApiError::field("cursor", "is not a cursor returned by this endpoint"))
}

/// Builds a page from `limit + 1` fetched rows.
pub fn page<T, P: Serialize>(mut rows: Vec<T>, limit: i64, position: impl Fn(&T) -> P) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| encode_cursor(&position(r)))
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

// ---------------------------------------------------------------------------------------------
// Query strings and paths

/// Query-string extractor reporting the offending parameter as a 422.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        // Every query parameter passes here: none may hold U+0000 (`%00`), which PostgreSQL
        // cannot store or compare.
        if let Some((name, _)) =
            form_urlencoded::parse(q.as_bytes()).find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::field(
                name.into_owned(),
                "must not contain the NUL character (U+0000)",
            ));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.into_inner().to_string();
                let field = if path == "." {
                    msg.split('`').nth(1).unwrap_or("query").to_string()
                } else {
                    path
                };
                ApiError::field(field, msg)
            })
    }
}

/// Path extractor: a malformed id is a 422 naming the parameter.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // The parameter to blame if parsing fails: the first whose value is not a UUID.
        let culprit = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .ok()
            .and_then(|raw| {
                raw.iter()
                    .find(|(_, v)| uuid::Uuid::parse_str(v).is_err())
                    .map(|(k, _)| k.to_string())
            });
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| {
                let field = culprit.unwrap_or_else(|| "path".into());
                ApiError::validation(vec![FieldError {
                    field,
                    rule: "must be a UUID".into(),
                }])
            })
    }
}

// ---------------------------------------------------------------------------------------------
// ETag / If-Match

/// The strong ETag of an entity version.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("a number is a valid header value")
}

/// A parsed `If-Match` header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IfMatch(Option<Vec<i64>>);

impl IfMatch {
    /// 412 unless the header is absent, `*`, or lists `version`.
    pub fn check(&self, version: i64) -> Result<(), ApiError> {
        match &self.0 {
            Some(list) if !list.contains(&version) => Err(ApiError::precondition_failed(format!(
                "If-Match does not match the current version ({version})"
            ))),
            _ => Ok(()),
        }
    }

    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }
}

pub fn parse_if_match(headers: &HeaderMap) -> IfMatch {
    let Some(v) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return IfMatch(None);
    };
    if v.trim() == "*" {
        return IfMatch(None);
    }
    let list = v
        .split(',')
        .filter_map(|t| {
            t.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .parse()
                .ok()
        })
        .collect();
    // A header that names no version we could produce matches nothing.
    IfMatch(Some(list))
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parse_if_match(&parts.headers))
    }
}

/// A JSON response with the entity's `ETag`.
pub fn with_etag<T: Serialize>(status: StatusCode, version: i64, body: &T) -> Response {
    let mut res = (status, Json(body)).into_response();
    res.headers_mut().insert(header::ETAG, etag(version));
    res
}

/// Deserialize helper for optional-nullable PATCH fields: absent, `null`, or a value.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(|o| o.map_or(Patch::Null, Patch::Value))
    }
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }

    /// Merges into `field`: absent leaves it, null clears it, a value replaces it.
    pub fn apply(self, field: &mut Option<T>) {
        match self {
            Patch::Absent => {}
            Patch::Null => *field = None,
            Patch::Value(x) => *field = Some(x),
        }
    }

    /// The patch with its value mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(x) => Patch::Value(f(x)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_parsing() {
        let mut h = HeaderMap::new();
        assert!(parse_if_match(&h).check(3).is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"3\""));
        assert!(parse_if_match(&h).check(3).is_ok());
        assert_eq!(
            parse_if_match(&h).check(4).unwrap_err().status,
            StatusCode::PRECONDITION_FAILED
        );
        h.insert(header::IF_MATCH, HeaderValue::from_static("W/\"1\", \"4\""));
        assert!(parse_if_match(&h).check(4).is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(parse_if_match(&h).check(9).is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"garbage\""));
        assert!(parse_if_match(&h).check(1).is_err());
    }

    #[test]
    fn cursors_and_pages() {
        let c = encode_cursor(&("2026-01-01T00:00:00Z", 7));
        let back: (String, i32) = decode_cursor(&c).unwrap();
        assert_eq!(back.1, 7);
        assert_eq!(
            decode_cursor::<(String, i32)>("!!").unwrap_err().errors[0].field,
            "cursor"
        );
        let p = page(vec![1, 2, 3], 2, |x| *x);
        assert_eq!(p.items, vec![1, 2]);
        assert!(p.next_cursor.is_some());
        let p = page(vec![1, 2], 2, |x| *x);
        assert!(p.next_cursor.is_none());
        assert!(page_limit(Some(201)).is_err());
        let nul = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"["a\u0000",1]"#);
        assert_eq!(
            decode_cursor::<(String, i32)>(&nul).unwrap_err().errors[0].field,
            "cursor"
        );
        assert_eq!(page_limit(None).unwrap(), 50);
    }

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

    #[test]
    fn patch_distinguishes_absent_null_value() {
        #[derive(Deserialize)]
        struct P {
            #[serde(default)]
            a: Patch<String>,
        }
        assert_eq!(serde_json::from_str::<P>("{}").unwrap().a, Patch::Absent);
        assert_eq!(
            serde_json::from_str::<P>(r#"{"a":null}"#).unwrap().a,
            Patch::Null
        );
        assert_eq!(
            serde_json::from_str::<P>(r#"{"a":"x"}"#).unwrap().a,
            Patch::Value("x".into())
        );
    }
}
