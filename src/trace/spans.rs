//! Start/finish pairs: an LLM request (`llm_request_started` → `llm_request_completed|failed`,
//! by `request_id`), a tool call (`tool_call_started` → `tool_call_completed|failed`, by
//! `tool_id`) and a stream (`stream_started` → `stream_completed|cancelled`, by `stream_id`).
//!
//! A finishing event closes the latest open start of its kind with the same key that comes
//! before it; a start that never finishes and a finish without a start are spans with one end.
//!
//! Uses `model::event`, `model::event_type`, `model::payload_fields`.

use std::collections::HashMap;

use crate::model::event::Event;
use crate::model::event_type::EventType;
use crate::model::payload_fields;

/// What a span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// An LLM request.
    LlmRequest,
    /// A tool call.
    ToolCall,
    /// A response stream.
    Stream,
}

impl SpanKind {
    /// The payload key that ties a span's events together.
    #[must_use]
    pub fn key_field(self) -> &'static str {
        match self {
            SpanKind::LlmRequest => "request_id",
            SpanKind::ToolCall => "tool_id",
            SpanKind::Stream => "stream_id",
        }
    }

    /// The event types that start and finish a span of this kind.
    pub(crate) fn event_types(self) -> [EventType; 3] {
        match self {
            SpanKind::LlmRequest => [
                EventType::LlmRequestStarted,
                EventType::LlmRequestCompleted,
                EventType::LlmRequestFailed,
            ],
            SpanKind::ToolCall => [
                EventType::ToolCallStarted,
                EventType::ToolCallCompleted,
                EventType::ToolCallFailed,
            ],
            SpanKind::Stream => [
                EventType::StreamStarted,
                EventType::StreamCompleted,
                EventType::StreamCancelled,
            ],
        }
    }

    fn of_start(event_type: &EventType) -> Option<SpanKind> {
        match event_type {
            EventType::LlmRequestStarted => Some(SpanKind::LlmRequest),
            EventType::ToolCallStarted => Some(SpanKind::ToolCall),
            EventType::StreamStarted => Some(SpanKind::Stream),
            _ => None,
        }
    }

    fn of_end(event_type: &EventType) -> Option<(SpanKind, Outcome)> {
        match event_type {
            EventType::LlmRequestCompleted => Some((SpanKind::LlmRequest, Outcome::Completed)),
            EventType::LlmRequestFailed => Some((SpanKind::LlmRequest, Outcome::Failed)),
            EventType::ToolCallCompleted => Some((SpanKind::ToolCall, Outcome::Completed)),
            EventType::ToolCallFailed => Some((SpanKind::ToolCall, Outcome::Failed)),
            EventType::StreamCompleted => Some((SpanKind::Stream, Outcome::Completed)),
            EventType::StreamCancelled => Some((SpanKind::Stream, Outcome::Cancelled)),
            _ => None,
        }
    }
}

/// How a span ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// `*_completed`.
    Completed,
    /// `*_failed`.
    Failed,
    /// `stream_cancelled`.
    Cancelled,
}

/// The kind of span an event type finishes, if it finishes one.
pub(crate) fn finish_of(event_type: &EventType) -> Option<SpanKind> {
    SpanKind::of_end(event_type).map(|(kind, _)| kind)
}

/// One span found among events: indexes into the slice it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pair {
    pub(crate) kind: SpanKind,
    pub(crate) start: Option<usize>,
    pub(crate) end: Option<(usize, Outcome)>,
}

impl Pair {
    /// The first of its events.
    pub(crate) fn first(&self) -> usize {
        self.start.or(self.end.map(|(e, _)| e)).unwrap_or(0)
    }

    /// Its events: start, then end.
    pub(crate) fn events(&self) -> impl Iterator<Item = usize> {
        self.start.into_iter().chain(self.end.map(|(e, _)| e))
    }
}

/// The spans among `events` (in the order given, which should be position order), ordered by
/// their first event.
pub(crate) fn pair(events: &[Event]) -> Vec<Pair> {
    let mut pairs: Vec<Pair> = Vec::new();
    let mut open: HashMap<(SpanKind, &str), Vec<usize>> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        if let Some(kind) = SpanKind::of_start(&event.event_type) {
            pairs.push(Pair {
                kind,
                start: Some(index),
                end: None,
            });
            if let Some(key) = payload_fields::text(&event.payload, kind.key_field()) {
                open.entry((kind, key)).or_default().push(pairs.len() - 1);
            }
        } else if let Some((kind, outcome)) = SpanKind::of_end(&event.event_type) {
            let opened = payload_fields::text(&event.payload, kind.key_field())
                .and_then(|key| open.get_mut(&(kind, key)))
                .and_then(Vec::pop);
            match opened.and_then(|p| pairs.get_mut(p)) {
                Some(pair) => pair.end = Some((index, outcome)),
                None => pairs.push(Pair {
                    kind,
                    start: None,
                    end: Some((index, outcome)),
                }),
            }
        }
    }
    pairs.sort_by_key(Pair::first);
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::NewEvent;
    use serde_json::json;

    fn event(event_type: EventType, payload: serde_json::Value) -> Event {
        let store = crate::store::handle::Store::in_memory().unwrap();
        store
            .append(NewEvent::new("i", event_type, "a").payload(payload))
            .unwrap()
    }

    #[test]
    fn finishes_close_the_latest_open_start_with_their_key() {
        let events = vec![
            event(EventType::LlmRequestStarted, json!({"request_id": "r1"})),
            event(EventType::ToolCallStarted, json!({"tool_id": "t1"})),
            event(EventType::LlmRequestStarted, json!({"request_id": "r2"})),
            event(EventType::LlmRequestFailed, json!({"request_id": "r2"})),
            event(EventType::ToolCallCompleted, json!({"tool_id": "t1"})),
            event(EventType::LlmRequestCompleted, json!({"request_id": "r9"})),
            event(EventType::StreamStarted, json!({})),
        ];
        let pairs = pair(&events);
        let summary: Vec<_> = pairs.iter().map(|p| (p.kind, p.start, p.end)).collect();
        assert_eq!(
            summary,
            vec![
                (SpanKind::LlmRequest, Some(0), None),
                (SpanKind::ToolCall, Some(1), Some((4, Outcome::Completed))),
                (SpanKind::LlmRequest, Some(2), Some((3, Outcome::Failed))),
                (SpanKind::LlmRequest, None, Some((5, Outcome::Completed))),
                (SpanKind::Stream, Some(6), None),
            ]
        );
    }
}
