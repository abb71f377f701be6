//! The write-ahead log beside a store's file: a child process appends (costs, a budget alert, a
//! refusal, plain events with traces) and aborts without closing; the parent reopens the file and
//! checks that the log brought back every acknowledged event exactly as it was, with the cost
//! ledger, budgets, indexes and subscriptions as they were; then the log's damaged and foreign
//! cases.

use std::path::{Path, PathBuf};
use std::process::Command;

use oidb::costs::{Budget, CostType, NewCost};
use oidb::{
    Delivery, Durability, Error, EventFilter, EventType, Filter, NewEvent, Query, Start, Store,
};
use serde_json::json;

/// Makes `wal_child` run as the writer: the path of the store.
const CHILD_PATH: &str = "OIDB_WAL_CHILD";

fn wal_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn usd(amount: f64) -> NewCost {
    NewCost::new(CostType::ApiCall, amount, "USD")
}

/// The writer: appends, prints every event it was answered (as export writes them), and aborts
/// (no close, no destructor, as a crash). It reads nothing, since a read in the writer's process
/// publishes what waits; and it publishes only on its own, rarely, so that the log holds what
/// the file does not.
#[test]
#[ignore = "run by the tests below, as a child process"]
fn wal_child() {
    let Some(path) = std::env::var_os(CHILD_PATH) else {
        return;
    };
    let store = Store::builder()
        .publish_interval(std::time::Duration::from_secs(3600))
        .open(PathBuf::from(path))
        .unwrap();
    store
        .set_budget("b", &Budget::new(10.0).alert_at_percent(80.0))
        .unwrap();
    store.record_cost("b", usd(5.0)).unwrap();
    store.record_cost("b", usd(4.0)).unwrap(); // crosses 80%: one budget alert
    let mut answered = Vec::new();
    assert!(matches!(
        store.record_cost("b", usd(2.0)),
        Err(Error::BudgetExceeded { .. })
    ));
    for i in 0..200 {
        let mut event = NewEvent::new(format!("i{}", i % 5), EventType::Comment, "agent")
            .payload(json!({"i": i, "text": "x".repeat(i % 50)}));
        if i % 3 == 0 {
            event = event.trace_id(format!("{:032x}", i % 4 + 1));
        }
        answered.push(store.append(event).unwrap());
    }
    let batch = store
        .append_batch((0..50).map(|i| {
            NewEvent::new(
                "batch",
                EventType::Custom(format!("kind.{}", i % 7)),
                "bulk",
            )
            .payload(json!({ "i": i }))
        }))
        .unwrap();
    answered.extend(batch);
    answered.push(
        store
            .log_event("last", EventType::Comment, json!({}))
            .unwrap(),
    );
    for event in &answered {
        println!("{}", serde_json::to_string(event).unwrap());
    }
    std::process::abort();
}

/// Runs the writer child on `path` and returns the events it was answered, one JSON line each:
/// the 251 of the 256 it wrote that an append answered with an event (the others are costs, the
/// budget's own event, and the ledger's alert and violation).
fn run_child(path: &Path) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "wal_child",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env(CHILD_PATH, path)
        .output()
        .unwrap();
    assert!(!output.status.success(), "the child aborts");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let export: String = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(export.lines().count(), 251, "{stdout}");
    export
}

/// Asserts that `export` holds every event `answered` names, as it was answered, in order, and
/// `total` events in all.
fn assert_holds(export: &str, answered: &str, total: usize) {
    let wanted: std::collections::HashSet<&str> = answered.lines().collect();
    let found: Vec<&str> = export.lines().filter(|l| wanted.contains(l)).collect();
    assert_eq!(
        found,
        answered.lines().collect::<Vec<_>>(),
        "every answered event, as it was"
    );
    assert_eq!(export.lines().count(), total);
}

