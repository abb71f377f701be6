//! Opening files: what is refused, with which error, and that refused files stay unchanged.

use oidb::{Error, EventType, Store};

fn refused(path: &std::path::Path) -> Error {
    let before = std::fs::read(path).ok();
    let err = Store::open(path).unwrap_err();
    assert_eq!(
        std::fs::read(path).ok(),
        before,
        "a refused file is left unchanged"
    );
    err
}

#[test]
fn files_that_are_not_oidb_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.oidb");
    std::fs::write(&empty, b"").unwrap();
    let err = refused(&empty);
    assert!(matches!(err, Error::NotAnOidbFile { .. }), "{err}");
    assert!(err.to_string().contains("empty"), "{err}");

    let random = dir.path().join("random.oidb");
    std::fs::write(
        &random,
        (0..4096u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(matches!(refused(&random), Error::NotAnOidbFile { .. }));

    let sqlite = dir.path().join("db.sqlite");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.resize(4096, 0);
    std::fs::write(&sqlite, bytes).unwrap();
    let err = refused(&sqlite);
    assert!(err.to_string().contains("SQLite"), "{err}");

    let err = Store::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
}

#[test]
fn a_plain_redb_file_is_not_an_oidb_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<&str, u64>::new("mine"))
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, Error::NotAnOidbFile { .. }), "{err}");
}

#[test]
fn a_newer_format_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.oidb");
    drop(Store::open(&path).unwrap());
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, &[u8]>::new("oidb_meta"))
                .unwrap();
            meta.insert("format_version", 99u32.to_le_bytes().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    match Store::open(&path).unwrap_err() {
        Error::UnsupportedFormat {
            found, supported, ..
        } => assert_eq!((found, supported), (99, oidb::FORMAT_VERSION)),
        other => panic!("{other}"),
    }
}

#[test]
fn a_second_open_is_file_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.oidb");
    let store = Store::open(&path).unwrap();
    match Store::open(&path).unwrap_err() {
        Error::FileInUse { path: p } => assert_eq!(p, path),
        other => panic!("{other}"),
    }
    drop(store);
    Store::open(&path)
        .unwrap()
        .log_event("i", EventType::Comment, serde_json::json!({}))
        .unwrap();
}

#[test]
fn in_memory_stores_work() {
    let store = Store::in_memory().unwrap();
    store
        .log_event("i", EventType::Comment, serde_json::json!({"a": 1}))
        .unwrap();
    assert_eq!(store.last_position().unwrap(), 1);
}

/// A process that spawns children while it opens and closes a store: a child keeps copies of
/// the parent's open files from its fork until its exec, and with them the locks on a handle the
/// parent has just closed. Reopening must wait that out, not report the file in use.
#[test]
fn a_store_reopens_while_the_process_spawns_children() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spawning.oidb");
    drop(Store::open(&path).unwrap());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let reopened = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::process::Command::new("true").status().unwrap();
            }
        });
        let reopened = (0..300).try_for_each(|round| {
            let store = Store::open(&path).map_err(|e| format!("round {round}: {e}"))?;
            store
                .log_event(
                    "spawning",
                    EventType::Comment,
                    serde_json::json!({"round": round}),
                )
                .map_err(|e| format!("round {round}: appending fails: {e}"))?;
            drop(store);
            Ok::<(), String>(())
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reopened
    });
    if let Err(e) = reopened {
        panic!("the store does not reopen: {e}");
    }
    assert_eq!(Store::open(&path).unwrap().stats().unwrap().events, 300);
}
