//! Files that are not healthy oidb stores: each gives a clear error, never a panic, and is left
//! exactly as it was.

mod prng;

use std::path::{Path, PathBuf};

use oidb::{Error, EventType, Store};
use prng::Prng;
use serde_json::json;

/// Opens `path`, expecting an error; asserts the file's bytes did not change. Returns the error.
fn open_refused(path: &Path) -> Error {
    let before = std::fs::read(path).ok();
    let error = Store::open(path).expect_err("a bad file must not open");
    let after = std::fs::read(path).ok();
    assert!(before == after, "opening {} changed it", path.display());
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "the error names the file: {message}"
    );
    error
}

fn store_with_events(path: &Path, count: usize) {
    let store = Store::open(path).unwrap();
    for i in 0..count {
        store
            .log_event(
                format!("intent-{}", i % 3),
                EventType::Comment,
                json!({"i": i, "text": "x".repeat(i % 50)}),
            )
            .unwrap();
    }
}

#[test]
fn random_bytes_are_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Prng::from_env_or_time("random_bytes_are_not_a_store");
    for size in [1, 15, 16, 4096, 65_536] {
        let path = dir.path().join(format!("random-{size}.oidb"));
        let mut bytes = vec![0; size];
        rng.fill(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        let error = open_refused(&path);
        assert!(matches!(error, Error::NotAnOidbFile { .. }), "{error}");
    }
}

#[test]
fn random_bytes_behind_a_redb_signature_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Prng::from_env_or_time("random_bytes_behind_a_redb_signature_are_refused");
    for size in [9, 64, 4096, 65_536, 1 << 20] {
        let path = dir.path().join(format!("fake-{size}.oidb"));
        let mut bytes = vec![0; size];
        rng.fill(&mut bytes);
        let signature = b"redb\x1a\x0a\xa9\x0d\x0a";
        bytes[..signature.len()].copy_from_slice(signature);
        std::fs::write(&path, &bytes).unwrap();
        let error = open_refused(&path);
        assert!(matches!(error, Error::NotAnOidbFile { .. }), "{error}");
    }
}

#[test]
fn an_empty_file_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.oidb");
    std::fs::write(&path, b"").unwrap();
    let error = open_refused(&path);
    assert!(matches!(error, Error::NotAnOidbFile { .. }), "{error}");
    assert!(error.to_string().contains("empty"), "{error}");
}

