//! Checkpoints: made on demand and by triggers, stored in the file, logged as
//! `log.checkpoint.created`, proving inclusion and consistency, and — exported — telling later
//! whether the log was truncated or rewritten.

mod postings_blocks;

use std::path::Path;
use std::time::Duration;

use oidb::checkpoint::{
    CheckpointPolicy, CheckpointProblem, CheckpointScope, LogCheckpoint, STORE_CHECKPOINT_INTENT,
};
use oidb::{Error, EventFilter, EventType, NewEvent, Store};
use redb::{ReadableTable, TableDefinition};
use serde_json::{json, Value};
use uuid::Uuid;

// The tables as src/format.rs defines them.
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoints");
const CHECKPOINT_IDS: TableDefinition<&str, u64> = TableDefinition::new("checkpoint_ids");
const CHECKPOINT_SCOPES: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("checkpoint_scopes");

fn log(store: &Store, intent: &str, n: usize) {
    for i in 0..n {
        store
            .append(
                NewEvent::new(intent, EventType::Comment, "agent-a")
                    .payload(json!({"message": format!("{intent} {i}")})),
            )
            .unwrap();
    }
}

fn scope(intent: &str) -> CheckpointScope {
    CheckpointScope::intent(intent)
}

fn edit(path: &Path, change: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    change(&txn);
    txn.commit().unwrap();
}

#[test]
fn checkpoints_seal_consecutive_batches_and_are_logged() {
    let store = Store::builder()
        .actor("auditor")
        .open_backend(redb::backends::InMemoryBackend::new(), "mem")
        .unwrap();
    assert!(store.create_checkpoint(&scope("a")).unwrap().is_none());
    log(&store, "a", 5);
    log(&store, "b", 2);

    let first = store.create_checkpoint(&scope("a")).unwrap().unwrap();
    assert_eq!(
        (first.event_count, first.first_sequence, first.last_sequence),
        (5, 1, 5)
    );
    assert_eq!(first.scope, scope("a"));
    // The checkpoint is logged right after its batch, as the intent's sixth event.
    let events = store.get_events("a", EventFilter::new()).unwrap();
    let logged = events.last().unwrap();
    assert_eq!(logged.sequence, 6);
    assert_eq!(logged.event_type, EventType::LogCheckpointCreated);
    assert_eq!(logged.actor, "auditor");
    assert_eq!(logged.payload, serde_json::to_value(&first).unwrap());

    // Only the log event is new: nothing to seal.
    assert!(store.create_checkpoint(&scope("a")).unwrap().is_none());

    log(&store, "a", 3);
    let second = store.create_checkpoint(&scope("a")).unwrap().unwrap();
    assert_eq!(
        (
            second.event_count,
            second.first_sequence,
            second.last_sequence
        ),
        (4, 6, 9)
    );
    assert_eq!(
        store.checkpoints(&scope("a")).unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(store.checkpoint(&second.checkpoint_id).unwrap(), second);
    assert!(store.checkpoints(&scope("b")).unwrap().is_empty());
    assert!(matches!(
        store.checkpoint("nope"),
        Err(Error::CheckpointNotFound { .. })
    ));

    let whole = store
        .create_checkpoint(&CheckpointScope::Store)
        .unwrap()
        .unwrap();
    let last_position = store.last_position().unwrap();
    assert_eq!(
        (whole.first_sequence, whole.last_sequence, whole.event_count),
        (1, last_position - 1, last_position - 1)
    );
    let store_log = store
        .get_events(STORE_CHECKPOINT_INTENT, EventFilter::new())
        .unwrap();
    assert_eq!(store_log.len(), 1);
    assert_eq!(store_log[0].payload["scope"], "store");
    assert_eq!(store_log[0].payload["intent_id"], Value::Null);
    assert_eq!(store.all_checkpoints().unwrap(), vec![first, second, whole]);
    assert!(store.verify_all(|_| {}).unwrap().valid);
}

#[test]
fn the_json_is_openintents_log_checkpoint_and_reads_back() {
    let store = Store::in_memory().unwrap();
    log(&store, "a", 3);
    let checkpoint = store.create_checkpoint(&scope("a")).unwrap().unwrap();
    let json = serde_json::to_value(&checkpoint).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "checkpoint_id",
            "intent_id",
            "scope",
            "merkle_root",
            "event_count",
            "first_sequence",
            "last_sequence",
            "created_at",
            "anchor"
        ]
    );
    assert_eq!(json["scope"], "intent");
    assert_eq!(json["intent_id"], "a");
    assert_eq!(json["anchor"], Value::Null);
    assert!(json["merkle_root"].as_str().unwrap().starts_with("sha256:"));
    let back: LogCheckpoint = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, checkpoint);

    // OpenIntent's "server" scope reads as the store scope; unknown scopes are refused.
    let mut server = json.clone();
    server["scope"] = "server".into();
    server["intent_id"] = Value::Null;
    let read: LogCheckpoint = serde_json::from_value(server).unwrap();
    assert_eq!(read.scope, CheckpointScope::Store);
    let mut odd = json;
    odd["scope"] = "galaxy".into();
    let error = serde_json::from_value::<LogCheckpoint>(odd).unwrap_err();
    assert!(error.to_string().contains("unknown scope"), "{error}");
}

