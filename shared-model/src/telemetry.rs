//! Logs, metrics and trace context.
//!
//! `init` sets up tracing (JSON in production, human-readable locally), OTLP/HTTP span export
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and the Prometheus recorder behind `/metrics`.
//! Trace context is W3C `traceparent`: taken from the incoming request or started here, written
//! into every log line and event the request causes and carried in AMQP headers, so one trace
//! id spans a request and its reactions.

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
        push_now(&mut ts);
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
    REQUEST_SPANS.store(
        provider.is_some() || !json,
        std::sync::atomic::Ordering::Relaxed,
    );
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
/// `{"timestamp","level","message",<event fields>,"target","request":{..},"span":{..,"name"}}`.
///
/// `request` is present on lines written while a request is served (see [`in_request`]): its
/// method, path, trace id and request id. `span` holds the fields of the event's innermost span
/// and its name, when it is in one (other than the request's own span, whose fields are
/// `request`'s). Span fields are encoded once, when the span is created or a field recorded,
/// and copied into each line of the span; an event's fields are written straight into its line
/// (tracing-subscriber's JSON formatter re-parses a span's fields for every line and builds a
/// map per event: at a few thousand requests per second that was a fifth of a service's CPU).
/// Lines go to a [`LogSink`].
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
        let mut v = String::new();
        push_f64(&mut v, value);
        self.put(field, v);
    }
    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        let mut v = String::new();
        push_json_display(&mut v, value);
        self.put(field, v);
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let mut v = String::new();
        push_json_display(&mut v, &DebugAsDisplay(value));
        self.put(field, v);
    }
}

/// Writes an event's fields into its line: the message into `message`, the others (as
/// `,"name":value`) into `rest`, in the order they were given.
struct EventFields<'a> {
    message: &'a mut String,
    rest: &'a mut String,
}

impl EventFields<'_> {
    fn key(&mut self, field: &tracing::field::Field) -> &mut String {
        if field.name() == "message" {
            self.message.push_str(",\"message\":");
            self.message
        } else {
            self.rest.push(',');
            json_string(self.rest, field.name());
            self.rest.push(':');
            self.rest
        }
    }
}

impl tracing::field::Visit for EventFields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        json_string(self.key(field), value);
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        use std::fmt::Write;
        let _ = write!(self.key(field), "{value}");
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        use std::fmt::Write;
        let _ = write!(self.key(field), "{value}");
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.key(field)
            .push_str(if value { "true" } else { "false" });
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        push_f64(self.key(field), value);
    }
    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        push_json_display(self.key(field), value);
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        push_json_display(self.key(field), &DebugAsDisplay(value));
    }
}

/// A finite number as JSON (always with a fraction or exponent, so it reads back as a float);
/// `null` otherwise.
fn push_f64(out: &mut String, value: f64) {
    if !value.is_finite() {
        out.push_str("null");
        return;
    }
    // Shortest round-trip digits, always with a `.` or an exponent (so a reader sees a float).
    out.push_str(ryu::Buffer::new().format_finite(value));
}

struct DebugAsDisplay<'a>(&'a dyn std::fmt::Debug);

impl std::fmt::Display for DebugAsDisplay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Appends what `value` displays as a JSON string literal, escaping as it is written.
fn push_json_display(out: &mut String, value: &dyn std::fmt::Display) {
    use std::fmt::Write;
    struct Escaping<'a>(&'a mut String);
    impl std::fmt::Write for Escaping<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            json_escape(self.0, s);
            Ok(())
        }
    }
    out.push('"');
    let _ = write!(Escaping(out), "{value}");
    out.push('"');
}

/// Appends `s` as a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    json_escape(out, s);
    out.push('"');
}

/// Whether a byte must be escaped inside a JSON string literal.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any byte of `bytes` must be escaped, eight at a time: a byte below 0x20, a quote or
/// a backslash sets its high bit in one of the three tests; a byte of 0x80 or more never does
/// (`!x` clears its high bit), and a borrow into a neighbouring byte only follows a byte that
/// is flagged, so a word's answer is exact.
fn any_needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        if control
            | zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')))
            != 0
        {
            return true;
        }
    }
    words.remainder().iter().any(|&b| needs_escape(b))
}

