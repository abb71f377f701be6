//! Appending: what the store fills in, the chain, idempotency, conflicts and validation errors.

use chrono::{TimeZone, Utc};
use oidb::{Error, EventFilter, EventType, Level, NewEvent, Store};
use serde_json::json;
use uuid::Uuid;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("t.oidb")).unwrap();
    (dir, store)
}

#[test]
fn append_fills_id_time_position_sequence_and_chain() {
    let (_dir, store) = store();
    let first = store
        .append(
            NewEvent::new("intent-42", EventType::IntentCreated, "agent")
                .payload(json!({"title": "t"})),
        )
        .unwrap();
    let second = store
        .append(
            NewEvent::new("intent-42", EventType::Comment, "agent")
                .payload(json!({"message": "m"})),
        )
        .unwrap();
    let other = store
        .append(NewEvent::new("intent-7", EventType::Comment, "agent"))
        .unwrap();

    assert_eq!(first.id.get_version_num(), 7, "generated ids are UUID v7");
    assert_eq!((first.position, second.position, other.position), (1, 2, 3));
    assert_eq!((first.sequence, second.sequence, other.sequence), (1, 2, 1));
    assert_eq!(first.previous_event_hash, None);
    assert_eq!(
        second.previous_event_hash.as_deref(),
        Some(first.event_hash.as_str())
    );
    assert_eq!(other.previous_event_hash, None);
    assert!(first.event_hash.starts_with("sha256:") && first.event_hash.len() == 50);
    assert_eq!(
        oidb::chain::compute_event_hash(&second).unwrap(),
        second.event_hash
    );
    assert_eq!(
        first.created_at.timestamp_subsec_nanos() % 1000,
        0,
        "microsecond precision"
    );
    assert_eq!(store.get(second.id).unwrap(), Some(second.clone()));
    assert_eq!(store.get_at(3).unwrap(), Some(other));
    assert_eq!(store.get_at(4).unwrap(), None);
    assert_eq!(store.last_sequence("intent-42").unwrap(), 2);
    assert_eq!(store.last_sequence("nobody").unwrap(), 0);
}

#[test]
fn log_event_writes_the_builders_actor() {
    let dir = tempfile::tempdir().unwrap();
    let research = Store::builder()
        .actor("agent-research")
        .open(dir.path().join("r.oidb"))
        .unwrap();
    let e = research
        .log_event(
            "intent-42",
            EventType::StatePatched,
            json!({"changes": {"progress": 0.5}}),
        )
        .unwrap();
    assert_eq!(e.actor, "agent-research");
    assert_eq!(e.event_type, EventType::StatePatched);
    assert_eq!(e.payload, json!({"changes": {"progress": 0.5}}));
}

