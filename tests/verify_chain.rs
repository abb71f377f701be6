//! `verify_chain` recomputes every hash from what is stored and names the exact break when the
//! file is tampered with. Each test closes the store, changes the redb tables directly, reopens
//! the store and asks for a verification.

mod postings_blocks;

use std::path::Path;

use oidb::verify::BreakKind;
use oidb::{EventType, NewEvent, Store};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::json;
use uuid::Uuid;

// The tables as src/format.rs defines them (same names, same key and value types).
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

const INTENT: &str = "intent-a";

/// A store with six events of `intent-a` (positions 1, 3, 5, 7, 9, 11) and five of `intent-b`
/// in between; returns each `intent-a` event's (position, id, hash).
fn build(path: &Path) -> Vec<(u64, Uuid, String)> {
    let store = Store::open(path).unwrap();
    let mut a = Vec::new();
    for i in 1..=6 {
        let e = store
            .append(
                NewEvent::new(INTENT, EventType::Comment, "agent-a")
                    .payload(json!({"message": format!("note number {i}")})),
            )
            .unwrap();
        a.push((e.position, e.id, e.event_hash));
        if i < 6 {
            store
                .log_event("intent-b", EventType::StatePatched, json!({"step": i}))
                .unwrap();
        }
    }
    assert!(store.verify_chain(INTENT).unwrap().valid);
    a
}

fn edit(path: &Path, change: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    change(&txn);
    txn.commit().unwrap();
}

fn record(path: &Path, position: u64) -> Vec<u8> {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let events = txn.open_table(EVENTS).unwrap();
    let bytes = events.get(position).unwrap().unwrap().value().to_vec();
    bytes
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("marker in record")
}

#[test]
fn an_untouched_store_and_the_imported_fixture_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("f.oidb")).unwrap();
    let fixture = std::fs::File::open("tests/data/openintent_chained.jsonl").unwrap();
    let report = store.import_json(std::io::BufReader::new(fixture)).unwrap();
    assert_eq!(report.appended, 54);
    let all = store.verify_all(|_| {}).unwrap();
    assert!(all.valid, "{:#?}", all.problems);
    assert_eq!(all.chains.len(), 3);
    assert_eq!(all.event_count, 54);
    for chain in &all.chains {
        assert!(chain.valid, "{chain:#?}");
        assert_eq!(chain.first_sequence, 1);
        assert_eq!(chain.event_count, chain.last_sequence);
        assert_eq!(*chain, store.verify_chain(&chain.intent_id).unwrap());
    }
    assert_eq!(all.chains.iter().map(|c| c.event_count).sum::<u64>(), 54);

    let unknown = store.verify_chain("no-such-intent").unwrap();
    assert!(unknown.valid);
    assert_eq!(unknown.event_count, 0);
}

#[test]
fn a_flipped_payload_byte_is_a_hash_mismatch_at_that_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    let a = build(&path);
    let (position, id, stored_hash) = a[2].clone();
    let mut bytes = record(&path, position);
    let at = find(&bytes, b"note number 3");
    bytes[at] = b'N'; // "Note number 3": still valid JSON, different content
    edit(&path, |txn| {
        txn.open_table(EVENTS)
            .unwrap()
            .insert(position, bytes.as_slice())
            .unwrap();
    });

    let store = Store::open(&path).unwrap();
    let report = store.verify_chain(INTENT).unwrap();
    assert!(!report.valid);
    assert_eq!(report.event_count, 6);
    assert_eq!(report.breaks.len(), 1, "{:#?}", report.breaks);
    let b = &report.breaks[0];
    assert_eq!(b.kind, BreakKind::HashMismatch);
    assert_eq!(
        (b.sequence, b.event_id, b.position),
        (3, Some(id), Some(position))
    );
    assert_eq!(b.found.as_deref(), Some(stored_hash.as_str()));
    assert_ne!(b.expected.as_deref(), Some(stored_hash.as_str()));
    assert!(b.message.contains("altered"), "{}", b.message);
    // The other intent is untouched.
    assert!(store.verify_chain("intent-b").unwrap().valid);
}

#[test]
fn a_dropped_event_is_a_missing_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    let a = build(&path);
    let (position, _, _) = a[3].clone();
    edit(&path, |txn| {
        txn.open_table(EVENTS).unwrap().remove(position).unwrap();
        postings_blocks::remove_intent_entries(txn, &[position]);
    });

    let store = Store::open(&path).unwrap();
    let report = store.verify_chain(INTENT).unwrap();
    assert!(!report.valid);
    assert_eq!(report.event_count, 5);
    assert_eq!(report.breaks.len(), 1, "{:#?}", report.breaks);
    let b = &report.breaks[0];
    assert_eq!(b.kind, BreakKind::MissingEvent);
    assert_eq!(b.sequence, 4);
    assert_eq!(
        (b.expected.as_deref(), b.found.as_deref()),
        (Some("4"), Some("5"))
    );
    assert!(b.message.contains("event 4 is missing"), "{}", b.message);
}

#[test]
fn a_record_dropped_under_its_index_is_a_missing_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    let a = build(&path);
    let (position, _, _) = a[1].clone();
    edit(&path, |txn| {
        txn.open_table(EVENTS).unwrap().remove(position).unwrap();
    });
    let store = Store::open(&path).unwrap();
    let report = store.verify_chain(INTENT).unwrap();
    let kinds: Vec<_> = report.breaks.iter().map(|b| (b.kind, b.sequence)).collect();
    assert_eq!(kinds, vec![(BreakKind::MissingRecord, 2)]);
}

