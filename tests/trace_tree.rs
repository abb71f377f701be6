//! Traces (RFC-0020): contexts carried across intents, every event of a trace, and the
//! parent/child tree with durations, on the fixtures' `trace_id` / `parent_event_id`.

use std::collections::HashMap;

use chrono::TimeDelta;
use oidb::trace::{Outcome, SpanKind};
use oidb::{Error, EventType, NewEvent, Store, TraceContext, TraceTree};
use serde_json::{json, Value};
use uuid::Uuid;

const FIXTURE: &str = include_str!("data/openintent_events.jsonl");
const TRACE: &str = "6cad4a268d116ece1738f7d93d9c1724";

fn fixture_store() -> Store {
    let store = Store::in_memory().unwrap();
    store.import_json(FIXTURE.as_bytes()).unwrap();
    store
}

fn raw_events() -> Vec<Value> {
    FIXTURE
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn id(prefix: &str) -> Uuid {
    let matches: Vec<Uuid> = raw_events()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .filter(|i| i.starts_with(prefix))
        .map(|i| Uuid::parse_str(i).unwrap())
        .collect();
    assert_eq!(matches.len(), 1, "{prefix}");
    matches[0]
}

#[test]
fn a_trace_is_every_event_with_its_id() {
    let store = fixture_store();
    let expected: Vec<Uuid> = raw_events()
        .iter()
        .filter(|e| e["trace_id"] == TRACE)
        .map(|e| Uuid::parse_str(e["id"].as_str().unwrap()).unwrap())
        .collect();
    let trace = store.trace(TRACE).unwrap();
    assert_eq!(trace.iter().map(|e| e.id).collect::<Vec<_>>(), expected);
    assert_eq!(trace.len(), 8);
    assert!(trace.windows(2).all(|w| w[0].position < w[1].position));

    assert!(store
        .trace("0123456789abcdef0123456789abcdef")
        .unwrap()
        .is_empty());
    for bad in [
        "6CAD4A268D116ECE1738F7D93D9C1724",
        "6cad",
        "00000000000000000000000000000000",
    ] {
        assert!(
            matches!(store.trace(bad), Err(Error::InvalidTraceId(_))),
            "{bad}"
        );
    }
}

#[test]
fn the_fixture_trace_becomes_its_parent_child_tree() {
    let store = fixture_store();
    let tree = store.trace_tree(TRACE).unwrap();
    assert_eq!(tree.trace_id(), TRACE);
    assert_eq!(tree.len(), 8);

    // Every parent link in the fixture is a tree edge, and nothing else is.
    for node in tree.nodes() {
        let parent_id = node.event.parent_event_id.as_deref();
        let parent_node = node.parent.map(|p| tree.node(p).event.id.to_string());
        assert_eq!(parent_id, parent_node.as_deref(), "{}", node.event.id);
        for child in &node.children {
            assert_eq!(tree.node(*child).parent, tree.find(node.event.id));
        }
    }
    let roots: Vec<Uuid> = tree
        .roots()
        .iter()
        .map(|r| tree.node(*r).event.id)
        .collect();
    // The first request, and the two tool completions (logged without a parent).
    assert_eq!(roots, [id("4a23d596"), id("cc011cdd"), id("88daf401")]);
    let first = tree.node(tree.find(id("4a23d596")).unwrap());
    let children: Vec<Uuid> = first
        .children
        .iter()
        .map(|c| tree.node(*c).event.id)
        .collect();
    assert_eq!(children, [id("b2f14c94"), id("05c6af07")]);
    assert_eq!(tree.node(tree.find(id("3b1287ff")).unwrap()).depth, 3);

    // Depth first: each node before its children, each subtree whole.
    let order: Vec<Uuid> = tree
        .depth_first()
        .iter()
        .map(|i| tree.node(*i).event.id)
        .collect();
    assert_eq!(
        order,
        [
            id("4a23d596"),
            id("b2f14c94"),
            id("c1d3fcff"),
            id("05c6af07"),
            id("2a96fb1a"),
            id("3b1287ff"),
            id("cc011cdd"),
            id("88daf401")
        ]
    );
}

#[test]
fn start_and_finish_pairs_have_durations() {
    let store = fixture_store();
    // Expected from the raw lines: each *_started and the finish with the same key.
    let raw = raw_events();
    let time = |e: &Value| oidb::time::parse(e["created_at"].as_str().unwrap()).unwrap();
    let mut expected: HashMap<Uuid, (Uuid, TimeDelta)> = HashMap::new();
    for (key, start, finish) in [
        ("request_id", "llm_request_started", "llm_request_completed"),
        ("tool_id", "tool_call_started", "tool_call_completed"),
    ] {
        for s in raw
            .iter()
            .filter(|e| e["event_type"] == start && e["trace_id"] == TRACE)
        {
            let f = raw
                .iter()
                .find(|e| e["event_type"] == finish && e["payload"][key] == s["payload"][key])
                .unwrap();
            let sid = Uuid::parse_str(s["id"].as_str().unwrap()).unwrap();
            let fid = Uuid::parse_str(f["id"].as_str().unwrap()).unwrap();
            expected.insert(sid, (fid, time(f) - time(s)));
        }
    }
    assert_eq!(expected.len(), 4);

    let tree = store.trace_tree(TRACE).unwrap();
    let mut found = 0;
    for node in tree.nodes() {
        match (&node.span, expected.get(&node.event.id)) {
            (Some(span), Some((finish, duration))) => {
                assert_eq!(tree.node(span.end).event.id, *finish);
                assert_eq!(span.duration, *duration);
                assert_eq!(span.outcome, Outcome::Completed);
                assert_eq!(
                    span.reported_duration_ms,
                    tree.node(span.end).event.payload["duration_ms"].as_f64()
                );
                found += 1;
            }
            (None, None) => {}
            (span, want) => panic!("{}: span {span:?}, expected {want:?}", node.event.id),
        }
    }
    assert_eq!(found, 4);
    let first = tree.node(tree.find(id("4a23d596")).unwrap());
    let span = first.span.as_ref().unwrap();
    assert_eq!(span.kind, SpanKind::LlmRequest);
    assert_eq!(span.duration, TimeDelta::microseconds(371_306));

    // A failed request is a pair too (another trace of the fixture).
    let failed = raw
        .iter()
        .find(|e| e["event_type"] == "llm_request_failed")
        .unwrap();
    let failing = store
        .trace_tree(failed["trace_id"].as_str().unwrap())
        .unwrap();
    let started = failing
        .find(Uuid::parse_str(failed["parent_event_id"].as_str().unwrap()).unwrap())
        .unwrap();
    let span = failing.node(started).span.as_ref().unwrap();
    assert_eq!(span.outcome, Outcome::Failed);
    assert_eq!(
        failing.node(span.end).event.event_type,
        EventType::LlmRequestFailed
    );
    let outcomes: Vec<Outcome> = failing
        .nodes()
        .iter()
        .filter_map(|n| n.span.as_ref().map(|s| s.outcome))
        .collect();
    assert!(outcomes.contains(&Outcome::Failed), "{outcomes:?}");
}

#[test]
fn a_context_carries_a_trace_across_intents() {
    let store = Store::in_memory().unwrap();
    let root = TraceContext::new_root();
    let assigned = store
        .append(NewEvent::new("coordinator", EventType::AgentAssigned, "coord").in_trace(&root))
        .unwrap();
    assert_eq!(assigned.trace_id.as_deref(), Some(root.trace_id()));
    assert_eq!(assigned.parent_event_id, None);
    let invoked = store
        .append(
            NewEvent::new("coordinator", EventType::ToolInvocation, "coord")
                .payload(json!({"tool_name": "delegate"}))
                .in_trace(&root.child(assigned.id)),
        )
        .unwrap();
    // Unrelated work in between.
    store
        .log_event("elsewhere", EventType::Comment, json!({}))
        .unwrap();
    let downstream = TraceContext::after(&invoked).unwrap();
    let created = store
        .append(NewEvent::new("worker", EventType::IntentCreated, "agent-b").in_trace(&downstream))
        .unwrap();
    store
        .append(
            NewEvent::new("worker", EventType::Comment, "agent-b")
                .in_trace(&TraceContext::after(&created).unwrap()),
        )
        .unwrap();

    let trace = store.trace(root.trace_id()).unwrap();
    let intents: Vec<&str> = trace.iter().map(|e| e.intent_id.as_str()).collect();
    assert_eq!(intents, ["coordinator", "coordinator", "worker", "worker"]);
    let tree = store.trace_tree(root.trace_id()).unwrap();
    assert_eq!(tree.roots().len(), 1);
    let depths: Vec<usize> = tree.nodes().iter().map(|n| n.depth).collect();
    assert_eq!(depths, [0, 1, 2, 3]);
    let outline = tree.to_string();
    assert!(outline.starts_with(&format!("trace {} (4 events)", root.trace_id())));
    assert!(
        outline.contains("intent_created by agent-b in worker"),
        "{outline}"
    );

    // An event outside any trace has no context to continue.
    let plain = store.log_event("x", EventType::Comment, json!({})).unwrap();
    assert_eq!(TraceContext::after(&plain), None);
}

#[test]
fn parent_links_that_loop_do_not_hang_the_tree() {
    let store = Store::in_memory().unwrap();
    let trace = TraceContext::new_root();
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    // a names b as parent before b exists; b names a: a loop. c names itself.
    store
        .append_batch([
            NewEvent::new("i", EventType::Comment, "x")
                .id(a)
                .in_trace(&trace.child(b)),
            NewEvent::new("i", EventType::Comment, "x")
                .id(b)
                .in_trace(&trace.child(a)),
            NewEvent::new("i", EventType::Comment, "x")
                .id(c)
                .in_trace(&trace.child(c)),
        ])
        .unwrap();
    let tree = store.trace_tree(trace.trace_id()).unwrap();
    let roots: Vec<Uuid> = tree
        .roots()
        .iter()
        .map(|r| tree.node(*r).event.id)
        .collect();
    assert_eq!(roots, [a, c], "the loop is cut at its oldest event");
    assert_eq!(tree.node(tree.find(b).unwrap()).parent, tree.find(a));
    assert_eq!(tree.depth_first().len(), 3);
}

#[test]
fn a_deep_trace_is_walked_without_recursion() {
    let store = Store::in_memory().unwrap();
    let trace = TraceContext::new_root();
    let mut context = trace.clone();
    let mut batch = Vec::new();
    for _ in 0..20_000 {
        let id = Uuid::now_v7();
        batch.push(
            NewEvent::new("i", EventType::Comment, "x")
                .id(id)
                .in_trace(&context),
        );
        context = trace.child(id);
    }
    store.append_batch(batch).unwrap();
    let tree = store.trace_tree(trace.trace_id()).unwrap();
    assert_eq!(tree.roots().len(), 1);
    assert_eq!(tree.nodes().last().unwrap().depth, 19_999);
    assert_eq!(tree.depth_first().len(), 20_000);
    let copy: TraceTree = tree.clone();
    drop(tree);
    let outline = copy.to_string();
    assert_eq!(outline.lines().count(), 20_001);
    assert!(outline
        .lines()
        .last()
        .unwrap()
        .starts_with(&format!("{:66}[depth 19999] ", "")));
}
