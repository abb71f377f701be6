//! `verify_all` checks what only the store knows: contiguous positions, every index row against
//! the record it points at, intent heads. Each test damages the redb tables directly.

mod postings_blocks;

use std::path::Path;

use oidb::verify::{ProblemKind, VerifyStage};
use oidb::{EventType, NewEvent, Store};
use redb::{ReadableTable, TableDefinition};
use serde_json::json;
use uuid::Uuid;

// The tables as src/format.rs defines them.
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const BY_ID: TableDefinition<u128, u64> = TableDefinition::new("by_id");

const TRACE: &str = "6cad4a268d116ece1738f7d93d9c1724";

fn build(path: &Path) {
    let store = Store::open(path).unwrap();
    for i in 0..20u32 {
        let mut event = NewEvent::new(
            format!("intent-{}", i % 3),
            if i % 2 == 0 {
                EventType::Comment
            } else {
                EventType::StatePatched
            },
            format!("agent-{}", i % 4),
        )
        .payload(json!({"i": i}));
        if i % 5 == 0 {
            event = event.trace_id(TRACE);
        }
        store.append(event).unwrap();
    }
    let report = store.verify_all(|_| {}).unwrap();
    assert!(report.valid, "{:#?}", report.problems);
}

fn edit(path: &Path, change: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    change(&txn);
    txn.commit().unwrap();
}

fn problems(path: &Path) -> Vec<(ProblemKind, String, Option<u64>)> {
    let store = Store::open(path).unwrap();
    let report = store.verify_all(|_| {}).unwrap();
    assert!(!report.valid);
    report
        .problems
        .into_iter()
        .map(|p| (p.kind, p.table, p.position))
        .collect()
}

#[test]
fn progress_is_reported_to_the_end_of_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    build(&path);
    let store = Store::open(&path).unwrap();
    let mut seen = Vec::new();
    let report = store.verify_all(|p| seen.push(p)).unwrap();
    assert!(report.valid);
    assert_eq!((report.event_count, report.last_position), (20, 20));
    for stage in [
        VerifyStage::Chains,
        VerifyStage::Records,
        VerifyStage::Indexes,
    ] {
        let last = seen.iter().rfind(|p| p.stage == stage).unwrap();
        assert_eq!(last.done, last.total, "{stage:?}");
    }
    assert_eq!(
        seen.iter()
            .rfind(|p| p.stage == VerifyStage::Chains)
            .unwrap()
            .total,
        3
    );
    assert_eq!(
        seen.iter()
            .rfind(|p| p.stage == VerifyStage::Records)
            .unwrap()
            .total,
        20
    );
}

#[test]
fn a_missing_index_row_is_named_with_its_table_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    build(&path);
    edit(&path, |txn| {
        postings_blocks::remove_type_entries(txn, &[7]);
    });
    assert_eq!(
        problems(&path),
        vec![(
            ProblemKind::MissingIndexRow,
            "type_postings".to_owned(),
            Some(7)
        )]
    );
}

#[test]
fn an_index_row_pointing_at_nothing_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    build(&path);
    edit(&path, |txn| {
        let stray = Uuid::from_u128(0x1234);
        txn.open_table(BY_ID)
            .unwrap()
            .insert(stray.as_u128(), 99)
            .unwrap();
        let stray = postings_blocks::Entry {
            position: 3,
            micros: 0,
            type_code: 1,
            actor_code: 1,
            level: 2,
            sequence: 0,
        };
        let block = postings_blocks::encode(postings_blocks::Kind::Trace, &[stray]);
        txn.open_table(postings_blocks::TRACE_POSTINGS)
            .unwrap()
            .insert((0xabc, 3), block.as_slice())
            .unwrap();
    });
    assert_eq!(
        problems(&path),
        vec![
            (ProblemKind::IndexRowDisagrees, "by_id".to_owned(), Some(99)),
            (
                ProblemKind::IndexRowDisagrees,
                "trace_postings".to_owned(),
                Some(3)
            ),
        ]
    );
}

