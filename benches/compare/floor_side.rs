//! The disk's floor: the same events as JSONL lines appended to a plain file, with `fdatasync`
//! where the other sides commit. Nothing that grows a file can store the events durably for less.
//!
//! A second floor writes the lines over space already written and synced (as a log that reuses
//! its preallocated space does): its syncs have no file length or block allocation to record.
//! A third appends every batch and syncs once, after the last: what writing the bytes costs when
//! no commit before the end need be durable.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

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