#[test]
fn proofs_name_what_is_not_in_the_checkpoint() {
    let store = Store::in_memory().unwrap();
    log(&store, "a", 4);
    log(&store, "b", 1);
    let checkpoint = store.create_checkpoint(&scope("a")).unwrap().unwrap();
    log(&store, "a", 1);
    let a = store.get_events("a", EventFilter::new()).unwrap();
    let b = store.get_events("b", EventFilter::new()).unwrap();

    let proof = store
        .inclusion_proof(&checkpoint.checkpoint_id, a[3].id)
        .unwrap();
    assert!(proof.verify());
    assert_eq!((proof.leaf_index, proof.proof_hashes.len()), (3, 2));
    assert!(matches!(
        store.inclusion_proof(&checkpoint.checkpoint_id, b[0].id),
        Err(Error::NotInCheckpoint { .. })
    ));
    let later = a.last().unwrap();
    let error = store
        .inclusion_proof(&checkpoint.checkpoint_id, later.id)
        .unwrap_err();
    assert!(
        error.to_string().contains("the checkpoint covers 1 to 4"),
        "{error}"
    );
    assert!(matches!(
        store.inclusion_proof(&checkpoint.checkpoint_id, Uuid::now_v7()),
        Err(Error::EventNotFound(_))
    ));
    assert!(matches!(
        store.inclusion_proof("no-such-checkpoint", a[0].id),
        Err(Error::CheckpointNotFound { .. })
    ));

    // A store checkpoint proves any event by its position.
    let whole = store
        .create_checkpoint(&CheckpointScope::Store)
        .unwrap()
        .unwrap();
    for event in a.iter().chain(&b) {
        let proof = store
            .inclusion_proof(&whole.checkpoint_id, event.id)
            .unwrap();
        assert_eq!(proof.leaf_index, event.position - 1);
        assert!(proof.verify());
    }
}

#[test]
fn consistency_follows_the_chain_between_checkpoints() {
    let store = Store::in_memory().unwrap();
    log(&store, "a", 3);
    let one = store.create_checkpoint(&scope("a")).unwrap().unwrap();
    log(&store, "a", 2);
    let two = store.create_checkpoint(&scope("a")).unwrap().unwrap();
    log(&store, "a", 4);
    let three = store.create_checkpoint(&scope("a")).unwrap().unwrap();
    log(&store, "b", 1);
    let other = store.create_checkpoint(&scope("b")).unwrap().unwrap();

    let proof = store
        .consistency(&one.checkpoint_id, &two.checkpoint_id)
        .unwrap();
    assert!(proof.consistent, "{proof:?}");
    let events = store.get_events("a", EventFilter::new()).unwrap();
    let boundary = &events[3]; // sequence 4: the event that logged checkpoint one
    assert_eq!(
        serde_json::to_value(&proof).unwrap(),
        json!({
            "from_checkpoint": one.checkpoint_id,
            "to_checkpoint": two.checkpoint_id,
            "consistent": true,
            "boundary_event": {
                "sequence": 4,
                "event_hash": boundary.event_hash,
                "previous_event_hash": events[2].event_hash,
            }
        })
    );
    assert!(
        store
            .consistency(&one.checkpoint_id, &three.checkpoint_id)
            .unwrap()
            .consistent
    );

    let backwards = store
        .consistency(&two.checkpoint_id, &one.checkpoint_id)
        .unwrap();
    assert!(!backwards.consistent);
    assert!(backwards.reason.unwrap().contains("not after"));
    let across = store
        .consistency(&one.checkpoint_id, &other.checkpoint_id)
        .unwrap();
    assert!(!across.consistent);
    assert!(across.reason.unwrap().contains("different scopes"));
}

