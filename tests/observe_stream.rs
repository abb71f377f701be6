//! Streams (RFC-0008): the stream helpers against the SDK-made fixture, and the stream recorder:
//! its event order, chunk logging, and hooks that fail without hurting the stream.

use std::sync::{Arc, Mutex};

use oidb::observe::{
    HookName, HookResult, RequestedToolCall, StreamCallbacks, StreamChunk, StreamHooks,
};
use oidb::{
    time, EventFilter, EventType, LlmRequest, Store, StreamState, StreamStatus, ToolCall, Usage,
};
use serde_json::{json, Value};

const FIXTURE: &str = include_str!("data/openintent_events.jsonl");

fn store() -> Store {
    Store::builder()
        .actor("agent-critic")
        .open_backend(redb::backends::InMemoryBackend::new(), "test")
        .unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn types(store: &Store, intent: &str) -> Vec<EventType> {
    store
        .get_events(intent, EventFilter::new().limit(1000))
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

#[test]
fn stream_helpers_write_the_sdk_payloads_of_the_fixture() {
    let store = store();
    let mut replayed = 0;
    for line in FIXTURE.lines() {
        let fixture: Value = serde_json::from_str(line).unwrap();
        let p = &fixture["payload"];
        let kind = fixture["event_type"].as_str().unwrap();
        let written = match kind {
            "stream_chunk" => store.log_stream_chunk(
                fixture["intent_id"].as_str().unwrap(),
                p["stream_id"].as_str().unwrap(),
                p["chunk_index"].as_u64().unwrap(),
                p["token_count"].as_u64().unwrap(),
            ),
            "stream_started" | "stream_completed" => {
                let mut state = StreamState::new(
                    p["intent_id"].as_str().unwrap(),
                    p["stream_id"].as_str().unwrap(),
                    p["agent_id"].as_str().unwrap(),
                    p["provider"].as_str().unwrap(),
                    p["model"].as_str().unwrap(),
                );
                state.started_at = Some(time::parse(p["started_at"].as_str().unwrap()).unwrap());
                if kind == "stream_started" {
                    store.start_stream(&state)
                } else {
                    state.complete(
                        p["chunks_received"].as_u64().unwrap(),
                        p["tokens_streamed"].as_u64().unwrap(),
                    );
                    state.completed_at =
                        Some(time::parse(p["completed_at"].as_str().unwrap()).unwrap());
                    store.complete_stream(&state)
                }
            }
            _ => continue,
        }
        .unwrap();
        replayed += 1;
        assert_eq!(&written.payload, p, "{}", fixture["id"]);
        assert_eq!(
            keys(&written.payload),
            keys(p),
            "key order of {}",
            fixture["id"]
        );
        assert_eq!(written.intent_id, fixture["intent_id"].as_str().unwrap());
    }
    assert_eq!(replayed, 18, "3 starts, 12 chunks, 3 completions");
}

#[test]
fn cancelled_and_failed_streams_carry_their_reason() {
    let store = store();
    let mut cancelled = StreamState::start("i", "s1", "agent-critic", "openai", "gpt-4o");
    cancelled.cancel(Some("user pressed stop".into()), 5, 9);
    let event = store.cancel_stream(&cancelled).unwrap();
    assert_eq!(event.event_type, EventType::StreamCancelled);
    assert_eq!(
        keys(&event.payload),
        [
            "stream_id",
            "intent_id",
            "agent_id",
            "status",
            "provider",
            "model",
            "chunks_received",
            "tokens_streamed",
            "started_at",
            "cancelled_at",
            "cancel_reason"
        ]
    );
    assert_eq!(event.payload["status"], "cancelled");
    assert_eq!(StreamState::from_event(&event).unwrap(), cancelled);

    let mut failed = StreamState::start("i", "s2", "agent-critic", "openai", "gpt-4o");
    failed.fail("connection reset", 2, 2);
    let event = store.fail_stream(&failed).unwrap();
    assert_eq!(
        event.event_type,
        EventType::StreamCancelled,
        "OpenIntent has no stream_failed type"
    );
    assert_eq!(event.payload["status"], "failed");
    assert_eq!(event.payload["error"], "connection reset");
    assert_eq!(
        StreamState::from_event(&event).unwrap().status,
        StreamStatus::Failed
    );

    let chunk = store.log_stream_chunk("i", "s2", 10, 3).unwrap();
    let read = StreamChunk::from_event(&chunk).unwrap();
    assert_eq!(
        (read.stream_id.as_str(), read.chunk_index, read.token_count),
        ("s2", 10, 3)
    );
}

#[test]
fn a_helper_refuses_a_state_of_another_status() {
    let store = store();
    let active = StreamState::start("i", "s1", "a", "openai", "gpt-4o");
    let err = store.complete_stream(&active).unwrap_err();
    assert!(matches!(
        err,
        oidb::Error::InvalidEvent {
            field: "status",
            ..
        }
    ));
    let text = err.to_string();
    assert!(
        text.contains("s1 is active") && text.contains("StreamState::complete"),
        "{text}"
    );
    assert!(store
        .get_events("i", EventFilter::new())
        .unwrap()
        .is_empty());
}

#[derive(Default)]
struct Seen {
    calls: Vec<String>,
}

struct Recording(Arc<Mutex<Seen>>);

impl StreamHooks for Recording {
    fn on_stream_start(&mut self, stream_id: &str, model: &str, provider: &str) -> HookResult {
        self.0
            .lock()
            .unwrap()
            .calls
            .push(format!("start {stream_id} {model} {provider}"));
        Ok(())
    }
    fn on_token(&mut self, token: &str, _stream_id: &str) -> HookResult {
        self.0.lock().unwrap().calls.push(format!("token {token}"));
        Ok(())
    }
    fn on_stream_end(&mut self, _stream_id: &str, content: &str, chunks: u64) -> HookResult {
        self.0
            .lock()
            .unwrap()
            .calls
            .push(format!("end {content} {chunks}"));
        Ok(())
    }
    fn on_stream_error(&mut self, error: &str, _stream_id: &str) -> HookResult {
        self.0.lock().unwrap().calls.push(format!("error {error}"));
        Ok(())
    }
}

#[test]
fn a_recorded_stream_logs_in_the_sdk_adapters_order() {
    let store = store();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut stream = store
        .stream_recorder("i", "openai", "gpt-4o")
        .request(|r| {
            r.request_id("req-1")
                .messages_count(12)
                .tools_available(["web_search"])
                .temperature(0.2)
        })
        .stream_id("stream-1")
        .chunk_log_interval(10)
        .hooks(Recording(Arc::clone(&seen)))
        .start()
        .unwrap();
    for i in 0..32 {
        stream.chunk(if i % 2 == 0 { "ab" } else { "" }).unwrap();
    }
    stream.finish_reason("tool_calls");
    stream.usage(&Usage::from_openai(&json!({"usage": {"prompt_tokens": 1541, "completion_tokens": 96, "total_tokens": 1637}})).unwrap());
    stream.tool_call(RequestedToolCall::from_argument_string(
        "call_1",
        "web_search",
        r#"{"query": "redb"}"#,
    ));
    stream.tool_call(RequestedToolCall::from_argument_string(
        "call_2",
        "web_search",
        "not json",
    ));
    let report = stream.complete().unwrap();

    let events = store
        .get_events("i", EventFilter::new().limit(1000))
        .unwrap();
    let order: Vec<_> = events.iter().map(|e| e.event_type.clone()).collect();
    use EventType::*;
    assert_eq!(
        order,
        [
            LlmRequestStarted,
            StreamStarted,
            StreamChunk,
            StreamChunk,
            StreamChunk,
            StreamChunk,
            StreamCompleted,
            LlmRequestCompleted,
            ToolCallStarted,
            ToolCallStarted
        ]
    );
    let chunk_indexes: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == StreamChunk)
        .map(|e| e.payload["chunk_index"].as_u64().unwrap())
        .collect();
    assert_eq!(
        chunk_indexes,
        [0, 10, 20, 30],
        "every 10th chunk from 0, as in the fixture"
    );

    let started = &events[0];
    assert_eq!(started.payload["stream"], true);
    assert_eq!(started.payload["request_id"], "req-1");
    let stream_started = StreamState::from_event(&events[1]).unwrap();
    assert_eq!(stream_started.status, StreamStatus::Active);
    assert_eq!(stream_started.agent_id, "agent-critic");
    assert!(stream_started.started_at.is_some());
    assert_eq!(events[1].parent_event_id, Some(started.id.to_string()));
    for chunk in events.iter().filter(|e| e.event_type == StreamChunk) {
        assert_eq!(
            chunk.parent_event_id,
            Some(events[1].id.to_string()),
            "a chunk sits under its stream in the trace tree"
        );
    }

    let completed_stream = StreamState::from_event(&events[6]).unwrap();
    assert_eq!(completed_stream.chunks_received, 32);
    assert_eq!(
        completed_stream.tokens_streamed, 96,
        "the provider's completion tokens"
    );
    assert!(completed_stream.completed_at.is_some());

    let request = LlmRequest::from_event(&events[7]).unwrap();
    assert_eq!(
        request.response_content.as_deref(),
        Some("ab".repeat(16).as_str())
    );
    assert_eq!(request.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(request.total_tokens, Some(1637));
    assert!(request.time_to_first_token_ms.is_some());
    assert!(request.time_to_first_token_ms <= request.duration_ms);
    assert_eq!(events[7].parent_event_id, Some(started.id.to_string()));

    let tools: Vec<_> = events[8..]
        .iter()
        .map(|e| ToolCall::from_event(e).unwrap())
        .collect();
    assert_eq!(tools[0].arguments, json!({"query": "redb"}));
    assert_eq!(tools[1].arguments, json!({"raw": "not json"}));
    for (tool, event) in tools.iter().zip(&events[8..]) {
        assert_eq!(tool.parent_request_id.as_deref(), Some("req-1"));
        assert_eq!(tool.provider.as_deref(), Some("openai"));
        assert_eq!(event.parent_event_id, Some(events[7].id.to_string()));
    }

    assert_eq!(report.events.len(), 4);
    assert_eq!(report.content, "ab".repeat(16));
    assert!(report.hook_failures.is_empty());
    let calls = seen.lock().unwrap().calls.clone();
    assert_eq!(calls.first().unwrap(), "start stream-1 gpt-4o openai");
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("token")).count(),
        16,
        "only chunks with text"
    );
    assert_eq!(
        calls.last().unwrap(),
        &format!("end {} 32", "ab".repeat(16))
    );
}

