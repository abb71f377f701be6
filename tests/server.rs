//! `oidb::server` over HTTP: each route, the API key, the answers to bad input, and SSE with
//! resumption, through a real HTTP client against a server on a free loopback port.

#![cfg(feature = "server")]

use std::io::{BufRead as _, BufReader};
use std::time::Duration;

use oidb::server::{Running, Server};
use oidb::{Query, Store};
use serde_json::{json, Value};

struct Served {
    _dir: tempfile::TempDir,
    store: Store,
    running: Option<Running>,
    base: String,
}

fn served_with(key: Option<&str>) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("served.oidb")).unwrap();
    let mut server = Server::new(store.clone());
    if let Some(key) = key {
        server = server.api_key(key);
    }
    let running = server.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let base = format!("http://{}/api/v1", running.local_addr());
    Served {
        _dir: dir,
        store,
        running: Some(running),
        base,
    }
}

fn served() -> Served {
    served_with(None)
}

/// The status and JSON body of a request, whatever the status.
fn answer(request: ureq::Request, body: Option<Value>) -> (u16, Value) {
    let request = request
        .set("X-Agent-ID", "tester")
        .timeout(Duration::from_secs(30));
    let result = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(other) => panic!("no answer: {other}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

impl Served {
    fn get(&self, path: &str) -> (u16, Value) {
        answer(ureq::get(&format!("{}{path}", self.base)), None)
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        answer(ureq::post(&format!("{}{path}", self.base)), Some(body))
    }

    fn post_versioned(&self, path: &str, version: &str, body: Value) -> (u16, Value) {
        answer(
            ureq::post(&format!("{}{path}", self.base)).set("If-Match", version),
            Some(body),
        )
    }

    fn create(&self, title: &str) -> String {
        let (status, intent) = self.post("/intents", json!({"title": title, "description": "d"}));
        assert_eq!(status, 200, "{intent}");
        intent["id"].as_str().unwrap().to_owned()
    }

    fn events_in_file(&self) -> usize {
        self.store
            .snapshot()
            .unwrap()
            .query(&Query::new().limit(10_000))
            .unwrap()
            .events
            .len()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().unwrap();
        }
    }
}

#[test]
fn intents_are_created_read_listed_and_projected_from_their_events() {
    let s = served();
    let (status, intent) = s.post(
        "/intents",
        json!({"title": "Research", "description": "find", "state": {"step": 1},
               "constraints": {"rules": ["cite"]}, "created_by": "planner"}),
    );
    assert_eq!(status, 200, "{intent}");
    for (member, expected) in [
        ("title", json!("Research")),
        ("description", json!("find")),
        ("state", json!({"step": 1})),
        ("constraints", json!({"rules": ["cite"]})),
        ("created_by", json!("planner")),
        ("status", json!("draft")),
        ("version", json!(1)),
    ] {
        assert_eq!(intent[member], expected, "{member} in {intent}");
    }
    let id = intent["id"].as_str().unwrap();
    let (status, read) = s.get(&format!("/intents/{id}"));
    assert_eq!((status, &read), (200, &intent));
    s.create("Second");
    let (status, list) = s.get("/intents?limit=10");
    assert_eq!(status, 200);
    let titles: Vec<&str> = list["intents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Research", "Second"]);
    let (_, first_only) = s.get("/intents?limit=1&offset=1");
    assert_eq!(first_only["intents"][0]["title"], "Second");
    let (_, none) = s.get("/intents?status=completed");
    assert_eq!(none["intents"], json!([]));
    let (status, missing) = s.get("/intents/no-such-intent");
    assert_eq!(status, 404);
    assert_eq!(missing["field"], "intent_id");
}

