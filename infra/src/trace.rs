//! W3C trace context through the pipeline: the request's `traceparent` is
//! stored with each event it causes, published as the CloudEvents
//! distributed-tracing attribute, and read back by whoever applies the
//! message, so one trace (or its links) spans the GraphQL request, the
//! command, the relay's publish and each projection's apply. Without an
//! OpenTelemetry exporter (`OTEL_EXPORTER_OTLP_ENDPOINT`) all of this is inert.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";

/// The `traceparent` of `span`, if it belongs to a sampled trace.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The trace id of `span` in hex, for log lines; `None` without a trace.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

fn context_of(traceparent: &str) -> Option<opentelemetry::Context> {
    // A malformed value from a client or a message is ignored, never trusted.
    if traceparent.len() > 128 {
        return None;
    }
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    context.span().span_context().is_valid().then_some(context)
}

/// Makes `span` a child of the trace `traceparent` names (an incoming
/// request's header, a message's attribute). A malformed value is ignored.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    if let Some(context) = context_of(traceparent) {
        let _ = span.set_parent(context);
    }
}

/// Links `span` to the trace `traceparent` names: for a batch that applies
/// messages of many traces at once.
pub fn link_trace(span: &tracing::Span, traceparent: &str) {
    if let Some(context) = context_of(traceparent) {
        span.add_link(context.span().span_context().clone());
    }
}