#[test]
fn chunk_events_are_off_unless_asked_for() {
    let store = store();
    let mut stream = store
        .stream_recorder("i", "openai", "gpt-4o")
        .start()
        .unwrap();
    for _ in 0..25 {
        stream.chunk("x").unwrap();
    }
    let report = stream.complete().unwrap();
    assert_eq!(
        report.state.tokens_streamed, 25,
        "one token a chunk without provider usage"
    );
    assert_eq!(
        types(&store, "i"),
        [
            EventType::LlmRequestStarted,
            EventType::StreamStarted,
            EventType::StreamCompleted,
            EventType::LlmRequestCompleted
        ]
    );
}

struct PanicsOnToken {
    after: usize,
    seen: usize,
}

impl StreamHooks for PanicsOnToken {
    fn on_token(&mut self, _token: &str, _stream_id: &str) -> HookResult {
        self.seen += 1;
        assert!(self.seen <= self.after, "hook broke on token {}", self.seen);
        Ok(())
    }
}

struct ErrsOnEnd;

impl StreamHooks for ErrsOnEnd {
    fn on_stream_end(&mut self, _: &str, _: &str, _: u64) -> HookResult {
        Err("dashboard unreachable".into())
    }
    fn on_token(&mut self, token: &str, _: &str) -> HookResult {
        if token == "bad" {
            return Err(format!("cannot render {token:?}").into());
        }
        Ok(())
    }
}