#[test]
fn a_hole_in_the_positions_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    build(&path);
    edit(&path, |txn| {
        txn.open_table(EVENTS).unwrap().remove(11).unwrap();
    });
    let store = Store::open(&path).unwrap();
    let report = store.verify_all(|_| {}).unwrap();
    assert!(!report.valid);
    assert_eq!(report.event_count, 19);
    let first = &report.problems[0];
    assert_eq!(
        (first.kind, first.table.as_str(), first.position),
        (ProblemKind::PositionGap, "events", Some(11))
    );
    assert!(first.message.contains("position 11 holds no record"));
    // Every index row that pointed at it now points at nothing.
    for table in [
        "by_id",
        "intent_postings",
        "type_postings",
        "actor_postings",
        "by_time",
    ] {
        assert!(
            report.problems.iter().any(|p| p.table == table
                && p.position == Some(11)
                && p.kind == ProblemKind::IndexRowDisagrees),
            "{table}: {:#?}",
            report.problems
        );
    }
    // And the intent whose record it was has a missing record in its chain.
    let broken: Vec<_> = report
        .broken_chains()
        .map(|c| c.intent_id.clone())
        .collect();
    assert_eq!(broken, vec!["intent-1".to_owned()]);
}

#[test]
fn swapped_records_make_their_id_rows_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    build(&path);
    edit(&path, |txn| {
        let mut events = txn.open_table(EVENTS).unwrap();
        let a = events.get(4).unwrap().unwrap().value().to_vec();
        let b = events.get(5).unwrap().unwrap().value().to_vec();
        events.insert(4, b.as_slice()).unwrap();
        events.insert(5, a.as_slice()).unwrap();
    });
    let found = problems(&path);
    for position in [4, 5] {
        assert!(
            found.contains(&(
                ProblemKind::IndexRowDisagrees,
                "by_id".to_owned(),
                Some(position)
            )),
            "{found:#?}"
        );
    }
    // Both belong to other intents, so each intent's sequence row names the other position.
    assert!(
        found.contains(&(
            ProblemKind::IndexRowDisagrees,
            "intent_postings".to_owned(),
            Some(4)
        )),
        "{found:#?}"
    );
}

#[test]
fn the_report_serializes() {
    let store = Store::in_memory().unwrap();
    store.log_event("i", EventType::Comment, json!({})).unwrap();
    let report = store.verify_all(|_| {}).unwrap();
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["valid"], true);
    assert_eq!(value["chains"][0]["chain_valid"], true);
    assert_eq!(value["problems"], json!([]));
}

