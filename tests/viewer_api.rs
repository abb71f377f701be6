//! The viewer's side of `oidb::server`: its page files, its `/api/oidb/` reads (runs and events
//! paged by cursor, filters, bad parameters named), and a server that only reads a file another
//! handle writes. The page itself is driven in a real browser by tests/python/test_viewer.py.

#![cfg(feature = "server")]

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use oidb::costs::{CostType, NewCost};
use oidb::server::Server;
use oidb::{EventType, Level, NewEvent, ReadOnlyStore, Store};
use serde_json::{json, Value};

/// The status and JSON body (or text) of a request, whatever the status.
fn call(request: ureq::Request, body: Option<Value>) -> (u16, Value) {
    let request = request.timeout(Duration::from_secs(30));
    let result = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    let response = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(other) => panic!("no answer: {other}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn get(url: &str) -> (u16, Value) {
    call(ureq::get(url), None)
}

#[test]
fn runs_are_paged_by_intent_id_with_what_each_did_and_spent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("runs.oidb")).unwrap();
    let ids = ["run-a", "run-b", "run-c", "run-d", "run-e"];
    for (n, id) in ids.iter().enumerate() {
        store
            .log_event(
                *id,
                EventType::IntentCreated,
                json!({"title": format!("Run {n}")}),
            )
            .unwrap();
        for _ in 0..n {
            store
                .append(
                    NewEvent::new(id.to_string(), EventType::Comment, "agent-x")
                        .level(Level::Error),
                )
                .unwrap();
        }
    }
    let running = Server::new(store)
        .bind("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let base = format!("http://{}/api/oidb", running.local_addr());

    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = get(&format!("{base}/runs?limit=2&after={after}"));
        assert_eq!(status, 200, "{page}");
        let runs = page["runs"].as_array().unwrap();
        assert!(runs.len() <= 2);
        for run in runs {
            let n = seen.len();
            assert_eq!(run["id"], ids[n]);
            assert_eq!(run["title"], format!("Run {n}"));
            assert_eq!(run["events"], n as u64 + 1);
            assert_eq!(run["errors"], n as u64);
            assert!(
                run["actors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a == "agent-x")
                    || n == 0
            );
            seen.push(run["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let (status, one) = get(&format!("{base}/runs/run-c"));
    assert_eq!((status, one["run"]["events"].clone()), (200, json!(3)));
    let (status, missing) = get(&format!("{base}/runs/nobody"));
    assert_eq!(status, 404, "{missing}");
    let (status, bad) = get(&format!("{base}/runs?limit=0"));
    assert_eq!(
        (status, bad["field"].clone()),
        (422, json!("limit")),
        "{bad}"
    );
    running.stop().unwrap();
}

#[test]
fn an_intents_events_are_paged_by_cursor_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("events.oidb")).unwrap();
    let events: Vec<NewEvent> = (0..250)
        .map(|n| {
            let kind = if n % 5 == 0 {
                EventType::LlmRequestStarted
            } else {
                EventType::Comment
            };
            let level = if n % 50 == 0 {
                Level::Warn
            } else {
                Level::Info
            };
            NewEvent::new("long", kind, if n % 2 == 0 { "even" } else { "odd" })
                .payload(json!({"n": n}))
                .level(level)
        })
        .collect();
    store.append_batch(events).unwrap();
    let running = Server::new(store)
        .bind("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let base = format!(
        "http://{}/api/oidb/intents/long/events",
        running.local_addr()
    );

    let mut positions = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = get(&format!("{base}?limit=100&after={after}"));
        assert_eq!(status, 200, "{page}");
        positions.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["position"].as_u64().unwrap()),
        );
        match page["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        positions,
        (1..=250).rev().collect::<Vec<u64>>(),
        "newest first, each once"
    );

    let (_, oldest) = get(&format!("{base}?order=oldest&limit=3"));
    let first: Vec<u64> = oldest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(first, [1, 2, 3]);
    let (_, typed) = get(&format!("{base}?type=llm_request_*&limit=1000"));
    assert_eq!(typed["events"].as_array().unwrap().len(), 50);
    let (_, warned) = get(&format!("{base}?level=warn&actor=even&limit=1000"));
    let warned = warned["events"].as_array().unwrap();
    assert_eq!(warned.len(), 5);
    assert!(warned
        .iter()
        .all(|e| e["level"] == "WARN" && e["actor"] == "even"));

    for (query, field, status) in [
        ("order=sideways", "order", 400),
        ("level=loud", "level", 400),
        ("after=yesterday", "after", 400),
        ("since=noon", "since", 422),
        ("colour=red", "colour", 422),
    ] {
        let (got, body) = get(&format!("{base}?{query}"));
        assert_eq!(
            (got, body["field"].as_str()),
            (status, Some(field)),
            "{query}: {body}"
        );
    }
    let (status, _) = get(&format!(
        "http://{}/api/oidb/intents/nobody/events",
        running.local_addr()
    ));
    assert_eq!(status, 404);
    running.stop().unwrap();
}

