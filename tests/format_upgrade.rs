//! Files of format version 1 (payloads kept as JSON text), 2 (ids and types kept as text) and 3
//! (secondary indexes kept as one row per event) stay readable, read-only and for writing;
//! opening one for writing upgrades it to this version, and its old records and the new ones live
//! side by side. `tests/data/format_v1/`, `tests/data/format_v2/` and `tests/data/format_v3/` hold
//! the same store as builds of those versions wrote it.

use std::path::{Path, PathBuf};

use oidb::{
    ChainVerification, Cursor, EventFilter, EventType, Level, NewEvent, Page, Query, ReadOnlyStore,
    Store,
};
use redb::{ReadableDatabase, ReadableTable};
use serde_json::json;

const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("oidb_meta");
const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/format_v1")
        .join(name)
}

/// A copy of the store of format `version`, to open without touching the fixture.
fn copy_of(version: u32, dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join(format!("v{version}.oidb"));
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/data/format_v{version}"))
        .join("store.oidb");
    std::fs::copy(fixture, &path).unwrap();
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

/// The names of the indexes by intent, type, actor and trace the file holds, in order.
fn index_tables(path: &Path) -> Vec<String> {
    use redb::TableHandle as _;
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let mut names: Vec<String> = txn
        .list_tables()
        .unwrap()
        .map(|t| t.name().to_owned())
        .filter(|name| {
            name.ends_with("_postings")
                || ["by_intent", "by_type", "by_actor", "by_trace"].contains(&name.as_str())
        })
        .collect();
    names.sort();
    names
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
fn the_fixtures_are_stores_of_versions_1_to_3() {
    for version in [1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_of(version, &dir);
        assert_eq!(format_version(&path), version);
        let versions = record_versions(&path);
        assert_eq!(versions.len(), 87);
        assert!(
            versions.iter().all(|&v| u32::from(v) == version),
            "{versions:?}"
        );
    }
}

#[test]
fn a_version_1_store_exports_the_same_bytes_as_the_build_that_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of(1, &dir);
    exports_what_it_was_written_from(&path);
}

/// The version 2 store holds the same events, imported the same way: its export is the same.
#[test]
fn a_version_2_store_exports_the_same_bytes_as_the_build_that_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of(2, &dir);
    exports_what_it_was_written_from(&path);
}

fn exports_what_it_was_written_from(path: &Path) {
    let store = Store::open(path).unwrap();
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

/// The version 3 store holds the same events, imported the same way: its export is the same.
#[test]
fn a_version_3_store_exports_the_same_bytes_as_the_build_that_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of(3, &dir);
    exports_what_it_was_written_from(&path);
}

#[test]
fn a_read_only_open_reads_version_1_and_leaves_the_file_alone() {
    read_only_open_reads_and_leaves_alone(1);
}

#[test]
fn a_read_only_open_reads_version_2_and_leaves_the_file_alone() {
    read_only_open_reads_and_leaves_alone(2);
}

#[test]
fn a_read_only_open_reads_version_3_and_leaves_the_file_alone() {
    read_only_open_reads_and_leaves_alone(3);
}

