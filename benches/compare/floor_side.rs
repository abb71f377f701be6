//! The disk's floor: the same events as JSONL lines appended to a plain file, with `fdatasync`
//! where the other sides commit. Nothing can store the events durably for less.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;

pub fn open(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open floor file")
}

/// Appends one line and waits until it is on disk.
pub fn append_durable(mut file: &File, line: &str) {
    file.write_all(line.as_bytes()).expect("write");
    file.sync_data().expect("fdatasync");
}

/// Appends lines (already joined) with one write and one `fdatasync`.
pub fn append_batch(mut file: &File, lines: &str) {
    file.write_all(lines.as_bytes()).expect("write");
    file.sync_data().expect("fdatasync");
}
