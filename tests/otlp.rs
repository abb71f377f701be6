//! OTLP/JSON export, read back with the `opentelemetry-proto` crate's own serde types: the output
//! must be a valid `ExportTraceServiceRequest` whose ids, parents and times agree with the log.

use std::collections::{HashMap, HashSet};

use chrono::TimeDelta;
use oidb::{Event, EventType, NewEvent, Query, SpanSource, Store, TraceContext};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;
use uuid::Uuid;

const FIXTURE: &str = include_str!("data/openintent_events.jsonl");
const TRACE: &str = "6cad4a268d116ece1738f7d93d9c1724";
const FAILING_TRACE: &str = "6aa8b9e0";

fn fixture_store() -> Store {
    let store = Store::in_memory().unwrap();
    store.import_json(FIXTURE.as_bytes()).unwrap();
    store
}

/// Exports, parses with the OTLP library, and returns the spans with their service names.
fn export(store: &Store, source: impl Into<SpanSource>) -> (Vec<(String, Span)>, String) {
    let mut out = Vec::new();
    let count = store.export_otlp_json(source, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let request: ExportTraceServiceRequest = serde_json::from_str(&text).unwrap();
    let mut spans = Vec::new();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .unwrap()
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap();
        for scope in resource.scope_spans {
            assert_eq!(scope.scope.as_ref().unwrap().name, "oidb");
            spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
        }
    }
    assert_eq!(spans.len() as u64, count);
    (spans, text)
}

fn attribute(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone()?.value)
}

fn text(span: &Span, key: &str) -> Option<String> {
    match attribute(span, key)? {
        AnyValue::StringValue(s) => Some(s),
        other => panic!("{key} is not a string: {other:?}"),
    }
}

fn int(span: &Span, key: &str) -> Option<i64> {
    match attribute(span, key)? {
        AnyValue::IntValue(i) => Some(i),
        other => panic!("{key} is not an int: {other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn nanos(event: &Event) -> u64 {
    u64::try_from(event.created_at.timestamp_micros()).unwrap() * 1000
}

fn event_of(store: &Store, span: &Span, key: &str) -> Option<Event> {
    let id = Uuid::parse_str(&text(span, key)?).unwrap();
    store.get(id).unwrap()
}

/// What every export must satisfy: valid unique ids, parents in the same trace, ordered times
/// that are the events' times.
fn check_consistency(store: &Store, spans: &[(String, Span)]) {
    let mut ids = HashSet::new();
    for (service, span) in spans {
        assert_eq!(span.trace_id.len(), 16);
        assert!(span.trace_id.iter().any(|b| *b != 0));
        assert_eq!(span.span_id.len(), 8);
        assert!(span.span_id.iter().any(|b| *b != 0));
        assert!(ids.insert(span.span_id.clone()), "span ids are unique");
        assert!(span.start_time_unix_nano <= span.end_time_unix_nano);
        assert!(!span.name.is_empty());
        let start = event_of(store, span, "openintent.start_event_id");
        let end = event_of(store, span, "openintent.end_event_id");
        if let Some(start) = &start {
            assert_eq!(span.start_time_unix_nano, nanos(start));
            assert_eq!(service, &start.actor);
            if let Some(trace_id) = &start.trace_id {
                assert_eq!(&hex(&span.trace_id), trace_id);
            }
        }
        if let Some(end) = &end {
            assert_eq!(
                span.end_time_unix_nano,
                nanos(end).max(span.start_time_unix_nano)
            );
        }
        assert_eq!(
            text(span, "openintent.intent_id").unwrap(),
            start.or(end).unwrap().intent_id
        );
    }
    let by_id: HashMap<&[u8], &Span> = spans.iter().map(|(_, s)| (&s.span_id[..], s)).collect();
    for (_, span) in spans {
        if let Some(parent) = by_id.get(&span.parent_span_id[..]) {
            assert_eq!(
                parent.trace_id, span.trace_id,
                "a parent is in its child's trace"
            );
        }
    }
}

fn span_named<'a>(spans: &'a [(String, Span)], start_event: &str) -> &'a Span {
    spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| {
            text(s, "openintent.start_event_id").is_some_and(|id| id.starts_with(start_event))
        })
        .unwrap_or_else(|| panic!("no span starts with event {start_event}"))
}