fn read_only_open_reads_and_leaves_alone(version: u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of(version, &dir);
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
        assert_eq!(store.stats().unwrap().format_version, version);
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn opening_version_1_for_writing_upgrades_and_old_and_new_records_live_side_by_side() {
    upgrades_and_keeps_old_records(1);
}

#[test]
fn opening_version_2_for_writing_upgrades_and_old_and_new_records_live_side_by_side() {
    upgrades_and_keeps_old_records(2);
}

#[test]
fn opening_version_3_for_writing_upgrades_and_old_and_new_records_live_side_by_side() {
    upgrades_and_keeps_old_records(3);
}

fn upgrades_and_keeps_old_records(version: u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of(version, &dir);
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
    assert_eq!(
        index_tables(&path),
        [
            "actor_postings",
            "intent_postings",
            "trace_postings",
            "type_postings"
        ],
        "the row-per-event indexes are rebuilt as blocks and deleted"
    );
    let versions = record_versions(&path);
    assert_eq!(versions.len(), 88);
    assert!(
        versions[..87].iter().all(|&v| u32::from(v) == version),
        "old records are not rewritten"
    );
    assert_eq!(
        versions[87], 3,
        "new records are written in record version 3"
    );

    let store = Store::open(&path).unwrap();
    assert_eq!(export(&store), before);
    let chain = store.verify_chain("format-v1").unwrap();
    assert_eq!(chain.last_sequence, 4);
    let verification = store.verify_all(|_| {}).unwrap();
    assert!(
        verification.problems.is_empty(),
        "{:?}",
        verification.problems
    );
    assert_eq!(verification.event_count, 88);
    let by_actor = store.query(&Query::new().actor("agent-critic")).unwrap();
    assert_eq!(by_actor.events.last().unwrap().position, 88);
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

/// Every query a user can make by intent, type, type prefix, actor, trace, level and time, in
/// both orders and in pages of a few events (cursors included), answered by `query`: a list of
/// (query, positions, next cursor) lines to compare.
fn answers(query: impl Fn(&Query) -> Page, events: &[serde_json::Value]) -> Vec<String> {
    let distinct = |field: &str| -> Vec<String> {
        let mut values: Vec<String> = events
            .iter()
            .filter_map(|e| e[field].as_str().map(str::to_owned))
            .collect();
        values.sort();
        values.dedup();
        values
    };
    let mut filters: Vec<(String, Query)> = vec![("all".into(), Query::new())];
    for intent in distinct("intent_id") {
        filters.push((format!("intent {intent}"), Query::new().intent(&intent)));
        filters.push((
            format!("intent {intent} comments"),
            Query::new().intent(&intent).event_type(EventType::Comment),
        ));
    }
    for event_type in distinct("event_type") {
        filters.push((
            format!("type {event_type}"),
            Query::new().event_type(EventType::parse(&event_type)),
        ));
    }
    filters.push(("prefix llm_".into(), Query::new().type_prefix("llm_")));
    for actor in distinct("actor") {
        filters.push((format!("actor {actor}"), Query::new().actor(&actor)));
    }
    for trace in distinct("trace_id") {
        filters.push((format!("trace {trace}"), Query::new().trace(&trace)));
    }
    filters.push(("min level warn".into(), Query::new().min_level(Level::Warn)));
    let middle = events[events.len() / 2]["created_at"].as_str().unwrap();
    let middle = oidb::time::parse(middle).unwrap();
    filters.push(("since middle".into(), Query::new().since(middle)));
    filters.push((
        "actor agent-critic until middle".into(),
        Query::new().actor("agent-critic").until(middle),
    ));
    let mut lines = Vec::new();
    for (name, filter) in filters {
        for newest_first in [false, true] {
            let mut after: Option<Cursor> = None;
            loop {
                let mut page_query = filter.clone().limit(7);
                if newest_first {
                    page_query = page_query.newest_first();
                }
                if let Some(cursor) = after {
                    page_query = page_query.after(cursor);
                }
                let page = query(&page_query);
                let positions: Vec<u64> = page.events.iter().map(|e| e.position).collect();
                lines.push(format!(
                    "{name} newest_first={newest_first}: {positions:?} next {:?}",
                    page.next
                ));
                match page.next {
                    Some(cursor) => after = Some(cursor),
                    None => break,
                }
            }
        }
    }
    lines
}

#[test]
fn read_only_opens_of_versions_1_to_3_answer_as_the_upgraded_store_does() {
    for version in [1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_of(version, &dir);
        let before = std::fs::read(&path).unwrap();
        let events: Vec<serde_json::Value> = std::fs::read_to_string(fixture("export.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let read_only = {
            let store = ReadOnlyStore::open(&path).unwrap();
            answers(|q| store.query(q).unwrap(), &events)
        };
        assert_eq!(std::fs::read(&path).unwrap(), before, "version {version}");
        assert!(read_only.len() > 60, "{}", read_only.len());
        assert_eq!(
            index_tables(&path),
            ["by_actor", "by_intent", "by_trace", "by_type"],
            "version {version} keeps one row per event"
        );

        let store = Store::open(&path).unwrap();
        assert_eq!(store.stats().unwrap().format_version, oidb::FORMAT_VERSION);
        let upgraded = answers(|q| store.query(q).unwrap(), &events);
        assert_eq!(read_only, upgraded, "version {version}");
        for intent in ["format-v1", "gl-stream"] {
            let oldest = store
                .get_events(intent, EventFilter::new().after(1).limit(2))
                .unwrap();
            let newest = store
                .get_events(intent, EventFilter::new().newest_first().before(3))
                .unwrap();
            let sequences = |events: &[oidb::Event]| -> Vec<u64> {
                events.iter().map(|e| e.sequence).collect()
            };
            assert_eq!(sequences(&oldest), [2, 3], "{intent}");
            assert_eq!(sequences(&newest), [2, 1], "{intent}");
        }
        let verification = store.verify_all(|_| {}).unwrap();
        assert!(
            verification.problems.is_empty(),
            "{:?}",
            verification.problems
        );
    }
}

#[test]
fn an_upgrade_needs_the_file_without_readers_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_of(3, &dir);
    let reader = ReadOnlyStore::open(&path).unwrap();
    let error = Store::open(&path).unwrap_err();
    assert!(
        matches!(error, oidb::Error::FileBeingRead { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("a format upgrade needs the file to itself"),
        "{message}"
    );
    assert!(message.contains("v3.oidb"), "{message}");
    assert_eq!(
        reader.stats().unwrap().format_version,
        3,
        "nothing was upgraded"
    );
    drop(reader);
    assert_eq!(format_version(&path), 3);
    Store::open(&path).unwrap();
    assert_eq!(format_version(&path), 4);
}
