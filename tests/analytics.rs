//! Usage analytics: tokens, counts, error rates and latency percentiles, grouped, over a range.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use oidb::costs::{GroupBy, TimeBucket, UsageQuery};
use oidb::{EventType, NewEvent, Store};
use serde_json::{json, Value};

const FIXTURE: &str = include_str!("data/openintent_events.jsonl");

fn t0() -> DateTime<Utc> {
    oidb::time::parse("2026-11-20T09:00:00Z").unwrap()
}

fn fixture_store() -> Store {
    let store = Store::in_memory().unwrap();
    store.import_json(FIXTURE.as_bytes()).unwrap();
    store
}

fn llm_completed(model: &str, duration_ms: u64, at: DateTime<Utc>) -> NewEvent {
    NewEvent::new("i", EventType::LlmRequestCompleted, "agent-a")
        .payload(
            json!({"request_id": uuid::Uuid::new_v4().to_string(), "provider": "p",
                        "model": model, "prompt_tokens": 10, "completion_tokens": 1,
                        "duration_ms": duration_ms}),
        )
        .created_at(at)
}

#[test]
fn percentiles_on_known_latencies() {
    let store = Store::in_memory().unwrap();
    // 1..=100 ms in a scrambled order.
    let durations: Vec<u64> = (0..100u64).map(|i| (i * 37) % 100 + 1).collect();
    store
        .append_batch(durations.iter().map(|d| llm_completed("m", *d, t0())))
        .unwrap();
    // Tool calls of 10, 20, …, 200 ms; every fourth failed.
    store
        .append_batch((1..=20u64).map(|i| {
            let event_type = if i % 4 == 0 {
                EventType::ToolCallFailed
            } else {
                EventType::ToolCallCompleted
            };
            NewEvent::new("i", event_type, "agent-a").payload(json!({
                "tool_name": "search", "tool_id": format!("call_{i}"), "duration_ms": i * 10}))
        }))
        .unwrap();

    let report = store.usage_report(&UsageQuery::new()).unwrap();
    assert_eq!(report.groups.len(), 1);
    let all = report.group("all").unwrap();
    let llm = &all.llm;
    assert_eq!((llm.requests, llm.completed, llm.failed), (100, 100, 0));
    assert_eq!(llm.latency_ms.count, 100);
    assert_eq!(
        (
            llm.latency_ms.p50,
            llm.latency_ms.p95,
            llm.latency_ms.p99,
            llm.latency_ms.max
        ),
        (Some(50.0), Some(95.0), Some(99.0), Some(100.0))
    );
    assert_eq!(
        (llm.input_tokens, llm.output_tokens, llm.total_tokens),
        (1000, 100, 1100)
    );
    let tools = &all.tools;
    assert_eq!((tools.calls, tools.completed, tools.failed), (20, 15, 5));
    assert!((tools.error_rate - 0.25).abs() < 1e-12);
    // Nearest rank over 20 values: ⌈10⌉ = 10th, ⌈19⌉ = 19th, ⌈19.8⌉ = 20th.
    assert_eq!(
        (
            tools.latency_ms.p50,
            tools.latency_ms.p95,
            tools.latency_ms.p99
        ),
        (Some(100.0), Some(190.0), Some(200.0))
    );
}

/// What the fixture says about each model, computed from its raw JSON lines.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    requests: u64,
    failed: u64,
    input_tokens: u64,
    output_tokens: u64,
    total_tokens: u64,
    durations: Vec<f64>,
    tool_calls: u64,
}

