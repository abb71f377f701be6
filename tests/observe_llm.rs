//! LLM request and tool call payloads, helpers and handles (RFC-0008).
//!
//! The fixture `openintent_events.jsonl` was written with OpenIntent's Python SDK: each helper,
//! called with the inputs of a fixture event, must write that event's payload key for key.

use std::io::BufReader;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oidb::observe::{drop_log_failures, LlmRequestHandle};
use oidb::{EventFilter, EventType, LlmRequest, Query, Store, ToolCall, Usage};
use serde_json::{json, Value};

const FIXTURE: &str = include_str!("data/openintent_events.jsonl");

fn fixture_events(types: &[&str]) -> Vec<Value> {
    FIXTURE
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| types.contains(&e["event_type"].as_str().unwrap()))
        .collect()
}

fn store() -> Store {
    Store::builder()
        .actor("agent-critic")
        .open_backend(redb::backends::InMemoryBackend::new(), "test")
        .unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn text(p: &Value, key: &str) -> Option<String> {
    p.get(key).map(|v| v.as_str().unwrap().to_owned())
}

fn number(p: &Value, key: &str) -> Option<u64> {
    p.get(key).map(|v| v.as_u64().unwrap())
}

/// The inputs a caller gives the SDK for a request, read field by field from a fixture payload.
fn request_inputs(p: &Value) -> LlmRequest {
    let mut request = LlmRequest::new(
        p["request_id"].as_str().unwrap(),
        p["provider"].as_str().unwrap(),
        p["model"].as_str().unwrap(),
    );
    request.messages_count = p["messages_count"].as_u64().unwrap();
    request.stream = p["stream"].as_bool().unwrap();
    if let Some(tools) = p.get("tools_available") {
        request.tools_available = tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
    }
    request.temperature = p.get("temperature").map(|t| t.as_f64().unwrap());
    request.max_tokens = number(p, "max_tokens");
    request
}

#[test]
fn llm_helpers_write_the_sdk_payloads_of_the_fixture() {
    let store = store();
    let events = fixture_events(&[
        "llm_request_started",
        "llm_request_completed",
        "llm_request_failed",
    ]);
    assert_eq!(events.len(), 12, "the fixture's LLM events");
    for fixture in &events {
        let p = &fixture["payload"];
        let intent = fixture["intent_id"].as_str().unwrap();
        let mut request = request_inputs(p);
        let written = match fixture["event_type"].as_str().unwrap() {
            "llm_request_started" => store.log_llm_request_started(intent, &request),
            "llm_request_completed" => {
                request.response_content = text(p, "response_content");
                request.finish_reason = text(p, "finish_reason");
                request.prompt_tokens = number(p, "prompt_tokens");
                request.completion_tokens = number(p, "completion_tokens");
                request.total_tokens = number(p, "total_tokens");
                request.duration_ms = number(p, "duration_ms");
                store.log_llm_request_completed(intent, &request)
            }
            _ => {
                request.duration_ms = number(p, "duration_ms");
                store.log_llm_request_failed(intent, &request, p["error"].as_str().unwrap())
            }
        }
        .unwrap();
        assert_eq!(&written.payload, p, "{}", fixture["id"]);
        assert_eq!(
            keys(&written.payload),
            keys(p),
            "key order of {}",
            fixture["id"]
        );
        assert_eq!(written.actor, "agent-critic");
        // And the stored event reads back as it was written.
        let stored = store.get(written.id).unwrap().unwrap();
        assert_eq!(stored.payload, *p);
    }
}

#[test]
fn tool_helpers_write_the_sdk_payloads_of_the_fixture() {
    let store = store();
    let events = fixture_events(&["tool_call_started", "tool_call_completed"]);
    assert_eq!(events.len(), 10, "the fixture's tool call events");
    for fixture in &events {
        let p = &fixture["payload"];
        let intent = fixture["intent_id"].as_str().unwrap();
        let mut call = ToolCall::new(
            p["tool_name"].as_str().unwrap(),
            p["tool_id"].as_str().unwrap(),
            p["arguments"].clone(),
        );
        call.provider = text(p, "provider");
        call.model = text(p, "model");
        call.parent_request_id = text(p, "parent_request_id");
        let written = if fixture["event_type"] == "tool_call_started" {
            store.log_tool_call_started(intent, &call)
        } else {
            call.duration_ms = number(p, "duration_ms");
            store.log_tool_call_completed(intent, &call, p["result"].clone())
        }
        .unwrap();
        assert_eq!(&written.payload, p, "{}", fixture["id"]);
        assert_eq!(
            keys(&written.payload),
            keys(p),
            "key order of {}",
            fixture["id"]
        );
    }
}

#[test]
fn payloads_leave_out_what_the_sdk_leaves_out() {
    // LLMRequestPayload.to_dict(): empty lists and empty strings are left out, stream never is.
    let mut request = LlmRequest::new("r", "openai", "gpt-4o");
    request.response_content = Some(String::new());
    request.finish_reason = Some(String::new());
    request.error = Some(String::new());
    assert_eq!(
        request.to_payload(),
        json!({"request_id": "r", "provider": "openai", "model": "gpt-4o", "messages_count": 0, "stream": false})
    );
    // Zero is a value, not an absence.
    request.prompt_tokens = Some(0);
    request.temperature = Some(0.0);
    assert_eq!(request.to_payload()["prompt_tokens"], 0);
    assert_eq!(request.to_payload()["temperature"], 0.0);

    // ToolCallPayload.to_dict(): arguments always, a None result left out, a falsy one kept.
    let mut call = ToolCall::new("t", "c", json!({}));
    call.result = Some(Value::Null);
    call.provider = Some(String::new());
    assert_eq!(
        call.to_payload(),
        json!({"tool_name": "t", "tool_id": "c", "arguments": {}})
    );
    call.result = Some(json!(false));
    call.token_count = Some(0);
    assert_eq!(
        call.to_payload(),
        json!({"tool_name": "t", "tool_id": "c", "arguments": {}, "result": false, "token_count": 0})
    );
}

#[test]
fn the_counts_the_sdk_lacks_follow_its_keys() {
    let mut request = LlmRequest::new("r", "anthropic", "claude");
    request.duration_ms = Some(900);
    request.cost = Some(0.0125);
    request.time_to_first_token_ms = Some(120);
    request.apply_usage(
        &Usage::from_anthropic(&json!({"usage": {
            "input_tokens": 10, "cache_read_input_tokens": 90, "cache_creation_input_tokens": 5,
            "output_tokens": 20}}))
        .unwrap(),
    );
    let payload = request.to_payload();
    assert_eq!(
        keys(&payload),
        [
            "request_id",
            "provider",
            "model",
            "messages_count",
            "stream",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "duration_ms",
            "cached_tokens",
            "cache_creation_tokens",
            "time_to_first_token_ms",
            "cost"
        ]
    );
    assert_eq!(payload["prompt_tokens"], 105);
    assert_eq!(payload["total_tokens"], 125);
    assert_eq!(payload["cached_tokens"], 90);
    assert_eq!(payload["cost"], 0.0125);
}

#[test]
fn helper_events_round_trip_through_the_store_and_an_export() {
    let store = store();
    let mut request = LlmRequest::new("req-1", "openai", "gpt-4o");
    request.messages_count = 4;
    request.tools_available = vec!["web_search".into()];
    request.temperature = Some(0.7);
    request.stream = true;
    request.response_content = Some("It is 42.".into());
    request.tool_calls =
        vec![json!({"id": "call_1", "type": "function", "function": {"name": "web_search"}})];
    request.finish_reason = Some("stop".into());
    request.prompt_tokens = Some(100);
    request.completion_tokens = Some(7);
    request.total_tokens = Some(107);
    request.reasoning_tokens = Some(3);
    request.cached_tokens = Some(64);
    request.duration_ms = Some(812);
    request.time_to_first_token_ms = Some(95);
    request.cost = Some(0.000_42);
    let completed = store.log_llm_request_completed("i", &request).unwrap();
    let mut call = ToolCall::new("web_search", "call_1", json!({"q": "answer", "n": 3}));
    call.provider = Some("openai".into());
    call.model = Some("gpt-4o".into());
    call.parent_request_id = Some("req-1".into());
    call.duration_ms = Some(40);
    call.token_count = Some(12);
    let failed = store
        .log_tool_call_failed("i", &call, "timeout after 30s")
        .unwrap();

    assert_eq!(
        LlmRequest::from_event(&store.get(completed.id).unwrap().unwrap()).unwrap(),
        request
    );
    let mut expected_call = call.clone();
    expected_call.error = Some("timeout after 30s".into());
    assert_eq!(
        ToolCall::from_event(&store.get(failed.id).unwrap().unwrap()).unwrap(),
        expected_call
    );

    let mut jsonl = Vec::new();
    store.export_json(&mut jsonl, &Query::new()).unwrap();
    let copy = Store::in_memory().unwrap();
    copy.import_json(BufReader::new(jsonl.as_slice())).unwrap();
    let events = copy.get_events("i", EventFilter::new()).unwrap();
    assert_eq!(LlmRequest::from_event(&events[0]).unwrap(), request);
    assert_eq!(ToolCall::from_event(&events[1]).unwrap(), expected_call);
    assert_eq!(events[0].event_hash, completed.event_hash);
}

#[test]
fn reading_an_event_that_is_not_a_request_names_it() {
    let store = store();
    let comment = store
        .log_event("i", EventType::Comment, json!({"message": "hi"}))
        .unwrap();
    let err = LlmRequest::from_event(&comment).unwrap_err();
    assert!(matches!(
        err,
        oidb::Error::UnexpectedPayload {
            expected: "LlmRequest",
            ..
        }
    ));
    let text = err.to_string();
    assert!(
        text.contains(&comment.id.to_string()) && text.contains("request_id"),
        "{text}"
    );
}

#[test]
fn a_request_handle_measures_and_links_its_outcome() {
    let store = store();
    let mut call = store
        .llm_request("i", "openai", "gpt-4o")
        .request_id("req-7")
        .messages_count(3)
        .tools_available(["web_search"])
        .temperature(0.2)
        .max_tokens(512)
        .trace_id("6cad4a268d116ece1738f7d93d9c1724")
        .start()
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    call.response_content("Let me look.")
        .finish_reason("tool_calls")
        .cost(0.001);
    call.usage(
        &Usage::from_response(
            &json!({"usage": {"prompt_tokens": 50, "completion_tokens": 8, "total_tokens": 58}}),
        )
        .unwrap(),
    );
    let started = call.started_event().clone();
    let completed = call.complete().unwrap();

    assert_eq!(started.event_type, EventType::LlmRequestStarted);
    assert_eq!(
        started.payload,
        json!({"request_id": "req-7", "provider": "openai", "model": "gpt-4o", "messages_count": 3,
               "stream": false, "tools_available": ["web_search"], "temperature": 0.2, "max_tokens": 512})
    );
    assert_eq!(completed.event_type, EventType::LlmRequestCompleted);
    assert_eq!(completed.parent_event_id, Some(started.id.to_string()));
    assert_eq!(
        completed.trace_id.as_deref(),
        Some("6cad4a268d116ece1738f7d93d9c1724")
    );
    let outcome = LlmRequest::from_event(&completed).unwrap();
    assert!(
        outcome.duration_ms.unwrap() >= 20,
        "slept 20 ms inside the request: {outcome:?}"
    );
    assert_eq!(outcome.response_content.as_deref(), Some("Let me look."));
    assert_eq!(outcome.total_tokens, Some(58));
    assert_eq!(outcome.cost, Some(0.001));
    assert_eq!(
        outcome.time_to_first_token_ms, None,
        "not a stream: no first token was marked"
    );
    assert_eq!(
        outcome.temperature,
        Some(0.2),
        "the outcome keeps the request's settings"
    );
}

#[test]
fn a_failed_request_logs_its_error() {
    let store = store();
    let call = store
        .llm_request("i", "deepseek", "deepseek-chat")
        .start()
        .unwrap();
    let failed = call.fail("RateLimitError: 429 Too Many Requests").unwrap();
    assert_eq!(failed.event_type, EventType::LlmRequestFailed);
    assert_eq!(
        failed.payload["error"],
        "RateLimitError: 429 Too Many Requests"
    );
    assert!(failed.payload["duration_ms"].is_u64());
    assert_eq!(store.get_events("i", EventFilter::new()).unwrap().len(), 2);
}

#[test]
fn a_request_handle_dropped_without_an_outcome_logs_a_failure() {
    let store = store();
    let call = store
        .llm_request("i", "openai", "gpt-4o")
        .request_id("lost")
        .start()
        .unwrap();
    let started_id = call.started_event().id.to_string();
    drop(call);
    let events = store.get_events("i", EventFilter::new()).unwrap();
    assert_eq!(events.len(), 2);
    let failed = &events[1];
    assert_eq!(failed.event_type, EventType::LlmRequestFailed);
    assert_eq!(failed.parent_event_id.as_deref(), Some(started_id.as_str()));
    assert_eq!(failed.payload["request_id"], "lost");
    let error = failed.payload["error"].as_str().unwrap();
    assert!(
        error.contains("dropped") && error.contains("complete() or fail()"),
        "{error}"
    );
    assert!(failed.payload["duration_ms"].is_u64());
}

#[test]
fn a_handle_dropped_by_a_panic_says_so() {
    let store = store();
    let in_thread = store.clone();
    let outcome = std::thread::spawn(move || {
        let _call: LlmRequestHandle = in_thread
            .llm_request("i", "openai", "gpt-4o")
            .start()
            .unwrap();
        let _tool = in_thread
            .tool_call("i", "read_file", json!({"path": "a"}))
            .start()
            .unwrap();
        panic!("the agent crashed");
    })
    .join();
    assert!(outcome.is_err());
    let events = store.get_events("i", EventFilter::new()).unwrap();
    let types: Vec<_> = events.iter().map(|e| e.event_type.clone()).collect();
    // Locals drop in reverse order: the tool call first.
    assert_eq!(
        types,
        [
            EventType::LlmRequestStarted,
            EventType::ToolCallStarted,
            EventType::ToolCallFailed,
            EventType::LlmRequestFailed
        ]
    );
    for failed in &events[2..] {
        let error = failed.payload["error"].as_str().unwrap();
        assert!(error.contains("panicking"), "{error}");
    }
}

#[test]
fn a_tool_call_handle_measures_and_logs_its_outcome() {
    let store = store();
    let request = store
        .llm_request("i", "openai", "gpt-4o")
        .request_id("req-1")
        .start()
        .unwrap();
    let completed = request.complete().unwrap();
    let mut tool = store
        .tool_call("i", "run_sql", json!({"query": "select 1", "limit": 4}))
        .tool_id("call_b91ee9e5efe0")
        .provider("openai")
        .model("gpt-4o")
        .parent_request_id("req-1")
        .parent_event_id(completed.id.to_string())
        .start()
        .unwrap();
    std::thread::sleep(Duration::from_millis(15));
    tool.token_count(9);
    let started = tool.started_event().clone();
    let done = tool.complete(json!({"rows": 78})).unwrap();

    assert_eq!(started.parent_event_id, Some(completed.id.to_string()));
    assert_eq!(
        started.payload,
        json!({"tool_name": "run_sql", "tool_id": "call_b91ee9e5efe0",
               "arguments": {"query": "select 1", "limit": 4}, "provider": "openai",
               "model": "gpt-4o", "parent_request_id": "req-1"})
    );
    assert_eq!(done.parent_event_id, Some(started.id.to_string()));
    let outcome = ToolCall::from_event(&done).unwrap();
    assert_eq!(outcome.result, Some(json!({"rows": 78})));
    assert_eq!(outcome.token_count, Some(9));
    assert!(outcome.duration_ms.unwrap() >= 15);

    let failing = store
        .tool_call("i", "send_email", json!({}))
        .start()
        .unwrap();
    let failed = failing.fail("SMTP refused").unwrap();
    assert_eq!(failed.event_type, EventType::ToolCallFailed);
    assert_eq!(failed.payload["error"], "SMTP refused");
    assert!(failed.payload["tool_id"]
        .as_str()
        .unwrap()
        .starts_with("call_"));

    let dropped = store
        .tool_call("i", "read_file", json!({"path": "x"}))
        .start()
        .unwrap();
    drop(dropped);
    let last = store
        .get_events("i", EventFilter::new().newest_first().limit(1))
        .unwrap();
    assert_eq!(last[0].event_type, EventType::ToolCallFailed);
    assert!(last[0].payload["error"]
        .as_str()
        .unwrap()
        .contains("dropped"));
}

/// A storage backend that starts failing every write when told to.
#[derive(Debug)]
struct FailingBackend {
    inner: redb::backends::InMemoryBackend,
    failing: Arc<AtomicBool>,
}

impl FailingBackend {
    fn check(&self) -> std::io::Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("disk unplugged"));
        }
        Ok(())
    }
}

impl redb::StorageBackend for FailingBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.check()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.check()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.check()?;
        self.inner.write(offset, data)
    }
}

#[test]
fn an_outcome_a_dropped_handle_cannot_write_is_counted_not_raised() {
    let failing = Arc::new(AtomicBool::new(false));
    let backend = FailingBackend {
        inner: redb::backends::InMemoryBackend::new(),
        failing: Arc::clone(&failing),
    };
    let store = Store::builder().open_backend(backend, "failing").unwrap();
    let call = store.llm_request("i", "openai", "gpt-4o").start().unwrap();
    let before = drop_log_failures().count;
    failing.store(true, Ordering::SeqCst);
    drop(call); // must neither panic nor hang
    let after = drop_log_failures();
    assert_eq!(after.count, before + 1);
    let last = after.last_error.unwrap();
    assert!(
        last.contains("llm_request_failed for a dropped request handle"),
        "{last}"
    );
}