#[test]
fn a_fixture_trace_exports_as_valid_otlp_with_its_tree() {
    let store = fixture_store();
    let (spans, text_form) = export(&store, TRACE);
    assert_eq!(spans.len(), 4, "two LLM requests and two tool calls");
    check_consistency(&store, &spans);
    assert!(spans.iter().all(|(_, s)| hex(&s.trace_id) == TRACE));
    // OTLP/JSON encodes ids as hex and 64-bit times as strings.
    assert!(text_form.contains(&format!("\"traceId\":\"{TRACE}\"")));
    assert!(text_form.contains("\"startTimeUnixNano\":\""));

    let llm1 = span_named(&spans, "4a23d596");
    let tool1 = span_named(&spans, "c1d3fcff");
    let llm2 = span_named(&spans, "05c6af07");
    let tool2 = span_named(&spans, "3b1287ff");
    assert!(
        llm1.parent_span_id.is_empty(),
        "the first request is the root"
    );
    assert_eq!(
        tool1.parent_span_id, llm1.span_id,
        "a tool call hangs off the request that asked for it"
    );
    assert_eq!(llm2.parent_span_id, llm1.span_id);
    assert_eq!(tool2.parent_span_id, llm2.span_id);

    // GenAI semantic conventions.
    assert_eq!(llm1.name, "chat gpt-4o");
    assert_eq!(llm1.kind, SpanKind::Client as i32);
    assert_eq!(text(llm1, "gen_ai.operation.name").unwrap(), "chat");
    assert_eq!(text(llm1, "gen_ai.provider.name").unwrap(), "openai");
    assert_eq!(text(llm1, "gen_ai.request.model").unwrap(), "gpt-4o");
    assert_eq!(int(llm1, "gen_ai.usage.input_tokens"), Some(6917));
    assert_eq!(int(llm1, "gen_ai.usage.output_tokens"), Some(300));
    assert_eq!(int(llm1, "gen_ai.request.max_tokens"), Some(1024));
    match attribute(llm1, "gen_ai.response.finish_reasons").unwrap() {
        AnyValue::ArrayValue(list) => {
            let reasons: Vec<_> = list.values.into_iter().map(|v| v.value).collect();
            assert_eq!(reasons, [Some(AnyValue::StringValue("tool_calls".into()))]);
        }
        other => panic!("finish reasons are not an array: {other:?}"),
    }
    assert_eq!(
        text(llm1, "openintent.intent_id").unwrap(),
        "6513270e-269e-4d37-b2a7-4de452e6b438"
    );
    assert_eq!(llm1.status, None, "a completed request has no error status");
    assert_eq!(tool1.name, "execute_tool read_file");
    assert_eq!(tool1.kind, SpanKind::Internal as i32);
    assert_eq!(text(tool1, "gen_ai.tool.name").unwrap(), "read_file");
    assert_eq!(
        text(tool1, "gen_ai.tool.call.id").unwrap(),
        "call_867347214cdd"
    );
    assert_eq!(
        text(tool1, "gen_ai.operation.name").unwrap(),
        "execute_tool"
    );

    // Times are the events' times: the first request lasted 371.306 ms in the log.
    assert_eq!(
        llm1.end_time_unix_nano - llm1.start_time_unix_nano,
        371_306_000
    );
}

