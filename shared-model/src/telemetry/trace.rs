//! W3C trace context (`traceparent`), parsed and written by OpenTelemetry's
//! `TraceContextPropagator`, with ids from the SDK's random id generator.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

const TRACEPARENT: &str = "traceparent";

/// A trace context: the trace a request or event belongs to and this hop's span in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext(SpanContext);

/// A carrier holding one `traceparent` value, read or written by the propagator.
#[derive(Default)]
struct Traceparent(Option<String>);

impl Extractor for Traceparent {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0.as_deref()).flatten()
    }
    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

impl Injector for Traceparent {
    fn set(&mut self, key: &str, value: String) {
        if key == TRACEPARENT {
            self.0 = Some(value);
        }
    }
}

impl TraceContext {
    /// Starts a new (sampled) trace.
    pub fn root() -> Self {
        let ids = RandomIdGenerator::default();
        Self(SpanContext::new(
            ids.new_trace_id(),
            ids.new_span_id(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ))
    }

    /// Parses a `traceparent` header; `None` if malformed or invalid (then a new trace is
    /// started).
    pub fn parse(header: &str) -> Option<Self> {
        let carrier = Traceparent(Some(header.trim().to_string()));
        let cx = TraceContextPropagator::new().extract(&carrier);
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| Self(sc.clone()))
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
        Self(SpanContext::new(
            self.0.trace_id(),
            RandomIdGenerator::default().new_span_id(),
            self.0.trace_flags(),
            false,
            self.0.trace_state().clone(),
        ))
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        self.0.trace_id().to_string()
    }

    /// The span context, for OpenTelemetry.
    pub fn span_context(&self) -> &SpanContext {
        &self.0
    }

    /// The `traceparent` header of this context (written for every response).
    pub fn header(&self) -> String {
        let cx = opentelemetry::Context::new().with_remote_span_context(self.0.clone());
        let mut carrier = Traceparent::default();
        TraceContextPropagator::new().inject_context(&cx, &mut carrier);
        carrier.0.unwrap_or_default()
    }
}

/// Makes `span` a child of the remote span `parent` (so exported spans join the caller's trace).
pub fn set_remote_parent(span: &tracing::Span, parent: &TraceContext) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let remote = SpanContext::new(
        parent.0.trace_id(),
        parent.0.span_id(),
        parent.0.trace_flags(),
        true,
        parent.0.trace_state().clone(),
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trip() {
        let h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::parse(h).unwrap();
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.header(), h);
        let c = t.child();
        assert_eq!(c.trace_id(), t.trace_id());
        assert_ne!(c.header(), t.header());
        assert!(c.header().ends_with("-01"));
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert_eq!(TraceContext::parse(unsampled).unwrap().header(), unsampled);
        let r = TraceContext::root();
        assert_eq!(
            TraceContext::parse(&r.header()).unwrap().header(),
            r.header()
        );
    }

    #[test]
    fn malformed_or_invalid_traceparents_are_refused() {
        for bad in [
            "garbage",
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad:?} was accepted");
        }
    }
}