#[test]
fn consistency_fails_when_an_event_between_them_was_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.oidb");
    let (one, three, dropped) = {
        let store = Store::open(&path).unwrap();
        log(&store, "a", 3);
        let one = store.create_checkpoint(&scope("a")).unwrap().unwrap();
        log(&store, "a", 2); // sequences 5 and 6; the next checkpoint starts at 4
        let two = store.create_checkpoint(&scope("a")).unwrap().unwrap();
        log(&store, "a", 1);
        let three = store.create_checkpoint(&scope("a")).unwrap().unwrap();
        assert_eq!((two.first_sequence, three.first_sequence), (4, 7));
        let events = store.get_events("a", EventFilter::new()).unwrap();
        (one, three, events[4].position)
    };
    edit(&path, |txn| {
        txn.open_table(EVENTS).unwrap().remove(dropped).unwrap();
    });
    let store = Store::open(&path).unwrap();
    let proof = store
        .consistency(&one.checkpoint_id, &three.checkpoint_id)
        .unwrap();
    assert!(!proof.consistent);
    let reason = proof.reason.unwrap();
    assert!(reason.contains("5 is missing"), "{reason}");
}

#[test]
fn an_exported_checkpoint_shows_the_log_truncated_since() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.oidb");
    let (exported, tail) = {
        let store = Store::open(&path).unwrap();
        log(&store, "a", 8);
        let checkpoint = store.create_checkpoint(&scope("a")).unwrap().unwrap();
        let events = store.get_events("a", EventFilter::new()).unwrap();
        let tail: Vec<u64> = events[5..].iter().map(|e| e.position).collect();
        (serde_json::to_string(&checkpoint).unwrap(), tail)
    };
    // Cut the last three events and the log event, and remove every stored checkpoint too.
    edit(&path, |txn| {
        let mut events = txn.open_table(EVENTS).unwrap();
        postings_blocks::remove_intent_entries(txn, &tail);
        for position in &tail {
            events.remove(*position).unwrap();
        }
        txn.delete_table(CHECKPOINTS).unwrap();
        txn.delete_table(CHECKPOINT_IDS).unwrap();
        txn.delete_table(CHECKPOINT_SCOPES).unwrap();
    });

    let store = Store::open(&path).unwrap();
    assert!(store.all_checkpoints().unwrap().is_empty());
    let checkpoint: LogCheckpoint = serde_json::from_str(&exported).unwrap();
    let check = store.verify_checkpoint(&checkpoint).unwrap();
    assert!(!check.valid);
    assert_eq!(check.events_found, 5);
    assert_eq!(
        check.problems,
        vec![CheckpointProblem::Truncated {
            expected_events: 8,
            found_events: 5,
            first_missing: 6
        }]
    );
    assert!(check.problems[0].to_string().starts_with("truncated"));
    assert!(matches!(
        store.inclusion_proof(&checkpoint.checkpoint_id, Uuid::now_v7()),
        Err(Error::CheckpointNotFound { .. })
    ));
}

