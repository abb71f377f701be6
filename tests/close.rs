//! Closing a store: the last handle's drop releases the file before it returns. In a test binary
//! of its own, as no test here may start a child process: a child keeps its parent's open files,
//! and their locks, until its `exec`, which would hold the file open past any drop.

use oidb::{EventType, Store};

/// The last handle's drop closes the file before it returns, whatever the store's own threads
/// are doing: a copy made, or a read-only open, right after it finds a file its writer closed.
#[test]
fn dropping_the_last_handle_closes_the_file_before_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropped.oidb");
    for round in 0..150u64 {
        let store = Store::open(&path).unwrap();
        store
            .log_event(
                "dropped",
                EventType::Comment,
                serde_json::json!({"round": round}),
            )
            .unwrap();
        // Lands the drop at every point of the publisher's 20 ms period in turn.
        std::thread::sleep(std::time::Duration::from_millis(round % 23));
        drop(store);
        let reader = oidb::ReadOnlyStore::open(&path).unwrap();
        assert_eq!(
            reader.writer_status().unwrap(),
            oidb::WriterStatus::Closed,
            "round {round}: the file is still open after the last handle's drop"
        );
    }
}