#[test]
fn events_are_logged_and_read_back_with_each_filter() {
    let s = served();
    let id = s.create("Log");
    for i in 0..5 {
        let kind = if i % 2 == 0 {
            "comment"
        } else {
            "llm_request_started"
        };
        let (status, event) = s.post(
            &format!("/intents/{id}/events"),
            json!({"event_type": kind, "actor": "agent-a", "payload": {"i": i},
                   "trace_id": "6aa8b9e0231b3e14729135bdd70a39d1"}),
        );
        assert_eq!(status, 200, "{event}");
        assert_eq!(event["intent_id"], id.as_str());
        assert_eq!(event["sequence"], i + 2);
    }
    let (_, all) = s.get(&format!("/intents/{id}/events"));
    assert_eq!(all.as_array().unwrap().len(), 6, "intent_created and five");
    let (_, comments) = s.get(&format!("/intents/{id}/events?event_type=comment"));
    assert_eq!(comments.as_array().unwrap().len(), 3);
    let stored = s
        .store
        .query(&Query::new().intent(id.as_str()))
        .unwrap()
        .events;
    assert_eq!(
        all,
        serde_json::to_value(&stored).unwrap(),
        "each event as stored"
    );
    let (_, two) = s.get(&format!("/intents/{id}/events?limit=2"));
    assert_eq!(two, serde_json::to_value(&stored[..2]).unwrap());
    let (_, past_offset) = s.get(&format!("/intents/{id}/events?offset=4&limit=10"));
    assert_eq!(past_offset, serde_json::to_value(&stored[4..]).unwrap());
    let (_, beyond) = s.get(&format!("/intents/{id}/events?offset=6"));
    assert_eq!(beyond, json!([]));
    let third = all[3]["created_at"].as_str().unwrap().to_owned();
    let (status, since) = s.get(&format!("/intents/{id}/events?since={}", urlencode(&third)));
    assert_eq!(status, 200, "{since}");
    assert!(since
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["created_at"].as_str().unwrap() >= third.as_str()));
    assert!(since.as_array().unwrap().len() < 6);
    let (status, traced) = s.get("/events?trace_id=6aa8b9e0231b3e14729135bdd70a39d1");
    assert_eq!(status, 200);
    assert_eq!(
        traced["events"],
        serde_json::to_value(&stored[1..]).unwrap()
    );
    let (_, first_traced) = s.get("/events?trace_id=6aa8b9e0231b3e14729135bdd70a39d1&limit=1");
    assert_eq!(first_traced, json!({"events": [stored[1]]}));

    let (status, refused) = s.post(
        "/intents/no-such-intent/events",
        json!({"event_type": "comment", "actor": "a"}),
    );
    assert_eq!(status, 404, "{refused}");
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[test]
fn state_and_status_changes_check_the_version_atomically() {
    let s = served();
    let id = s.create("Versioned");
    let path = format!("/intents/{id}/state");
    let (status, updated) = s.post_versioned(
        &path,
        "1",
        json!({"patches": [{"op": "set", "path": "progress", "value": 0.5}]}),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["state"]["progress"], 0.5);
    let (status, conflict) = s.post_versioned(&path, "1", json!({"state": {"x": 1}}));
    assert_eq!(status, 409);
    assert_eq!(conflict["current_version"], 2);

    // Eight clients race with the same version: exactly one wins.
    let outcomes: Vec<u16> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8)
            .map(|n| {
                let s = &s;
                let path = &path;
                scope.spawn(move || {
                    s.post_versioned(path, "2", json!({"state": {"winner": n}}))
                        .0
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes.iter().filter(|&&c| c == 200).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|&&c| c == 409).count(),
        7,
        "{outcomes:?}"
    );

    let (status, done) = s.post_versioned(
        &format!("/intents/{id}/status"),
        "3",
        json!({"status": "completed", "reason": "done"}),
    );
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["status"].clone(), done["version"].clone()),
        (json!("completed"), json!(4))
    );
    let (_, events) = s.get(&format!("/intents/{id}/events?event_type=status_changed"));
    assert_eq!(events[0]["payload"]["reason"], "done");
}

#[test]
fn agents_are_assigned_and_listed() {
    let s = served();
    let id = s.create("Team");
    let (status, assigned) = s.post(
        &format!("/intents/{id}/agents"),
        json!({"agent_id": "agent-b"}),
    );
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(assigned["agent_id"], "agent-b");
    assert_eq!(assigned["role"], "worker");
    let (_, agents) = s.get(&format!("/intents/{id}/agents"));
    assert_eq!(agents.as_array().unwrap().len(), 1);
}