#[test]
fn a_truncated_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.oidb");
    store_with_events(&whole, 500);
    let bytes = std::fs::read(&whole).unwrap();
    let len = bytes.len();
    for cut in [9, 100, 512, 4096, len / 4, len / 2, len - 4096, len - 1] {
        let path = dir.path().join(format!("cut-{cut}.oidb"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let error = open_refused(&path);
        eprintln!("cut at {cut} of {len}: {error}");
        assert!(
            matches!(error, Error::NotAnOidbFile { .. }),
            "cut at {cut} of {len}: {error}"
        );
    }
}

/// A copy taken while the store was open (as after a crash, or a backup made carelessly), then
/// truncated. Such a file cannot be read before redb repairs it, and the repair writes to it, so
/// here the promise is a clear error and no panic; the file may have been written to (see
/// docs/reliability.md, "Limits").
#[test]
fn a_truncated_copy_of_an_open_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.oidb");
    let store = Store::open(&live).unwrap();
    for i in 0..300 {
        store
            .log_event("intent", EventType::Comment, json!({"i": i}))
            .unwrap();
    }
    let bytes = std::fs::read(&live).unwrap();
    let len = bytes.len();
    let events: Vec<_> = store.scan(1).unwrap().map(Result::unwrap).collect();
    for cut in [100, 4096, len / 2, len - 1] {
        let path = dir.path().join(format!("copy-cut-{cut}.oidb"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        match Store::open(&path) {
            Err(error) => {
                eprintln!("copy cut at {cut} of {len}: {error}");
                assert!(
                    matches!(error, Error::NotAnOidbFile { .. }),
                    "cut at {cut} of {len}: {error}"
                );
                assert!(
                    error.to_string().contains(&path.display().to_string()),
                    "{error}"
                );
            }
            // redb leaves room past its data: when all a commit needs lies before the cut, the
            // repair finds that commit, a consistent store holding only what the original held.
            Ok(copy) => {
                assert!(cut >= 4096, "cut at {cut} of {len} opened");
                assert!(copy.verify_all(|_| {}).unwrap().valid, "cut at {cut}");
                let kept: Vec<_> = copy.scan(1).unwrap().map(Result::unwrap).collect();
                assert!(kept.len() <= events.len(), "cut at {cut}");
                for (got, original) in kept.iter().zip(&events) {
                    assert_eq!(
                        got, original,
                        "cut at {cut}: an event the original does not hold there"
                    );
                }
            }
        }
    }
    // A copy of the file alone holds what was last checkpointed into it: an older, consistent
    // log. With its write-ahead log beside it, it holds every acknowledged event.
    let alone = dir.path().join("copy-alone.oidb");
    std::fs::write(&alone, &bytes).unwrap();
    let wal = std::fs::read(dir.path().join("live.oidb-wal")).unwrap();
    let copy = dir.path().join("copy-whole.oidb");
    std::fs::write(&copy, &bytes).unwrap();
    std::fs::write(dir.path().join("copy-whole.oidb-wal"), &wal).unwrap();
    drop(store);
    let reopened = Store::open(&alone).expect("a copy of an open store opens after repair");
    let kept = reopened.last_position().unwrap();
    assert!(kept <= 300, "{kept}");
    assert!(reopened.verify_all(|_| {}).unwrap().valid);
    let reopened = Store::open(&copy).expect("a whole copy of an open store opens after repair");
    assert_eq!(reopened.last_position().unwrap(), 300);
    assert!(reopened.verify_all(|_| {}).unwrap().valid);
    assert!(
        !dir.path().join("copy-whole.oidb-wal").exists(),
        "the log is removed once replayed"
    );
}

#[test]
fn a_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch("CREATE TABLE events (id TEXT PRIMARY KEY, payload TEXT); INSERT INTO events VALUES ('a', '{}');")
        .unwrap();
    drop(db);
    let error = open_refused(&path);
    assert!(matches!(error, Error::NotAnOidbFile { .. }), "{error}");
    assert!(error.to_string().contains("SQLite"), "{error}");
}

#[test]
fn a_newer_format_version_is_refused() {
    const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("oidb_meta");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.oidb");
    store_with_events(&path, 10);
    let db = redb::Database::open(&path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(META)
        .unwrap()
        .insert(
            "format_version",
            (oidb::FORMAT_VERSION + 1).to_le_bytes().as_slice(),
        )
        .unwrap();
    txn.commit().unwrap();
    drop(db);

    let error = open_refused(&path);
    match error {
        Error::UnsupportedFormat {
            found, supported, ..
        } => {
            assert_eq!(found, oidb::FORMAT_VERSION + 1);
            assert_eq!(supported, oidb::FORMAT_VERSION);
        }
        other => panic!("expected UnsupportedFormat, got {other}"),
    }
}

#[test]
fn a_redb_file_of_another_program_is_refused() {
    const THEIRS: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("their_table");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("theirs.redb");
    let db = redb::Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(THEIRS).unwrap().insert(1, 2).unwrap();
    txn.commit().unwrap();
    drop(db);
    let error = open_refused(&path);
    assert!(matches!(error, Error::NotAnOidbFile { .. }), "{error}");
}

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = Store::open(dir.path()).expect_err("a directory is not a store");
    assert!(matches!(error, Error::NotAnOidbFile { .. }), "{error}");
    assert!(error.to_string().contains("directory"), "{error}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was created in it"
    );
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("agent.oidb");
    let error = Store::open(&path).expect_err("the parent directory does not exist");
    assert!(matches!(error, Error::Open { .. }), "{error}");
    assert!(error.to_string().contains("agent.oidb"), "{error}");
}

/// The environment variable that makes `read_only_child` run (as an unprivileged user).
const READ_ONLY_CHILD: &str = "OIDB_READ_ONLY_CHILD";

#[test]
fn a_read_only_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-only.oidb");
    store_with_events(&path, 20);
    set_mode(&path, 0o444);
    let privileged = std::fs::OpenOptions::new().write(true).open(&path).is_ok();
    if privileged {
        // Permission bits do not bind this user (root): run the check as `nobody`.
        set_mode(dir.path(), 0o755);
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "read_only_child", "--ignored", "--nocapture"])
            .env(READ_ONLY_CHILD, &path)
            .uid(65_534)
            .gid(65_534)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "the unprivileged child failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("read-only refused"));
    } else {
        check_read_only_refused(&path);
    }
}

#[test]
#[ignore = "run by a_read_only_file_is_refused as an unprivileged user"]
fn read_only_child() {
    let Some(path) = std::env::var_os(READ_ONLY_CHILD) else {
        return;
    };
    check_read_only_refused(&PathBuf::from(path));
    println!("read-only refused");
}

fn check_read_only_refused(path: &Path) {
    let error = open_refused(path);
    match &error {
        Error::Open { source, .. } => {
            assert_eq!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied,
                "{error}"
            );
        }
        other => panic!("expected Error::Open (permission denied), got {other}"),
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

use std::os::unix::process::CommandExt as _;