/// Appends `s` escaped for the inside of a JSON string literal.
fn json_escape(out: &mut String, s: &str) {
    use std::fmt::Write;
    // Most text in a log line (paths, ids, messages) needs no escape: checked a word at a time,
    // it is copied whole.
    if !any_needs_escape(s.as_bytes()) {
        out.push_str(s);
        return;
    }
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
}

thread_local! {
    /// The whole second of the last timestamp this thread wrote, and its text up to the
    /// fraction (`2026-01-02T03:04:05.`): lines within one second differ only in microseconds.
    static LAST_SECOND: std::cell::RefCell<(i64, String)> =
        const { std::cell::RefCell::new((i64::MIN, String::new())) };
}

/// `2026-01-02T03:04:05.123456Z` for the current time.
fn push_now(out: &mut String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    push_timestamp(out, now.as_secs() as i64, now.subsec_micros());
}

/// `2026-01-02T03:04:05.123456Z` for `seconds` since the Unix epoch and `micros` after.
fn push_timestamp(out: &mut String, seconds: i64, micros: u32) {
    use std::fmt::Write;
    LAST_SECOND.with_borrow_mut(|(second, text)| {
        if *second != seconds {
            let t = time::OffsetDateTime::from_unix_timestamp(seconds)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            text.clear();
            let _ = write!(
                text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
            );
            *second = seconds;
        }
        out.push_str(text);
    });
    let mut digits = [b'0'; 6];
    let mut n = micros.min(999_999);
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.push_str(std::str::from_utf8(&digits).unwrap_or("000000"));
    out.push('Z');
}

/// What a log line says of the request it was written in.
pub struct RequestFields {
    pub method: axum::http::Method,
    /// The request's URI; its path is logged (the query may hold what a log should not).
    pub uri: axum::http::Uri,
    pub trace_id: String,
    pub request_id: Option<axum::http::HeaderValue>,
}

tokio::task_local! {
    static REQUEST: RequestFields;
}

/// Runs `f` (a request being served) with `fields` as the `request` of every JSON log line it
/// writes. A task-local value rather than a tracing span: a span per request, created, entered
/// at every poll and closed, and its fields formatted, cost more than the rest of a cheap
/// request's logging; it is made only when something reads it (see [`request_spans`]).
pub fn in_request<F: std::future::Future>(
    fields: RequestFields,
    f: F,
) -> tokio::task::futures::TaskLocalFuture<RequestFields, F> {
    REQUEST.scope(fields, f)
}

static REQUEST_SPANS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether requests run in a tracing span: when spans are exported (OTLP) or logs are
/// human-readable (whose formatter shows a line's spans, not [`in_request`]'s fields).
pub fn request_spans() -> bool {
    REQUEST_SPANS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The target and name of the request span made by the HTTP layer when [`request_spans`].
const REQUEST_SPAN: (&str, &str) = ("shared_model::http", "request");

fn push_request(line: &mut String, r: &RequestFields) {
    line.push_str(",\"request\":{\"method\":");
    json_string(line, r.method.as_str());
    line.push_str(",\"path\":");
    json_string(line, r.uri.path());
    line.push_str(",\"trace_id\":");
    json_string(line, &r.trace_id);
    line.push_str(",\"request_id\":");
    match r.request_id.as_ref().and_then(|v| v.to_str().ok()) {
        Some(id) => json_string(line, id),
        None => line.push_str("null"),
    }
    line.push('}');
}

thread_local! {
    /// A thread's line buffers, kept between events.
    static LINE: std::cell::RefCell<(String, String)> =
        const { std::cell::RefCell::new((String::new(), String::new())) };
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
        // A thread's buffers are reused; an event logged while one is being written (by a
        // field's formatting) gets fresh ones.
        let mut fresh = (String::new(), String::new());
        LINE.with(|cell| {
            let mut held = cell.try_borrow_mut();
            let (line, rest) = match held.as_mut() {
                Ok(bufs) => {
                    let (line, rest) = &mut **bufs;
                    (line, rest)
                }
                Err(_) => (&mut fresh.0, &mut fresh.1),
            };
            line.clear();
            rest.clear();
            self.write_event(line, rest, event, &ctx);
            self.sink.shared.append(line.as_bytes());
            // Keep a buffer grown by an unusually long line from holding its memory.
            if line.capacity() > 16 * 1024 {
                *line = String::new();
            }
            if rest.capacity() > 16 * 1024 {
                *rest = String::new();
            }
        });
    }
}