#[test]
fn bad_requests_are_refused_by_name_and_never_touch_the_file() {
    let s = served();
    let id = s.create("Careful");
    let before = s.events_in_file();
    let cases: Vec<(u16, &str, (u16, Value))> = vec![
        (
            400,
            "If-Match",
            s.post(&format!("/intents/{id}/state"), json!({"state": {"a": 1}})),
        ),
        (
            400,
            "If-Match",
            s.post_versioned(&format!("/intents/{id}/state"), "one", json!({})),
        ),
        (
            400,
            "patches",
            s.post_versioned(
                &format!("/intents/{id}/state"),
                "1",
                json!({"patches": [{"op": "explode", "path": "a"}]}),
            ),
        ),
        (
            422,
            "status",
            s.post_versioned(
                &format!("/intents/{id}/status"),
                "1",
                json!({"status": "finished"}),
            ),
        ),
        (
            422,
            "body",
            s.post("/intents", json!({"description": "no title"})),
        ),
        (
            422,
            "body",
            s.post("/intents", json!({"title": "t", "colour": "red"})),
        ),
        (422, "title", s.post("/intents", json!({"title": "  "}))),
        (
            422,
            "limit",
            s.get(&format!("/intents/{id}/events?limit=0")),
        ),
        (
            422,
            "limit",
            s.get(&format!("/intents/{id}/events?limit=many")),
        ),
        (
            422,
            "since",
            s.get(&format!("/intents/{id}/events?since=yesterday")),
        ),
        (
            422,
            "colour",
            s.get(&format!("/intents/{id}/events?colour=red")),
        ),
        (
            422,
            "event_type",
            s.post(&format!("/intents/{id}/events"), json!({"event_type": ""})),
        ),
        (
            422,
            "trace_id",
            s.post(
                &format!("/intents/{id}/events"),
                json!({"event_type": "comment", "trace_id": "xyz"}),
            ),
        ),
    ];
    for (status, field, (got, body)) in cases {
        assert_eq!(got, status, "{field}: {body}");
        assert_eq!(body["field"], field, "{body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
    }
    let (status, _) = answer(
        ureq::post(&format!("{}/intents", s.base)).set("Content-Type", "application/json"),
        None,
    );
    assert_eq!(status, 422, "an empty body");
    let raw = ureq::post(&format!("{}/intents", s.base))
        .set("Content-Type", "application/json")
        .send_string("{not json");
    assert!(matches!(raw, Err(ureq::Error::Status(422, _))));
    let huge = "x".repeat(17 << 20);
    let big = ureq::post(&format!("{}/intents/{id}/events", s.base))
        .set("Content-Type", "application/json")
        .send_string(&format!(
            r#"{{"event_type":"comment","payload":{{"t":"{huge}"}}}}"#
        ));
    assert!(
        matches!(
            big,
            Err(ureq::Error::Status(413, _)) | Err(ureq::Error::Transport(_))
        ),
        "{big:?}"
    );
    assert_eq!(s.events_in_file(), before, "no bad request wrote anything");
}

#[test]
fn routes_it_does_not_serve_say_so_with_501() {
    let s = served();
    let (status, body) = s.get("/intents/x/leases");
    assert_eq!(status, 501);
    assert!(
        body["detail"].as_str().unwrap().contains("does not serve"),
        "{body}"
    );
    let (status, _) = answer(ureq::get(&s.base.replace("/api/v1", "/nothing-here")), None);
    assert_eq!(status, 404);
}

#[test]
fn an_api_key_is_required_when_set_and_a_remote_address_needs_one() {
    let s = served_with(Some("sekrit"));
    let url = format!("{}/intents", s.base);
    let (status, body) = answer(ureq::get(&url), None);
    assert_eq!(status, 401, "{body}");
    let (status, _) = answer(ureq::get(&url).set("X-API-Key", "sekrix"), None);
    assert_eq!(status, 401);
    let (status, _) = answer(ureq::get(&url).set("X-API-Key", "sekri"), None);
    assert_eq!(status, 401);
    let (status, _) = answer(ureq::get(&url).set("X-API-Key", "sekrit"), None);
    assert_eq!(status, 200);

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("remote.oidb")).unwrap();
    let refused = Server::new(store.clone())
        .bind("0.0.0.0:0".parse().unwrap())
        .unwrap_err();
    assert!(
        refused.to_string().contains("no API key is set"),
        "{refused}"
    );
    Server::new(store)
        .api_key("k")
        .bind("0.0.0.0:0".parse().unwrap())
        .unwrap()
        .stop()
        .unwrap();
}