#[test]
fn an_exported_checkpoint_shows_a_log_rewritten_with_a_valid_chain() {
    let original = Store::in_memory().unwrap();
    log(&original, "a", 6);
    let checkpoint = original.create_checkpoint(&scope("a")).unwrap().unwrap();
    let mut export = Vec::new();
    original
        .export_json(&mut export, &oidb::Query::new().intent("a"))
        .unwrap();
    assert!(original.verify_checkpoint(&checkpoint).unwrap().valid);

    // A forger rewrites one payload and re-chains every event after it: each chain is valid.
    let forged: Vec<String> = String::from_utf8(export)
        .unwrap()
        .lines()
        .map(|line| {
            let mut event: Value = serde_json::from_str(line).unwrap();
            let object = event.as_object_mut().unwrap();
            for chain_field in ["sequence", "previous_event_hash", "event_hash", "position"] {
                object.remove(chain_field);
            }
            if object["payload"]["message"] == "a 2" {
                object["payload"]["message"] = "a 2 (approved)".into();
            }
            event.to_string()
        })
        .collect();
    let rewritten = Store::in_memory().unwrap();
    rewritten.import_json(forged.join("\n").as_bytes()).unwrap();
    assert!(rewritten.verify_all(|_| {}).unwrap().valid);

    let check = rewritten.verify_checkpoint(&checkpoint).unwrap();
    assert!(!check.valid);
    assert_eq!(check.events_found, 6);
    match &check.problems[..] {
        [CheckpointProblem::Rewritten {
            merkle_root,
            recomputed_root,
        }] => {
            assert_eq!(*merkle_root, checkpoint.merkle_root);
            assert_eq!(Some(recomputed_root), check.recomputed_root.as_ref());
            assert_ne!(recomputed_root, merkle_root);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_broken_chain_is_not_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.oidb");
    let position = {
        let store = Store::open(&path).unwrap();
        log(&store, "a", 4);
        store.get_events("a", EventFilter::new()).unwrap()[1].position
    };
    edit(&path, |txn| {
        let mut events = txn.open_table(EVENTS).unwrap();
        let mut bytes = events.get(position).unwrap().unwrap().value().to_vec();
        let at = bytes.windows(3).position(|w| w == b"a 1").unwrap();
        bytes[at + 2] = b'7';
        events.insert(position, bytes.as_slice()).unwrap();
    });
    let store = Store::open(&path).unwrap();
    match store.create_checkpoint(&scope("a")) {
        Err(Error::ChainBroken {
            intent_id,
            sequence,
            ..
        }) => assert_eq!((intent_id.as_str(), sequence), ("a", 2)),
        other => panic!("{other:?}"),
    }
    assert!(store.all_checkpoints().unwrap().is_empty());
}

#[test]
fn a_checkpoint_stored_but_not_logged_is_logged_before_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (checkpoint, logged, stored) = {
        let store = Store::open(dir.path().join("r.oidb")).unwrap();
        log(&store, "a", 3);
        let checkpoint = store.create_checkpoint(&scope("a")).unwrap().unwrap();
        let logged = store.get_events("a", EventFilter::new()).unwrap()[3].clone();
        let mut comments = Vec::new();
        store
            .export_json(
                &mut comments,
                &oidb::Query::new().event_type(EventType::Comment),
            )
            .unwrap();
        (checkpoint, logged, comments)
    };
    let stored_row = {
        let db = redb::Database::open(dir.path().join("r.oidb")).unwrap();
        let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
        let bytes = txn
            .open_table(CHECKPOINTS)
            .unwrap()
            .get(1)
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        bytes
    };
    // As if the process died between storing the checkpoint and logging it: the same three
    // events, the stored checkpoint, and no log event.
    let path = dir.path().join("crashed.oidb");
    Store::open(&path)
        .unwrap()
        .import_json(stored.as_slice())
        .unwrap();
    edit(&path, |txn| {
        txn.open_table(CHECKPOINTS)
            .unwrap()
            .insert(1, stored_row.as_slice())
            .unwrap();
        txn.open_table(CHECKPOINT_IDS)
            .unwrap()
            .insert(checkpoint.checkpoint_id.as_str(), 1)
            .unwrap();
        txn.open_table(CHECKPOINT_SCOPES)
            .unwrap()
            .insert(("intent:a", 1), ())
            .unwrap();
    });

    let store = Store::open(&path).unwrap();
    assert!(store.get(logged.id).unwrap().is_none());
    assert!(store.verify_checkpoint(&checkpoint).unwrap().valid);
    // Nothing new to seal, but the missing log event is written first, as it was meant to be.
    assert!(store.create_checkpoint(&scope("a")).unwrap().is_none());
    let repaired = store.get(logged.id).unwrap().unwrap();
    assert_eq!(repaired.event_type, EventType::LogCheckpointCreated);
    assert_eq!(repaired.sequence, 4);
    assert_eq!(repaired.payload, logged.payload);
    assert_eq!(repaired.created_at, logged.created_at);
    assert_eq!(repaired.event_hash, logged.event_hash);
    // A second attempt writes nothing.
    let last = store.last_position().unwrap();
    assert!(store.create_checkpoint(&scope("a")).unwrap().is_none());
    assert_eq!(store.last_position().unwrap(), last);
}

#[test]
fn the_count_trigger_fires_per_intent_and_ignores_checkpoint_events() {
    let store = Store::in_memory().unwrap();
    log(&store, "a", 12); // before the checkpointer: these count too
    let checkpointer = store
        .checkpointer(
            CheckpointPolicy::per_intent()
                .every_events(10)
                .no_time_trigger(),
        )
        .unwrap();
    log(&store, "a", 13);
    log(&store, "b", 5);
    let made = checkpointer.tick().unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(
        (
            made[0].scope.clone(),
            made[0].first_sequence,
            made[0].last_sequence
        ),
        (scope("a"), 1, 25)
    );
    assert!(checkpointer.tick().unwrap().is_empty());

    log(&store, "a", 9); // 9 new events (plus the log event, which does not count)
    assert!(checkpointer.tick().unwrap().is_empty());
    log(&store, "a", 1);
    let made = checkpointer.tick().unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!((made[0].first_sequence, made[0].last_sequence), (26, 36));
    assert_eq!(made[0].event_count, 11);
    log(&store, "b", 5);
    let made = checkpointer.tick().unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].scope, scope("b"));
}