fn export_of(store: &Store) -> String {
    let mut out = Vec::new();
    store.export_json(&mut out, &Query::new()).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn a_crash_loses_nothing_the_log_holds_and_the_reopened_store_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.oidb");
    let before = run_child(&path);
    let wal = wal_path(&path);
    assert!(wal.exists(), "the crash leaves the log behind");

    // The file alone holds less: the log is what carries the rest.
    let alone = dir.path().join("alone.oidb");
    std::fs::copy(&path, &alone).unwrap();
    let from_file_alone = Store::open(&alone).unwrap().last_position().unwrap();
    assert!(from_file_alone < 256, "{from_file_alone}");

    // A reader cannot see what only the log holds, so it is sent to a writable open.
    let error = oidb::ReadOnlyStore::open(&path).unwrap_err();
    assert!(matches!(error, Error::NeedsRepair { .. }), "{error:?}");

    let store = Store::open(&path).unwrap();
    assert!(!wal.exists(), "the log is removed once replayed");
    assert_holds(&export_of(&store), &before, 256);
    let verification = store.verify_all(|_| {}).unwrap();
    assert!(verification.valid, "{verification:?}");

    // The ledger and the budget are as they were: 9 USD spent, one alert, one violation.
    let status = store.budget("b").unwrap().unwrap();
    assert_eq!(status.spent.to_string(), "9");
    assert!(status.alerted);
    let of_type = |t: EventType| {
        store
            .get_events("b", EventFilter::new().event_type(t))
            .unwrap()
            .len()
    };
    assert_eq!(of_type(EventType::BudgetAlert), 1);
    assert_eq!(of_type(EventType::GovernanceViolation), 1);
    assert_eq!(store.costs("b").unwrap().costs.len(), 2);

    // Indexes answer for the replayed events.
    let traced = store
        .query(&Query::new().trace(format!("{:032x}", 1)).limit(1000))
        .unwrap();
    assert_eq!(traced.events.len(), 17);
    let kinds = store
        .query(
            &Query::new()
                .event_type(EventType::Custom("kind.3".into()))
                .limit(1000),
        )
        .unwrap();
    assert_eq!(kinds.events.len(), 7);

    // A subscriber from the beginning gets every event, then the hand-over.
    let mut subscription = store.subscribe(Filter::new(), Start::Beginning).unwrap();
    let mut positions = Vec::new();
    loop {
        match subscription.recv().unwrap().unwrap() {
            Delivery::Event(event) => positions.push(event.position),
            Delivery::CaughtUp { position } => {
                assert_eq!(position, 256);
                break;
            }
        }
    }
    assert_eq!(positions, (1..=256).collect::<Vec<_>>());
    drop(subscription);

    // Appends go on where the log ended.
    let next = store
        .log_event("i0", EventType::Comment, json!({}))
        .unwrap();
    assert_eq!(next.position, 257);
    assert_eq!(next.sequence, 41);
    store.close().unwrap();
    drop(store);
    assert!(!wal.exists(), "a clean close leaves no log");
    assert_eq!(
        oidb::ReadOnlyStore::open(&path)
            .unwrap()
            .last_position()
            .unwrap(),
        257
    );
}

#[test]
fn a_store_opened_by_another_name_keeps_its_log_beside_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    let path = dir.path().join("real").join("agent.oidb");
    let link = dir.path().join("link.oidb");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let before = run_child(&link);
    assert!(wal_path(&path).exists(), "the log is beside the file");
    assert!(!wal_path(&link).exists(), "not beside the link");
    let store = Store::open(&path).unwrap();
    assert_holds(&export_of(&store), &before, 256);
}

#[test]
fn a_log_that_appears_after_the_store_opened_is_left_alone_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.oidb");
    let store = Store::open(&path).unwrap();
    let wal = wal_path(&path);
    std::fs::write(&wal, b"another program's bytes").unwrap();
    let refused = store
        .append(NewEvent::new("i", EventType::Comment, "a"))
        .unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains(&wal.display().to_string()) && message.contains("did not write it"),
        "{message}"
    );
    assert_eq!(std::fs::read(&wal).unwrap(), b"another program's bytes");
    assert_eq!(store.last_position().unwrap(), 0);
    // Once it is moved away, appends go on.
    std::fs::remove_file(&wal).unwrap();
    store
        .append(NewEvent::new("i", EventType::Comment, "a"))
        .unwrap();
    assert_eq!(store.last_position().unwrap(), 1);
}