impl JsonLayer {
    fn write_event<S>(
        &self,
        line: &mut String,
        rest: &mut String,
        event: &tracing::Event<'_>,
        ctx: &tracing_subscriber::layer::Context<'_, S>,
    ) where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let meta = event.metadata();
        line.push_str("{\"timestamp\":\"");
        push_now(line);
        line.push_str("\",\"level\":\"");
        line.push_str(meta.level().as_str());
        line.push('"');
        // The message first, then the other fields in the order they were given.
        event.record(&mut EventFields {
            message: line,
            rest,
        });
        line.push_str(rest);
        line.push_str(",\"target\":");
        json_string(line, meta.target());
        let in_request = REQUEST.try_with(|r| push_request(line, r)).is_ok();
        if let Some(span) = ctx.event_span(event)
            && !(in_request && (span.metadata().target(), span.name()) == REQUEST_SPAN)
        {
            line.push_str(",\"span\":{");
            if let Some(fields) = span.extensions().get::<SpanFields>() {
                for (k, v) in &fields.0 {
                    json_string(line, k);
                    line.push(':');
                    line.push_str(v);
                    line.push(',');
                }
            }
            line.push_str("\"name\":");
            json_string(line, span.name());
            line.push('}');
        }
        line.push_str("}\n");
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
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes * 2);
    for _ in 0..bytes.div_ceil(8) {
        let r = fast_random();
        out.extend((0..16).map(|i| DIGITS[((r >> (4 * i)) & 0xf) as usize]));
    }
    out.truncate(bytes * 2);
    String::from_utf8(out).unwrap_or_default()
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

    /// The `traceparent` of events written in reaction to an event that carried `parent`: a
    /// child span in its trace, or a new trace if it carried none (or a malformed one).
    pub fn reacting_to(parent: Option<&str>) -> String {
        parent
            .and_then(Self::parse)
            .map_or_else(Self::root, |p| p.child())
            .header()
    }

    /// A child span in the same trace.
    pub fn child(&self) -> Self {
        Self {
            trace_id: self.trace_id.clone(),
            span_id: random_hex(8),
            sampled: self.sampled,
        }
    }

    /// The `traceparent` header of this context (written for every response).
    pub fn header(&self) -> String {
        let mut out = String::with_capacity(8 + self.trace_id.len() + self.span_id.len());
        out.push_str("00-");
        out.push_str(&self.trace_id);
        out.push('-');
        out.push_str(&self.span_id);
        out.push_str(if self.sampled { "-01" } else { "-00" });
        out
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

    /// Everything `sink` wrote to `out` once flushed, as text and as parsed JSON lines.
    fn written(sink: &LogSink, out: &Shared) -> (String, Vec<serde_json::Value>) {
        sink.flush();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        (text, lines)
    }

    #[test]
    fn the_word_test_flags_exactly_the_bytes_to_escape() {
        for filler in [b'a', 0x80, 0xff, b' ', b'!', b'#', b'[', b']'] {
            for b in 0..=255u8 {
                for at in 0..17 {
                    let mut buf = [filler; 17];
                    buf[at] = b;
                    assert_eq!(
                        any_needs_escape(&buf),
                        needs_escape(b),
                        "byte {b:#x} at {at} among {filler:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn json_escape_matches_serde_json_on_plain_and_special_text() {
        let long_plain = "/v1/customers/0195f3a2-7c1e-7d44-9a0b-3f2e1d0c9b8a/partitions";
        let samples = [
            "",
            "plain",
            long_plain,
            "quote \" after sixteen bytes \"",
            "back\\slash",
            "ctl \u{1} \u{1f} tab\t nl\n cr\r",
            "émoji 🦀 and ünïcode, then a quote: \"",
        ];
        for s in samples {
            let mut out = String::new();
            json_string(&mut out, s);
            assert_eq!(
                serde_json::from_str::<String>(&out).unwrap(),
                s,
                "round trip of {s:?} via {out}"
            );
            assert!(!out[1..out.len() - 1].contains(|c: char| c < ' '), "{out}");
        }
        let mut out = String::new();
        json_escape(&mut out, long_plain);
        assert_eq!(out, long_plain);
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
        let (text, lines) = written(&sink, &out);
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
    fn lines_written_while_serving_a_request_name_it_and_spans_inside_it() {
        use tracing_subscriber::layer::SubscriberExt;
        let out = Shared::default();
        let sink = LogSink::spawn(out.clone(), LogFormat::Json);
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(sink.clone()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let fields = RequestFields {
                method: axum::http::Method::PATCH,
                uri: "/v1/things/%227%22?secret=x".parse().unwrap(),
                trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
                request_id: Some(axum::http::HeaderValue::from_static("req-1")),
            };
            rt.block_on(in_request(fields, async {
                tracing::info!(status = 200u16, "in the request");
                // The request's own span (made where spans are exported) is not repeated.
                let own =
                    tracing::info_span!(target: "shared_model::http", "request", path = "/v1");
                let _own = own.enter();
                tracing::info!("in the request span");
                let query = tracing::info_span!("query", table = "things");
                let _query = query.enter();
                tracing::warn!("in a span inside the request");
            }));
            let anonymous = RequestFields {
                method: axum::http::Method::GET,
                uri: "/".parse().unwrap(),
                trace_id: "t".into(),
                request_id: None,
            };
            rt.block_on(in_request(anonymous, async {
                tracing::info!("no request id");
            }));
            tracing::info!("after the request");
        });
        let (text, lines) = written(&sink, &out);
        assert_eq!(lines.len(), 5);
        let request = serde_json::json!({
            "method": "PATCH",
            "path": "/v1/things/%227%22",
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "request_id": "req-1",
        });
        assert_eq!(lines[0]["message"], "in the request");
        assert_eq!(lines[0]["status"], 200);
        assert_eq!(lines[0]["request"], request);
        assert!(lines[0].get("span").is_none());
        assert_eq!(lines[1]["request"], request);
        assert!(lines[1].get("span").is_none(), "{}", lines[1]);
        assert_eq!(lines[2]["request"], request);
        assert_eq!(lines[2]["span"]["name"], "query");
        assert_eq!(lines[2]["span"]["table"], "things");
        assert_eq!(lines[3]["request"]["request_id"], serde_json::Value::Null);
        assert!(lines[4].get("request").is_none());
        // Fields keep their order after the message; the line starts with the timestamp.
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("{\"timestamp\":\""), "{first}");
        assert!(
            first.find("\"message\"").unwrap() < first.find("\"status\"").unwrap(),
            "{first}"
        );
    }

    #[test]
    fn timestamps_match_rfc3339_across_seconds_and_dates() {
        let mut seconds: Vec<i64> = vec![0, 59, 60, 86_399, 86_400, 951_782_400, 4_102_444_799];
        let mut x = 0x1234_5678_u64;
        for _ in 0..200 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            seconds.push((x >> 33) as i64);
        }
        // Repeats of a second reuse the cached text; a change must replace it.
        for (i, &s) in seconds.iter().enumerate() {
            for micros in [0, 7, 999_999, (i as u32 * 7919) % 1_000_000] {
                let mut out = String::new();
                push_timestamp(&mut out, s, micros);
                let expected = time::OffsetDateTime::from_unix_timestamp(s).unwrap()
                    + time::Duration::microseconds(i64::from(micros));
                let parsed = time::OffsetDateTime::parse(
                    &out,
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap_or_else(|e| panic!("{e}: {out}"));
                assert_eq!(parsed, expected, "{out}");
                assert_eq!(out.len(), 27, "{out}");
            }
        }
    }

    #[test]
    fn random_hex_ids_have_the_length_asked_and_vary() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(random_hex(8).len(), 16);
        assert_ne!(a, random_hex(16));
        let root = TraceContext::root();
        assert_eq!(TraceContext::parse(&root.header()), Some(root));
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