/// Reads `count` SSE events from `path`, sending `last_event_id` if given: (id, type, data).
fn read_sse(
    base: &str,
    path: &str,
    last_event_id: Option<u64>,
    count: usize,
) -> Vec<(u64, String, Value)> {
    let mut request = ureq::get(&format!("{base}{path}")).set("Accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.set("Last-Event-ID", &id.to_string());
    }
    let response = request.timeout(Duration::from_secs(60)).call().unwrap();
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    let mut events = Vec::new();
    let (mut id, mut kind, mut data) = (0, String::new(), String::new());
    for line in BufReader::new(response.into_reader()).lines() {
        let line = line.unwrap();
        if let Some(v) = line
            .strip_prefix("id: ")
            .or_else(|| line.strip_prefix("id:"))
        {
            id = v.trim().parse().unwrap();
        } else if let Some(v) = line
            .strip_prefix("event: ")
            .or_else(|| line.strip_prefix("event:"))
        {
            kind = v.trim().to_owned();
        } else if let Some(v) = line
            .strip_prefix("data: ")
            .or_else(|| line.strip_prefix("data:"))
        {
            data.push_str(v);
        } else if line.is_empty() && !data.is_empty() {
            events.push((
                id,
                std::mem::take(&mut kind),
                serde_json::from_str(&data).unwrap(),
            ));
            data.clear();
            if events.len() == count {
                break;
            }
        }
    }
    events
}

#[test]
fn sse_streams_every_event_once_with_ids_and_resumes_after_last_event_id() {
    let s = served();
    let id = s.create("Streamed");
    let base = s.base.clone();
    let path = format!("/intents/{id}/subscribe");
    let reader = {
        let base = base.clone();
        let path = path.clone();
        std::thread::spawn(move || read_sse(&base, &path, Some(1), 40))
    };
    for i in 0..40 {
        let (status, _) = s.post(
            &format!("/intents/{id}/events"),
            json!({"event_type": "comment", "payload": {"i": i}}),
        );
        assert_eq!(status, 200);
    }
    let got = reader.join().unwrap();
    let ids: Vec<u64> = got.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(
        ids,
        (2..=41).collect::<Vec<_>>(),
        "every event once, in order"
    );
    assert!(got
        .iter()
        .all(|(_, kind, data)| kind == "comment" && data["intent_id"] == id.as_str()));
    assert_eq!(got[7].2["payload"]["i"], 7);

    // A reconnect after event 30 gets 31 on, on the reference server's own path too.
    let again = read_sse(&base, &format!("/subscribe/intents/{id}"), Some(30), 11);
    let ids: Vec<u64> = again.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(ids, (31..=41).collect::<Vec<_>>());

    let (status, body) = answer(
        ureq::get(&format!("{base}/intents/no-such/subscribe")),
        None,
    );
    assert_eq!(status, 404, "{body}");
    let (status, body) = answer(
        ureq::get(&format!("{base}{path}")).set("Last-Event-ID", "latest"),
        None,
    );
    assert_eq!(
        (status, body["field"].clone()),
        (400, json!("Last-Event-ID"))
    );
}

