//! The disk's floor: the same events as JSONL lines appended to a plain file, with `fdatasync`
//! where the other sides commit. Nothing that grows a file can store the events durably for less.
//!
//! A second floor writes the lines over space already written and synced (as a log that reuses
//! its preallocated space does): its syncs have no file length or block allocation to record.
//! A third appends every batch and syncs once, after the last: what writing the bytes costs when
//! no commit before the end need be durable. A fourth is what a perfect group commit costs many
//! threads: each writes its line over preallocated space, and one `fdatasync` covers every line
//! written before it started, so a thread waits for at most the sync under way and the next.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

pub fn open(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open floor file")
}

/// Appends one line (or lines already joined) with one write, and waits until it is on disk.
pub fn append_durable(file: &File, line: &str) {
    append(file, line);
    file.sync_data().expect("fdatasync");
}

/// Appends lines already joined with one write, leaving them to the kernel.
pub fn append(mut file: &File, lines: &str) {
    file.write_all(lines.as_bytes()).expect("write");
}

/// A file of `len` zeros, written and synced, to write lines over.
pub fn preallocated(path: &Path, len: u64) -> File {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .expect("open in-place floor file");
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < len {
        file.write_all_at(&zeros, at).expect("zero fill");
        at += zeros.len() as u64;
    }
    file.sync_all().expect("fsync");
    file
}

/// Writes one line at `at` over preallocated space and waits until it is on disk.
pub fn write_durable_at(file: &File, at: u64, line: &str) {
    file.write_all_at(line.as_bytes(), at).expect("write");
    file.sync_data().expect("fdatasync");
}

/// Many threads writing lines over one preallocated file, sharing syncs as a perfect group commit
/// would: a line is durable once a sync that started after it was written has ended.
pub struct Grouped {
    file: File,
    /// Where the next line goes.
    end: AtomicU64,
    state: Mutex<GroupState>,
    synced: Condvar,
}

#[derive(Default)]
struct GroupState {
    /// Lines written so far (their tickets run from 1).
    written: u64,
    /// Lines known durable.
    durable: u64,
    syncing: bool,
}

impl Grouped {
    /// Over a file of `len` zeros, written and synced.
    pub fn new(path: &Path, len: u64) -> Grouped {
        Grouped {
            file: preallocated(path, len),
            end: AtomicU64::new(0),
            state: Mutex::new(GroupState::default()),
            synced: Condvar::new(),
        }
    }

    /// Writes `line` and returns once a sync covers it: the first thread to find no sync under
    /// way syncs for everyone whose line is written.
    pub fn write_durable(&self, line: &str) {
        let at = self.end.fetch_add(line.len() as u64, Ordering::Relaxed);
        self.file.write_all_at(line.as_bytes(), at).expect("write");
        let mut state = self.state.lock().expect("group state");
        state.written += 1;
        let ticket = state.written;
        while state.durable < ticket {
            if state.syncing {
                state = self.synced.wait(state).expect("group state");
                continue;
            }
            state.syncing = true;
            let covers = state.written;
            drop(state);
            self.file.sync_data().expect("fdatasync");
            state = self.state.lock().expect("group state");
            state.durable = covers;
            state.syncing = false;
            self.synced.notify_all();
        }
    }
}