#[test]
fn the_time_trigger_seals_what_waited_and_never_checkpoint_events_alone() {
    let store = Store::in_memory().unwrap();
    log(&store, "a", 2);
    let patient = store
        .checkpointer(
            CheckpointPolicy::per_intent()
                .no_event_trigger()
                .every(Duration::from_secs(3600)),
        )
        .unwrap();
    assert!(patient.tick().unwrap().is_empty());

    let eager = store
        .checkpointer(
            CheckpointPolicy::per_intent()
                .no_event_trigger()
                .every(Duration::ZERO),
        )
        .unwrap();
    let made = eager.tick().unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].last_sequence, 2);
    // Only the checkpoint's own log event is new: no checkpoint of it, however long it waits.
    assert!(eager.tick().unwrap().is_empty());
    assert!(eager.tick().unwrap().is_empty());
    log(&store, "a", 1);
    let made = eager.tick().unwrap();
    assert_eq!((made[0].first_sequence, made[0].last_sequence), (3, 4));
}

#[test]
fn whole_store_checkpoints_count_every_intent() {
    let store = Store::in_memory().unwrap();
    let checkpointer = store
        .checkpointer(
            CheckpointPolicy::whole_store()
                .every_events(6)
                .no_time_trigger(),
        )
        .unwrap();
    log(&store, "a", 3);
    log(&store, "b", 2);
    assert!(checkpointer.tick().unwrap().is_empty());
    log(&store, "c", 1);
    let made = checkpointer.tick().unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].scope, CheckpointScope::Store);
    assert_eq!((made[0].first_sequence, made[0].last_sequence), (1, 6));
}

#[test]
fn a_background_checkpointer_makes_checkpoints_until_stopped() {
    let store = Store::in_memory().unwrap();
    let thread = store
        .checkpointer(
            CheckpointPolicy::per_intent()
                .every_events(5)
                .no_time_trigger()
                .poll_interval(Duration::from_millis(5)),
        )
        .unwrap()
        .spawn()
        .unwrap();
    log(&store, "a", 5);
    // Wait (without a deadline that could fail on a busy machine) for the thread to catch up.
    let mut made = Vec::new();
    for _ in 0..6000 {
        made = store.checkpoints(&scope("a")).unwrap();
        if !made.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].last_sequence, 5);
    assert!(thread.last_error().is_none());
    thread.stop().unwrap();
}

#[test]
fn files_without_the_checkpoint_tables_read_as_having_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.oidb");
    {
        let store = Store::open(&path).unwrap();
        log(&store, "a", 2);
    }
    edit(&path, |txn| {
        txn.delete_table(CHECKPOINTS).unwrap();
        txn.delete_table(CHECKPOINT_IDS).unwrap();
        txn.delete_table(CHECKPOINT_SCOPES).unwrap();
    });
    let store = Store::open(&path).unwrap();
    assert!(store.all_checkpoints().unwrap().is_empty());
    assert!(store.checkpoints(&scope("a")).unwrap().is_empty());
    let checkpointer = store
        .checkpointer(CheckpointPolicy::per_intent().every_events(2))
        .unwrap();
    let made = checkpointer.tick().unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(store.all_checkpoints().unwrap(), made);
}