#[test]
fn batches_are_atomic() {
    let (_dir, store) = store();
    let good = NewEvent::new("i", EventType::Comment, "a");
    let bad = NewEvent::new("", EventType::Comment, "a");
    let err = store.append_batch(vec![good.clone(), bad]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidEvent {
                field: "intent_id",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        store.last_position().unwrap(),
        0,
        "nothing of a failed batch is written"
    );

    let all = store
        .append_batch(vec![good.clone(), good.clone(), good])
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(store.append_batch(Vec::new()).unwrap().is_empty());
}

#[test]
fn same_id_same_content_is_already_appended_and_other_content_conflicts() {
    let (_dir, store) = store();
    let id = Uuid::new_v4();
    let event = NewEvent::new("i", EventType::Comment, "a")
        .id(id)
        .payload(json!({"n": 1}));
    let first = store.append_outcome(event.clone()).unwrap();
    assert!(first.is_new());
    let again = store.append_outcome(event.clone()).unwrap();
    assert!(!again.is_new());
    assert_eq!(again.event(), first.event());
    assert_eq!(store.last_position().unwrap(), 1, "a repeat writes nothing");

    let err = store.append(event.payload(json!({"n": 2}))).unwrap_err();
    match err {
        Error::Conflict {
            id: conflicting,
            reason,
        } => {
            assert_eq!(conflicting, id);
            assert!(reason.contains("payload"), "{reason}");
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let twice = NewEvent::new("i", EventType::Comment, "a").id(Uuid::new_v4());
    let err = store.append_batch(vec![twice.clone(), twice]).unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
}

#[test]
fn expected_sequence_fails_with_the_actual_one() {
    let (_dir, store) = store();
    store
        .append(NewEvent::new("i", EventType::Comment, "a").expect_last_sequence(0))
        .unwrap();
    store
        .append(NewEvent::new("i", EventType::Comment, "a").expect_last_sequence(1))
        .unwrap();
    let err = store
        .append(NewEvent::new("i", EventType::Comment, "a").expect_last_sequence(1))
        .unwrap_err();
    match err {
        Error::WrongExpectedSequence {
            intent_id,
            expected,
            actual,
        } => {
            assert_eq!((intent_id.as_str(), expected, actual), ("i", 1, 2));
        }
        other => panic!("expected WrongExpectedSequence, got {other}"),
    }
}

#[test]
fn validation_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::builder()
        .max_payload_bytes(1024)
        .open(dir.path().join("v.oidb"))
        .unwrap();
    let field_of = |event: NewEvent| match store.append(event).unwrap_err() {
        Error::InvalidEvent { field, reason } => {
            assert!(!reason.is_empty());
            field
        }
        other => panic!("expected InvalidEvent, got {other}"),
    };
    assert_eq!(
        field_of(NewEvent::new("", EventType::Comment, "a")),
        "intent_id"
    );
    assert_eq!(
        field_of(NewEvent::new("x".repeat(256), EventType::Comment, "a")),
        "intent_id"
    );
    assert_eq!(
        field_of(NewEvent::new("i", EventType::Comment, "")),
        "actor"
    );
    assert_eq!(
        field_of(NewEvent::new("i", EventType::Comment, "a").payload(json!([1, 2]))),
        "payload"
    );
    assert_eq!(
        field_of(NewEvent::new("i", EventType::Comment, "a").payload(json!("text"))),
        "payload"
    );
    assert_eq!(
        field_of(
            NewEvent::new("i", EventType::Comment, "a").payload(json!({"big": "x".repeat(2000)}))
        ),
        "payload"
    );
    assert_eq!(
        field_of(NewEvent::new("i", EventType::Comment, "a").trace_id("ABC")),
        "trace_id"
    );
    assert_eq!(
        field_of(
            NewEvent::new("i", EventType::Comment, "a")
                .trace_id("0123456789ABCDEF0123456789abcdef")
        ),
        "trace_id"
    );
    assert_eq!(store.last_position().unwrap(), 0);
    // The limit is exactly 255 bytes.
    store
        .append(NewEvent::new("x".repeat(255), EventType::Comment, "a"))
        .unwrap();
}

#[test]
fn wire_json_is_openintents_intent_event_shape() {
    let (_dir, store) = store();
    let t = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 7).unwrap()
        + chrono::Duration::microseconds(97_374);
    let first = store
        .append(
            NewEvent::new("intent-42", EventType::Comment, "agent")
                .created_at(t)
                .payload(json!({"b": 1, "a": 2})),
        )
        .unwrap();
    let wire = serde_json::to_value(&first).unwrap();
    let keys: Vec<&str> = wire
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "intent_id",
            "event_type",
            "actor",
            "payload",
            "created_at",
            "sequence",
            "event_hash",
            "position"
        ]
    );
    assert_eq!(wire["created_at"], "2026-11-20T09:00:07.097374Z");
    assert_eq!(wire["event_type"], "comment");
    assert_eq!(
        wire["payload"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["b", "a"],
        "payload order kept"
    );

    let second = store
        .append(
            NewEvent::new("intent-42", "lease_renewed", "agent")
                .trace_id("6cad4a268d116ece1738f7d93d9c1724")
                .parent_event_id(first.id.to_string())
                .level(Level::Warn),
        )
        .unwrap();
    assert_eq!(second.event_type, EventType::parse("lease_renewed"));
    let wire = serde_json::to_value(&second).unwrap();
    let keys: Vec<&str> = wire
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "intent_id",
            "event_type",
            "actor",
            "payload",
            "created_at",
            "sequence",
            "previous_event_hash",
            "event_hash",
            "trace_id",
            "parent_event_id",
            "position",
            "level"
        ]
    );
    assert_eq!(wire["level"], "WARN");
    let back: oidb::Event = serde_json::from_value(wire).unwrap();
    assert_eq!(back, second);
}

#[test]
fn custom_types_are_data() {
    let (_dir, store) = store();
    let e = store
        .append(NewEvent::new("i", "my_own.thing", "a"))
        .unwrap();
    assert_eq!(e.event_type, EventType::Custom("my_own.thing".into()));
    let found = store
        .get_events("i", EventFilter::new().event_type("my_own.thing"))
        .unwrap();
    assert_eq!(found, vec![e]);
}

#[test]
fn events_survive_reopening_and_the_chain_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.oidb");
    let first = {
        let store = Store::open(&path).unwrap();
        store
            .append(NewEvent::new("i", EventType::Comment, "a"))
            .unwrap()
    };
    let store = Store::open(&path).unwrap();
    assert_eq!(store.get(first.id).unwrap(), Some(first.clone()));
    let second = store
        .append(NewEvent::new("i", EventType::Comment, "a"))
        .unwrap();
    assert_eq!((second.position, second.sequence), (2, 2));
    assert_eq!(second.previous_event_hash, Some(first.event_hash));
}