#[test]
fn costs_are_recorded_summed_and_held_to_the_policys_max_cost() {
    let s = served();
    let id = s.create("Spend");
    let (status, intent) = answer(
        ureq::put(&format!("{}/intents/{id}/governance", s.base)).set("If-Match", "1"),
        Some(json!({"max_cost": 1.0, "write_scope": "any"})),
    );
    assert_eq!(status, 200, "{intent}");
    assert_eq!(intent["version"], 2);
    assert_eq!(intent["governance_policy"]["max_cost"], 1.0);
    let (_, policy) = s.get(&format!("/intents/{id}/governance"));
    assert_eq!(policy["effective_policy"]["max_cost"], 1.0);
    assert_eq!(policy["effective_policy"]["completion_mode"], "auto");

    let cost = |amount: f64, agent: &str| {
        s.post(
            &format!("/intents/{id}/costs"),
            json!({"agent_id": agent, "cost_type": "api_call", "amount": amount, "unit": "USD",
                   "provider": "openai", "metadata": {"model": "gpt-4o"}}),
        )
    };
    let (status, recorded) = cost(0.6, "agent-a");
    assert_eq!(status, 200, "{recorded}");
    assert_eq!(recorded["amount"], 0.6);
    assert_eq!(recorded["metadata"]["model"], "gpt-4o");
    assert_eq!(cost(0.3, "agent-b").0, 200);
    let (status, refused) = cost(0.5, "agent-a");
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["rule"], serde_json::Value::Null);
    assert_eq!(refused["detail"]["rule"], "max_cost");
    let (_, violations) = s.get(&format!(
        "/intents/{id}/events?event_type=governance.violation"
    ));
    assert_eq!(
        violations.as_array().unwrap().len(),
        1,
        "the refusal is on record"
    );

    let (status, costs) = s.get(&format!("/intents/{id}/costs"));
    assert_eq!(status, 200);
    assert_eq!(costs["costs"].as_array().unwrap().len(), 2);
    assert!(
        (costs["summary"]["total"].as_f64().unwrap() - 0.9).abs() < 1e-9,
        "{costs}"
    );
    assert!((costs["summary"]["by_agent"]["agent-a"].as_f64().unwrap() - 0.6).abs() < 1e-9);

    for (body, field) in [
        (
            json!({"cost_type": "lunch", "amount": 1.0, "unit": "USD"}),
            "cost_type",
        ),
        (
            json!({"cost_type": "compute", "amount": -1.0, "unit": "s"}),
            "amount",
        ),
    ] {
        let (status, answer) = s.post(&format!("/intents/{id}/costs"), body);
        assert_eq!(
            (status, answer["field"].clone()),
            (422, json!(field)),
            "{answer}"
        );
    }
    let (status, bad) = answer(
        ureq::put(&format!("{}/intents/{id}/governance", s.base)).set("If-Match", "2"),
        Some(json!({"max_cost": -5})),
    );
    assert_eq!((status, bad["field"].clone()), (422, json!("max_cost")));
    let (status, stale) = answer(
        ureq::put(&format!("{}/intents/{id}/governance", s.base)).set("If-Match", "1"),
        Some(json!({"max_cost": 5})),
    );
    assert_eq!((status, stale["current_version"].clone()), (409, json!(2)));
}

#[test]
fn chains_checkpoints_and_merkle_proofs_are_recomputed_from_the_log() {
    let s = served();
    let id = s.create("Proven");
    let mut event_ids = Vec::new();
    for i in 0..6 {
        let (_, event) = s.post(
            &format!("/intents/{id}/events"),
            json!({"event_type": "comment", "payload": {"i": i}}),
        );
        event_ids.push(event["id"].as_str().unwrap().to_owned());
    }
    let (status, chain) = s.get(&format!("/intents/{id}/events/verify"));
    assert_eq!(status, 200, "{chain}");
    assert_eq!(
        (chain["valid"].clone(), chain["event_count"].clone()),
        (json!(true), json!(7))
    );

    let (status, first) = s.post("/checkpoints", json!({"intent_id": id}));
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["event_count"], 7);
    let checkpoint = first["checkpoint_id"].as_str().unwrap().to_owned();
    let (status, again) = s.post("/checkpoints", json!({"intent_id": id}));
    assert_eq!((status, again), (200, Value::Null), "nothing new to seal");
    let (_, listed) = s.get(&format!("/checkpoints?intent_id={id}"));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (status, read) = s.get(&format!("/checkpoints/{checkpoint}"));
    assert_eq!((status, &read), (200, &first));

    let (status, proof) = s.get(&format!("/checkpoints/{checkpoint}/proof/{}", event_ids[3]));
    assert_eq!(status, 200, "{proof}");
    let parsed: oidb::merkle::MerkleProof = serde_json::from_value(proof.clone()).unwrap();
    assert!(parsed.verify(), "{proof}");
    assert_eq!(proof["merkle_root"], first["merkle_root"]);

    s.post(
        &format!("/intents/{id}/events"),
        json!({"event_type": "comment"}),
    );
    let (_, second) = s.post("/checkpoints", json!({"intent_id": id}));
    let (status, consistent) = s.get(&format!(
        "/verify/consistency?from_checkpoint={checkpoint}&to_checkpoint={}",
        second["checkpoint_id"].as_str().unwrap()
    ));
    assert_eq!(status, 200, "{consistent}");
    assert_eq!(consistent["consistent"], true);

    let (status, missing) = s.get("/checkpoints/no-such-checkpoint");
    assert_eq!(
        (status, missing["field"].clone()),
        (404, json!("checkpoint_id"))
    );
    let (status, bad) = s.get(&format!("/checkpoints/{checkpoint}/proof/not-a-uuid"));
    assert_eq!((status, bad["field"].clone()), (422, json!("event_id")));
    let (status, bad) = s.get("/verify/consistency?from_checkpoint=x");
    assert_eq!(
        (status, bad["field"].clone()),
        (422, json!("to_checkpoint"))
    );
}
