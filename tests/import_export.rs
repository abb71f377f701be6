//! Import and export of OpenIntent JSON, on the shared fixtures.

use oidb::{Error, EventType, Query, Store};
use serde_json::{json, Value};
use sha2::Digest as _;

fn fixture(name: &str) -> String {
    let shared = format!("../shared/fixtures/{name}");
    std::fs::read_to_string(&shared)
        .or_else(|_| std::fs::read_to_string(format!("tests/data/{name}")))
        .unwrap()
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("t.oidb")).unwrap();
    (dir, store)
}

fn export(store: &Store, query: &Query) -> String {
    let mut out = Vec::new();
    store.export_json(&mut out, query).unwrap();
    String::from_utf8(out).unwrap()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn chained_fixture_round_trips_with_identical_hashes() {
    let (_dir, store) = store();
    let input = fixture("openintent_chained.jsonl");
    let report = store.import_json(input.as_bytes()).unwrap();
    assert_eq!(
        (report.read, report.appended, report.already_present),
        (54, 54, 0)
    );

    let exported = export(&store, &Query::new());
    let (before, after) = (lines(&input), lines(&exported));
    assert_eq!(before.len(), after.len());
    for (a, b) in before.iter().zip(&after) {
        for key in [
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
        ] {
            assert_eq!(a.get(key), b.get(key), "{key} of {}", a["id"]);
        }
    }

    // Re-importing writes nothing new.
    let again = store.import_json(input.as_bytes()).unwrap();
    assert_eq!((again.appended, again.already_present), (0, 54));
    assert_eq!(store.last_position().unwrap(), 54);

    // The export imports into a new file to the same events.
    let (_dir2, copy) = self::store();
    copy.import_json(exported.as_bytes()).unwrap();
    assert_eq!(export(&copy, &Query::new()), exported);
}

#[test]
fn one_intents_export_reimports_alone() {
    let (_dir, store) = store();
    store
        .import_json(fixture("openintent_chained.jsonl").as_bytes())
        .unwrap();
    let intent = "73ccef03-46f5-41b4-b156-d1ad330c16a3";
    let exported = export(&store, &Query::new().intent(intent));
    assert_eq!(exported.lines().count(), 16);
    let (_dir2, copy) = self::store();
    let report = copy.import_json(exported.as_bytes()).unwrap();
    assert_eq!(report.appended, 16);
    assert_eq!(copy.last_sequence(intent).unwrap(), 16);
}

#[test]
fn tampered_chain_is_refused_naming_line_and_event_and_nothing_is_written() {
    let (_dir, store) = store();
    store
        .log_event(
            "other-intent",
            EventType::Comment,
            serde_json::json!({"n": 1}),
        )
        .unwrap();
    let before = export(&store, &Query::new());
    let err = store
        .import_json_named(
            fixture("openintent_chained_tampered.jsonl").as_bytes(),
            "tampered.jsonl",
        )
        .unwrap_err();
    match &err {
        Error::Import {
            source_name,
            line,
            event_id,
            reason,
        } => {
            assert_eq!(source_name, "tampered.jsonl");
            assert_eq!(*line, 28);
            assert_eq!(
                event_id.as_deref(),
                Some("27e9e06f-59b4-4e92-affd-deeaa842bc19")
            );
            assert!(reason.contains("event_hash"), "{reason}");
        }
        other => panic!("expected an import error, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("tampered.jsonl line 28"), "{message}");
    assert!(
        message.contains("nothing of this import was written"),
        "{message}"
    );
    assert_eq!(
        export(&store, &Query::new()),
        before,
        "the store is unchanged"
    );
}

#[test]
fn server_style_events_are_chained_on_import() {
    let (_dir, store) = store();
    let input = fixture("openintent_events.jsonl");
    let report = store.import_json(input.as_bytes()).unwrap();
    assert_eq!(report.appended, 55);
    let source = lines(&input);
    let stored: Vec<oidb::Event> = store
        .query_iter(&Query::new())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (given, event) in source.iter().zip(&stored) {
        assert_eq!(given["id"], event.id.to_string());
        // Naive server times are UTC.
        assert_eq!(
            format!("{}Z", given["created_at"].as_str().unwrap()),
            oidb::time::format(event.created_at)
        );
        assert_eq!(
            oidb::chain::compute_event_hash(event).unwrap(),
            event.event_hash
        );
    }
    assert_eq!(
        store.import_json(input.as_bytes()).unwrap().appended,
        0,
        "idempotent"
    );
}

#[test]
fn a_json_array_imports_and_errors_name_its_lines() {
    let (_dir, store) = store();
    let events = lines(&fixture("openintent_events.jsonl"));
    let array = serde_json::to_string_pretty(&events[..3]).unwrap();
    assert_eq!(store.import_json(array.as_bytes()).unwrap().appended, 3);

    let mut broken = events[3..5].to_vec();
    broken[1]["payload"] = Value::from(5);
    let text = serde_json::to_string_pretty(&broken).unwrap();
    let err = store.import_json(text.as_bytes()).unwrap_err();
    let second_element_line = 1 + text
        .lines()
        .position(|l| l.contains(broken[1]["id"].as_str().unwrap()))
        .unwrap();
    match err {
        Error::Import { line, reason, .. } => {
            assert!(line > 1 && line <= second_element_line, "line {line}");
            assert!(reason.contains("payload"), "{reason}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(store.last_position().unwrap(), 3);
}

#[test]
fn an_array_element_is_named_by_the_line_it_starts_on() {
    let (_dir, store) = store();
    let mut events = lines(&fixture("openintent_events.jsonl"));
    let last = events.len() - 1;
    events[last]["payload"] = Value::from(5);
    let text = serde_json::to_string_pretty(&events).unwrap();
    let id_line = text
        .lines()
        .position(|l| l.contains(events[last]["id"].as_str().unwrap()))
        .unwrap();
    let starts_on = 1 + text
        .lines()
        .take(id_line)
        .collect::<Vec<_>>()
        .iter()
        .rposition(|l| *l == "  {")
        .unwrap();
    match store.import_json(text.as_bytes()).unwrap_err() {
        Error::Import { line, .. } => assert_eq!(line, starts_on),
        other => panic!("{other}"),
    }
}

#[test]
fn bad_lines_are_named() {
    let (_dir, store) = store();
    let good = fixture("openintent_events.jsonl")
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let mut changed: Value = serde_json::from_str(&good).unwrap();
    changed["payload"] = serde_json::json!({"changed": true});
    let cases = [
        (format!("{good}\n{{not json\n"), 2, "not JSON"),
        ("\n\n{\"intent_id\": \"i\", \"event_type\": \"comment\"}\n".to_owned(), 3, "`id`"),
        ("{\"id\": \"nope\", \"intent_id\": \"i\", \"event_type\": \"comment\"}".to_owned(), 1, "not a UUID"),
        (
            "{\"id\": \"81e74ef5-e8e2-4d94-8ed9-04759531985e\", \"intent_id\": \"i\", \"event_type\": \"comment\", \"created_at\": \"noon\"}".to_owned(),
            1,
            "created_at",
        ),
        (
            "{\"id\": \"81e74ef5-e8e2-4d94-8ed9-04759531985e\", \"intent_id\": \"i\", \"event_type\": \"comment\", \"sequence\": 1}".to_owned(),
            1,
            "event_hash",
        ),
        (format!("{good}\n{changed}\n"), 2, "1 line above"),
    ];
    for (input, line, needle) in cases {
        match store.import_json(input.as_bytes()).unwrap_err() {
            Error::Import {
                line: got, reason, ..
            } => {
                assert_eq!(got, line, "{reason}");
                assert!(reason.contains(needle), "{reason} should mention {needle}");
            }
            other => panic!("{other}"),
        }
    }
    let mut invalid_utf8 = format!("{good}\n").into_bytes();
    invalid_utf8.extend_from_slice(b"{\"id\": \"\xff\"}\n");
    match store.import_json(invalid_utf8.as_slice()).unwrap_err() {
        Error::Import { line, reason, .. } => {
            assert_eq!(line, 2);
            assert!(reason.contains("UTF-8"));
        }
        other => panic!("{other}"),
    }
    assert_eq!(store.last_position().unwrap(), 0);
}

#[test]
fn in_a_large_import_the_first_bad_line_is_named() {
    let (_dir, store) = store();
    let line = |n: usize, actor: &str, trace_id: &str| {
        format!(
            "{{\"id\": \"81e74ef5-e8e2-4d94-8ed9-{n:012x}\", \"intent_id\": \"i{}\", \"event_type\": \"comment\", \"actor\": \"{actor}\", \"payload\": {{\"n\": {n}}}, \"created_at\": \"2026-11-20T09:00:07.097374Z\"{trace_id}}}\n",
            n % 7
        )
    };
    // Both bad lines are in the later part of a large import, each wrong in its own way: the
    // first in order is the one named.
    let mut input = String::new();
    for n in 1..=2_000 {
        input.push_str(&match n {
            1_500 => line(n, "", ""),
            1_900 => line(n, "a", ", \"trace_id\": \"not hex\""),
            _ => line(n, "a", ""),
        });
    }
    match store.import_json(input.as_bytes()).unwrap_err() {
        Error::Import {
            line,
            event_id,
            reason,
            ..
        } => {
            assert_eq!(line, 1_500, "{reason}");
            assert_eq!(
                event_id.as_deref(),
                Some("81e74ef5-e8e2-4d94-8ed9-0000000005dc")
            );
            assert!(reason.contains("actor"), "{reason}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(store.last_position().unwrap(), 0);
}

#[test]
fn a_chain_that_starts_mid_way_is_refused_with_advice() {
    let (_dir, store) = store();
    store
        .import_json(fixture("openintent_chained.jsonl").as_bytes())
        .unwrap();
    let filtered = export(&store, &Query::new().event_type(EventType::Comment));
    let (_dir2, copy) = self::store();
    let err = copy
        .import_json(filtered.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 1"), "{err}");
    assert!(err.contains("filtered"), "{err}");
}

#[test]
fn export_follows_the_query() {
    let (_dir, store) = store();
    store
        .import_json(fixture("openintent_chained.jsonl").as_bytes())
        .unwrap();
    let llm = export(&store, &Query::new().type_prefix("llm_"));
    let rows = lines(&llm);
    assert_eq!(rows.len(), 12);
    assert!(rows
        .iter()
        .all(|r| r["event_type"].as_str().unwrap().starts_with("llm_")));
    let positions: Vec<u64> = rows
        .iter()
        .map(|r| r["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "position order");
}

/// `depth` nested objects `{"k":{"k":…{}}}` (the outermost is level 1), built without recursion.
fn nested_objects(depth: usize) -> Value {
    let mut value = Value::Object(serde_json::Map::new());
    for _ in 1..depth {
        let mut outer = serde_json::Map::new();
        outer.insert("k".into(), value);
        value = Value::Object(outer);
    }
    value
}

/// `depth` nested arrays, built without recursion.
fn nested_arrays(depth: usize) -> Value {
    let mut value = Value::Array(Vec::new());
    for _ in 1..depth {
        value = Value::Array(vec![value]);
    }
    value
}

/// `event` with a proof nested `depth` deep that the store accepts: signed where the store checks
/// signatures (the signature does not cover the proof, so a member added to it keeps it valid).
fn with_proof_nested(event: oidb::NewEvent, depth: usize) -> oidb::NewEvent {
    let event = event.id(uuid::Uuid::now_v7()).created_at(oidb::time::now());
    #[cfg(feature = "signatures")]
    let mut proof = {
        let key = oidb::signature::SigningKey::from_bytes(&[7; 32]);
        let signed = Store::in_memory()
            .unwrap()
            .append(event.clone().sign(&key))
            .unwrap();
        signed.proof.unwrap()
    };
    #[cfg(not(feature = "signatures"))]
    let mut proof = serde_json::json!({"type": "example"});
    proof["deep"] = nested_arrays(depth - 1);
    event.proof(proof)
}

/// An exported line holds the payload and the proof one level deeper than they are, and JSON
/// readers stop at 128 levels: a payload nested 127 deep was stored, but its export did not
/// import back ("recursion limit exceeded"). The deepest value the store accepts round-trips.
#[test]
fn the_deepest_payload_and_proof_accepted_export_and_import_back() {
    let deepest = 126;
    let (_dir, store) = store();
    store
        .append(with_proof_nested(
            oidb::NewEvent::new("i", EventType::Comment, "a").payload(nested_objects(deepest)),
            deepest,
        ))
        .unwrap();
    let exported = export(&store, &Query::new());
    let event: oidb::Event = serde_json::from_str(exported.trim_end()).unwrap();
    assert_eq!(event.payload, nested_objects(deepest));

    let (_other_dir, other) = self::store();
    let report = other.import_json(exported.as_bytes()).unwrap();
    assert_eq!((report.read, report.appended), (1, 1));
    let copied = other.query(&Query::new()).unwrap();
    assert_eq!(copied.events[0].payload, nested_objects(deepest));
    assert_eq!(copied.events[0].proof, event.proof);
    assert_eq!(copied.events[0].event_hash, event.event_hash);

    for (new, name) in [
        oidb::NewEvent::new("i", EventType::Comment, "a").payload(nested_objects(deepest + 1)),
        with_proof_nested(
            oidb::NewEvent::new("i", EventType::Comment, "a"),
            deepest + 1,
        ),
    ]
    .into_iter()
    .zip(["payload", "proof"])
    {
        match store.append(new).unwrap_err() {
            Error::InvalidEvent { field, reason } => {
                assert_eq!(field, name);
                assert!(reason.contains("deeper than 126 levels"), "{reason}");
            }
            other => panic!("expected InvalidEvent, got {other}"),
        }
    }
    assert_eq!(store.last_position().unwrap(), 1);
}

/// A server-style event line (no sequence, no hashes) with `id` and `payload`.
fn wire_line(id: &str, payload: &str) -> String {
    format!(
        "{{\"id\": \"{id}\", \"intent_id\": \"i\", \"event_type\": \"comment\", \"actor\": \"a\", \
         \"payload\": {payload}, \"created_at\": \"2026-11-20T09:00:07.097374Z\"}}"
    )
}

/// An event stored before is skipped on import; the same event repeated within one input was
/// refused instead ("the same id is already on line 6"), so a chunked CLI import passed or failed
/// by how far apart the repeats fell. A repeat is skipped; other content under the id is refused.
#[test]
fn an_event_repeated_in_one_input_is_skipped_and_a_changed_one_is_refused() {
    let (_dir, store) = store();
    let a = wire_line("81e74ef5-e8e2-4d94-8ed9-000000000001", "{\"n\": 1}");
    let b = wire_line("81e74ef5-e8e2-4d94-8ed9-000000000002", "{\"n\": 2}");
    let input = format!("{a}\n{b}\n\n{a}\n");
    let report = store.import_json(input.as_bytes()).unwrap();
    assert_eq!(
        (report.read, report.appended, report.already_present),
        (3, 2, 1)
    );
    assert_eq!(store.last_position().unwrap(), 2);

    let (_other_dir, other) = self::store();
    let changed = wire_line("81e74ef5-e8e2-4d94-8ed9-000000000001", "{\"n\": 3}");
    let input = format!("{a}\n{b}\n{changed}\n");
    match other.import_json(input.as_bytes()).unwrap_err() {
        Error::Import { line, reason, .. } => {
            assert_eq!(line, 3, "{reason}");
            assert!(reason.contains("2 lines above"), "{reason}");
            assert!(reason.contains("other content"), "{reason}");
        }
        other => panic!("expected Import, got {other}"),
    }
    assert_eq!(other.last_position().unwrap(), 0);
}

/// `export_json` is documented to write oldest first, and a chained import needs that order; it
/// followed `Query::newest_first`, and importing its output failed with a hint about gaps.
#[test]
fn export_writes_oldest_first_even_for_a_newest_first_query() {
    let (_dir, store) = store();
    store
        .import_json(fixture("openintent_chained.jsonl").as_bytes())
        .unwrap();
    let positions = |text: &str| -> Vec<u64> {
        lines(text)
            .iter()
            .map(|r| r["position"].as_u64().unwrap())
            .collect()
    };

    let all = export(&store, &Query::new().newest_first());
    assert_eq!(positions(&all), (1..=54).collect::<Vec<u64>>());
    let (_other_dir, other) = self::store();
    let report = other.import_json(all.as_bytes()).unwrap();
    assert_eq!(report.appended, 54);

    let newest = export(&store, &Query::new().newest_first().limit(3));
    assert_eq!(positions(&newest), vec![52, 53, 54]);
}

#[test]
fn a_hash_mismatch_names_what_oidb_keeps_in_its_own_form() {
    let (_dir, store) = store();
    let mut first = lines(&fixture("openintent_chained.jsonl")).remove(0);
    let written = first["created_at"].as_str().unwrap().replace('Z', "+00:00");
    first["created_at"] = Value::from(written.clone());
    first["metadata"] = json!({});
    // Hashed as written, as another producer would: over the object without its event_hash.
    let mut hashed = first.clone();
    hashed.as_object_mut().unwrap().remove("event_hash");
    let canonical = oidb::jcs::to_canonical_vec(&hashed).unwrap();
    let digest: [u8; 32] = sha2::Sha256::digest(&canonical).into();
    first["event_hash"] = Value::from(oidb::chain::format_hash(&digest));
    let error = store
        .import_json(format!("{first}\n").as_bytes())
        .unwrap_err();
    match error {
        Error::Import { line, reason, .. } => {
            assert_eq!(line, 1);
            for part in [
                "does not match its content",
                &format!("`created_at` {written:?} is kept as"),
                "fields metadata are not kept",
                "re-hash the event",
            ] {
                assert!(reason.contains(part), "{part:?} not in {reason}");
            }
        }
        other => panic!("{other}"),
    }
}
