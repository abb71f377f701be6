//! Files of format version 1 (payloads kept as JSON text) stay readable, read-only and for
//! writing; opening one for writing upgrades it to this version, and its old records and the new
//! ones live side by side. `tests/data/format_v1/` holds a store that an earlier build wrote.

use std::path::{Path, PathBuf};

use oidb::{ChainVerification, EventFilter, EventType, NewEvent, Query, ReadOnlyStore, Store};
use redb::{ReadableDatabase, ReadableTable};
use serde_json::json;

const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("oidb_meta");
const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/format_v1")
        .join(name)
}

/// A copy of the version 1 store, to open without touching the fixture.
fn v1_copy(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("v1.oidb");
    std::fs::copy(fixture("store.oidb"), &path).unwrap();
    path
}

fn format_version(path: &Path) -> u32 {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    let bytes = meta
        .get("format_version")
        .unwrap()
        .unwrap()
        .value()
        .to_vec();
    u32::from_le_bytes(bytes.try_into().unwrap())
}

/// The first byte of every record: its record version.
fn record_versions(path: &Path) -> Vec<u8> {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let events = txn.open_table(EVENTS).unwrap();
    events
        .iter()
        .unwrap()
        .map(|row| row.unwrap().1.value()[0])
        .collect()
}

/// Every break in `chains`: (intent, sequence).
fn breaks(chains: &[ChainVerification]) -> Vec<(String, u64)> {
    chains
        .iter()
        .flat_map(|c| c.breaks.iter().map(|b| (c.intent_id.clone(), b.sequence)))
        .collect()
}

/// The proof in `extra.jsonl` is no real signature: only a build that checks signatures objects
/// to it. Every hash and link holds.
fn expected_breaks() -> Vec<(String, u64)> {
    if cfg!(feature = "signatures") {
        vec![("format-v1".to_owned(), 2)]
    } else {
        Vec::new()
    }
}

fn export(store: &Store) -> String {
    let mut out = Vec::new();
    store.export_json(&mut out, &Query::new()).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn the_fixture_is_a_version_1_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = v1_copy(&dir);
    assert_eq!(format_version(&path), 1);
    let versions = record_versions(&path);
    assert_eq!(versions.len(), 87);
    assert!(versions.iter().all(|&v| v == 1), "{versions:?}");
}

#[test]
fn a_version_1_store_exports_the_same_bytes_as_the_build_that_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = v1_copy(&dir);
    let store = Store::open(&path).unwrap();
    let expected = std::fs::read_to_string(fixture("export.jsonl")).unwrap();
    assert_eq!(export(&store), expected);

    let verification = store.verify_all(|_| {}).unwrap();
    assert!(
        verification.problems.is_empty(),
        "{:?}",
        verification.problems
    );
    assert_eq!(verification.event_count, 87);
    assert_eq!(breaks(&verification.chains), expected_breaks());
}

#[test]
fn a_read_only_open_reads_version_1_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = v1_copy(&dir);
    let before = std::fs::read(&path).unwrap();
    {
        let store = ReadOnlyStore::open(&path).unwrap();
        let page = store.query(&Query::new().intent("format-v1")).unwrap();
        assert_eq!(page.events.len(), 3);
        assert_eq!(
            page.events[1].proof.as_ref().unwrap()["type"],
            "Ed25519Signature2020"
        );
        assert_eq!(
            page.events[0].payload["alpha"],
            json!([0.1, 1e-7, 1.5e300, -0.0, 2.5, 100.0])
        );
        assert_eq!(store.stats().unwrap().format_version, 1);
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn opening_for_writing_upgrades_and_old_and_new_records_live_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let path = v1_copy(&dir);
    let before = {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.stats().unwrap().format_version, oidb::FORMAT_VERSION);
        let appended = store
            .append(
                NewEvent::new("format-v1", EventType::Comment, "agent-critic")
                    .payload(json!({"z": 0.734, "a": [1, -2, "three"], "m": {"deep": null}})),
            )
            .unwrap();
        assert_eq!(appended.sequence, 4, "the version 1 chain continues");
        export(&store)
    };
    assert_eq!(format_version(&path), oidb::FORMAT_VERSION);
    let versions = record_versions(&path);
    assert_eq!(versions.len(), 88);
    assert!(
        versions[..87].iter().all(|&v| v == 1),
        "old records are not rewritten"
    );
    assert_eq!(
        versions[87], 2,
        "new records are written in record version 2"
    );

    let store = Store::open(&path).unwrap();
    assert_eq!(export(&store), before);
    let chain = store.verify_chain("format-v1").unwrap();
    assert_eq!(chain.last_sequence, 4);
    assert_eq!(breaks(&[chain]), expected_breaks());
    let events = store
        .get_events("format-v1", EventFilter::new().newest_first().limit(3))
        .unwrap();
    assert_eq!(
        events[0].payload.to_string(),
        r#"{"z":0.734,"a":[1,-2,"three"],"m":{"deep":null}}"#
    );
    assert_eq!(
        events[2].proof.as_ref().unwrap()["proofValue"],
        "z3FXQjecWufY46yg5abdVZsXqLhxhueuSoZgNSARiKBk"
    );

    // What the upgraded store exports imports into a new one as the very same events (except
    // where signatures are checked: there the fixture's stand-in proof is refused, by line).
    let fresh = Store::in_memory().unwrap();
    match fresh.import_json(before.as_bytes()) {
        Ok(report) if !cfg!(feature = "signatures") => {
            assert_eq!(report.appended, 88);
            assert_eq!(export(&fresh), before);
        }
        Err(oidb::Error::Import { line, .. }) if cfg!(feature = "signatures") => {
            assert_eq!(line, 86);
        }
        other => panic!("{other:?}"),
    }
}
