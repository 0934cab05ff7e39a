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

/// Kept by `main` for the life of the process; flushes exported spans and buffered log lines
/// when dropped.
pub struct TelemetryGuard {
    tracer_provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    log: LogSink,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.tracer_provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("flushing OTLP spans failed: {e}");
        }
        self.log.flush();
    }
}

/// Bytes of log lines held for the writer thread; a line that finds the buffer this full is
/// dropped (and counted) rather than made to wait.
const LOG_BUFFER_MAX: usize = 4 << 20;
/// Bytes that make the writer write at once rather than at the end of its interval.
const LOG_BUFFER_HIGH: usize = 128 * 1024;
/// The writer collects lines for this long after the first one before writing them.
const LOG_FLUSH_AFTER: std::time::Duration = std::time::Duration::from_millis(2);

/// Standard output written by a thread of its own. A request formats its line and appends it to
/// a shared buffer under a short lock; the writer thread, woken only by the first line after it
/// went idle (or a buffer past `LOG_BUFFER_HIGH`), waits `LOG_FLUSH_AFTER` for more, takes the
/// buffer and writes it in one system call. Under load that is one wake-up and one write per
/// interval rather than per line, and nothing on a request's path but a copy; when idle, a line
/// is out within 2 ms. Dropping the last handle lets the thread write what is left and end.
///
/// Logging never blocks the service: when the output cannot keep up (a full pipe, a disk busy
/// with other writes) and `LOG_BUFFER_MAX` bytes wait, further lines are dropped. The writer
/// then writes a warning line with how many were lost and adds them to the counter
/// `log_lines_dropped_total`. (Waiting for room instead once made every request thread wait
/// for a stalled `write`.)
#[derive(Clone)]
pub struct LogSink {
    shared: std::sync::Arc<LogShared>,
    _owner: std::sync::Arc<LogOwner>,
}

/// How the writer words its own line about dropped lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

struct LogShared {
    state: std::sync::Mutex<LogState>,
    /// The writer waits here for lines (or a flush request, or the end).
    wake: std::sync::Condvar,
    /// `flush` waits here for its lines to be written.
    progress: std::sync::Condvar,
    max: usize,
    format: LogFormat,
}

#[derive(Default)]
struct LogState {
    buf: Vec<u8>,
    writer_idle: bool,
    flush_requested: bool,
    closed: bool,
    /// Lines appended (or dropped) so far, and lines the writer has dealt with.
    appended: u64,
    written: u64,
    /// Lines dropped since the writer last reported.
    dropped: u64,
}

/// Dropped with the last [`LogSink`] clone: tells the writer to finish.
struct LogOwner(std::sync::Arc<LogShared>);

impl Drop for LogOwner {
    fn drop(&mut self) {
        crate::lock(&self.0.state).closed = true;
        self.0.wake.notify_one();
    }
}

impl LogShared {
    fn append(&self, line: &[u8]) {
        let mut st = crate::lock(&self.state);
        st.appended += 1;
        if st.buf.len() + line.len() > self.max && !st.buf.is_empty() {
            st.dropped += 1;
            return;
        }
        st.buf.extend_from_slice(line);
        let wake = st.writer_idle || st.buf.len() >= LOG_BUFFER_HIGH;
        drop(st);
        if wake {
            self.wake.notify_one();
        }
    }

    /// The writer's line about `n` dropped lines.
    fn dropped_line(&self, n: u64) -> Vec<u8> {
        const MESSAGE: &str = "log lines dropped: the log output did not keep up";
        let mut ts = String::with_capacity(32);
        push_timestamp(&mut ts, time::OffsetDateTime::now_utc());
        let target = module_path!();
        match self.format {
            LogFormat::Json => format!(
                "{{\"timestamp\":\"{ts}\",\"level\":\"WARN\",\"message\":\"{MESSAGE}\",\"dropped\":{n},\"target\":\"{target}\"}}\n"
            ),
            LogFormat::Text => format!("{ts}  WARN {target}: {MESSAGE} dropped={n}\n"),
        }
        .into_bytes()
    }