#[test]
fn the_last_event_dropped_is_a_head_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    let a = build(&path);
    let (position, _, _) = a[5].clone();
    edit(&path, |txn| {
        txn.open_table(EVENTS).unwrap().remove(position).unwrap();
        postings_blocks::remove_intent_entries(txn, &[position]);
    });
    let store = Store::open(&path).unwrap();
    let report = store.verify_chain(INTENT).unwrap();
    let kinds: Vec<_> = report.breaks.iter().map(|b| (b.kind, b.sequence)).collect();
    assert_eq!(kinds, vec![(BreakKind::HeadMismatch, 6)]);
    assert!(report.breaks[0].message.contains("removed from the end"));
}

#[test]
fn two_reordered_events_are_reported_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    let a = build(&path);
    let (p3, id3, _) = a[2].clone();
    let (p4, id4, _) = a[3].clone();
    let r3 = record(&path, p3);
    let r4 = record(&path, p4);
    edit(&path, |txn| {
        let mut events = txn.open_table(EVENTS).unwrap();
        events.insert(p3, r4.as_slice()).unwrap();
        events.insert(p4, r3.as_slice()).unwrap();
    });

    let store = Store::open(&path).unwrap();
    let report = store.verify_chain(INTENT).unwrap();
    let found: Vec<_> = report
        .breaks
        .iter()
        .map(|b| (b.kind, b.sequence, b.event_id, b.found.clone()))
        .collect();
    assert_eq!(
        found,
        vec![
            (BreakKind::OutOfOrder, 3, Some(id4), Some("4".to_owned())),
            (BreakKind::OutOfOrder, 4, Some(id3), Some("3".to_owned())),
        ]
    );
}

#[test]
fn a_rewritten_hash_breaks_that_event_and_the_link_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    let a = build(&path);
    let (position, id, hash) = a[1].clone();
    let digest = oidb::chain::parse_hash(&hash).unwrap();
    let mut bytes = record(&path, position);
    // The digest appears once in the record: as the event's own hash.
    let at = find(&bytes, &digest);
    bytes[at] ^= 0x01;
    let mut forged = digest;
    forged[0] ^= 0x01;
    let forged = oidb::chain::format_hash(&forged);
    edit(&path, |txn| {
        txn.open_table(EVENTS)
            .unwrap()
            .insert(position, bytes.as_slice())
            .unwrap();
    });

    let store = Store::open(&path).unwrap();
    let report = store.verify_chain(INTENT).unwrap();
    let found: Vec<_> = report
        .breaks
        .iter()
        .map(|b| (b.kind, b.sequence, b.expected.clone(), b.found.clone()))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                BreakKind::HashMismatch,
                2,
                Some(hash.clone()),
                Some(forged.clone())
            ),
            (BreakKind::PreviousHashMismatch, 3, Some(forged), Some(hash)),
        ]
    );
    assert_eq!(report.breaks[0].event_id, Some(id));
}

#[test]
fn the_report_has_openintents_json_shape() {
    let store = Store::in_memory().unwrap();
    store
        .log_event("i", EventType::Comment, json!({"n": 1}))
        .unwrap();
    let value = serde_json::to_value(store.verify_chain("i").unwrap()).unwrap();
    assert_eq!(
        value,
        json!({
            "intent_id": "i", "valid": true, "event_count": 1, "first_sequence": 1,
            "last_sequence": 1, "chain_valid": true, "breaks": []
        })
    );
    let back: oidb::ChainVerification = serde_json::from_value(value).unwrap();
    assert!(back.valid);
}

#[test]
fn an_undecodable_record_is_a_damaged_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    let a = build(&path);
    let (position, _, _) = a[4].clone();
    let mut bytes = record(&path, position);
    bytes.truncate(20);
    edit(&path, |txn| {
        txn.open_table(EVENTS)
            .unwrap()
            .insert(position, bytes.as_slice())
            .unwrap();
    });
    let store = Store::open(&path).unwrap();
    let report = store.verify_chain(INTENT).unwrap();
    let kinds: Vec<_> = report.breaks.iter().map(|b| (b.kind, b.sequence)).collect();
    assert_eq!(kinds, vec![(BreakKind::DamagedRecord, 5)]);
    assert!(report.breaks[0]
        .message
        .contains(&format!("position {position}")));
    let all = store.verify_all(|_| {}).unwrap();
    assert!(all.problems.iter().any(
        |p| p.kind == oidb::verify::ProblemKind::DamagedRecord && p.position == Some(position)
    ));
}

#[test]
fn a_damaged_index_block_is_a_damaged_break_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    build(&path);
    // intent-a is the first intent: code 1, one block from sequence 1. Its second entry's
    // position delta becomes 0: positions that do not rise.
    edit(&path, |txn| {
        let mut blocks = txn.open_table(postings_blocks::INTENT_POSTINGS).unwrap();
        let bytes = blocks.get((1, 1)).unwrap().unwrap().value().to_vec();
        let entries = postings_blocks::decode(postings_blocks::Kind::Intent, &bytes);
        assert_eq!(entries.len(), 6);
        let first = postings_blocks::encode(postings_blocks::Kind::Intent, &entries[..1]);
        let mut damaged = bytes.clone();
        damaged[first.len()] = 0;
        blocks.insert((1, 1), damaged.as_slice()).unwrap();
    });
    let store = Store::open(&path).unwrap();
    let report = store.verify_chain(INTENT).unwrap();
    assert!(!report.valid);
    let kinds: Vec<_> = report.breaks.iter().map(|b| (b.kind, b.sequence)).collect();
    assert_eq!(
        kinds[0],
        (BreakKind::DamagedRecord, 1),
        "{:#?}",
        report.breaks
    );
    assert!(
        report.breaks[0].message.contains("intent_postings (1, 1)"),
        "{}",
        report.breaks[0].message
    );
    assert!(store.verify_chain("intent-b").unwrap().valid);
}
