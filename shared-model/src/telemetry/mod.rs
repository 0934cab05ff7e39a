//! Logs, metrics and trace context.
//!
//! `init` sets up tracing (JSON lines in production, human-readable locally, both written by
//! `tracing-appender`'s non-blocking writer), OTLP/HTTP span export when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and the Prometheus recorder behind `/metrics`. Trace
//! context is W3C `traceparent` (see [`trace`]): taken from the incoming request or started here,
//! written into every log line and event the request causes and carried in AMQP headers, so one
//! trace id spans a request and its reactions.

mod trace;

pub use trace::{TraceContext, set_remote_parent};

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogConfig;

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();
static DROPPED_LINES: OnceLock<ErrorCounter> = OnceLock::new();

/// Buckets (seconds) for request and delivery latency histograms.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Log lines held for the writer thread; a line that finds this many waiting is dropped (and
/// counted in `log_lines_dropped_total`) rather than made to wait: logging never blocks a
/// request on a stalled output.
const LOG_BUFFERED_LINES: usize = 64 * 1024;

/// The process-wide Prometheus handle; installs the recorder on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    METRICS.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .expect("the latency bucket list is not empty");
        match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is already installed (a test harness): render an empty one.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// The metrics in the Prometheus text format, with `log_lines_dropped_total` brought up to date.
pub fn render_metrics() -> String {
    if let Some(dropped) = DROPPED_LINES.get() {
        metrics::counter!("log_lines_dropped_total").absolute(dropped.dropped_lines() as u64);
    }
    metrics_handle().render()
}

/// Kept by `main` for the life of the process; flushes exported spans and buffered log lines
/// when dropped.
pub struct TelemetryGuard {
    tracer_provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    _log: WorkerGuard,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.tracer_provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("flushing OTLP spans failed: {e}");
        }
    }
}

/// An OTLP/HTTP span exporter when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard
/// `OTEL_EXPORTER_OTLP_*` variables configure it further).
fn otlp_provider(
    service: &'static str,
) -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| {
            anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the exporter: {e}")
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(Some(
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}

/// Installs the tracing subscriber and the metrics recorder.
///
/// JSON lines are tracing-subscriber's JSON format with the event's fields at the top level:
/// `{"timestamp","level","message",<event fields>,"target","span":{<fields>,"name"}}`, where
/// `span` is the innermost span the line was written in: `request` (method, path, trace_id,
/// request_id) while a request is served, `consume` (queue, event type, id) while an event is
/// handled.
pub fn init(service: &'static str, log: &LogConfig) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .map_err(|e| anyhow::anyhow!("log.level: {e}"))?;
    let provider = otlp_provider(service)?;
    let otel = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider;
        tracing_opentelemetry::layer().with_tracer(p.tracer(service))
    });
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_BUFFERED_LINES)
        .thread_name("log-writer")
        .finish(std::io::stdout());
    let _ = DROPPED_LINES.set(writer.error_counter());
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let installed = if log.format == "json" {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_writer(writer),
            )
            .try_init()
    };
    installed.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))?;
    metrics_handle();
    tracing::info!(
        service,
        version = env!("CARGO_PKG_VERSION"),
        otlp = provider.is_some(),
        "telemetry ready"
    );
    Ok(TelemetryGuard {
        tracer_provider: provider,
        _log: guard,
    })
}
