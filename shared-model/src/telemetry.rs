//! Logs, metrics and trace context.
//!
//! `init` sets up tracing (JSON in production, human-readable locally), OTLP/HTTP span export
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and the Prometheus recorder behind `/metrics`. Trace context is W3C `traceparent`: taken from the incoming
//! request or started here, recorded on the request span, written into every event the request
//! causes and carried in AMQP headers, so one trace id spans a request and its reactions.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogConfig;

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Buckets (seconds) for request and delivery latency histograms.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

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

/// Kept by `main` for the life of the process; flushes exported spans when dropped.
pub struct TelemetryGuard {
    tracer_provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
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

/// Makes `span` a child of the remote span `parent` (so exported spans join the caller's trace).
pub fn set_remote_parent(span: &tracing::Span, parent: &TraceContext) {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(&parent.trace_id),
        SpanId::from_hex(&parent.span_id),
    ) else {
        return;
    };
    let flags = if parent.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let sc = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(sc));
}

/// Installs the tracing subscriber and the metrics recorder.
pub fn init(service: &'static str, log: &LogConfig) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .map_err(|e| anyhow::anyhow!("log.level: {e}"))?;
    let provider = otlp_provider(service)?;
    let otel = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider;
        tracing_opentelemetry::layer().with_tracer(p.tracer(service))
    });
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    if log.format == "json" {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()
            .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))?;
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().compact())
            .try_init()
            .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))?;
    }
    metrics_handle();
    tracing::info!(
        service,
        version = env!("CARGO_PKG_VERSION"),
        otlp = provider.is_some(),
        "telemetry ready"
    );
    Ok(TelemetryGuard {
        tracer_provider: provider,
    })
}

/// A W3C trace context (`traceparent` version 00).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: String,
    pub span_id: String,
    pub sampled: bool,
}

thread_local! {
    /// Per-thread splitmix64 state, seeded once from the OS: trace and request ids need to be
    /// unique, not secret, and a system call per id costs more than the rest of the id.
    static RNG: std::cell::Cell<u64> = std::cell::Cell::new(u64::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or([7; 8]),
    ));
}

/// A fast non-cryptographic random number.
pub fn fast_random() -> u64 {
    RNG.with(|s| {
        let mut z = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2 + 16);
    while out.len() < bytes * 2 {
        out.push_str(&format!("{:016x}", fast_random()));
    }
    out.truncate(bytes * 2);
    out
}

/// A random (version 4) UUID from [`fast_random`], for request ids.
pub fn fast_uuid() -> uuid::Uuid {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&fast_random().to_le_bytes());
    b[8..].copy_from_slice(&fast_random().to_le_bytes());
    uuid::Builder::from_random_bytes(b).into_uuid()
}

impl TraceContext {
    /// Starts a new trace.
    pub fn root() -> Self {
        Self {
            trace_id: random_hex(16),
            span_id: random_hex(8),
            sampled: true,
        }
    }

    /// Parses a `traceparent` header; `None` if malformed (then a new trace is started).
    pub fn parse(header: &str) -> Option<Self> {
        let parts: Vec<&str> = header.trim().split('-').collect();
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if parts.len() < 4 || parts[0] == "ff" || !hex(parts[0], 2) {
            return None;
        }
        let (trace, span, flags) = (parts[1], parts[2], parts[3]);
        if !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
            return None;
        }
        if trace.bytes().all(|b| b == b'0') || span.bytes().all(|b| b == b'0') {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self {
            trace_id: trace.to_ascii_lowercase(),
            span_id: span.to_ascii_lowercase(),
            sampled: flags & 1 == 1,
        })
    }

    /// A child span in the same trace.
    pub fn child(&self) -> Self {
        Self {
            trace_id: self.trace_id.clone(),
            span_id: random_hex(8),
            sampled: self.sampled,
        }
    }

    pub fn header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trip() {
        let h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::parse(h).unwrap();
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.header(), h);
        let c = t.child();
        assert_eq!(c.trace_id, t.trace_id);
        assert_ne!(c.span_id, t.span_id);
        assert!(
            TraceContext::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01")
                .is_none()
        );
        assert!(TraceContext::parse("garbage").is_none());
        let r = TraceContext::root();
        assert_eq!(TraceContext::parse(&r.header()), Some(r));
    }
}