#[test]
fn costs_over_time_come_in_buckets_and_a_bad_bucket_is_named() {
    let store = Store::in_memory().unwrap();
    let start = oidb::time::parse("2026-11-20T09:30:00Z").unwrap();
    for (minutes, amount) in [(0, 0.5), (10, 0.25), (75, 2.0)] {
        store
            .record_cost(
                "run",
                NewCost::new(CostType::ApiCall, amount, "USD")
                    .recorded_at(start + TimeDelta::minutes(minutes)),
            )
            .unwrap();
    }
    let running = Server::new(store)
        .bind("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let base = format!("http://{}/api/oidb/costs/over_time", running.local_addr());

    let (status, hours) = get(&format!("{base}?bucket=hour"));
    assert_eq!(status, 200, "{hours}");
    assert_eq!(
        hours,
        json!([
            {"start": "2026-11-20T09:00:00.000000Z", "by_unit": {"USD": 0.75}, "count": 2, "unpriced_requests": 0},
            {"start": "2026-11-20T10:00:00.000000Z", "by_unit": {"USD": 2.0}, "count": 1, "unpriced_requests": 0},
        ])
    );
    let (_, later) = get(&format!(
        "{base}?bucket=day&intent=run&since=2026-11-20T10:00:00Z"
    ));
    assert_eq!(later[0]["by_unit"], json!({"USD": 2.0}), "{later}");
    let (_, nobody) = get(&format!("{base}?intent=nobody"));
    assert_eq!(nobody, json!([]));
    for (query, field, status) in [
        ("bucket=week", "bucket", 400),
        ("since=yesterday", "since", 422),
        ("group_by=model", "group_by", 422),
    ] {
        let (got, bad) = get(&format!("{base}?{query}"));
        assert_eq!(
            (got, bad["field"].clone()),
            (status, json!(field)),
            "{query}: {bad}"
        );
    }
    running.stop().unwrap();
}

#[test]
fn the_page_is_served_without_the_key_and_its_reads_need_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("keyed.oidb")).unwrap();
    store.log_event("i", EventType::Comment, json!({})).unwrap();
    let running = Server::new(store)
        .api_key("sesame")
        .bind("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let base = format!("http://{}", running.local_addr());

    let page = ureq::get(&format!("{base}/")).call().unwrap();
    assert!(page.content_type().starts_with("text/html"));
    assert!(page.into_string().unwrap().contains("/ui/app.js"));
    for (path, kind) in [
        ("/ui/app.js", "text/javascript"),
        ("/ui/charts.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ] {
        let file = ureq::get(&format!("{base}{path}")).call().unwrap();
        assert_eq!(file.content_type(), kind, "{path}");
    }
    let (status, _) = get(&format!("{base}/api/oidb/runs"));
    assert_eq!(status, 401);
    let (status, runs) = call(
        ureq::get(&format!("{base}/api/oidb/runs")).set("X-API-Key", "sesame"),
        None,
    );
    assert_eq!(
        (status, runs["runs"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (status, _) = get(&format!("{base}/api/oidb/nothing-here"));
    assert_eq!(status, 401, "the key is checked before anything else");
    running.stop().unwrap();
}

#[test]
fn a_read_only_server_follows_another_writer_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.oidb");
    let writer = Store::builder()
        .publish_interval(Duration::ZERO)
        .open(&path)
        .unwrap();
    writer
        .log_event("live", EventType::IntentCreated, json!({"title": "Live"}))
        .unwrap();
    let running = Server::read_only(ReadOnlyStore::open(&path).unwrap())
        .bind("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let base = format!("http://{}/api", running.local_addr());

    let (status, intent) = get(&format!("{base}/v1/intents/live"));
    assert_eq!((status, intent["title"].clone()), (200, json!("Live")));
    let (status, refused) = call(
        ureq::post(&format!("{base}/v1/intents/live/events")),
        Some(json!({"event_type": "comment", "payload": {}})),
    );
    assert_eq!(status, 405, "{refused}");
    assert!(refused.to_string().contains("only reads"), "{refused}");
    let (status, _) = call(
        ureq::post(&format!("{base}/v1/intents")),
        Some(json!({"title": "x"})),
    );
    assert_eq!(status, 405);

    writer
        .log_event("live", EventType::Comment, json!({"message": "later"}))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, run) = get(&format!("{base}/oidb/runs/live"));
        if run["run"]["events"] == 2 {
            assert_eq!(run["writer"], "live");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server never saw the writer's append: {run}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        writer.last_position().unwrap(),
        2,
        "the refused writes wrote nothing"
    );
    running.stop().unwrap();
}