fn expected_by_model() -> BTreeMap<String, Expected> {
    let mut by_model: BTreeMap<String, Expected> = BTreeMap::new();
    let mut tool_models: HashMap<String, String> = HashMap::new();
    for line in FIXTURE.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        let p = &event["payload"];
        let model = |p: &Value| p["model"].as_str().unwrap().to_owned();
        match event["event_type"].as_str().unwrap() {
            "llm_request_completed" | "llm_request_failed" => {
                let e = by_model.entry(model(p)).or_default();
                e.requests += 1;
                if event["event_type"] == "llm_request_failed" {
                    e.failed += 1;
                }
                e.input_tokens += p["prompt_tokens"].as_u64().unwrap_or(0);
                e.output_tokens += p["completion_tokens"].as_u64().unwrap_or(0);
                e.total_tokens += p["total_tokens"].as_u64().unwrap_or(0);
                e.durations.push(p["duration_ms"].as_f64().unwrap());
            }
            "tool_call_started" => {
                tool_models.insert(p["tool_id"].as_str().unwrap().to_owned(), model(p));
            }
            "tool_call_completed" => {
                let model = tool_models[p["tool_id"].as_str().unwrap()].clone();
                by_model.entry(model).or_default().tool_calls += 1;
            }
            _ => {}
        }
    }
    by_model
}

#[test]
fn the_fixture_by_model_matches_its_raw_events() {
    let store = fixture_store();
    let report = store
        .usage_report(&UsageQuery::new().group_by(GroupBy::Model))
        .unwrap();
    let expected = expected_by_model();
    assert_eq!(
        report
            .groups
            .iter()
            .map(|g| g.key.as_str())
            .collect::<Vec<_>>(),
        expected.keys().map(String::as_str).collect::<Vec<_>>()
    );
    for (model, mut e) in expected {
        let group = report.group(&model).unwrap();
        let llm = &group.llm;
        assert_eq!(
            (
                llm.requests,
                llm.failed,
                llm.input_tokens,
                llm.output_tokens,
                llm.total_tokens
            ),
            (
                e.requests,
                e.failed,
                e.input_tokens,
                e.output_tokens,
                e.total_tokens
            ),
            "{model}"
        );
        e.durations.sort_by(f64::total_cmp);
        assert_eq!(llm.latency_ms.max, e.durations.last().copied(), "{model}");
        assert_eq!(llm.latency_ms.count as usize, e.durations.len());
        assert_eq!(
            group.tools.calls, e.tool_calls,
            "{model}: tool calls by their start's model"
        );
    }
    // deepseek-chat: two completed, one rate-limited.
    let deepseek = &report.group("deepseek-chat").unwrap().llm;
    assert_eq!((deepseek.completed, deepseek.failed), (2, 1));
    assert!((deepseek.error_rate - 1.0 / 3.0).abs() < 1e-12);
}

#[test]
fn grouping_by_provider_agent_and_intent() {
    let store = fixture_store();
    let by_provider = store
        .usage_report(&UsageQuery::new().group_by(GroupBy::Provider))
        .unwrap();
    let keys: Vec<&str> = by_provider.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["deepseek", "openai"]);
    let total: u64 = by_provider.groups.iter().map(|g| g.llm.requests).sum();
    assert_eq!(total, 6);

    let by_agent = store
        .usage_report(&UsageQuery::new().group_by(GroupBy::Agent))
        .unwrap();
    assert_eq!(by_agent.groups.len(), 1);
    assert_eq!(by_agent.groups[0].key, "agent-critic");
    assert_eq!(by_agent.groups[0].tools.calls, 5);

    let by_intent = store
        .usage_report(&UsageQuery::new().group_by(GroupBy::Intent))
        .unwrap();
    assert_eq!(by_intent.groups.len(), 3);
    let failing = by_intent
        .group("73ccef03-46f5-41b4-b156-d1ad330c16a3")
        .unwrap();
    assert_eq!((failing.llm.requests, failing.llm.failed), (2, 1));

    let one_intent = store
        .usage_report(&UsageQuery::new().intent("6513270e-269e-4d37-b2a7-4de452e6b438"))
        .unwrap();
    assert_eq!(one_intent.group("all").unwrap().llm.requests, 2);
    let nobody = store
        .usage_report(&UsageQuery::new().agent("agent-research"))
        .unwrap();
    assert!(nobody.groups.is_empty());
}

