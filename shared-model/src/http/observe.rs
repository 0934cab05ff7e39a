//! Observation of every request: its trace context and span, its log line, its metrics, and
//! problem documents for errors answered by layers.

use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;

use super::{REQUEST_ID, TRACEPARENT, problem_for_bare_errors};
use crate::error::ApiError;
use crate::telemetry::{self, TraceContext};

/// The layer of [`Observe`].
#[derive(Clone, Copy)]
pub(super) struct ObserveLayer;

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

/// Continues the caller's W3C trace (or starts one) and runs the request in its `request` span
/// (method, path, trace id, request id: the `span` of every log line written while serving it);
/// then gives layer errors a problem document, writes the request's log line, records its count
/// and duration by method, route template and status, and echoes the `traceparent` of this hop.
///
/// A service of its own rather than `axum::middleware::from_fn`, which clones and boxes the
/// inner stack and boxes its future for every request: this one wraps the inner future in
/// place (tower-http's `TraceLayer` would do the span and the line, not the problem documents,
/// the metrics or the `traceparent`).
#[derive(Clone)]
pub(super) struct Observe<S> {
    inner: S,
}

impl<S> tower::Service<Request> for Observe<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = tracing::instrument::Instrumented<Observed<S::Future>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        use tracing::Instrument;
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
        let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok());
        let span = tracing::info_span!(
            "request",
            method = %method,
            path = %req.uri().path(),
            trace_id = %ctx.trace_id(),
            request_id,
        );
        if let Some(p) = &parent {
            telemetry::set_remote_parent(&span, p);
        }
        let traceparent = HeaderValue::try_from(ctx.header()).ok();
        req.extensions_mut().insert(ctx);
        let future = span.in_scope(|| self.inner.call(req));
        Observed {
            future,
            start,
            method,
            route,
            traceparent,
        }
        .instrument(span)
    }
}

pin_project_lite::pin_project! {
    /// A request's response future under [`Observe`], finished (log line, metrics,
    /// `traceparent`) when it completes.
    pub(super) struct Observed<F> {
        #[pin]
        future: F,
        start: Instant,
        method: Method,
        route: Option<MatchedPath>,
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
        let res = std::task::ready!(this.future.poll(cx))?;
        let mut res = problem_for_bare_errors(res);
        let status = res.status().as_u16();
        let elapsed = this.start.elapsed();
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

/// Counts the request in `http_requests_total` and its duration in
/// `http_request_duration_seconds`, labelled by method, route template (`unmatched` when no
/// route matched) and status (none of them chosen freely by clients).
fn record_request(
    method: &Method,
    route: Option<&MatchedPath>,
    status: StatusCode,
    took: Duration,
) {
    let labels = [
        (
            "method",
            metrics::SharedString::const_str(method_label(method)),
        ),
        (
            "route",
            route.map_or(metrics::SharedString::const_str("unmatched"), |r| {
                metrics::SharedString::from(r.as_str().to_string())
            }),
        ),
        (
            "status",
            metrics::SharedString::from(status.as_str().to_string()),
        ),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(took.as_secs_f64());
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