#[test]
fn a_failed_request_has_error_status() {
    let store = fixture_store();
    let trace_id = store
        .query(&Query::new().event_type(EventType::LlmRequestFailed))
        .unwrap()
        .events[0]
        .trace_id
        .clone()
        .unwrap();
    assert!(trace_id.starts_with(FAILING_TRACE));
    let (spans, _) = export(&store, trace_id.as_str());
    check_consistency(&store, &spans);
    let failed = span_named(&spans, "2789d059");
    let status = failed.status.as_ref().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "RateLimitError: 429 Too Many Requests");
    assert_eq!(text(failed, "error.type").unwrap(), "RateLimitError");
    // The retry is a child of the failed request.
    let retry = span_named(&spans, "453bf491");
    assert_eq!(retry.parent_span_id, failed.span_id);
    assert_eq!(retry.status, None);
}

#[test]
fn a_query_exports_the_spans_it_touches_with_the_same_ids() {
    let store = fixture_store();
    let (everything, first_text) = export(&store, Query::new());
    // 6 requests, 5 tool calls, 3 streams.
    assert_eq!(everything.len(), 14);
    check_consistency(&store, &everything);
    let streams: Vec<&Span> = everything
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.name.starts_with("stream"))
        .collect();
    assert_eq!(streams.len(), 3);
    assert_eq!(
        int(streams[0], "openintent.stream.chunks_received"),
        Some(32)
    );
    // Untraced streams get one trace per intent.
    assert_ne!(streams[0].trace_id, streams[2].trace_id);

    // Exporting again gives the same bytes: ids are derived, not random.
    let (_, second_text) = export(&store, Query::new());
    assert_eq!(first_text, second_text);

    // A trace export and a query export agree on every id they share.
    let (by_trace, _) = export(&store, TRACE);
    for (_, span) in &by_trace {
        let twin = everything
            .iter()
            .map(|(_, s)| s)
            .find(|s| s.span_id == span.span_id)
            .unwrap();
        assert_eq!(
            (twin.trace_id.clone(), twin.parent_span_id.clone()),
            (span.trace_id.clone(), span.parent_span_id.clone())
        );
    }

    // Only the tool calls: their parents are found in their whole traces.
    let (tools, _) = export(&store, Query::new().type_prefix("tool_call"));
    assert_eq!(tools.len(), 5);
    assert!(tools
        .iter()
        .all(|(_, s)| s.name.starts_with("execute_tool")));
    let tool1 = span_named(&tools, "c1d3fcff");
    let llm1 = span_named(&by_trace, "4a23d596");
    assert_eq!(tool1.parent_span_id, llm1.span_id);
}

#[test]
fn half_pairs_and_cross_trace_parents() {
    let store = Store::in_memory().unwrap();
    let other = TraceContext::new_root();
    let parent = store
        .append(
            NewEvent::new("i", EventType::ToolCallStarted, "agent-a")
                .payload(json!({"tool_name": "delegate", "tool_id": "c0"}))
                .in_trace(&other),
        )
        .unwrap();
    let trace = TraceContext::new_root();
    let t = oidb::time::parse("2026-11-20T09:00:00Z").unwrap();
    store
        .append_batch([
            // A finish whose start was never logged: it began duration_ms before it ended.
            NewEvent::new("i", EventType::LlmRequestCompleted, "agent-a")
                .payload(json!({"request_id": "r1", "model": "m", "duration_ms": 250}))
                .created_at(t)
                .in_trace(&trace.child(parent.id)),
            // A start that never finished.
            NewEvent::new("i", EventType::LlmRequestStarted, "agent-b")
                .payload(json!({"request_id": "r2", "model": "m"}))
                .created_at(t + TimeDelta::seconds(1))
                .in_trace(&trace),
        ])
        .unwrap();
    let (spans, _) = export(&store, trace.trace_id());
    assert_eq!(spans.len(), 2);
    check_consistency(&store, &spans);
    let finished_only = &spans.iter().find(|(s, _)| s == "agent-a").unwrap().1;
    assert_eq!(
        finished_only.end_time_unix_nano - finished_only.start_time_unix_nano,
        250_000_000
    );
    // Its parent is in another trace: a link, not a parent.
    assert!(finished_only.parent_span_id.is_empty());
    assert_eq!(finished_only.links.len(), 1);
    assert_eq!(hex(&finished_only.links[0].trace_id), other.trace_id());
    let (other_spans, _) = export(&store, other.trace_id());
    assert_eq!(finished_only.links[0].span_id, other_spans[0].1.span_id);

    let unfinished = &spans.iter().find(|(s, _)| s == "agent-b").unwrap().1;
    assert_eq!(
        unfinished.start_time_unix_nano,
        unfinished.end_time_unix_nano
    );
    assert_eq!(
        attribute(unfinished, "oidb.span.incomplete"),
        Some(AnyValue::BoolValue(true))
    );

    let mut sink = Vec::new();
    assert!(matches!(
        store.export_otlp_json("not-a-trace", &mut sink),
        Err(oidb::Error::InvalidTraceId(_))
    ));
}