#[test]
fn a_panicking_hook_is_caught_reported_and_the_stream_goes_on() {
    let store = store();
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&tokens);
    let mut stream = store
        .stream_recorder("i", "openai", "gpt-4o")
        .chunk_log_interval(1)
        .hooks(PanicsOnToken { after: 2, seen: 0 })
        .hooks(ErrsOnEnd)
        .hooks(StreamCallbacks::new().on_stream_start(|_, _, _| panic!("start hook panics too")))
        .hooks(
            StreamCallbacks::new()
                .on_token(move |token, _| sink.lock().unwrap().push(token.to_owned())),
        )
        .start()
        .unwrap();
    for token in ["a", "b", "c", "bad", "d"] {
        stream.chunk(token).unwrap();
    }
    let failures = stream.hook_failures().to_vec();
    let report = stream.complete().unwrap();

    // Every event of the stream was written, and the later hooks still got every token.
    assert_eq!(types(&store, "i").len(), 2 + 5 + 2);
    assert_eq!(report.content, "abcbadd");
    assert_eq!(*tokens.lock().unwrap(), ["a", "b", "c", "bad", "d"]);

    let summary: Vec<_> = report
        .hook_failures
        .iter()
        .map(|f| (f.hook_index, f.hook, f.panicked))
        .collect();
    assert_eq!(
        summary,
        [
            (2, HookName::OnStreamStart, true),
            (0, HookName::OnToken, true),
            (1, HookName::OnToken, false),
            (1, HookName::OnStreamEnd, false),
        ],
        "a panicking hook is reported once and not called again; an erroring one each time"
    );
    assert_eq!(report.hook_failures[1].message, "hook broke on token 3");
    assert_eq!(report.hook_failures[2].message, "cannot render \"bad\"");
    assert!(report.hook_failures[0]
        .to_string()
        .contains("on_stream_start panicked"));
    assert_eq!(
        failures,
        report.hook_failures[..3],
        "failures are visible while streaming"
    );
    assert_eq!(report.hook_failures_not_kept, 0);
}