#[test]
fn time_buckets_and_ranges() {
    let store = Store::in_memory().unwrap();
    let at = |minutes: i64| t0() + TimeDelta::minutes(minutes);
    store
        .append_batch([
            llm_completed("m", 100, at(0)),
            llm_completed("m", 200, at(59)),
            llm_completed("m", 300, at(60)),
            llm_completed("m", 400, at(61)),
            llm_completed("m", 500, at(24 * 60 + 5)),
        ])
        .unwrap();
    let hourly = store
        .usage_report(&UsageQuery::new().group_by(GroupBy::Time(TimeBucket::Hour)))
        .unwrap();
    let summary: Vec<(&str, u64)> = hourly
        .groups
        .iter()
        .map(|g| (g.key.as_str(), g.llm.requests))
        .collect();
    assert_eq!(
        summary,
        [
            ("2026-11-20T09:00:00Z", 2),
            ("2026-11-20T10:00:00Z", 2),
            ("2026-11-21T09:00:00Z", 1)
        ]
    );
    let daily = store
        .usage_report(&UsageQuery::new().group_by(GroupBy::Time(TimeBucket::Day)))
        .unwrap();
    assert_eq!(daily.groups.len(), 2);
    assert_eq!(daily.groups[0].key, "2026-11-20T00:00:00Z");
    let minutes = store
        .usage_report(&UsageQuery::new().group_by(GroupBy::Time(TimeBucket::Minute)))
        .unwrap();
    assert_eq!(minutes.groups.len(), 5);

    // since inclusive, until exclusive.
    let range = store
        .usage_report(&UsageQuery::new().since(at(59)).until(at(61)))
        .unwrap();
    let llm = &range.group("all").unwrap().llm;
    assert_eq!(llm.requests, 2);
    assert_eq!(
        (llm.latency_ms.p50, llm.latency_ms.max),
        (Some(200.0), Some(300.0))
    );
}

#[test]
fn latency_falls_back_to_the_time_between_start_and_finish() {
    let store = Store::in_memory().unwrap();
    store
        .append_batch([
            NewEvent::new("i", EventType::LlmRequestStarted, "a")
                .payload(json!({"request_id": "r1", "provider": "openai", "model": "gpt-4o"}))
                .created_at(t0()),
            // The failure names no model: it comes from the start.
            NewEvent::new("i", EventType::LlmRequestFailed, "a")
                .payload(json!({"request_id": "r1", "error": "Timeout"}))
                .created_at(t0() + TimeDelta::milliseconds(1500)),
            NewEvent::new("i", EventType::ToolCallStarted, "a")
                .payload(json!({"tool_name": "t", "tool_id": "c1"}))
                .created_at(t0()),
            NewEvent::new("i", EventType::ToolCallCompleted, "a")
                .payload(json!({"tool_name": "t", "tool_id": "c1"}))
                .created_at(t0() + TimeDelta::microseconds(2500)),
        ])
        .unwrap();
    let report = store
        .usage_report(&UsageQuery::new().group_by(GroupBy::Model))
        .unwrap();
    let gpt = report.group("gpt-4o").unwrap();
    assert_eq!((gpt.llm.failed, gpt.llm.latency_ms.p50), (1, Some(1500.0)));
    assert!((gpt.llm.error_rate - 1.0).abs() < f64::EPSILON);
    let unknown = report.group("unknown").unwrap();
    assert_eq!(unknown.tools.latency_ms.p50, Some(2.5));
}

#[test]
fn token_sums_stop_at_the_largest_count_instead_of_wrapping() {
    let store = Store::in_memory().unwrap();
    for prompt_tokens in [u64::MAX, 2] {
        store
            .append(
                NewEvent::new("i", EventType::LlmRequestCompleted, "agent-a").payload(json!({
                    "request_id": uuid::Uuid::new_v4().to_string(), "provider": "p",
                    "model": "m", "prompt_tokens": prompt_tokens, "completion_tokens": 1})),
            )
            .unwrap();
    }
    let report = store.usage_report(&UsageQuery::new()).unwrap();
    let llm = &report.group("all").unwrap().llm;
    assert_eq!(llm.input_tokens, u64::MAX);
    assert_eq!(llm.output_tokens, 2);
    assert_eq!(llm.total_tokens, u64::MAX);
}