#[test]
fn a_span_dated_outside_otlp_times_is_refused_naming_its_event() {
    let store = Store::in_memory().unwrap();
    let trace = TraceContext::new_root();
    let at = oidb::time::parse("1969-12-31T23:59:59Z").unwrap();
    store
        .append(
            NewEvent::new("i", EventType::LlmRequestStarted, "agent")
                .payload(json!({"request_id": "r1", "model": "m"}))
                .created_at(at)
                .in_trace(&trace),
        )
        .unwrap();
    // The request ends in 1970, but began before it: its start cannot be held.
    store
        .append(
            NewEvent::new("i", EventType::LlmRequestCompleted, "agent")
                .payload(json!({"request_id": "r1"}))
                .created_at(at + TimeDelta::seconds(2))
                .in_trace(&trace),
        )
        .unwrap();
    let mut out = Vec::new();
    let error = store
        .export_otlp_json(trace.trace_id(), &mut out)
        .unwrap_err();
    match &error {
        oidb::Error::InvalidEvent { field, reason } => {
            assert_eq!(*field, "created_at");
            assert!(reason.contains("1969-12-31"), "{reason}");
        }
        other => panic!("{other}"),
    }
    assert!(out.is_empty(), "nothing is written");
}

/// W3C and OTLP hold an all-zero trace id invalid. One such event, once stored, made
/// `export_otlp_json(Query::new(), …)` fail for the whole store; it is refused when written.
#[test]
fn an_all_zero_trace_id_is_refused_on_append_and_import() {
    const ZERO: &str = "00000000000000000000000000000000";
    let store = Store::in_memory().unwrap();
    store
        .append(NewEvent::new("i", EventType::Comment, "a").trace_id(TRACE))
        .unwrap();

    let refused = store
        .append(NewEvent::new("i", EventType::Comment, "a").trace_id(ZERO))
        .unwrap_err();
    match refused {
        oidb::Error::InvalidEvent { field, reason } => {
            assert_eq!(field, "trace_id");
            assert!(reason.contains("not all zero"), "{reason}");
        }
        other => panic!("expected InvalidEvent, got {other}"),
    }

    let line = format!(
        "{{\"id\": \"81e74ef5-e8e2-4d94-8ed9-000000000001\", \"intent_id\": \"i\", \
         \"event_type\": \"comment\", \"actor\": \"a\", \"payload\": {{}}, \
         \"created_at\": \"2026-11-20T09:00:07.097374Z\", \"trace_id\": \"{ZERO}\"}}\n"
    );
    let input = format!("\n{line}");
    match store.import_json(input.as_bytes()).unwrap_err() {
        oidb::Error::Import { line, reason, .. } => {
            assert_eq!(line, 2);
            assert!(reason.contains("trace_id"), "{reason}");
        }
        other => panic!("expected Import, got {other}"),
    }

    assert_eq!(store.last_position().unwrap(), 1);
    // The whole store's OTLP export and the trace's tree still read.
    export(&store, Query::new());
    assert_eq!(store.trace_tree(TRACE).unwrap().trace_id(), TRACE);
}