/// How long verification takes on a larger store. Prints its timings; asserts only correctness.
/// Run: `cargo test --release --test verify_store -- --ignored --nocapture`
/// (`OIDB_MEASURE_EVENTS` sets the number of events; 100,000 by default).
#[test]
#[ignore = "a measurement, not a check; run it by hand"]
fn measure_verification_at_scale() {
    use std::time::Instant;

    use oidb::checkpoint::CheckpointScope;
    use oidb::Durability;

    let n: u64 = std::env::var("OIDB_MEASURE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::builder()
        .durability(Durability::Deferred {
            window: std::time::Duration::from_secs(1),
        })
        .open(dir.path().join("m.oidb"))
        .unwrap();
    for chunk in 0..n / 1000 {
        let events = (0..1000).map(|i| {
            let k = chunk * 1000 + i;
            NewEvent::new(
                format!("intent-{}", k % 100),
                EventType::LlmRequestCompleted,
                format!("agent-{}", k % 7),
            )
            .payload(json!({
                "model": "gpt-4o", "prompt_tokens": k, "completion_tokens": 17,
                "content": "The quick brown fox jumps over the lazy dog"
            }))
        });
        store.append_batch(events).unwrap();
    }
    store.flush().unwrap();

    let t = Instant::now();
    let chain = store.verify_chain("intent-0").unwrap();
    println!(
        "verify_chain, {} events: {:?}",
        chain.event_count,
        t.elapsed()
    );
    assert!(chain.valid);

    let t = Instant::now();
    let all = store.verify_all(|_| {}).unwrap();
    let took = t.elapsed();
    assert!(all.valid);
    println!(
        "verify_all, {} events in {} intents: {took:?} ({:.0} events/s)",
        all.event_count,
        all.chains.len(),
        all.event_count as f64 / took.as_secs_f64()
    );

    let t = Instant::now();
    let checkpoint = store
        .create_checkpoint(&CheckpointScope::Store)
        .unwrap()
        .unwrap();
    println!(
        "store checkpoint over {} events: {:?}",
        checkpoint.event_count,
        t.elapsed()
    );
    let middle = store.get_at(n / 2).unwrap().unwrap().id;
    let t = Instant::now();
    let proof = store
        .inclusion_proof(&checkpoint.checkpoint_id, middle)
        .unwrap();
    println!(
        "inclusion proof, {} steps: {:?}",
        proof.proof_hashes.len(),
        t.elapsed()
    );
    assert!(proof.verify());
    let t = Instant::now();
    assert!(store.verify_checkpoint(&checkpoint).unwrap().valid);
    println!(
        "verify_checkpoint, {} events: {:?}",
        checkpoint.event_count,
        t.elapsed()
    );
}

#[test]
fn a_damaged_index_block_is_named_with_its_table_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.oidb");
    build(&path);
    edit(&path, |txn| {
        let mut actors = txn.open_table(postings_blocks::ACTOR_POSTINGS).unwrap();
        let (code, first) = actors.first().unwrap().unwrap().0.value();
        // Five entries counted, but the bytes end after one.
        actors
            .insert((code, first), [5u8, 1, 2, 3, 2].as_slice())
            .unwrap();
    });
    let store = Store::open(&path).unwrap();
    let report = store.verify_all(|_| {}).unwrap();
    assert!(!report.valid);
    let damaged: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.table == "actor_postings")
        .collect();
    assert!(!damaged.is_empty(), "{:#?}", report.problems);
    assert!(
        damaged
            .iter()
            .all(|p| p.message.contains("index block actor_postings (")
                && p.message.contains("is damaged")),
        "{damaged:#?}"
    );
    // Queries through that block fail with an error naming it, not with a panic.
    let error = store
        .query(&oidb::Query::new().actor("agent-0"))
        .unwrap_err();
    assert!(matches!(error, oidb::Error::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("actor_postings"), "{error}");
}

/// A store of [`build`]'s events whose record at position 8 lost its last byte: its head is
/// whole, its payload is not.
fn store_with_record_8_damaged(path: &Path) -> Store {
    build(path);
    edit(path, |txn| {
        let mut events = txn.open_table(EVENTS).unwrap();
        let record = events.get(8).unwrap().unwrap().value().to_vec();
        events.insert(8, &record[..record.len() - 1]).unwrap();
    });
    Store::open(path).unwrap()
}

#[test]
fn a_damaged_record_ends_a_scan_with_an_error_naming_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_record_8_damaged(&dir.path().join("s.oidb"));
    let mut scan = store.scan(1).unwrap();
    for expected in 1..8 {
        assert_eq!(scan.next().unwrap().unwrap().position, expected);
    }
    match scan.next() {
        Some(Err(oidb::Error::Corrupt { position: 8, .. })) => {}
        other => panic!("expected the damage at position 8, got {other:?}"),
    }
    assert!(scan.next().is_none(), "a scan ends at its first error");
    // A query whose page holds the record fails as a whole, naming it too.
    let error = store.query(&oidb::Query::new()).unwrap_err();
    assert!(
        matches!(error, oidb::Error::Corrupt { position: 8, .. }),
        "{error}"
    );
    // Pages that do not hold it are read as before.
    let page = store
        .query(&oidb::Query::new().after(oidb::Cursor(8)))
        .unwrap();
    assert_eq!(page.events.len(), 12);
}

#[test]
fn a_damaged_record_in_history_stops_a_subscription_without_skipping_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_record_8_damaged(&dir.path().join("s.oidb"));
    let mut sub = store
        .subscribe(oidb::Filter::new(), oidb::Start::Beginning)
        .unwrap();
    for expected in 1..8 {
        match sub.recv().unwrap() {
            Some(oidb::Delivery::Event(event)) => assert_eq!(event.position, expected),
            other => panic!("expected event {expected}, got {other:?}"),
        }
    }
    // The damaged record is reported each time it is due, never passed over.
    for _ in 0..2 {
        let error = sub.recv().unwrap_err();
        assert!(
            matches!(error, oidb::Error::Corrupt { position: 8, .. }),
            "{error}"
        );
        assert_eq!(sub.position(), 7);
    }
}
