//! Traces (RFC-0020): [`TraceContext`] to carry a trace from event to event,
//! [`Store::trace`](crate::Store::trace) for every event of a trace across intents,
//! [`TraceTree`] for its parent/child tree with durations, and
//! [`Store::export_otlp_json`](crate::Store::export_otlp_json) to send it to any OpenTelemetry
//! back end.
//!
//! Uses nothing else in the crate.

mod context;
pub mod otlp;
mod spans;
mod tree;

pub use context::TraceContext;
pub use otlp::SpanSource;
pub use spans::{Outcome, SpanKind};
pub use tree::{SpanTiming, TraceNode, TraceTree};