    fn run(&self, out: &mut dyn std::io::Write) {
        let mut spare = Vec::with_capacity(64 * 1024);
        loop {
            let mut st = crate::lock(&self.state);
            while st.buf.is_empty() && st.dropped == 0 && !st.closed && !st.flush_requested {
                st.writer_idle = true;
                st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.writer_idle = false;
            // Gather what else arrives in the interval, unless asked to hurry.
            if !st.closed && !st.flush_requested && st.buf.len() < LOG_BUFFER_HIGH {
                st = self
                    .wake
                    .wait_timeout(st, LOG_FLUSH_AFTER)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::swap(&mut st.buf, &mut spare);
            let dropped = std::mem::take(&mut st.dropped);
            let upto = st.appended;
            let closed = st.closed;
            st.flush_requested = false;
            drop(st);
            if dropped > 0 {
                metrics::counter!("log_lines_dropped_total").increment(dropped);
                spare.extend_from_slice(&self.dropped_line(dropped));
            }
            if !spare.is_empty() {
                let _ = out.write_all(&spare);
                let _ = out.flush();
                spare.clear();
            }
            crate::lock(&self.state).written = upto;
            self.progress.notify_all();
            if closed && crate::lock(&self.state).buf.is_empty() {
                return;
            }
        }
    }
}

impl LogSink {
    /// Starts the writer thread over `out`.
    pub fn spawn(out: impl std::io::Write + Send + 'static, format: LogFormat) -> LogSink {
        LogSink::with_limit(out, format, LOG_BUFFER_MAX)
    }

    /// [`LogSink::spawn`] holding at most `max` bytes of lines.
    pub fn with_limit(
        mut out: impl std::io::Write + Send + 'static,
        format: LogFormat,
        max: usize,
    ) -> LogSink {
        let shared = std::sync::Arc::new(LogShared {
            state: std::sync::Mutex::new(LogState::default()),
            wake: std::sync::Condvar::new(),
            progress: std::sync::Condvar::new(),
            max,
            format,
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer.run(&mut out))
            .expect("starting the log writer thread");
        LogSink {
            _owner: std::sync::Arc::new(LogOwner(shared.clone())),
            shared,
        }
    }

    /// Waits (at most 5 s) until every line appended so far is written (or counted as dropped).
    pub fn flush(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut st = crate::lock(&self.shared.state);
        let target = st.appended;
        st.flush_requested = true;
        self.shared.wake.notify_one();
        while st.written < target {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            st = self
                .shared
                .progress
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// One log event's bytes, appended as one line when the formatter is done with it.
pub struct LogLine {
    buf: Vec<u8>,
    sink: std::sync::Arc<LogShared>,
}

impl std::io::Write for LogLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.sink.append(&self.buf);
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine {
            buf: Vec::with_capacity(256),
            sink: self.shared.clone(),
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
    let json = log.format == "json";
    let sink = LogSink::spawn(
        std::io::stdout(),
        if json {
            LogFormat::Json
        } else {
            LogFormat::Text
        },
    );
    if json {
        registry
            .with(JsonLayer::new(sink.clone()))
            .try_init()
            .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))?;
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(sink.clone())
                    .compact(),
            )
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
        log: sink,
    })
}

/// JSON log lines, one per event:
/// `{"timestamp","level","message",<event fields>,"target","span":{<fields of the event's span>,"name"}}`.
///
/// Span fields are encoded once, when the span is created or a field recorded, and copied into
/// each line of the span; lines go to a [`LogSink`]. (tracing-subscriber's JSON formatter
/// re-parses a span's fields for every line and builds a map per event: at a few thousand
/// requests per second that was a fifth of a service's CPU.)
pub struct JsonLayer {
    sink: LogSink,
}

impl JsonLayer {
    pub fn new(sink: LogSink) -> JsonLayer {
        JsonLayer { sink }
    }
}

/// A span's fields as `(name, JSON value)`.
struct SpanFields(Vec<(&'static str, String)>);

/// Collects fields as JSON values; a field recorded again replaces its value.
struct JsonFields<'a>(&'a mut Vec<(&'static str, String)>);

impl JsonFields<'_> {
    fn put(&mut self, field: &tracing::field::Field, value: String) {
        match self.0.iter_mut().find(|(k, _)| *k == field.name()) {
            Some(slot) => slot.1 = value,
            None => self.0.push((field.name(), value)),
        }
    }
}

impl tracing::field::Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let mut v = String::with_capacity(value.len() + 2);
        json_string(&mut v, value);
        self.put(field, v);
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.put(field, value.to_string());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.put(field, value.to_string());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.put(field, value.to_string());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        let v = if value.is_finite() {
            let mut s = value.to_string();
            if !s.contains(['.', 'e', 'E']) {
                s.push_str(".0");
            }
            s
        } else {
            "null".to_string()
        };
        self.put(field, v);
    }
    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        self.record_str(field, &value.to_string());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// Appends `s` as a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// `2026-01-02T03:04:05.123456Z`
fn push_timestamp(out: &mut String, t: time::OffsetDateTime) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    );
}

impl<S> tracing_subscriber::Layer<S> for JsonLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = Vec::with_capacity(attrs.fields().len());
        attrs.record(&mut JsonFields(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut JsonFields(&mut fields.0));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        use tracing_subscriber::fmt::MakeWriter;
        let mut fields = Vec::with_capacity(8);
        event.record(&mut JsonFields(&mut fields));
        let meta = event.metadata();
        let mut line = String::with_capacity(320);
        line.push_str("{\"timestamp\":\"");
        push_timestamp(&mut line, time::OffsetDateTime::now_utc());
        line.push_str("\",\"level\":\"");
        line.push_str(meta.level().as_str());
        line.push('"');
        // The message first, then the other fields in the order they were given.
        fields.sort_by_key(|(k, _)| *k != "message");
        for (k, v) in &fields {
            line.push(',');
            json_string(&mut line, k);
            line.push(':');
            line.push_str(v);
        }
        line.push_str(",\"target\":");
        json_string(&mut line, meta.target());
        if let Some(span) = ctx.event_span(event) {
            line.push_str(",\"span\":{");
            if let Some(fields) = span.extensions().get::<SpanFields>() {
                for (k, v) in &fields.0 {
                    json_string(&mut line, k);
                    line.push(':');
                    line.push_str(v);
                    line.push(',');
                }
            }
            line.push_str("\"name\":");
            json_string(&mut line, span.name());
            line.push('}');
        }
        line.push_str("}\n");
        let mut w = self.sink.make_writer();
        let _ = std::io::Write::write_all(&mut w, line.as_bytes());
    }
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

    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_event_and_span_fields_and_escape_strings() {
        use tracing_subscriber::layer::SubscriberExt;
        let out = Shared::default();
        let sink = LogSink::spawn(out.clone(), LogFormat::Json);
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(sink.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span =
                tracing::info_span!("request", path = "/v1/x", status = tracing::field::Empty);
            span.record("status", 201u16);
            let _enter = span.enter();
            tracing::info!(
                ms = 1.0f64,
                count = 3,
                ok = true,
                "said \"hi\"\n\u{1}\\ done"
            );
            tracing::warn!(error = ?std::io::Error::other("boom"), "failed");
        });
        tracing::subscriber::with_default(
            tracing_subscriber::registry().with(JsonLayer::new(sink.clone())),
            || tracing::error!(n = -4i64, nan = f64::NAN, "outside"),
        );
        sink.flush();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 3);
        let first = &lines[0];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "said \"hi\"\n\u{1}\\ done");
        assert_eq!(first["ms"], 1.0);
        assert_eq!(first["count"], 3);
        assert_eq!(first["ok"], true);
        assert_eq!(first["span"]["path"], "/v1/x");
        assert_eq!(first["span"]["status"], 201);
        assert_eq!(first["span"]["name"], "request");
        assert!(first["target"].as_str().unwrap().contains("telemetry"));
        let ts = first["timestamp"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok(),
            "{ts}"
        );
        assert!(text.lines().next().unwrap().starts_with("{\"timestamp\""));
        assert_eq!(lines[1]["error"], "Custom { kind: Other, error: \"boom\" }");
        assert_eq!(lines[2]["level"], "ERROR");
        assert_eq!(lines[2]["n"], -4);
        assert!(lines[2]["nan"].is_null());
        assert!(lines[2].get("span").is_none());
    }

    #[test]
    fn log_lines_from_many_threads_arrive_whole_and_flush_waits_for_them() {
        use std::io::Write;
        use tracing_subscriber::fmt::MakeWriter;
        let out = Shared::default();
        let sink = LogSink::spawn(out.clone(), LogFormat::Json);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        let mut w = sink.make_writer();
                        // A formatter writes a line in pieces.
                        write!(w, "thread {t} ").unwrap();
                        writeln!(w, "line {i}").unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        sink.flush();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 20_000);
        for t in 0..4 {
            let mine: Vec<&str> = lines
                .iter()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .copied()
                .collect();
            let expected: Vec<String> =
                (0..5_000).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(mine, expected, "each thread's lines whole and in order");
        }
    }

    /// Output whose first write waits until the test lets it go.
    struct Stalled {
        out: Shared,
        gate: Option<std::sync::mpsc::Receiver<()>>,
    }

    impl std::io::Write for Stalled {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Some(gate) = self.gate.take() {
                let _ = gate.recv();
            }
            self.out.write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_output_drops_and_counts_lines_instead_of_blocking_the_loggers() {
        use std::io::Write;
        use tracing_subscriber::fmt::MakeWriter;
        let out = Shared::default();
        let (release, gate) = std::sync::mpsc::channel();
        let sink = LogSink::with_limit(
            Stalled {
                out: out.clone(),
                gate: Some(gate),
            },
            LogFormat::Json,
            1_000,
        );
        // The first line sets the writer going; its write then stalls.
        writeln!(sink.make_writer(), "line 0").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (done_tx, done) = std::sync::mpsc::channel();
        let logger = {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for i in 1..200 {
                    writeln!(sink.make_writer(), "line {i:03} {}", "x".repeat(40)).unwrap();
                }
                done_tx.send(()).unwrap();
            })
        };
        done.recv_timeout(std::time::Duration::from_secs(5))
            .expect("logging returned while the output was stalled");
        logger.join().unwrap();
        release.send(()).unwrap();
        sink.flush();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let kept = lines.iter().filter(|l| l.starts_with("line ")).count();
        let notices: Vec<serde_json::Value> = lines
            .iter()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(notices.len(), 1, "{text}");
        assert_eq!(notices[0]["level"], "WARN");
        let dropped = notices[0]["dropped"].as_u64().unwrap() as usize;
        assert!(dropped > 0 && kept < 200, "{kept} kept, {dropped} dropped");
        assert_eq!(kept + dropped, 200, "every line written or counted");
        // Kept lines are whole and in order.
        let numbers: Vec<usize> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("line "))
            .map(|l| l.split(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
        // With room again, lines flow as before.
        writeln!(sink.make_writer(), "line after").unwrap();
        sink.flush();
        assert!(
            String::from_utf8(out.0.lock().unwrap().clone())
                .unwrap()
                .ends_with("line after\n")
        );
    }

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