#[test]
fn a_cancelled_stream_logs_why_and_calls_the_error_hook() {
    let store = store();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut stream = store
        .stream_recorder("i", "anthropic", "claude-sonnet-4")
        .hooks(Recording(Arc::clone(&seen)))
        .start()
        .unwrap();
    stream.chunk("partial").unwrap();
    stream.usage(&Usage::from_anthropic(&json!({"type": "message_start", "message": {"usage": {"input_tokens": 30, "output_tokens": 1}}})).unwrap());
    let report = stream.cancel("user pressed stop").unwrap();

    assert_eq!(
        types(&store, "i"),
        [
            EventType::LlmRequestStarted,
            EventType::StreamStarted,
            EventType::StreamCancelled,
            EventType::LlmRequestFailed
        ]
    );
    let state = StreamState::from_event(&report.events[0]).unwrap();
    assert_eq!(state.status, StreamStatus::Cancelled);
    assert_eq!(state.cancel_reason.as_deref(), Some("user pressed stop"));
    assert_eq!(state.chunks_received, 1);
    let request = LlmRequest::from_event(&report.events[1]).unwrap();
    assert_eq!(
        request.error.as_deref(),
        Some("stream cancelled: user pressed stop")
    );
    assert_eq!(
        request.prompt_tokens,
        Some(30),
        "usage known so far is kept"
    );
    assert_eq!(
        seen.lock().unwrap().calls.last().unwrap(),
        "error user pressed stop"
    );
}

#[test]
fn a_failed_stream_logs_the_error_in_both_events() {
    let store = store();
    let mut stream = store
        .stream_recorder("i", "gemini", "gemini-2.5-pro")
        .start()
        .unwrap();
    stream.chunk("x").unwrap();
    let report = stream.fail("APIConnectionError: connection reset").unwrap();
    let state = StreamState::from_event(&report.events[0]).unwrap();
    assert_eq!(report.events[0].event_type, EventType::StreamCancelled);
    assert_eq!(state.status, StreamStatus::Failed);
    assert_eq!(
        state.error.as_deref(),
        Some("APIConnectionError: connection reset")
    );
    assert_eq!(report.events[1].event_type, EventType::LlmRequestFailed);
    assert_eq!(
        report.events[1].payload["error"],
        "APIConnectionError: connection reset"
    );
}

#[test]
fn a_dropped_recorder_cancels_its_stream_and_fails_its_request() {
    let store = store();
    let mut stream = store
        .stream_recorder("i", "openai", "gpt-4o")
        .start()
        .unwrap();
    stream.chunk("half").unwrap();
    drop(stream);
    let events = store.get_events("i", EventFilter::new()).unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| e.event_type.clone())
            .collect::<Vec<_>>(),
        [
            EventType::LlmRequestStarted,
            EventType::StreamStarted,
            EventType::StreamCancelled,
            EventType::LlmRequestFailed
        ]
    );
    let reason = events[2].payload["cancel_reason"].as_str().unwrap();
    assert!(reason.contains("stream recorder dropped"), "{reason}");
    assert!(events[3].payload["error"]
        .as_str()
        .unwrap()
        .contains("dropped"));
    assert_eq!(
        events.len(),
        4,
        "the request handle inside logs no second outcome"
    );
}