#[test]
fn a_log_damaged_before_intact_entries_is_kept_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.oidb");
    let before = run_child(&path);
    let wal = wal_path(&path);
    let mut bytes = std::fs::read(&wal).unwrap();
    let entries: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"OIWE")
        .map(|(at, _)| at)
        .collect();
    assert!(entries.len() > 10, "{} entries", entries.len());
    // The third entry's checksum no longer matches; every entry after it is intact.
    bytes[entries[2] + 30] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();

    let store = Store::open(&path).unwrap();
    let kept = dir.path().join("agent.oidb-wal.damaged");
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        bytes,
        "the log is kept as it was"
    );
    assert!(!wal.exists());
    let replayed = store.last_position().unwrap();
    assert!(replayed < before.lines().count() as u64, "{replayed}");
    assert_eq!(store.stats().unwrap().damaged_logs, vec![kept.clone()]);
    drop(store);

    let run = Command::new(env!("CARGO_BIN_EXE_oidb"))
        .args(["verify", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(3));
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert!(stdout.contains("agent.oidb-wal.damaged"), "{stdout}");
}

#[test]
fn a_torn_last_entry_was_never_acknowledged_and_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.oidb");
    let before = run_child(&path);
    let wal = wal_path(&path);
    // Tear the last entry (the last single append) by cutting into it, as a crash mid-write
    // would: the checksum no longer matches.
    let bytes = std::fs::read(&wal).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    std::fs::write(&wal, &bytes[..end - 3]).unwrap();

    let store = Store::open(&path).unwrap();
    assert_eq!(store.last_position().unwrap(), 255);
    let expected: String = before.lines().take(250).map(|l| format!("{l}\n")).collect();
    assert_holds(&export_of(&store), &expected, 255);
    assert!(store.verify_all(|_| {}).unwrap().valid);
}

#[test]
fn another_stores_log_is_refused_and_nothing_is_changed() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = dir.path().join("crashed.oidb");
    run_child(&crashed);
    let other = dir.path().join("other.oidb");
    Store::open(&other)
        .unwrap()
        .log_event("o", EventType::Comment, json!({}))
        .unwrap();
    assert!(!wal_path(&other).exists());
    std::fs::copy(wal_path(&crashed), wal_path(&other)).unwrap();
    let log_before = std::fs::read(wal_path(&other)).unwrap();

    let error = Store::open(&other).unwrap_err();
    assert!(matches!(error, Error::Wal { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("another store"), "{message}");
    assert!(message.contains("other.oidb-wal"), "{message}");
    assert_eq!(std::fs::read(wal_path(&other)).unwrap(), log_before);
    // A read-only open says the same, rather than asking for a repair that would not get past it.
    let error = oidb::ReadOnlyStore::open(&other).unwrap_err();
    assert!(matches!(error, Error::Wal { .. }), "{error:?}");

    // Moved away, the store opens as it was.
    std::fs::remove_file(wal_path(&other)).unwrap();
    assert_eq!(Store::open(&other).unwrap().last_position().unwrap(), 1);
}

#[test]
fn a_log_that_does_not_continue_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.oidb");
    run_child(&path);
    let wal = wal_path(&path);
    let log = std::fs::read(&wal).unwrap();
    // Replay the log, then put it back beside a file that now holds more than it.
    let store = Store::open(&path).unwrap();
    for _ in 0..3 {
        store
            .log_event("more", EventType::Comment, json!({}))
            .unwrap();
    }
    store.close().unwrap();
    drop(store);
    // A log whose events the file already holds is harmless: nothing to replay.
    std::fs::write(&wal, &log).unwrap();
    assert_eq!(Store::open(&path).unwrap().last_position().unwrap(), 259);
    assert!(!wal.exists());

    // An older copy of the file with a newer log of the same store: a gap the log cannot fill.
    let older = dir.path().join("older.oidb");
    std::fs::copy(&path, &older).unwrap(); // ends at 259
    let store = Store::open(&path).unwrap();
    store.log_event("x", EventType::Comment, json!({})).unwrap(); // 260
    store.flush().unwrap(); // into the file; the log starts over
    store.log_event("x", EventType::Comment, json!({})).unwrap(); // 261, alone in the log
    std::fs::copy(&wal, wal_path(&older)).unwrap();
    drop(store);
    let error = Store::open(&older).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::Wal { .. }), "{error:?}");
    assert!(message.contains("goes on from position 261"), "{message}");
    assert!(message.contains("ends at 259"), "{message}");
    assert!(wal_path(&older).exists(), "a refused log is kept");
}

#[test]
fn deferred_durability_writes_no_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.oidb");
    let store = Store::builder()
        .durability(Durability::Deferred {
            window: std::time::Duration::from_millis(50),
        })
        .open(&path)
        .unwrap();
    store.log_event("i", EventType::Comment, json!({})).unwrap();
    assert!(!wal_path(&path).exists());
}
